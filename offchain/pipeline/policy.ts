// The verifier policy file: plain JSON, schema-checked here, digested with RFC 8785 (JCS) so that every record it
// admits carries the SHA-256 of exactly what was enforced. The parsed form keeps its normalised JSON (defaults
// filled in), and that normalised JSON is what the digest covers: two files that mean the same give the same digest.
import { createHash } from "node:crypto";

import canonicalize from "canonicalize";

import { MalformedInputError, PolicyViolationError, ProvenantError } from "../../lib/errors.ts";
import { gpuPolicyToJson, parseGpuPolicy, type GpuPolicy } from "../../lib/gpu/index.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import {
  DEFAULT_SNP_POLICY,
  isPinName,
  MAX_MEASUREMENT_NAME,
  parseSnpPolicy,
  snpPolicyGaps,
  snpPolicyToJson,
  type SnpPolicy,
} from "../../lib/snp/index.ts";

/**
 * The manifests a policy may admit: fine-tune provenance (kind 1), audits (kind 2) and serving statements (kind 3,
 * DESIGN §12). "serving" is admitted only when a policy lists it: a file written before serving existed keeps its
 * meaning and its digest, and a verifier starts registering serving logs only when its operator says so.
 */
export type AcceptedKind = "finetune" | "eval" | "serving";
export const ACCEPTED_KINDS: readonly AcceptedKind[] = ["eval", "finetune", "serving"];

export interface VerifierPolicy {
  /** SEV-SNP policy (lib/snp): debug, VMPL, TCB floors, measurements, …; DEFAULT_SNP_POLICY when omitted. */
  snp: SnpPolicy;
  /** Extra ARK fingerprints (hex SHA-256 of the DER) to trust: development roots such as the simulator's only. */
  trustedRoots: string[];
  /**
   * The GPU policy (lib/gpu GpuPolicy, docs/gpu.md): `required`, `archs`, `minDriverVersion`, `requireRims`,
   * `requireOcsp`, `trustedRoots` (development GPU roots only). Every GPU in a bundle is verified whatever it says.
   * The old top-level `requireGpuEvidence` is read as `gpu.required` (true) or ignored (false).
   */
  gpu: GpuPolicy;
  /** Largest bundle file accepted, in bytes (at most 16 MiB, the format's own limit). */
  maxBundleBytes: number;
  /**
   * Which manifests may be recorded: "finetune" (SLSA provenance), "eval" (audit), "serving" (a serving statement,
   * recorded as kind 3). Default ["eval", "finetune"]: serving only when listed (see AcceptedKind).
   */
  acceptedKinds: AcceptedKind[];
  /** Most DSSE envelopes a bundle may hold (BUNDLE_TOO_COMPLEX above): bounds verification before it is paid for. */
  maxEnvelopes: number;
  /** Most signatures one envelope may hold (BUNDLE_TOO_COMPLEX above): each costs up to two P-384 verifications. */
  maxSignaturesPerEnvelope: number;
  /**
   * The job code a manifest may name (DESIGN §11: the fine-tune's `job-code` dependency or the audit's
   * `harness.digest`, as `jobCodeDigestOf` reads it), each `sha256:<64 hex>` with an optional name shown to users;
   * another is POLICY_JOB_CODE. Undefined: not checked.
   */
  jobCodeDigests: PinnedDigest[] | undefined;
  /**
   * Set by a policy made for development (`"development": true`, e.g. `provenant sim policy`): `verifier run` then
   * starts although the policy is open. It is in the digest, so every record it admits says so.
   */
  development: boolean;
  /** Whether the policy is open and why (policyOpenness): computed once, for the service, the CLI and displays. */
  openness: PolicyOpenness;
  /** The normalised JSON form: what `policyDigest` hashes. */
  json: VerifierPolicyJson;
}

/** A pinned value with the name a policy gives it (the form `measurements` and `jobCodeDigests` normalise to). */
export interface PinnedDigest {
  name?: string;
  value: string;
}

/**
 * A policy is open (DESIGN §11) unless it pins the launch measurements (`snp.measurements`) and a whole TCB floor
 * (`snp.minimumTcb`) for every product it accepts (the products minimumTcb names; a report of another product is
 * POLICY_PRODUCT), and trusts no development root (`trustedRoots`). `reasons` names each gap, with its field.
 */
export interface PolicyOpenness {
  open: boolean;
  reasons: { field: string; message: string }[];
}

