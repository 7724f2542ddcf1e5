// `provenant receipt verify`: checks an inference receipt (DESIGN §12) the way anyone can, from outside the VM — the
// receipt's signature by the serving key S, the serving statement and its attestation under the verifier's policy
// (the verifier's own pipeline), the model's and the serving statement's records onchain and their revocation
// times against issuedAt, the inclusion proof against a checkpoint S signed and the registry anchored, and, given
// the salt and the bytes, the request and response digests. Exit 1 when a check says no, 2 on unreadable input.
import {
  dateOption,
  defineCommand,
  readInputFile,
  type CliIo,
  type Command,
  type CommandOutcome,
} from "../lib/cli/index.ts";
import { UsageError, toErrorList } from "../lib/errors.ts";
import type { Product } from "../lib/snp/index.ts";

const VERIFY_USAGE =
  "provenant receipt verify <receipt.json> [--salt <hex>] [--request <file>] [--response <file>] " +
  "[--server <url>] [--attestation <bundle.json>] [--verifier-url <url>] [--successor-attestation <bundle.json>] " +
  "[--proof <proof.json>] " +
  "[--rpc <url>] [--registry <address>] [--network <name>] [--policy <json>] [--now <iso>] [--crl <der>]… " +
  "[--no-crl] [--offline] [--cache-dir <dir>] [--json]";

const CHECK_LABELS: Record<string, string> = {
  signature: "signature by S",
  servingStatement: "serving statement",
  attestation: "attestation (policy)",
  modelRecorded: "model recorded",
  servingRecorded: "serving recorded",
  notRevoked: "not revoked at issue",
  inclusion: "inclusion, anchored",
  digests: "request/response",
};

async function readBounded(io: CliIo, file: string, what: string): Promise<Uint8Array> {
  const { stat } = await import("node:fs/promises");
  const { resolve } = await import("node:path");
  // Loaded with the command, not at start (as receipt.ts is): the bound the page applies too.
  const { MAX_DIGESTED_FILE_BYTES: MAX_BYTES_FILE } = await import("../offchain/client/receipt-file.ts");
  const size = await stat(resolve(io.cwd, file)).then(
    (s) => s.size,
    () => 0,
  );
  if (size > MAX_BYTES_FILE) throw new UsageError(`the ${what} file ${file} is larger than ${MAX_BYTES_FILE} bytes`);
  return readInputFile(io, file, what);
}

