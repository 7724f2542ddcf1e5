// What a record attests, browser-safe core: a bundle's bytes checked against the onchain record before anything of
// it is shown (the manifest envelope's payload hashes to the record's manifestDigest, every envelope is signed by the
// key K the report binds with the bundle's nonce, the manifest names the record's model and parent or log, the report's
// MEASUREMENT and each GPU's measured state hash to the record's measurementHash), then what it says: the launch
// measurement, the job-code digest, the manifest's content, the GPUs. A policy served by its digest is read the same
// way (its SHA-256 must be the record's policyDigest). Trusted: the chain's record, and the verifier only for which
// GPUs it verified. The AMD certificate chain is not checked here (the verifier did; `provenant audit` redoes it).
// No node:* module and no I/O: the SDK (details.ts), `provenant lookup` and the explorer page run this same code.
import { sha256 } from "@noble/hashes/sha2.js";

import { MAX_BUNDLE_BYTES, readBundle, type ProvenanceBundle } from "../../lib/bundle/core.ts";
import { decodeBase64, pae, verifyEcSignatureWeb, type DsseEnvelope } from "../../lib/dsse/core.ts";
import { equalBytes, fromHex, toHex } from "../../lib/encoding/index.ts";
import { MalformedInputError, VerificationError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { parseGpuEvidence } from "../../lib/gpu/parse.ts";
import {
  jobCodeDigestOf,
  parseStatementPayload,
  PREDICATE_EVAL,
  PREDICATE_SLSA,
  runtimeOf,
  TRAINING_TRACE_BYPRODUCT,
  type RuntimeInfo,
  type Statement,
} from "../../lib/intoto/index.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import { MAX_SERVING_PAYLOAD_BYTES, parseStatementBytes, validateServingStatement } from "../../lib/receipt/core.ts";
import type { RecordKind } from "../../lib/registry/record.ts";
import { parseReport } from "../../lib/snp/parse.ts";

/** Largest policy document read (a normalised policy is a few KiB; thousands of pinned measurements stay below). */
export const MAX_POLICY_BYTES = 256 * 1024;

/** The facts of an onchain record that a bundle must match (a RegistryRecord has them all). */
export interface RecordFacts {
  manifestDigest: string;
  modelHash: string;
  kind: RecordKind;
  /** Fine-tune: the base model; serving: the log id; null otherwise. */
  parentModelHash: string | null;
  /** From the AttestationRecorded event; null when the event was not found (then not compared). */
  measurementHash: string | null;
  policyDigest: string | null;
}

export interface MetricContent {
  name: string;
  value: number;
  sampleSize: number;
  comparator: string | null;
  threshold: number | null;
  passed: boolean | null;
}

/** What an audit's signed eval statement says (DESIGN §3.2). */
export interface AuditContent {
  kind: "audit";
  suite: { name: string; digest: string };
  harness: { name: string; version: string; digest: string };
  metrics: MetricContent[];
  /** Every metric that has a threshold passed it; null when no metric has one. */
  passed: boolean | null;
  startedOn: string;
  finishedOn: string;
}

/** What a fine-tune's signed SLSA provenance says. */
export interface FinetuneContent {
  kind: "finetune";
  baseModel: { name: string | null; digest: string };
  dataset: { name: string | null; digest: string };
  /** `trainerConfig.trainer` when it names one (e.g. "llama.cpp llama-finetune"), with the whole config. */
  trainer: { name: string | null; config: Record<string, unknown> };
  invocationId: string;
  startedOn: string;
  finishedOn: string;
  /** The training-trace byproduct (DESIGN §13): the trace root and its annotations; null when not traced. */
  trainingTrace: { digest: string; steps: number | null; checkpointEvery: number | null } | null;
  byproducts: { name: string; digest: string }[];
}

/** What a serving statement says (DESIGN §12): the serving key S, its log, what serves and since when. */
export interface ServingContent {
  kind: "serving";
  /** The log id: hex SHA-256 of S's DER SPKI (the record's parentModelHash). */
  logId: string;
  origin: string;
  servingKey: string;
  startedOn: string;
  epoch: { maxReceipts: number; maxSeconds: number };
  admission: { require: string; manifestDigest: string };
  runtime: { name: string; version: string; gpu: boolean };
  predecessor: { logId: string; lastSeq: number; lastReceipt: string } | null;
}

export type ManifestContent = AuditContent | FinetuneContent | ServingContent;

/** One GPU of a bundle as the bundle itself shows it (read with lib/gpu's parser, not verified here). */
export interface BundleGpu {
  index: number;
  arch: string;
  driverVersion: string | null;
  vbiosVersion: string | null;
  /** Hex SHA-256 of the signed measurement record (what the record's measurementHash folds in); null unparsable. */
  measurementDigest: string | null;
}

/** A bundle that matches its record: what it attests, read from its signed statements and its report. */
export interface AttestedBundle {
  bundleDigest: string;
  /** Hex SHA-256 of K's DER SPKI (the serving log id for a serving bundle). */
  keyId: string;
  /** The report's 48-byte launch MEASUREMENT, 96 hex. */
  measurement: string;
  /** The product from the report's CPUID (lib/snp productFromCpuid), "unknown" for v2 reports. */
  product: string;
  reportedTcb: string;
  /** `sha256:<hex>` (jobCodeDigestOf, or a serving statement's jobCode); null when named only by a git commit. */
  jobCodeDigest: string | null;
  manifest: ManifestContent;
  gpus: BundleGpu[];
  /** The manifest's signed runtime record (backend, devices, driver, how GPU evidence was collected). */
  runtime: RuntimeInfo | null;
  /** The recorded manifest's envelope and the bundle's signer K (DER SPKI), for checks built on them (receipts). */
  envelope: DsseEnvelope;
  signer: Uint8Array;
}

/** A policy read back by its digest: what every record it admitted was held to. */
export interface PolicyView {
  digest: string;
  development: boolean;
  open: boolean;
  /** Why it is open, field by field (policyOpenness's reasons, read from the normalised JSON). */
  reasons: { field: string; message: string }[];
  /** One line: "development policy: …", "open policy: …" or "pinned policy: …". */
  label: string;
  measurements: { name?: string; value: string }[];
  jobCodeDigests: { name?: string; value: string }[] | null;
  acceptedKinds: string[];
}

/** One GPU as shown next to a record: the bundle's reading, and whether the verifier verified it. */
export interface GpuDetail extends BundleGpu {
  /** The verifier's verdict: true verified, false refused; null when no verdict says (then only read, not verified). */
  verified: boolean | null;
  source: "verifier" | "bundle";
  error: { code: string; message: string } | null;
}

/** Everything lookup and the explorer show next to a record. */
export interface RecordDetails {
  manifestDigest: string;
  /**
   * verified: the verifier's bundle matches the record (its content below is what the record commits to);
   * mismatch: a bundle was served that does not (none of its content is shown); unavailable: no bundle was had.
   */
  status: "verified" | "mismatch" | "unavailable";
  error: { code: string; message: string } | null;
  bundleDigest: string | null;
  measurement: { value: string; name: string | null } | null;
  jobCode: { digest: string; name: string | null } | null;
  policy: PolicyView | null;
  policyError: { code: string; message: string } | null;
  manifest: ManifestContent | null;
  gpus: GpuDetail[];
  runtime: RuntimeInfo | null;
  /** The report's product and TCB (informative: the verifier checked them against AMD's chain). */
  platform: { product: string; reportedTcb: string } | null;
}

const HEX64 = /^[0-9a-f]{64}$/;

function mismatch(message: string, details: Record<string, unknown>): VerificationError {
  return new VerificationError("RECORD_MISMATCH", message, { details });
}

const hex = (bytes: Uint8Array): string => toHex(sha256(bytes));
const bare = (h: string): string => h.toLowerCase().replace(/^0x/, "");

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** The envelope whose decoded payload hashes to the record's manifest digest (DESIGN §3.2), with its index. */
function recordedEnvelope(bundle: ProvenanceBundle, manifestDigest: string): { envelope: DsseEnvelope; index: number } {
  for (const [index, envelope] of bundle.envelopes.entries()) {
    const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", `envelopes[${index}].payload`);
    if (hex(payload) === manifestDigest) return { envelope, index };
  }
  throw mismatch(`no envelope of this bundle is the recorded manifest ${manifestDigest}`, { manifestDigest });
}

/** Every envelope signed by K (lib/dsse's rule: one signature that verifies is enough), fail fast. */
async function verifyEnvelopes(bundle: ProvenanceBundle, spki: Uint8Array): Promise<void> {
  for (const [i, envelope] of bundle.envelopes.entries()) {
    const message = pae(envelope.payloadType, decodeBase64(envelope.payload, "DSSE_MALFORMED", `envelopes[${i}]`));
    let ok = false;
    for (const [j, s] of envelope.signatures.entries()) {
      const sig = decodeBase64(s.sig, "DSSE_MALFORMED", `envelopes[${i}].signatures[${j}].sig`);
      if (await verifyEcSignatureWeb(spki, message, sig)) {
        ok = true;
        break;
      }
    }
    if (!ok)
      throw new VerificationError("DSSE_BAD_SIGNATURE", `envelope ${i} is not signed by the bundle's key`, {
        details: { index: i },
      });
  }
}

function auditContent(statement: Statement): AuditContent {
  const p = statement.predicate as {
    suite: { name: string; digest: { sha256: string } };
    harness: { name: string; version: string; digest: { sha256: string } };
    metrics: {
      name: string;
      value: number;
      sampleSize: number;
      comparator?: string;
      threshold?: number;
      passed?: boolean;
    }[];
    startedOn: string;
    finishedOn: string;
  };
  const metrics = p.metrics.map((m) => ({
    name: m.name,
    value: m.value,
    sampleSize: m.sampleSize,
    comparator: m.comparator ?? null,
    threshold: m.threshold ?? null,
    passed: m.passed ?? null,
  }));
  const judged = metrics.filter((m) => m.passed !== null);
  return {
    kind: "audit",
    suite: { name: p.suite.name, digest: p.suite.digest.sha256 },
    harness: { name: p.harness.name, version: p.harness.version, digest: p.harness.digest.sha256 },
    metrics,
    passed: judged.length === 0 ? null : judged.every((m) => m.passed === true),
    startedOn: p.startedOn,
    finishedOn: p.finishedOn,
  };
}

type Dependency = { name: string; digest: Record<string, string>; annotations?: Record<string, unknown> };

function finetuneContent(statement: Statement): FinetuneContent {
  const p = statement.predicate as {
    buildDefinition: {
      externalParameters: { trainerConfig: Record<string, unknown> };
      resolvedDependencies: Dependency[];
    };
    runDetails: {
      metadata: { invocationId: string; startedOn: string; finishedOn: string };
      byproducts?: Dependency[];
    };
  };
  const deps = p.buildDefinition.resolvedDependencies;
  const dep = (name: string) => {
    const d = deps.find((x) => x.name === name);
    return { name: str(d?.annotations?.name), digest: d?.digest.sha256 ?? d?.digest.gitCommit ?? "" };
  };
  const config = p.buildDefinition.externalParameters.trainerConfig;
  const byproducts = p.runDetails.byproducts ?? [];
  const trace = byproducts.find((b) => b.name === TRAINING_TRACE_BYPRODUCT);
  const count = (v: unknown): number | null => (typeof v === "number" && Number.isSafeInteger(v) ? v : null);
  return {
    kind: "finetune",
    baseModel: dep("base-model"),
    dataset: dep("dataset"),
    trainer: { name: str(config.trainer), config },
    invocationId: p.runDetails.metadata.invocationId,
    startedOn: p.runDetails.metadata.startedOn,
    finishedOn: p.runDetails.metadata.finishedOn,
    trainingTrace:
      trace === undefined
        ? null
        : {
            digest: trace.digest.sha256 ?? "",
            steps: count(trace.annotations?.steps),
            checkpointEvery: count(trace.annotations?.checkpointEvery),
          },
    byproducts: byproducts.map((b) => ({ name: b.name, digest: b.digest.sha256 ?? "" })),
  };
}

/** The GPUs a bundle carries, read (not verified) with lib/gpu's parser; `null` fields where one does not parse. */
function bundleGpus(bundle: ProvenanceBundle, unparsable: Map<number, { code: string; message: string }>): BundleGpu[] {
  return (bundle.evidence.gpu ?? []).map((entry, index) => {
    try {
      const evidence = parseGpuEvidence(decodeBase64(entry.evidence, "BUNDLE_MALFORMED", `evidence.gpu[${index}]`));
      return {
        index,
        arch: entry.arch,
        driverVersion: evidence.driverVersion,
        vbiosVersion: evidence.vbiosVersion,
        measurementDigest: hex(evidence.measurementRecord),
      };
    } catch (error) {
      unparsable.set(index, errorOf(error));
      return { index, arch: entry.arch, driverVersion: null, vbiosVersion: null, measurementDigest: null };
    }
  });
}

/**
 * Checks a bundle's bytes against the onchain record and reads what it attests. Throws a coded error when it does not
 * hold: the bundle's own codes (BUNDLE_MALFORMED, BUNDLE_TOO_LARGE, DSSE_MALFORMED, STATEMENT_INVALID, SNP_MALFORMED),
 * DSSE_BAD_SIGNATURE, BINDING_KEY_MISMATCH / BINDING_NONCE_MISMATCH, or RECORD_MISMATCH (the recorded manifest is not
 * in it, or it names another model, kind, parent, log or measurement than the record). Nothing of a bundle that fails
 * is returned, so nothing of it can be shown.
 */
export async function checkRecordBundle(
  record: RecordFacts,
  bytes: Uint8Array,
  options: { maxBytes?: number } = {},
): Promise<AttestedBundle> {
  const manifestDigest = bare(record.manifestDigest);
  const bundle = readBundle(bytes, { maxBytes: options.maxBytes ?? MAX_BUNDLE_BYTES });
  // 1. The record's manifest is in it: SHA-256 of an envelope's payload bytes, exactly as signed.
  const { envelope } = recordedEnvelope(bundle, manifestDigest);
  // 2. Every envelope is signed by K, and the report binds K and the nonce (REPORT_DATA, DESIGN §3.3).
  const spki = decodeBase64(bundle.signer.publicKey, "BUNDLE_MALFORMED", "signer.publicKey");
  await verifyEnvelopes(bundle, spki);
  const report = parseReport(decodeBase64(bundle.evidence.cpu.report, "BUNDLE_MALFORMED", "evidence.cpu.report"));
  const keyHash = sha256(spki);
  if (!equalBytes(report.reportData.subarray(0, 32), keyHash))
    throw new VerificationError("BINDING_KEY_MISMATCH", "REPORT_DATA[0:32] is not SHA-256 of the bundle's key");
  if (toHex(report.reportData.subarray(32, 64)) !== bundle.nonce)
    throw new VerificationError("BINDING_NONCE_MISMATCH", "REPORT_DATA[32:64] is not the bundle's nonce");
  // 3. The manifest, read strictly, says what the record says.
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "manifest payload");
  let manifest: ManifestContent;
  let modelHash: string | undefined;
  let linked: string | null;
  let jobCode: string | undefined;
  let runtime: RuntimeInfo | undefined;
  if (record.kind === "serving") {
    const s = validateServingStatement(
      parseStatementBytes(envelope.payloadType, payload, MAX_SERVING_PAYLOAD_BYTES, "STATEMENT_INVALID"),
    );
    const p = s.predicate;
    // The serving key S is K (docs/serving.md): the statement names K, and the record's log id is K's.
    if (p.servingKey.publicKey !== bundle.signer.publicKey)
      throw mismatch("the serving statement names another key than the bundle's", { keyid: p.servingKey.keyid });
    manifest = {
      kind: "serving",
      logId: p.log.logId,
      origin: p.log.origin,
      servingKey: p.servingKey.keyid,
      startedOn: p.startedOn,
      epoch: { ...p.epoch },
      admission: { ...p.admission },
      runtime: { ...p.runtime },
      predecessor: p.predecessor === undefined ? null : { ...p.predecessor },
    };
    modelHash = s.subject[0].digest.sha256;
    linked = p.log.logId;
    jobCode = p.jobCode.digest.sha256;
  } else {
    const validated = parseStatementPayload(envelope.payloadType, payload, "manifest");
    const expected = record.kind === "finetune" ? PREDICATE_SLSA : PREDICATE_EVAL;
    if (validated.statement.predicateType !== expected)
      throw mismatch(`the recorded manifest is a ${validated.kind} statement, the record a ${record.kind}`, {
        kind: record.kind,
      });
    manifest = record.kind === "finetune" ? finetuneContent(validated.statement) : auditContent(validated.statement);
    modelHash = validated.subjectDigests[0];
    linked = validated.parentModelHash ?? null;
    jobCode = jobCodeDigestOf(validated.statement);
    runtime = runtimeOf(validated.statement);
  }
  if (modelHash !== bare(record.modelHash))
    throw mismatch(`the manifest names model ${modelHash ?? "none"}, the record ${bare(record.modelHash)}`, {
      modelHash,
    });
  const recordLink = record.parentModelHash === null ? null : bare(record.parentModelHash);
  if (linked !== recordLink)
    throw mismatch(`the manifest names ${linked ?? "no parent"}, the record ${recordLink ?? "none"}`, { linked });
  // 4. The launch measurement and each GPU's measured state are what the record's measurementHash covers:
  // SHA-256(MEASUREMENT ‖ each GPU's measurement-record digest), docs/formats.md.
  const unparsable = new Map<number, { code: string; message: string }>();
  const gpus = bundleGpus(bundle, unparsable);
  if (record.measurementHash !== null) {
    const h = sha256.create().update(report.measurement);
    for (const g of gpus) {
      if (g.measurementDigest === null) {
        const why = unparsable.get(g.index);
        throw mismatch(`GPU ${g.index}'s evidence does not parse (${why?.code}: ${why?.message})`, { gpu: g.index });
      }
      h.update(fromHex(g.measurementDigest)!);
    }
    if (toHex(h.digest()) !== bare(record.measurementHash))
      throw mismatch("the report's MEASUREMENT (and GPU measurements) do not hash to the record's measurementHash", {
        measurementHash: record.measurementHash,
      });
  }
  return {
    bundleDigest: hex(bytes),
    keyId: toHex(keyHash),
    measurement: toHex(report.measurement),
    product: report.productFromCpuid ?? "unknown",
    reportedTcb: `0x${report.reportedTcb.raw.toString(16).padStart(16, "0")}`,
    jobCodeDigest: jobCode === undefined || !HEX64.test(jobCode) ? null : `sha256:${jobCode}`,
    manifest,
    gpus,
    runtime: runtime ?? null,
    envelope,
    signer: spki,
  };
}

