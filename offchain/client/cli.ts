// `provenant lookup` and `provenant audit`, `provenant explorer`: the registry client on the command line.
// lookup asks the chain about a model hash (or a model path, hashed the OMS way); audit recomputes a bundle's digests,
// re-runs the offline pipeline and compares each claim with the chain; explorer serves the built web page.
import { createPublicKey, timingSafeEqual } from "node:crypto";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";

import {
  dateOption,
  defineCommand,
  integerOption,
  progressBar,
  readInputFile,
  type CliIo,
  type Command,
} from "../../lib/cli/index.ts";
import {
  IoError,
  MalformedInputError,
  ProvenantError,
  toErrorList,
  UsageError,
  type ErrorCode,
} from "../../lib/errors.ts";
import { findManifest, manifestDigestOf, measurementHashOfBundle, readBundle } from "../../lib/bundle/index.ts";
import { verifyEnvelope } from "../../lib/dsse/index.ts";
import { parseStatementPayload } from "../../lib/intoto/index.ts";
import { fetchDetailsOf, gpuLine, type RecordDetails } from "./details.ts";
import {
  createRegistryClient,
  isHash,
  recordToJson,
  type AnchoredCheckpoint,
  type RegistryClient,
  type RegistryRecord,
} from "./index.ts";

export const CONNECT_OPTIONS = {
  rpc: { type: "string" },
  registry: { type: "string" },
  network: { type: "string" },
} as const;

interface ConnectValues {
  rpc?: string | undefined;
  registry?: string | undefined;
  network?: string | undefined;
}

/** --rpc/--registry/--network, then PROVENANT_RPC/PROVENANT_REGISTRY/PROVENANT_NETWORK, then localhost. */
export async function connect(values: ConnectValues, io: CliIo): Promise<RegistryClient> {
  const rpcUrl = values.rpc ?? io.env.PROVENANT_RPC;
  const address = values.registry ?? io.env.PROVENANT_REGISTRY;
  const network = values.network ?? io.env.PROVENANT_NETWORK ?? (address === undefined ? "localhost" : undefined);
  return createRegistryClient({
    ...(rpcUrl === undefined ? {} : { rpcUrl }),
    ...(address === undefined ? {} : { address }),
    ...(network === undefined ? {} : { network }),
  });
}

/** A model path → its OMS root digest (lib/oms), with a progress bar on a terminal. */
async function hashPath(target: string, io: CliIo): Promise<string> {
  const path = resolve(io.cwd, target);
  try {
    await stat(path);
  } catch (error) {
    if (/^(0x)?[0-9a-fA-F]+$/.test(target)) {
      throw new MalformedInputError("HASH_MALFORMED", `'${target}' is not a 64-hex model hash (nor a path)`);
    }
    throw new IoError("IO_ERROR", `'${target}' is neither a 64-hex model hash nor a readable path`, { cause: error });
  }
  // Loaded on demand: `provenant --help` loads every command module, and hashing is only needed for a path.
  const oms = await import("../../lib/oms/index.ts");
  const bar = progressBar(io, "hashing");
  const { rootDigest } = await oms.hashModel(path, { onProgress: (done, total) => bar.update(done, total) });
  bar.done();
  return rootDigest;
}

function shortHex(hex: string | null): string {
  return hex === null ? "-" : `${hex.slice(0, 12)}…`;
}

