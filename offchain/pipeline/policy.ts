// The verifier policy file: plain JSON, schema-checked here, digested with RFC 8785 (JCS) so that every record it
// admits carries the SHA-256 of exactly what was enforced. The parsed form keeps its normalised JSON (defaults
// filled in), and that normalised JSON is what the digest covers: two files that mean the same give the same digest.
import { createHash } from "node:crypto";

import canonicalize from "canonicalize";

import { MalformedInputError, PolicyViolationError, type ProvenantError } from "../../lib/errors.ts";
import { DEFAULT_SNP_POLICY, parseSnpPolicy, snpPolicyToJson, type SnpPolicy } from "../../lib/snp/index.ts";

export type AcceptedKind = "finetune" | "eval";

export interface VerifierPolicy {
  /** SEV-SNP policy (lib/snp): debug, VMPL, TCB floors, measurements, …; DEFAULT_SNP_POLICY when omitted. */
  snp: SnpPolicy;
  /** Extra ARK fingerprints (hex SHA-256 of the DER) to trust: development roots such as the simulator's only. */
  trustedRoots: string[];
  /** Refuse bundles that carry no GPU evidence (POLICY_GPU_EVIDENCE). GPU evidence is not verified cryptographically. */
  requireGpuEvidence: boolean;
  /** Largest bundle file accepted, in bytes (at most 16 MiB, the format's own limit). */
  maxBundleBytes: number;
  /** Which manifests may be recorded: "finetune" (SLSA provenance) and/or "eval" (audit). */
  acceptedKinds: AcceptedKind[];
  /** Most DSSE envelopes a bundle may hold (BUNDLE_TOO_COMPLEX above): bounds verification before it is paid for. */
  maxEnvelopes: number;
  /** Most signatures one envelope may hold (BUNDLE_TOO_COMPLEX above): each costs up to two P-384 verifications. */
  maxSignaturesPerEnvelope: number;
  /** The normalised JSON form: what `policyDigest` hashes. */
  json: VerifierPolicyJson;
}

export interface VerifierPolicyJson {
  snp: unknown;
  trustedRoots: string[];
  requireGpuEvidence: boolean;
  maxBundleBytes: number;
  acceptedKinds: AcceptedKind[];
  maxEnvelopes: number;
  maxSignaturesPerEnvelope: number;
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
  "requireGpuEvidence",
  "maxBundleBytes",
  "acceptedKinds",
  "maxEnvelopes",
  "maxSignaturesPerEnvelope",
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

  let requireGpuEvidence = false;
  if (input.requireGpuEvidence !== undefined) {
    if (typeof input.requireGpuEvidence !== "boolean")
      problems.push(invalid("requireGpuEvidence", "expected a boolean"));
    else requireGpuEvidence = input.requireGpuEvidence;
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
      v.some((k) => k !== "finetune" && k !== "eval") ||
      new Set(v).size !== v.length
    )
      problems.push(invalid("acceptedKinds", 'expected a non-empty list of "finetune" and/or "eval"'));
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

  if (problems.length > 0) throw new PolicyViolationError(problems);
  const normalised: VerifierPolicyJson = {
    snp: snpPolicyToJson(snp),
    trustedRoots: [...new Set(trustedRoots)].sort(),
    requireGpuEvidence,
    maxBundleBytes,
    acceptedKinds,
    maxEnvelopes,
    maxSignaturesPerEnvelope,
  };
  return {
    snp,
    trustedRoots: normalised.trustedRoots,
    requireGpuEvidence,
    maxBundleBytes,
    acceptedKinds,
    maxEnvelopes,
    maxSignaturesPerEnvelope,
    json: normalised,
  };
}

/** Reads a policy file's bytes: POLICY_INVALID when it is not JSON or not a valid policy. */
export function parseVerifierPolicyBytes(bytes: Uint8Array): VerifierPolicy {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new MalformedInputError("POLICY_INVALID", "policy file is not JSON", { cause: error });
  }
  return parseVerifierPolicy(json);
}

/** The default policy: AMD roots only, DEFAULT_SNP_POLICY, both kinds, 16 MiB, no GPU evidence required. */
export function defaultVerifierPolicy(): VerifierPolicy {
  return parseVerifierPolicy({});
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