// ---- Policies ---------------------------------------------------------------------------------------------------

/** The TCB components a product's floor must set to pin it (lib/snp tcbComponents; Turin adds the FMC). */
const TCB_COMPONENTS = ["bootloader", "tee", "snp", "microcode"];

/**
 * Whether a normalised policy is open and why, read from its JSON (the twin of offchain/pipeline policyOpenness,
 * which reads the parsed policy; a test holds the two equal): no measurement pinned, no TCB floor or an incomplete
 * one, a development ARK or GPU root trusted.
 */
export function policyOpennessOfJson(json: Record<string, unknown>): PolicyView["reasons"] {
  const reasons: PolicyView["reasons"] = [];
  const snp = (json.snp ?? {}) as { measurements?: unknown[]; minimumTcb?: Record<string, Record<string, unknown>> };
  if (!Array.isArray(snp.measurements) || snp.measurements.length === 0)
    reasons.push({
      field: "snp.measurements",
      message: "no launch measurement is pinned: any guest image is accepted",
    });
  const floors = snp.minimumTcb;
  if (floors === undefined || floors === null || Object.keys(floors).length === 0)
    reasons.push({
      field: "snp.minimumTcb",
      message: "no TCB floor is set: reports of any product and firmware are accepted",
    });
  else
    for (const [product, floor] of Object.entries(floors)) {
      const needed = product === "Turin" ? ["fmc", ...TCB_COMPONENTS] : TCB_COMPONENTS;
      const missing = needed.filter((k) => floor?.[k] === undefined || floor[k] === null);
      if (missing.length > 0)
        reasons.push({
          field: `snp.minimumTcb.${product}`,
          message: `the ${product} floor leaves ${missing.join(", ")} unset`,
        });
    }
  const roots = Array.isArray(json.trustedRoots) ? (json.trustedRoots as string[]) : [];
  if (roots.length > 0)
    reasons.push({
      field: "trustedRoots",
      message: `trusts ${roots.length} development root(s) besides AMD's (${roots.map((r) => String(r).slice(0, 16)).join(", ")}…)`,
    });
  const gpuRoots = Array.isArray((json.gpu as { trustedRoots?: unknown } | undefined)?.trustedRoots)
    ? (json.gpu as { trustedRoots: string[] }).trustedRoots
    : [];
  if (gpuRoots.length > 0)
    reasons.push({
      field: "gpu.trustedRoots",
      message: `trusts ${gpuRoots.length} development GPU root(s) besides NVIDIA's (${gpuRoots.map((r) => String(r).slice(0, 16)).join(", ")}…)`,
    });
  return reasons;
}

