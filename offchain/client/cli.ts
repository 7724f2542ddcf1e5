// `provenant lookup` and `provenant audit`, `provenant explorer`: the registry client on the command line.
// lookup asks the chain about a model hash (or a model path, hashed the OMS way); audit recomputes a bundle's digests,
// re-runs the offline pipeline and compares each claim with the chain; explorer serves the built web page.
import { createHash, createPublicKey, timingSafeEqual } from "node:crypto";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";

import {
  defineCommand,
  integerOption,
  progressBar,
  readInputFile,
  type CliIo,
  type Command,
} from "../../lib/cli/index.ts";
import { IoError, MalformedInputError, ProvenantError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { findManifest, manifestDigestOf, readBundle } from "../../lib/bundle/index.ts";
import { verifyEnvelope } from "../../lib/dsse/index.ts";
import { validateStatement } from "../../lib/intoto/index.ts";
import { createRegistryClient, isHash, recordToJson, type RegistryClient, type RegistryRecord } from "./index.ts";

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
  "provenant lookup <modelHash|model-path> [--rpc <url>] [--registry <address>] [--network <name>] [--json]";

const lookupCommand = defineCommand({
  path: ["lookup"],
  summary: "look a model up in the registry (by hash or by hashing a model path)",
  usage: LOOKUP_USAGE,
  options: CONNECT_OPTIONS,
  positionals: ["modelHash|model-path"],
  async run({ values, positionals, io }) {
    const target = positionals[0]!;
    const modelHash = isHash(target) ? target : await hashPath(target, io);
    const client = await connect(values, io);
    try {
      const result = await client.lookup(modelHash);
      const valid = result.records.filter((r) => !r.revoked).length;
      const text =
        result.records.length === 0
          ? `model ${result.modelHash}: not recorded on chain ${client.chainId} (${client.address})\n`
          : `model ${result.modelHash}: ${result.records.length} record(s), ${valid} valid, ` +
            `${result.records.length - valid} revoked (chain ${client.chainId})\n${recordTable(result.records)}\n`;
      const fields = {
        modelHash: result.modelHash,
        recorded: result.records.length > 0,
        chainId: client.chainId,
        registry: client.address,
        records: result.records.map(recordToJson),
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
  "provenant audit <bundle.json> [--policy <json>] [--rpc <url>] [--registry <address>] [--network <name>] [--json]";

/** SEV-SNP report MEASUREMENT: 48 bytes at 0x90 (AMD SEV-SNP ABI 56860, Table 23). */
function measurementHashOf(report: Uint8Array): string {
  return createHash("sha256").update(report.subarray(0x90, 0xc0)).digest("hex");
}

const auditCommand = defineCommand({
  path: ["audit"],
  summary: "recompute a bundle's digests, re-verify it offline and compare it with the chain",
  usage: AUDIT_USAGE,
  options: { ...CONNECT_OPTIONS, policy: { type: "string" } },
  positionals: ["bundle.json"],
  async run({ values, positionals, io, json }) {
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
      const statement = validateStatement(JSON.parse(Buffer.from(payload).toString("utf8")));
      modelHash = statement.subjectDigests[0];
      parentModelHash = statement.parentModelHash ?? null;
      check("manifest signed by the bundle key", true, `${statement.kind} statement, model ${modelHash}`);
    } catch (error) {
      const e = toErrorList(error)[0]!;
      check("manifest signed by the bundle key", false, e.message, e.code);
    }
    const report = Buffer.from(bundle.evidence.cpu.report, "base64");
    const measurementHash = measurementHashOf(report);

    try {
      const verdict = pipeline.verifyBundle(bytes, { policy, now: new Date() });
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
        `chain ${record.measurementHash ?? "-"}, report ${measurementHash}`,
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
      record: record === null ? null : recordToJson(record),
    };
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
  "provenant explorer [--port <n>] [--rpc <url>]   # serves web/dist on 127.0.0.1; /rpc forwards to the local chain";

const explorerCommand = defineCommand({
  path: ["explorer"],
  summary: "serve the explorer page on 127.0.0.1",
  usage: EXPLORER_USAGE,
  json: false,
  options: { port: { type: "string", default: "8787" }, rpc: { type: "string" } },
  async run({ values, io }) {
    const { serveExplorer } = await import("./serve.ts");
    const server = await serveExplorer({
      port: integerOption(values.port, "port", { min: 0, max: 65_535 }) ?? 8787,
      rpcUrl: values.rpc ?? io.env.PROVENANT_RPC ?? "http://127.0.0.1:8545",
    });
    io.stdout(`explorer: ${server.url}  (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    await server.close();
    return { ok: true };
  },
});

export const commands: readonly Command[] = [lookupCommand, auditCommand, explorerCommand];