function recordTable(records: RegistryRecord[]): string {
  const header = ["kind", "manifest", "published", "status", "parent", "measurement", "policy", "tcb"];
  const rows = records.map((r) => [
    r.kind,
    shortHex(r.manifestDigest),
    r.publishedAt.toISOString().replace(".000", ""),
    r.revoked ? `REVOKED${r.revocationReason === null ? "" : ` (${r.revocationReason})`}` : "valid",
    shortHex(r.parentModelHash),
    shortHex(r.measurementHash),
    shortHex(r.policyDigest),
    r.reportedTcb === null ? "-" : `0x${r.reportedTcb.toString(16).padStart(16, "0")}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

const LOOKUP_USAGE =
  "provenant lookup <modelHash|model-path> [--rpc <url>] [--registry <address>] [--network <name>] " +
  "[--verifier <url>] [--timeout <seconds>] [--json]";

/** A serving record's log and its newest checkpoint anchored onchain (null when none yet). */
interface ServingLog {
  logId: string;
  latestCheckpoint: AnchoredCheckpoint | null;
}

function checkpointToJson(c: AnchoredCheckpoint | null): Record<string, unknown> | null {
  return c === null ? null : { ...c, anchoredAt: c.anchoredAt === null ? null : c.anchoredAt.toISOString() };
}

const quoted = (name: string | null) => (name === null ? "" : ` (${JSON.stringify(name)})`);

/** What a record attests, as lines under the table: read from its bundle once it matched the record. */
function attestsText(r: RegistryRecord, d: RecordDetails | undefined, serving: ServingLog | undefined): string {
  const lines: string[] = [`record ${r.manifestDigest} (${r.kind})`];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(12)} ${value}`);
  if (serving !== undefined) {
    row("serving log", serving.logId);
    const c = serving.latestCheckpoint;
    row(
      "checkpoint",
      c === null
        ? "none anchored yet"
        : `${c.treeSize} receipt(s), root ${c.rootHash ?? "-"}` +
            `${c.anchoredAt === null ? "" : `, anchored ${c.anchoredAt.toISOString()}`}` +
            `${c.blockNumber === null ? "" : ` (block ${c.blockNumber})`}`,
    );
  }
  if (d === undefined) return lines.join("\n");
  if (d.policy !== null) row("policy", d.policy.label);
  else if (d.policyError !== null) row("policy", `not read: ${d.policyError.code}: ${d.policyError.message}`);
  if (d.status !== "verified") {
    row(
      d.status === "mismatch" ? "BUNDLE" : "bundle",
      `${d.status === "mismatch" ? "DOES NOT MATCH the record" : "not available"}: ${d.error?.code}: ${d.error?.message}`,
    );
    return lines.join("\n");
  }
  row("bundle", `${d.bundleDigest} (matches the onchain manifest digest)`);
  if (d.measurement !== null) row("measurement", `${d.measurement.value}${quoted(d.measurement.name)}`);
  row(
    "job code",
    d.jobCode === null ? "- (named by a git commit only)" : `${d.jobCode.digest}${quoted(d.jobCode.name)}`,
  );
  const m = d.manifest;
  if (m?.kind === "audit") {
    row("suite", `${m.suite.name} sha256:${m.suite.digest}`);
    row("harness", `${m.harness.name} ${m.harness.version}`);
    for (const x of m.metrics)
      row(
        "metric",
        `${x.name} = ${x.value} (n=${x.sampleSize})` +
          `${x.comparator === null ? "" : ` ${x.comparator} ${x.threshold}`}` +
          `${x.passed === null ? "" : x.passed ? " passed" : " FAILED"}`,
      );
    if (m.passed !== null) row("result", m.passed ? "every threshold passed" : "a threshold FAILED");
  } else if (m?.kind === "finetune") {
    row("base model", `${m.baseModel.digest}${quoted(m.baseModel.name)}`);
    row("dataset", `sha256:${m.dataset.digest}${quoted(m.dataset.name)}`);
    row("trainer", m.trainer.name ?? JSON.stringify(m.trainer.config));
    if (m.trainingTrace !== null)
      row(
        "trace",
        `root ${m.trainingTrace.digest}${m.trainingTrace.steps === null ? "" : `, ${m.trainingTrace.steps} steps`}`,
      );
  } else if (m?.kind === "serving") {
    row("serving key", m.servingKey);
    row("started", `${m.startedOn}, epochs of ${m.epoch.maxReceipts} receipts or ${m.epoch.maxSeconds} s`);
    row("runtime", `${m.runtime.name} ${m.runtime.version}${m.runtime.gpu ? " on GPU" : ""}`);
  }
  for (const g of d.gpus) row("gpu", gpuLine(g));
  return lines.join("\n");
}

const lookupCommand = defineCommand({
  path: ["lookup"],
  summary: "look a model up in the registry (by hash or by hashing a model path)",
  usage: LOOKUP_USAGE,
  options: { ...CONNECT_OPTIONS, verifier: { type: "string" }, timeout: { type: "string" } },
  positionals: ["modelHash|model-path"],
  async run({ values, positionals, io }) {
    const target = positionals[0]!;
    // What each record attests comes from a verifier's HTTP API (--verifier, else PROVENANT_VERIFIER).
    const verifierUrl = values.verifier ?? io.env.PROVENANT_VERIFIER;
    const timeoutMs = (integerOption(values.timeout, "timeout", { min: 1, max: 600 }) ?? 10) * 1000;
    const modelHash = isHash(target) ? target : await hashPath(target, io);
    const client = await connect(values, io);
    try {
      const result = await client.lookup(modelHash);
      const valid = result.records.filter((r) => !r.revoked).length;
      // Serving records (kind 3): their log's newest anchored checkpoint, from the chain.
      const serving = new Map<string, ServingLog>();
      for (const r of result.records)
        if (r.kind === "serving" && r.parentModelHash !== null)
          serving.set(r.manifestDigest, {
            logId: r.parentModelHash,
            latestCheckpoint: await client.latestCheckpoint(r.parentModelHash),
          });
      const details =
        verifierUrl === undefined ? undefined : await fetchDetailsOf({ verifierUrl, timeoutMs }, result.records);
      const blocks = result.records
        .map((r, i) =>
          details === undefined && !serving.has(r.manifestDigest)
            ? ""
            : attestsText(r, details?.[i], serving.get(r.manifestDigest)),
        )
        .filter((b) => b !== "");
      const text =
        result.records.length === 0
          ? `model ${result.modelHash}: not recorded on chain ${client.chainId} (${client.address})\n`
          : `model ${result.modelHash}: ${result.records.length} record(s), ${valid} valid, ` +
            `${result.records.length - valid} revoked (chain ${client.chainId})\n${recordTable(result.records)}\n` +
            (blocks.length === 0 ? "" : `\n${blocks.join("\n\n")}\n`);
      const fields = {
        modelHash: result.modelHash,
        recorded: result.records.length > 0,
        chainId: client.chainId,
        registry: client.address,
        ...(verifierUrl === undefined ? {} : { verifier: verifierUrl }),
        records: result.records.map((r, i) => {
          const log = serving.get(r.manifestDigest);
          return {
            ...recordToJson(r),
            ...(log === undefined
              ? {}
              : { serving: { logId: log.logId, latestCheckpoint: checkpointToJson(log.latestCheckpoint) } }),
            ...(details === undefined ? {} : { attests: details[i] }),
          };
        }),
      };
      return { ok: true, fields, text };
    } finally {
      client.close();
    }
  },
});

interface AuditCheck {
  name: string;
  ok: boolean;
  detail: string;
  code?: ErrorCode;
}

function sameHex(a: string | null | undefined, b: string | null | undefined): boolean {
  if (typeof a !== "string" || typeof b !== "string" || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a.toLowerCase()), Buffer.from(b.toLowerCase()));
}