/** A short phrase per reason, for the one-line label. */
function shortReason(field: string): string {
  if (field === "snp.measurements") return "no launch measurement pinned";
  if (field === "snp.minimumTcb") return "no TCB floor";
  if (field.startsWith("snp.minimumTcb.")) return `incomplete ${field.slice(15)} TCB floor`;
  if (field === "trustedRoots") return "development root trusted (e.g. the simulator's)";
  if (field === "gpu.trustedRoots") return "development GPU root trusted";
  return field;
}

/** The one-line label every reader shows next to a record (DESIGN §11: `development` is always displayed). */
export function policyLabel(development: boolean, reasons: PolicyView["reasons"]): string {
  const why = reasons.map((r) => shortReason(r.field)).join(", ");
  if (development) return why === "" ? "development policy" : `development policy: ${why}`;
  if (reasons.length > 0) return `open policy: ${why}`;
  return "pinned policy: launch measurements and TCB floors";
}

function pinned(value: unknown): { name?: string; value: string }[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry) => {
    if (typeof entry === "string") return [{ value: entry.toLowerCase() }];
    const e = entry as { name?: unknown; value?: unknown };
    if (typeof e?.value !== "string") return [];
    return [
      typeof e.name === "string" ? { name: e.name, value: e.value.toLowerCase() } : { value: e.value.toLowerCase() },
    ];
  });
}