export interface VerifierPolicyJson {
  snp: unknown;
  trustedRoots: string[];
  gpu: ReturnType<typeof gpuPolicyToJson>;
  maxBundleBytes: number;
  acceptedKinds: AcceptedKind[];
  maxEnvelopes: number;
  maxSignaturesPerEnvelope: number;
  /** Present only when the policy pins job code: `{name?, value: "sha256:<hex>"}`, sorted by value. */
  jobCodeDigests?: PinnedDigest[];
  development: boolean;
}

export const MAX_POLICY_BUNDLE_BYTES = 16 * 1024 * 1024;
/** Defaults and ceilings of the verification-cost bounds: a typical bundle has 3 envelopes of 1 signature. */
export const DEFAULT_MAX_ENVELOPES = 16;
export const DEFAULT_MAX_SIGNATURES_PER_ENVELOPE = 4;
export const MAX_POLICY_ENVELOPES = 256;
export const MAX_POLICY_SIGNATURES_PER_ENVELOPE = 16;
/** The top-level fields of a verifier policy file; any other is POLICY_INVALID. */
export const VERIFIER_POLICY_FIELDS = [
  "snp",
  "trustedRoots",
  "gpu",
  "requireGpuEvidence",
  "maxBundleBytes",
  "acceptedKinds",
  "maxEnvelopes",
  "maxSignaturesPerEnvelope",
  "jobCodeDigests",
  "development",
] as const;

// A bad policy file is unreadable input (exit 2), not a refusal of the evidence (exit 1): kind malformed.
function invalid(path: string, message: string): MalformedInputError {
  return new MalformedInputError("POLICY_INVALID", `policy: ${path}: ${message}`, { details: { path } });
}

/** Checks a policy file's JSON and fills defaults; POLICY_INVALID naming every bad field. */
export function parseVerifierPolicy(json: unknown): VerifierPolicy {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new PolicyViolationError([invalid("$", "expected a JSON object")]);
  const input = json as Record<string, unknown>;
  const problems: ProvenantError[] = [];
  for (const key of Object.keys(input))
    if (!(VERIFIER_POLICY_FIELDS as readonly string[]).includes(key)) problems.push(invalid(key, "unknown field"));

  let snp: SnpPolicy = DEFAULT_SNP_POLICY;
  if (input.snp !== undefined) {
    try {
      snp = parseSnpPolicy(input.snp);
    } catch (error) {
      if (error instanceof PolicyViolationError) problems.push(...error.violations);
      else problems.push(invalid("snp", error instanceof Error ? error.message : String(error)));
    }
  }

  const trustedRoots: string[] = [];
  if (input.trustedRoots !== undefined) {
    if (!Array.isArray(input.trustedRoots)) problems.push(invalid("trustedRoots", "expected an array of hex strings"));
    else
      input.trustedRoots.forEach((root, i) => {
        if (typeof root !== "string" || !/^[0-9a-fA-F]{64}$/.test(root))
          problems.push(invalid(`trustedRoots[${i}]`, "expected 64 hex characters (SHA-256 of an ARK DER)"));
        else trustedRoots.push(root.toLowerCase());
      });
  }

  // The GPU section (lib/gpu parseGpuPolicy: unknown fields and bad values are POLICY_INVALID, each listed).
  let gpu: GpuPolicy = parseGpuPolicy(undefined);
  try {
    gpu = parseGpuPolicy(input.gpu);
  } catch (error) {
    if (error instanceof PolicyViolationError) problems.push(...error.violations);
    else problems.push(invalid("gpu", error instanceof Error ? error.message : String(error)));
  }
  // `requireGpuEvidence`, from before GPU evidence was verified: true reads as gpu.required (stricter than it was:
  // the evidence is now verified too), false changes nothing. It is not in the normalised form, so a file that says
  // `"requireGpuEvidence": true` and one that says `"gpu": {"required": true}` have one digest.
  if (input.requireGpuEvidence !== undefined) {
    const gpuIn = input.gpu as Record<string, unknown> | undefined;
    if (typeof input.requireGpuEvidence !== "boolean")
      problems.push(invalid("requireGpuEvidence", 'expected a boolean (better: "gpu": {"required": true})'));
    else if (input.requireGpuEvidence && gpuIn?.required === false)
      problems.push(invalid("requireGpuEvidence", "contradicts gpu.required: false (gpu.required replaces it)"));
    else if (input.requireGpuEvidence) gpu = { ...gpu, required: true };
  }

  let maxBundleBytes = MAX_POLICY_BUNDLE_BYTES;
  if (input.maxBundleBytes !== undefined) {
    const v = input.maxBundleBytes;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1024 || v > MAX_POLICY_BUNDLE_BYTES)
      problems.push(invalid("maxBundleBytes", `expected an integer in [1024, ${MAX_POLICY_BUNDLE_BYTES}]`));
    else maxBundleBytes = v;
  }

  let acceptedKinds: AcceptedKind[] = ["eval", "finetune"]; // sorted: the normalised form
  if (input.acceptedKinds !== undefined) {
    const v = input.acceptedKinds;
    if (
      !Array.isArray(v) ||
      v.length === 0 ||
      v.some((k) => !ACCEPTED_KINDS.includes(k as AcceptedKind)) ||
      new Set(v).size !== v.length
    )
      problems.push(invalid("acceptedKinds", 'expected a non-empty list of "finetune", "eval" and/or "serving"'));
    else acceptedKinds = [...(v as AcceptedKind[])].sort();
  }

  // Verification cost is bounded before it is spent (issue 13): an integer in [1, ceiling] each.
  const bound = (field: "maxEnvelopes" | "maxSignaturesPerEnvelope", fallback: number, ceiling: number): number => {
    const v = input[field];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > ceiling) {
      problems.push(invalid(field, `expected an integer in [1, ${ceiling}]`));
      return fallback;
    }
    return v;
  };
  const maxEnvelopes = bound("maxEnvelopes", DEFAULT_MAX_ENVELOPES, MAX_POLICY_ENVELOPES);
  const maxSignaturesPerEnvelope = bound(
    "maxSignaturesPerEnvelope",
    DEFAULT_MAX_SIGNATURES_PER_ENVELOPE,
    MAX_POLICY_SIGNATURES_PER_ENVELOPE,
  );

  let development = false;
  if (input.development !== undefined) {
    if (typeof input.development !== "boolean") problems.push(invalid("development", "expected a boolean"));
    else development = input.development;
  }

  const jobCodeDigests =
    input.jobCodeDigests === undefined ? undefined : readJobCodeDigests(input.jobCodeDigests, problems);

  if (problems.length > 0) throw new PolicyViolationError(problems);
  const normalised: VerifierPolicyJson = {
    snp: snpPolicyToJson(snp),
    trustedRoots: [...new Set(trustedRoots)].sort(),
    gpu: gpuPolicyToJson(gpu),
    maxBundleBytes,
    acceptedKinds,
    maxEnvelopes,
    maxSignaturesPerEnvelope,
    ...(jobCodeDigests === undefined ? {} : { jobCodeDigests }),
    development,
  };
  const policy: Omit<VerifierPolicy, "openness"> = {
    snp,
    trustedRoots: normalised.trustedRoots,
    gpu,
    maxBundleBytes,
    acceptedKinds,
    maxEnvelopes,
    maxSignaturesPerEnvelope,
    jobCodeDigests,
    development,
    json: normalised,
  };
  return { ...policy, openness: policyOpenness(policy) };
}