const AUDIT_USAGE =
  "provenant audit <bundle.json> [--policy <json>] [--now <iso>] [--rpc <url>] [--registry <address>] " +
  "[--network <name>] [--json]";

const auditCommand = defineCommand({
  path: ["audit"],
  summary: "recompute a bundle's digests, re-verify it offline and compare it with the chain",
  usage: AUDIT_USAGE,
  options: { ...CONNECT_OPTIONS, policy: { type: "string" }, now: { type: "string" } },
  positionals: ["bundle.json"],
  async run({ values, positionals, io, json }) {
    // The time certificates are checked at (default the clock): tests and re-audits pass a fixed one.
    const now = dateOption(values.now, "now");
    const bytes = await readInputFile(io, positionals[0]!, "bundle");
    // The policy is read before any check: an unreadable or invalid file is POLICY_INVALID / IO_ERROR, exit 2.
    const pipeline = await import("../pipeline/index.ts");
    const policy =
      values.policy === undefined
        ? pipeline.defaultVerifierPolicy()
        : pipeline.parseVerifierPolicyBytes(await readInputFile(io, values.policy, "policy"));
    const expectedPolicyDigest = pipeline.policyDigest(policy);
    // Malformed input exits 2 through defineCommand; everything after this collects checks.
    const bundle = readBundle(bytes);
    const { envelope } = findManifest(bundle);
    const checks: AuditCheck[] = [];
    const check = (name: string, ok: boolean, detail: string, code?: ErrorCode) =>
      checks.push({ name, ok, detail, ...(ok || code === undefined ? {} : { code }) });

    const manifestDigest = manifestDigestOf(envelope);
    check("manifest digest recomputed", true, manifestDigest);
    let modelHash: string | undefined;
    let parentModelHash: string | null = null;
    try {
      const key = createPublicKey({
        key: Buffer.from(bundle.signer.publicKey, "base64"),
        format: "der",
        type: "spki",
      });
      const payload = verifyEnvelope(envelope, key);
      // Read as every reader reads a payload: in-toto payloadType, strict JSON (no duplicate key, BOM, bad UTF-8).
      const statement = parseStatementPayload(envelope.payloadType, payload, "manifest");
      modelHash = statement.subjectDigests[0];
      parentModelHash = statement.parentModelHash ?? null;
      check("manifest signed by the bundle key", true, `${statement.kind} statement, model ${modelHash}`);
    } catch (error) {
      const e = toErrorList(error)[0]!;
      check("manifest signed by the bundle key", false, e.message, e.code);
    }
    // The record's measurementHash: SHA-256(MEASUREMENT ‖ each GPU's measurement-record digest), docs/formats.md.
    // Evidence that does not parse gives none, and the comparison below fails (the pipeline says why).
    let measurementHash: string | null;
    try {
      measurementHash = measurementHashOfBundle(bundle);
    } catch {
      measurementHash = null;
    }

    // What the pipeline judged with that refuses nothing (POLICY_OPEN, SNP_REVOCATION_UNCHECKED, …): shown, not failed.
    let warnings: { code: ErrorCode; message: string }[] = [];
    try {
      const verdict = pipeline.verifyBundle(bytes, { policy, now });
      warnings = verdict.warnings ?? [];
      check(
        "offline pipeline accepts the bundle",
        verdict.ok,
        verdict.ok ? "all evidence checks hold" : verdict.errors.map((e) => `${e.code}: ${e.message}`).join("; "),
        verdict.errors[0]?.code,
      );
      if (verdict.manifestDigest !== undefined) {
        check(
          "pipeline manifest digest matches",
          sameHex(verdict.manifestDigest, manifestDigest),
          verdict.manifestDigest,
        );
      }
    } catch (error) {
      if (error instanceof ProvenantError && error.code !== "INTERNAL" && error.kind !== "internal") throw error;
      const e = toErrorList(error)[0]!;
      check("offline pipeline accepts the bundle", false, `pipeline unavailable: ${e.message}`, "INTERNAL");
    }

    const client = await connect(values, io);
    let record: RegistryRecord | null;
    try {
      record = await client.record(manifestDigest);
    } finally {
      client.close();
    }
    check(
      "manifest recorded on chain",
      record !== null,
      record === null ? `not recorded on chain ${client.chainId}` : `block ${record.blockNumber}, ${record.txHash}`,
      "NOT_FOUND",
    );
    if (record !== null) {
      check(
        "same model hash",
        sameHex(record.modelHash, modelHash),
        `chain ${record.modelHash}`,
        "MODEL_DIGEST_MISMATCH",
      );
      check(
        "same parent model",
        record.parentModelHash === parentModelHash,
        `chain ${record.parentModelHash ?? "none"}, bundle ${parentModelHash ?? "none"}`,
        "MODEL_DIGEST_MISMATCH",
      );
      check(
        "same measurement hash",
        sameHex(record.measurementHash, measurementHash),
        `chain ${record.measurementHash ?? "-"}, bundle ${measurementHash ?? "- (its evidence does not parse)"}`,
        "POLICY_MEASUREMENT",
      );
      check(
        "not revoked",
        !record.revoked,
        record.revoked ? `revoked: ${record.revocationReason ?? "(reason not found)"}` : "valid",
        "NOT_FOUND",
      );
      check(
        "policy digest",
        sameHex(record.policyDigest, expectedPolicyDigest),
        `chain ${record.policyDigest ?? "-"}, local ${expectedPolicyDigest}`,
        "POLICY_INVALID",
      );
    }
    const ok = checks.every((c) => c.ok);
    const fields = {
      manifestDigest,
      modelHash: modelHash ?? null,
      checks,
      warnings,
      record: record === null ? null : recordToJson(record),
    };
    // Warnings go to stderr, as `bundle verify` prints them (stdout keeps the check list, or the one JSON object).
    for (const w of warnings) io.stderr(`warning ${w.code}: ${w.message}\n`);
    const text =
      checks.map((c) => `${c.ok ? "PASS" : "FAIL"}  ${c.name.padEnd(36)} ${c.detail}\n`).join("") +
      (ok ? "audit: every check holds\n" : "audit: FAILED\n");
    // The text already shows each FAIL line; `errors` carries the failed checks for --json only.
    const errors = checks
      .filter((c) => !c.ok)
      .map((c) => ({ code: c.code ?? ("INTERNAL" as const), message: `${c.name}: ${c.detail}` }));
    return { ok, fields, text, ...(json ? { errors } : {}) };
  },
});