/**
 * Reads a policy document fetched by a record's policyDigest: its SHA-256 must be that digest (RECORD_MISMATCH
 * otherwise: it is not the policy that admitted the record), then strict JSON (a duplicate key, a BOM, invalid UTF-8
 * are POLICY_INVALID), an object. At most MAX_POLICY_BYTES.
 */
export function readPolicyDocument(bytes: Uint8Array, expectedDigest: string): PolicyView {
  const digest = bare(expectedDigest);
  if (bytes.length > MAX_POLICY_BYTES)
    throw new MalformedInputError(
      "POLICY_INVALID",
      `the policy is ${bytes.length} bytes, more than ${MAX_POLICY_BYTES}`,
    );
  if (hex(bytes) !== digest)
    throw mismatch(`the policy served does not hash to the record's policyDigest ${digest}`, { policyDigest: digest });
  const json = parseStrictJsonBytes(bytes, { code: "POLICY_INVALID", what: "policy" });
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new MalformedInputError("POLICY_INVALID", "the policy is not a JSON object");
  const policy = json as Record<string, unknown>;
  const development = policy.development === true;
  const reasons = policyOpennessOfJson(policy);
  return {
    digest,
    development,
    open: reasons.length > 0,
    reasons,
    label: policyLabel(development, reasons),
    measurements: pinned((policy.snp as { measurements?: unknown } | undefined)?.measurements),
    jobCodeDigests: policy.jobCodeDigests === undefined ? null : pinned(policy.jobCodeDigests),
    acceptedKinds: Array.isArray(policy.acceptedKinds) ? policy.acceptedKinds.map(String) : [],
  };
}