/**
 * `jobCodeDigests`: a non-empty list of `"sha256:<64 hex>"` strings or `{"name", "value"}` objects, normalised to
 * objects sorted by value (lower-case hex), no value twice.
 */
function readJobCodeDigests(value: unknown, problems: ProvenantError[]): PinnedDigest[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(invalid("jobCodeDigests", 'expected a non-empty array of "sha256:<64 hex>" or {"name", "value"}'));
    return undefined;
  }
  const byValue = new Map<string, PinnedDigest>();
  value.forEach((entry, i) => {
    const at = `jobCodeDigests[${i}]`;
    const isObject = typeof entry === "object" && entry !== null && !Array.isArray(entry);
    const raw: unknown = isObject ? (entry as Record<string, unknown>).value : entry;
    let name: string | undefined;
    if (isObject) {
      const obj = entry as Record<string, unknown>;
      for (const k of Object.keys(obj))
        if (k !== "name" && k !== "value") problems.push(invalid(`${at}.${k}`, "unknown field"));
      if (obj.name !== undefined) {
        // The rule measurement names follow (lib/snp isPinName): printable, bounded, not a template placeholder.
        if (!isPinName(obj.name))
          problems.push(invalid(`${at}.name`, `expected 1 to ${MAX_MEASUREMENT_NAME} printable characters`));
        else name = obj.name;
      }
    }
    const path = isObject ? `${at}.value` : at;
    if (typeof raw !== "string" || !/^sha256:[0-9a-fA-F]{64}$/.test(raw)) {
      const hint =
        typeof raw === "string" && raw.startsWith("<")
          ? ` (still the template placeholder ${raw}: fill it in from \`provenant job code-digest\`)`
          : "";
      problems.push(invalid(path, `expected "sha256:" and 64 hex digits${hint}`));
      return;
    }
    const normal = `sha256:${raw.slice(7).toLowerCase()}`;
    if (byValue.has(normal)) problems.push(invalid(at, `${normal} is listed twice`));
    byValue.set(normal, name === undefined ? { value: normal } : { name, value: normal });
  });
  return [...byValue.keys()].sort().map((k) => byValue.get(k)!);
}