const EXPLORER_USAGE =
  "provenant explorer [--port <n>] [--rpc <url>] [--verifier <url>] [--serving <url>]   # serves web/dist on " +
  "127.0.0.1; /rpc forwards to the local chain, /verifier/ to the verifier whose bundles the page shows; " +
  "--serving names a provenant serve API whose usage statements the page checks and shows";

const explorerCommand = defineCommand({
  path: ["explorer"],
  summary: "serve the explorer page on 127.0.0.1",
  usage: EXPLORER_USAGE,
  json: false,
  options: {
    port: { type: "string", default: "8787" },
    rpc: { type: "string" },
    verifier: { type: "string" },
    serving: { type: "string" },
  },
  async run({ values, io }) {
    const { serveExplorer } = await import("./serve.ts");
    const verifierUrl = values.verifier ?? io.env.PROVENANT_VERIFIER;
    const servingUrl = values.serving ?? io.env.PROVENANT_SERVING;
    if (servingUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(servingUrl))
      throw new UsageError(`--serving: expected an http(s) URL, got ${JSON.stringify(servingUrl.slice(0, 200))}`);
    const server = await serveExplorer({
      port: integerOption(values.port, "port", { min: 0, max: 65_535 }) ?? 8787,
      rpcUrl: values.rpc ?? io.env.PROVENANT_RPC ?? "http://127.0.0.1:8545",
      ...(verifierUrl === undefined ? {} : { verifierUrl }),
      ...(servingUrl === undefined ? {} : { servingUrl }),
    });
    io.stdout(`explorer: ${server.url}  (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    await server.close();
    return { ok: true };
  },
});

export const commands: readonly Command[] = [lookupCommand, auditCommand, explorerCommand];