// ---- Putting it together ----------------------------------------------------------------------------------------

/** One GPU as the verifier's stored verdict shows it (GET /bundles/:digest `gpus`). */
export interface VerdictGpu {
  index: number;
  arch?: string;
  verified: boolean;
  driverVersion?: string | null;
  vbiosVersion?: string | null;
  error?: { code: string; message: string };
}

function errorOf(error: unknown): { code: string; message: string } {
  const e = toErrorList(error)[0]!;
  return { code: e.code, message: e.message };
}

/** The code of a failed check: a bundle that was served but does not hold is a mismatch; the rest is unavailable. */
const UNAVAILABLE: readonly ErrorCode[] = ["VERIFIER_UNAVAILABLE", "NOT_FOUND", "IO_ERROR", "INTERNAL"];

/**
 * Joins what was had for a record into what a reader shows: the checked bundle (or why none), the policy read by its
 * digest (or why not), and the verifier's GPU verdicts. The measurement and job code take the names the policy gives
 * them; GPUs take `verified` from the verifier's verdict, or stay "read, not verified" without one.
 */
export function describeRecord(
  record: RecordFacts,
  had: {
    bundle: AttestedBundle | { error: unknown } | null;
    policy: PolicyView | { error: unknown } | null;
    verdictGpus?: readonly VerdictGpu[] | null;
  },
): RecordDetails {
  const policy = had.policy !== null && !("error" in had.policy) ? had.policy : null;
  const policyError = had.policy !== null && "error" in had.policy ? errorOf(had.policy.error) : null;
  const base = {
    manifestDigest: bare(record.manifestDigest),
    policy,
    policyError,
  };
  if (had.bundle === null || "error" in had.bundle) {
    const error =
      had.bundle === null
        ? { code: "NOT_FOUND", message: "the verifier holds no bundle for this record" }
        : errorOf(had.bundle.error);
    return {
      ...base,
      status: (UNAVAILABLE as readonly string[]).includes(error.code) ? "unavailable" : "mismatch",
      error,
      bundleDigest: null,
      measurement: null,
      jobCode: null,
      manifest: null,
      gpus: [],
      runtime: null,
      platform: null,
    };
  }
  const b = had.bundle;
  const nameOf = (list: { name?: string; value: string }[] | null | undefined, value: string) =>
    list?.find((m) => m.value === value)?.name ?? null;
  const verdicts = new Map((had.verdictGpus ?? []).map((g) => [g.index, g]));
  return {
    ...base,
    status: "verified",
    error: null,
    bundleDigest: b.bundleDigest,
    measurement: { value: b.measurement, name: nameOf(policy?.measurements, b.measurement) },
    jobCode:
      b.jobCodeDigest === null
        ? null
        : { digest: b.jobCodeDigest, name: nameOf(policy?.jobCodeDigests, b.jobCodeDigest) },
    manifest: b.manifest,
    gpus: b.gpus.map((g) => {
      const v = verdicts.get(g.index);
      return {
        ...g,
        verified: v === undefined ? null : v.verified,
        source: v === undefined ? ("bundle" as const) : ("verifier" as const),
        error: v?.error === undefined ? null : { code: v.error.code, message: v.error.message },
      };
    }),
    runtime: b.runtime,
    platform: { product: b.product, reportedTcb: b.reportedTcb },
  };
}

/** One line per GPU, as lookup and the explorer print it: "hopper, driver 550.90.07, VBIOS 96.00.9F.00.01, verified". */
export function gpuLine(g: GpuDetail): string {
  const state =
    g.verified === true
      ? "verified by the verifier"
      : g.verified === false
        ? `NOT verified${g.error === null ? "" : ` (${g.error.code})`}`
        : "read from the bundle, not verified here";
  return `GPU ${g.index}: ${g.arch}, driver ${g.driverVersion ?? "?"}, VBIOS ${g.vbiosVersion ?? "?"}, ${state}`;
}
