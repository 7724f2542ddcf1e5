// Commands of the verifier part: `provenant bundle verify` (the full pipeline, offline) and `provenant verifier run`
// (the service). The service stops gracefully on SIGINT/SIGTERM: the batch in flight finishes or is abandoned
// before its transaction is sent, and the chain check on restart makes either case safe. `verifier run` refuses an
// open policy (POLICY_OPEN, exit 2) unless it says development; `bundle verify` warns about one, and about a
// revocation it could not check.
import path from "node:path";

import {
  dateOption,
  defineCommand,
  integerOption,
  numberOption,
  readInputFile,
  requiredOption,
  type Command,
} from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import type { Product } from "../lib/snp/index.ts";

const VERIFY_USAGE =
  "provenant bundle verify <bundle.json> [--policy <json>] [--now <iso>] [--crl <der>]… [--no-crl] " +
  "[--cache-dir <dir>] [--offline] [--kds-url <url>] [--json]";

const bundleVerify = defineCommand({
  path: ["bundle", "verify"],
  summary: "verify a provenance bundle offline with the verifier's full pipeline",
  usage: VERIFY_USAGE,
  options: {
    policy: { type: "string" },
    now: { type: "string" },
    crl: { type: "string", multiple: true },
    "no-crl": { type: "boolean" },
    "cache-dir": { type: "string" },
    offline: { type: "boolean" },
    "kds-url": { type: "string" },
  },
  positionals: ["bundle.json"],
  async run({ values, positionals, io }) {
    const { defaultVerifierPolicy, parseVerifierPolicyBytes, policyDigest, verifyBundle } =
      await import("./pipeline/index.ts");
    const { createCertificateStore, defaultCacheDir, KDS_BASE } = await import("../lib/snp/index.ts");
    const policy =
      values.policy === undefined
        ? defaultVerifierPolicy()
        : parseVerifierPolicyBytes(await readInputFile(io, values.policy, "policy"));
    const now = dateOption(values.now, "now");
    const noCrl = values["no-crl"] === true;
    if (noCrl && (values.crl !== undefined || values["kds-url"] !== undefined))
      throw new UsageError(`--no-crl cannot be combined with --crl or --kds-url\nusage: ${VERIFY_USAGE}`);
    const kdsUrl = values["kds-url"];
    if (kdsUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(kdsUrl))
      throw new UsageError("--kds-url must be an http(s) URL");
    const given: Uint8Array[] = [];
    for (const file of values.crl ?? []) given.push(await readInputFile(io, file, "CRL"));
    const bytes = await readInputFile(io, positionals[0]!, "bundle");

    // Revocation (DESIGN §4): AMD's ARK-signed CRLs, from --crl, the cache, or KDS. A report chained to one of AMD's
    // roots needs a current one (SNP_CERT_UNAVAILABLE otherwise, exit 1) unless --no-crl, which only warns.
    const fetched = new Map<string, Uint8Array>();
    const revocation = {
      crls: (product: Product, signer: "vcek" | "vlek") => [
        ...given,
        ...(fetched.has(`${signer}-${product}`) ? [fetched.get(`${signer}-${product}`)!] : []),
      ],
      required: true,
    };
    const context = { policy, now, ...(noCrl ? {} : { revocation }) };
    let verdict = verifyBundle(bytes, context);
    const need = verdict.crlNeeded;
    // A development root's CRL is on no AMD server: it is fetched only from another KDS (--kds-url).
    const otherKds = kdsUrl !== undefined && kdsUrl.replace(/\/+$/, "") !== KDS_BASE;
    if (!noCrl && need !== undefined && (need.required || otherKds)) {
      const store = createCertificateStore({
        cacheDir: values["cache-dir"] ?? defaultCacheDir(io.env),
        offline: values.offline === true,
        ...(kdsUrl === undefined ? {} : { kdsBaseUrl: kdsUrl }),
      });
      try {
        fetched.set(`${need.signer}-${need.product}`, await store.fetchCrl(need.product, need.signer, now));
        verdict = verifyBundle(bytes, context);
      } catch (error) {
        const { toErrorList } = await import("../lib/errors.ts");
        const reason = toErrorList(error)[0]?.message ?? "unavailable";
        io.stderr(`note: the ${need.product} CRL could not be had (${reason}); pass --crl <der> or use --no-crl\n`);
      }
    }
    const warnings = [...(verdict.warnings ?? [])];
    if (noCrl)
      for (const w of warnings)
        if (w.code === "SNP_REVOCATION_UNCHECKED") w.message = "revocation was not checked (--no-crl)";
    for (const w of warnings) io.stderr(`warning ${w.code}: ${w.message}\n`);
    const fields = {
      bundleDigest: verdict.bundleDigest,
      manifestDigest: verdict.manifestDigest,
      modelHash: verdict.modelHash,
      kind: verdict.kind,
      policyDigest: policyDigest(policy),
      policyOpen: policy.openness.open,
      development: policy.development,
      record: verdict.record,
      evidence: verdict.evidence,
      gpus: verdict.gpus ?? [],
      runtime: verdict.runtime ?? null,
      jobCodeDigest: verdict.jobCodeDigest,
      warnings,
    };
    const e = verdict.evidence;
    const text = verdict.ok
      ? `ok: bundle accepted\n  kind ${verdict.kind}\n  model ${verdict.modelHash}\n  manifest ${verdict.manifestDigest}\n` +
        `  platform ${e?.product} (${e?.signer}), chained to ${e?.root.name}\n` +
        `  measurement ${e?.measurement}${e?.measurementName === undefined ? "" : ` (${e.measurementName})`}\n` +
        `  revocation ${e?.revocation.checked === true ? `checked (CRL of ${e.revocation.thisUpdate})` : "not checked"}\n` +
        (verdict.gpus ?? [])
          .map(
            (g) =>
              `  gpu ${g.index} ${g.arch}, driver ${g.driverVersion}, VBIOS ${g.vbiosVersion}, ` +
              `${g.verified ? `verified (${g.root?.kind} root)` : "not verified"}\n`,
          )
          .join("") +
        `  policy ${fields.policyDigest}${policy.openness.open ? " (open" + (policy.development ? ", development)" : ")") : ""}\n`
      : `refused: ${verdict.errors.length} reason(s)\n`;
    return { ok: verdict.ok, fields, errors: verdict.errors, text };
  },
});

