// `provenant lookup` and `provenant audit`, `provenant explorer`: the registry client on the command line.
// lookup asks the chain about a model hash (or a model path, hashed the OMS way); audit recomputes a bundle's digests,
// re-runs the offline pipeline and compares each claim with the chain; explorer serves the built web page.
import { createHash, createPublicKey, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

import {
  EXIT_OK,
  EXIT_REFUSED,
  parseCommandArgs,
  printJson,
  progressBar,
  requirePositional,
  runGuarded,
  type CliIo,
  type Command,
  integerOption,
} from "../../lib/cli/index.ts";
import { IoError, MalformedInputError, ProvenantError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { findManifest, manifestDigestOf, readBundle } from "../../lib/bundle/index.ts";
import { verifyEnvelope } from "../../lib/dsse/index.ts";
import { validateStatement } from "../../lib/intoto/index.ts";
import { createRegistryClient, isHash, recordToJson, type RegistryClient, type RegistryRecord } from "./index.ts";

const CONNECT_OPTIONS = {
  rpc: { type: "string" },
  registry: { type: "string" },
  network: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

interface ConnectValues {
  rpc?: string | undefined;
  registry?: string | undefined;
  network?: string | undefined;
}

/** --rpc/--registry/--network, then PROVENANT_RPC/PROVENANT_REGISTRY/PROVENANT_NETWORK, then localhost. */
async function connect(values: ConnectValues, io: CliIo): Promise<RegistryClient> {
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
  try {
    await stat(target);
  } catch (error) {
    if (/^(0x)?[0-9a-fA-F]+$/.test(target)) {
      throw new MalformedInputError("HASH_MALFORMED", `'${target}' is not a 64-hex model hash (nor a path)`);
    }
    throw new IoError("IO_ERROR", `'${target}' is neither a 64-hex model hash nor a readable path`, { cause: error });
  }
  // Loaded on demand: `provenant --help` loads every command module, and hashing is only needed for a path.
  const oms = await import("../../lib/oms/index.ts");
  const bar = progressBar(io, "hashing");
  const { rootDigest } = await oms.hashModel(target, { onProgress: (done, total) => bar.update(done, total) });
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

const lookupCommand: Command = {
  path: ["lookup"],
  summary: "look a model up in the registry (by hash or by hashing a model path)",
  usage: LOOKUP_USAGE,
  async run(argv, io) {
    const json = argv.includes("--json");
    return runGuarded(io, json, async () => {
      const { values, positionals } = parseCommandArgs(argv, CONNECT_OPTIONS, LOOKUP_USAGE);
      const target = requirePositional(positionals, 0, "modelHash|model-path", LOOKUP_USAGE);
      const modelHash = isHash(target) ? target : await hashPath(target, io);
      const client = await connect(values, io);
      try {
        const result = await client.lookup(modelHash);
        if (values.json) {
          printJson(io, true, {
            modelHash: result.modelHash,
            recorded: result.records.length > 0,
            chainId: client.chainId,
            registry: client.address,
            records: result.records.map(recordToJson),
          });
        } else if (result.records.length === 0) {
          io.stdout(`model ${result.modelHash}: not recorded on chain ${client.chainId} (${client.address})\n`);
        } else {
          const valid = result.records.filter((r) => !r.revoked).length;
          io.stdout(
            `model ${result.modelHash}: ${result.records.length} record(s), ${valid} valid, ` +
              `${result.records.length - valid} revoked (chain ${client.chainId})\n${recordTable(result.records)}\n`,
          );
        }
        return EXIT_OK;
      } finally {
        client.close();
      }
    });
  },
};

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

const auditCommand: Command = {
  path: ["audit"],
  summary: "recompute a bundle's digests, re-verify it offline and compare it with the chain",
  usage: AUDIT_USAGE,
  async run(argv, io) {
    const json = argv.includes("--json");
    return runGuarded(io, json, async () => {
      const { values, positionals } = parseCommandArgs(
        argv,
        { ...CONNECT_OPTIONS, policy: { type: "string" } },
        AUDIT_USAGE,
      );
      const file = requirePositional(positionals, 0, "bundle.json", AUDIT_USAGE);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (error) {
        throw new IoError("IO_ERROR", `cannot read ${file}`, { cause: error });
      }
      // Malformed input exits 2 through runGuarded; everything after this collects checks.
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

      let expectedPolicyDigest: string | undefined;
      try {
        const pipeline = await import("../pipeline/index.ts");
        let policyJson: unknown = {};
        if (values.policy !== undefined) {
          try {
            policyJson = JSON.parse(await readFile(values.policy, "utf8"));
          } catch (error) {
            throw new IoError("IO_ERROR", `cannot read policy ${values.policy}`, { cause: error });
          }
        }
        const policy = pipeline.parseVerifierPolicy(policyJson);
        expectedPolicyDigest = pipeline.policyDigest(policy);
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
          expectedPolicyDigest === undefined || sameHex(record.policyDigest, expectedPolicyDigest),
          `chain ${record.policyDigest ?? "-"}${expectedPolicyDigest === undefined ? "" : `, local ${expectedPolicyDigest}`}`,
          "POLICY_INVALID",
        );
      }
      const ok = checks.every((c) => c.ok);
      if (values.json) {
        printJson(
          io,
          ok,
          {
            manifestDigest,
            modelHash: modelHash ?? null,
            checks,
            record: record === null ? null : recordToJson(record),
          },
          checks.filter((c) => !c.ok).map((c) => ({ code: c.code ?? "INTERNAL", message: `${c.name}: ${c.detail}` })),
        );
      } else {
        for (const c of checks) io.stdout(`${c.ok ? "PASS" : "FAIL"}  ${c.name.padEnd(36)} ${c.detail}\n`);
        io.stdout(ok ? "audit: every check holds\n" : "audit: FAILED\n");
      }
      return ok ? EXIT_OK : EXIT_REFUSED;
    });
  },
};

const EXPLORER_USAGE =
  "provenant explorer [--port <n>] [--rpc <url>]   # serves web/dist on 127.0.0.1; /rpc forwards to the local chain";

const explorerCommand: Command = {
  path: ["explorer"],
  summary: "serve the explorer page on 127.0.0.1",
  usage: EXPLORER_USAGE,
  async run(argv, io) {
    return runGuarded(io, false, async () => {
      const { values } = parseCommandArgs(
        argv,
        { port: { type: "string", default: "8787" }, rpc: { type: "string" } },
        EXPLORER_USAGE,
      );
      const { serveExplorer } = await import("./serve.ts");
      const server = await serveExplorer({
        port: integerOption(values.port, "port", { min: 0, max: 65_535 }) ?? 8787,
        rpcUrl: values.rpc ?? io.env.PROVENANT_RPC ?? "http://127.0.0.1:8545",
      });
      io.stdout(`explorer: ${server.url}  (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
      await server.close();
      return EXIT_OK;
    });
  },
};

export const commands: readonly Command[] = [lookupCommand, auditCommand, explorerCommand];