const receiptVerify = defineCommand({
  path: ["receipt", "verify"],
  summary: "verify an inference receipt: signature, serving attestation, records, revocation, anchored inclusion",
  usage: VERIFY_USAGE,
  options: {
    salt: { type: "string" },
    request: { type: "string" },
    response: { type: "string" },
    server: { type: "string" },
    attestation: { type: "string" },
    "verifier-url": { type: "string" },
    "successor-attestation": { type: "string" },
    proof: { type: "string" },
    rpc: { type: "string" },
    registry: { type: "string" },
    network: { type: "string" },
    policy: { type: "string" },
    now: { type: "string" },
    crl: { type: "string", multiple: true },
    "no-crl": { type: "boolean" },
    offline: { type: "boolean" },
    "cache-dir": { type: "string" },
  },
  positionals: ["receipt.json"],
  async run({ values, positionals, io }): Promise<CommandOutcome> {
    const receiptMod = await import("../offchain/client/receipt.ts");
    const { parseSalt } = await import("../lib/receipt/core.ts");
    const pipeline = await import("../offchain/pipeline/index.ts");
    const now = dateOption(values.now, "now");
    const server = values.server;
    for (const [flag, url] of [
      ["server", server],
      ["verifier-url", values["verifier-url"]],
    ] as const)
      if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url))
        throw new UsageError(`--${flag} must be an http(s) URL\nusage: ${VERIFY_USAGE}`);
    if (values["no-crl"] === true && values.crl !== undefined)
      throw new UsageError(`--no-crl cannot be combined with --crl\nusage: ${VERIFY_USAGE}`);

    // Inputs first: anything unreadable exits 2 before a single check runs.
    const file = receiptMod.parseReceiptFile(await readInputFile(io, positionals[0]!, "receipt"));
    // Without --policy, the default verifier policy admitting serving statements (it is open: a warning says so).
    const policy =
      values.policy === undefined
        ? pipeline.parseVerifierPolicy({ acceptedKinds: ["serving"] })
        : pipeline.parseVerifierPolicyBytes(await readInputFile(io, values.policy, "policy"));
    const saltHex = values.salt ?? file.salt;
    const salt = saltHex === undefined ? undefined : parseSalt(saltHex);
    const request = values.request === undefined ? undefined : await readBounded(io, values.request, "request");
    const response = values.response === undefined ? undefined : await readBounded(io, values.response, "response");
    if ((request !== undefined || response !== undefined) && salt === undefined)
      throw new UsageError("--request/--response need the salt: --salt <hex>, or a receipt object that carries it");

    const digest = receiptMod.receiptDigestOf(file.envelope);
    let proof = values.proof === undefined ? file.proof : undefined;
    if (values.proof !== undefined) {
      const { parseStrictJsonBytes } = await import("../lib/json/index.ts");
      proof = receiptMod.toReceiptProof(
        parseStrictJsonBytes(await readInputFile(io, values.proof, "proof"), { code: "MERKLE_INVALID", what: "proof" }),
      );
    }
    const notes: string[] = [];
    if (proof === undefined && server !== undefined) {
      const answer = await receiptMod.fetchReceiptProof(server, digest);
      if (answer.status === "pending")
        notes.push(`the server says the receipt is not anchored yet (${answer.reason ?? "no reason given"})`);
      proof = answer.proof;
    }
    if (proof === undefined && server === undefined)
      throw new UsageError(
        `no inclusion proof: give --server <url>, --proof <file>, or a receipt file that carries its proof\nusage: ${VERIFY_USAGE}`,
      );
    // The serving bundle: a file, the verifier that recorded it (by the receipt's servingManifest), or the server
    // (the bundle of the receipt's log, GET /v1/attestation?logId=: after a restart an earlier identity's).
    let servingBundle: Uint8Array;
    if (values.attestation !== undefined) servingBundle = await readInputFile(io, values.attestation, "attestation");
    else if (values["verifier-url"] !== undefined)
      servingBundle = await receiptMod.fetchServingBundleFromVerifier(
        values["verifier-url"],
        receiptMod.receiptClaims(file.envelope).servingManifest,
        { maxBytes: policy.maxBundleBytes },
      );
    else if (server !== undefined)
      servingBundle = await receiptMod.fetchServingBundle(server, {
        maxBytes: policy.maxBundleBytes,
        logId: receiptMod.receiptClaims(file.envelope).logId,
      });
    else
      throw new UsageError(
        `no serving bundle: give --attestation <bundle.json>, --verifier-url <url> or --server <url>\nusage: ${VERIFY_USAGE}`,
      );
    let successorBundle: Uint8Array | undefined;
    if (values["successor-attestation"] !== undefined)
      successorBundle = await readInputFile(io, values["successor-attestation"], "successor attestation");
    else if (proof !== undefined && proof.checkpoint.signerLogId !== proof.logId && server !== undefined)
      // A recovery checkpoint: its signer is a later identity of the server (the one named by signerLogId).
      successorBundle = await receiptMod.fetchServingBundle(server, {
        maxBytes: policy.maxBundleBytes,
        logId: proof.checkpoint.signerLogId,
      });

    // Revocation of AMD's chain, as `bundle verify` does it: --crl files, else KDS (cached) when required.
    const given: Uint8Array[] = [];
    for (const crl of values.crl ?? []) given.push(await readInputFile(io, crl, "CRL"));
    const fetched = new Map<string, Uint8Array>();
    const revocation = {
      crls: (product: Product, signer: "vcek" | "vlek") => [
        ...given,
        ...(fetched.has(`${signer}-${product}`) ? [fetched.get(`${signer}-${product}`)!] : []),
      ],
      required: true,
    };
    const noCrl = values["no-crl"] === true;
    const attestationOptions = { policy, now, ...(noCrl ? {} : { revocation }) };
    const need = receiptMod.attestServingBundle(servingBundle, attestationOptions).verdict.crlNeeded;
    if (!noCrl && need !== undefined && need.required) {
      const { createCertificateStore, defaultCacheDir } = await import("../lib/snp/index.ts");
      const store = createCertificateStore({
        cacheDir: values["cache-dir"] ?? defaultCacheDir(io.env),
        offline: values.offline === true,
      });
      try {
        fetched.set(`${need.signer}-${need.product}`, await store.fetchCrl(need.product, need.signer, now));
      } catch (error) {
        notes.push(`the ${need.product} CRL could not be had (${toErrorList(error)[0]?.message ?? "unavailable"})`);
      }
    }

    const { connect } = await import("../offchain/client/cli.ts");
    const client = await connect(values, io);
    let result;
    try {
      result = await receiptMod.verifyReceiptOnChain(client, file.envelope, {
        ...attestationOptions,
        servingBundle,
        ...(successorBundle === undefined ? {} : { successorBundle }),
        ...(proof === undefined ? {} : { proof }),
        ...(salt === undefined ? {} : { salt }),
        ...(request === undefined ? {} : { request }),
        ...(response === undefined ? {} : { response }),
      });
    } finally {
      client.close();
    }
    const warnings = result.attestationVerdict.warnings ?? [];
    for (const w of warnings) io.stderr(`warning ${w.code}: ${w.message}\n`);
    for (const n of notes) io.stderr(`note: ${n}\n`);
    const fields = {
      receiptDigest: result.receiptDigest ?? digest,
      modelRoot: result.modelRoot,
      servingManifest: result.servingManifest,
      logId: result.logId,
      seq: result.seq,
      issuedAt: result.issuedAt,
      checks: result.checks,
      inclusion: result.inclusion,
      revokedAfterIssue: result.revokedAfterIssue,
      notes: result.notes,
      policyDigest: pipeline.policyDigest(policy),
      chainId: client.chainId,
      registry: client.address,
      warnings,
    };
    const mark = (v: boolean | null) => (v === null ? "-" : v ? "ok" : "NO");
    const lines = Object.entries(result.checks).map(
      ([name, v]) => `  ${(CHECK_LABELS[name] ?? name).padEnd(22)} ${mark(v)}`,
    );
    const head = result.ok
      ? `ok: receipt ${fields.receiptDigest} (seq ${result.seq}, ${result.issuedAt}) verifies`
      : `refused: receipt ${fields.receiptDigest}: ${result.errors.length} reason(s)`;
    const extra = [
      ...(result.inclusion === null
        ? []
        : [
            `  leaf ${result.inclusion.leafIndex} of ${result.inclusion.treeSize}, root ${result.inclusion.rootHash}` +
              ` anchored ${result.inclusion.anchoredAt ?? "(time not found)"}`,
          ]),
      ...result.notes.map((n) => `  ${n.message}`),
    ];
    return { ok: result.ok, fields, errors: result.errors, text: [head, ...lines, ...extra].join("\n") };
  },
});

export const commands: readonly Command[] = [receiptVerify];