/** Whether a policy is open, and why (see PolicyOpenness); `development` does not close it, it only allows it. */
export function policyOpenness(
  policy: Pick<VerifierPolicy, "snp" | "trustedRoots"> & Partial<Pick<VerifierPolicy, "gpu">>,
): PolicyOpenness {
  const reasons = snpPolicyGaps(policy.snp);
  if (policy.trustedRoots.length > 0)
    reasons.push({
      field: "trustedRoots",
      message: `trusts ${policy.trustedRoots.length} development root(s) besides AMD's (${policy.trustedRoots.map((r) => r.slice(0, 16)).join(", ")}…)`,
    });
  // A development GPU root (the GPU simulator's) opens the policy as a development ARK does.
  const gpuRoots = policy.gpu?.trustedRoots ?? [];
  if (gpuRoots.length > 0)
    reasons.push({
      field: "gpu.trustedRoots",
      message: `trusts ${gpuRoots.length} development GPU root(s) besides NVIDIA's (${gpuRoots.map((r) => r.slice(0, 16)).join(", ")}…)`,
    });
  return { open: reasons.length > 0, reasons };
}

/**
 * Refuses an open policy that does not say `"development": true` (DESIGN §11): POLICY_OPEN, a usage error (exit 2),
 * naming every gap and how to close it. What `verifier run` and the service check before they start.
 */
export function assertPolicyNotOpen(policy: VerifierPolicy): void {
  if (!policy.openness.open || policy.development) return;
  const gaps = policy.openness.reasons.map((r) => `${r.field}: ${r.message}`).join("; ");
  throw new ProvenantError(
    "usage",
    "POLICY_OPEN",
    `the policy is open (${gaps}). Pin snp.measurements (provenant measure --policy-snippet) and a whole ` +
      `snp.minimumTcb floor for every product you accept (AMD's published TCB), or, for development only, ` +
      `add "development": true`,
    { details: { reasons: policy.openness.reasons } },
  );
}

/**
 * Reads a policy file's bytes with the strict reader (lib/json: UTF-8 without BOM, no duplicate keys, which JSON.parse
 * would resolve silently): POLICY_INVALID when it is not such JSON or not a valid policy.
 */
export function parseVerifierPolicyBytes(bytes: Uint8Array): VerifierPolicy {
  const json = parseStrictJsonBytes(bytes, { code: "POLICY_INVALID", what: "policy file" });
  return parseVerifierPolicy(json);
}

/**
 * The default policy: AMD roots only, DEFAULT_SNP_POLICY, fine-tunes and audits (not serving), 16 MiB, GPU evidence
 * verified when present but not required (DEFAULT_GPU_POLICY: both RIMs required per GPU). It pins no
 * measurement and no TCB floor, so it is open: `verifier run` refuses it; `bundle verify` warns.
 */
export function defaultVerifierPolicy(): VerifierPolicy {
  return parseVerifierPolicy({});
}

/**
 * The RFC 8785 canonical JSON text of a policy's normalised form: the exact text whose SHA-256 is its policyDigest.
 * The verifier serves it (GET /policies/:digest) so that a reader can check a record's policy by its digest alone.
 */
export function canonicalPolicyJson(policy: VerifierPolicy): string {
  const text = canonicalize(policy.json);
  if (text === undefined) throw new MalformedInputError("POLICY_INVALID", "policy cannot be canonicalised");
  return text;
}

/** Digests of parsed policies: every admitted record carries one, so it is computed once per policy. */
const digests = new WeakMap<object, string>();

/** Hex SHA-256 of the RFC 8785 canonical JSON of a policy (its normalised form when given a parsed policy). */
export function policyDigest(policy: VerifierPolicy | unknown): string {
  const parsed = typeof policy === "object" && policy !== null && "json" in policy && "snp" in policy;
  const known = parsed ? digests.get(policy) : undefined;
  if (known !== undefined) return known;
  const text = canonicalize(parsed ? (policy as VerifierPolicy).json : policy);
  if (text === undefined) throw new MalformedInputError("POLICY_INVALID", "policy cannot be canonicalised");
  const digest = createHash("sha256").update(text, "utf8").digest("hex");
  if (parsed) digests.set(policy, digest);
  return digest;
}