const RUN_USAGE =
  "provenant verifier run --repo <path|url> [--repo …] --rpc <url> --registry <address> [--policy <json>] " +
  "[--signer local|rofl] [--key-file <file>] [--rofl-socket <path>] [--listen <host:port>|off (default 127.0.0.1:8780)] [--data-dir <dir>] " +
  "[--interval <seconds>] [--branch <name>] [--max-batch <n>] [--max-wait <seconds>] [--workers <n>] " +
  "[--kds-url <url>]   (PROVENANT_RECHECK_TOKEN, 16+ characters, enables POST /bundles/:digest/recheck)";

const verifierRun = defineCommand({
  path: ["verifier", "run"],
  summary: "watch repositories, verify bundles, publish records onchain (the verifier service)",
  usage: RUN_USAGE,
  json: false,
  options: {
    repo: { type: "string", multiple: true },
    rpc: { type: "string" },
    registry: { type: "string" },
    policy: { type: "string" },
    signer: { type: "string", default: "local" },
    "key-file": { type: "string" },
    "rofl-socket": { type: "string" },
    listen: { type: "string", default: "127.0.0.1:8780" },
    "data-dir": { type: "string" },
    interval: { type: "string", default: "30" },
    branch: { type: "string" },
    "max-batch": { type: "string", default: "64" },
    "max-wait": { type: "string", default: "1" },
    workers: { type: "string" },
    "kds-url": { type: "string" },
  },
  async run({ values, io }) {
    const repos = values.repo ?? [];
    if (repos.length === 0) throw new UsageError(`missing --repo\nusage: ${RUN_USAGE}`);
    const rpc = requiredOption(values.rpc, "rpc", RUN_USAGE);
    if (values.registry === undefined || !/^0x[0-9a-fA-F]{40}$/.test(values.registry))
      throw new UsageError(`--registry must be a 0x address\nusage: ${RUN_USAGE}`);
    if (values.signer !== "local" && values.signer !== "rofl") throw new UsageError("--signer must be local or rofl");
    const interval = numberOption(values.interval, "interval", { min: 0.05 })!;
    const maxBatch = integerOption(values["max-batch"], "max-batch", { min: 1, max: 128 })!;
    const maxWait = numberOption(values["max-wait"], "max-wait", { min: 0 })!;
    const workers = integerOption(values.workers, "workers", { min: 1, max: 256 });
    const kdsUrl = values["kds-url"];
    if (kdsUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(kdsUrl))
      throw new UsageError("--kds-url must be an http(s) URL");
    // The recheck token comes only from the environment (never a flag: it would show in `ps`).
    const recheckToken = io.env.PROVENANT_RECHECK_TOKEN;
    if (recheckToken !== undefined && recheckToken !== "" && !/^[\x21-\x7e]{16,512}$/.test(recheckToken))
      throw new UsageError("PROVENANT_RECHECK_TOKEN must be 16 to 512 printable characters without spaces");

    const { createLocalSender, createRoflSender } = await import("./chain/index.ts");
    const { parseListen } = await import("./http/index.ts");
    const { assertPolicyNotOpen, defaultVerifierPolicy, parseVerifierPolicyBytes, policyDigest } =
      await import("./pipeline/index.ts");
    const { createLogger, startService } = await import("./service.ts");
    const { readLocalSignerKey, runUntilSignal } = await import("./daemon.ts");

    const policy =
      values.policy === undefined
        ? defaultVerifierPolicy()
        : parseVerifierPolicyBytes(await readInputFile(io, values.policy, "policy"));
    const privateKey =
      values.signer === "local"
        ? await readLocalSignerKey(io, values["key-file"], "the local signer needs PROVENANT_PRIVATE_KEY or --key-file")
        : undefined;
    let listen;
    try {
      listen = values.listen === "off" ? undefined : parseListen(values.listen);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    // DESIGN §11: an open policy (no measurement, no TCB floor; the default one too) does not start, unless the
    // policy says it is for development. POLICY_OPEN, exit 2, naming what to pin.
    assertPolicyNotOpen(policy);
    const dataDir = path.resolve(
      io.cwd,
      values["data-dir"] ?? path.join(io.env.PROVENANT_HOME ?? ".provenant", "verifier"),
    );
    const logger = createLogger();
    logger.info(
      { policyDigest: policyDigest(policy), open: policy.openness.open, development: policy.development },
      "policy loaded",
    );
    if (policy.openness.open)
      logger.warn({ reasons: policy.openness.reasons }, "development policy: it pins no launch image or TCB floor");
    const roflSocket = values["rofl-socket"];
    const service = await startService({
      repos,
      ...(values.branch === undefined ? {} : { branch: values.branch }),
      rpcUrl: rpc,
      registry: values.registry,
      policy,
      createSender: async (provider) =>
        values.signer === "rofl"
          ? createRoflSender(roflSocket === undefined ? {} : { socketPath: roflSocket })
          : await createLocalSender(provider, privateKey as string),
      dataDir,
      listen,
      intervalMs: interval * 1000,
      maxBatch,
      maxWaitMs: maxWait * 1000,
      ...(workers === undefined ? {} : { workers }),
      ...(kdsUrl === undefined ? {} : { kdsBaseUrl: kdsUrl }),
      ...(recheckToken === undefined || recheckToken === "" ? {} : { recheckToken }),
      logger,
    });
    await runUntilSignal(service, logger);
    return { ok: true };
  },
});

export const commands: readonly Command[] = [bundleVerify, verifierRun];
