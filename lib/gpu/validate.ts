// Holds verified GPUs against the GPU policy (the verifier policy's "gpu" section). Plain, documented data: an
// omitted field means "not checked", except `requireRims`, whose safe default is true (measurements are only
// appraised against signed RIMs). Every violation is collected before one PolicyViolationError is thrown.
import {
  MalformedInputError,
  PolicyError,
  PolicyViolationError,
  throwIfViolations,
  type ErrorCode,
} from "../errors.ts";
import { GPU_ARCHS, type GpuArch } from "./cert.ts";
import type { VerifiedGpu } from "./verify.ts";

export interface GpuPolicy {
  /** true: a bundle must carry GPU evidence (at least one entry), else POLICY_GPU. Default false. */
  required?: boolean;
  /** The architectures accepted ("hopper", "blackwell"); omitted: both. Another is POLICY_GPU. */
  archs?: readonly GpuArch[];
  /** The lowest accepted driver version, dotted decimal ("550.90.07"), compared number by number; omitted: any. */
  minDriverVersion?: string;
  /**
   * true: each GPU must come with a verified driver RIM and a verified VBIOS RIM, so that every active golden
   * measurement was compared (GPU_RIM_MISSING otherwise). Default true.
   */
  requireRims?: boolean;
  /**
   * true: every certificate of the device chain (below the leaf, which the GPU makes itself) and of each RIM chain,
   * up to but not including the root, must have a good, current OCSP response in the bundle (POLICY_GPU). Default false.
   */
  requireOcsp?: boolean;
  /**
   * SHA-256 fingerprints (hex) of development roots trusted besides NVIDIA's pinned device and RIM roots: the GPU
   * simulator's. Never list a production root here; NVIDIA's are pinned in code.
   */
  trustedRoots?: readonly string[];
}

export const DEFAULT_GPU_POLICY: GpuPolicy = Object.freeze({
  required: false,
  requireRims: true,
  requireOcsp: false,
  trustedRoots: Object.freeze([]) as readonly string[],
});

const DRIVER_VERSION = /^\d{1,6}(\.\d{1,6}){0,3}$/;

/** -1, 0, 1 comparing dotted decimal versions number by number ("550.144.03" > "550.90.07"); missing parts are 0. */
export function compareDriverVersions(a: string, b: string): number {
  const pa = a.split(".").map((p) => Number.parseInt(p, 10));
  const pb = b.split(".").map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? -1 : 1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Throws PolicyViolationError (POLICY_GPU, GPU_RIM_MISSING) listing every violation of one GPU, or returns. */
export function validateGpu(verified: VerifiedGpu, policy: GpuPolicy = DEFAULT_GPU_POLICY): void {
  throwIfViolations(gpuViolations(verified, policy, ""));
}

/**
 * The whole GPU section for a bundle: `required` (at least one GPU) and every GPU held against the policy.
 * Throws PolicyViolationError listing every violation, or returns.
 */
export function validateGpus(verified: readonly VerifiedGpu[], policy: GpuPolicy = DEFAULT_GPU_POLICY): void {
  const violations: PolicyError[] = [];
  if (policy.required === true && verified.length === 0) {
    violations.push(new PolicyError("POLICY_GPU", "the policy requires GPU evidence and the bundle carries none"));
  }
  verified.forEach((v, i) => violations.push(...gpuViolations(v, policy, verified.length > 1 ? `GPU ${i}: ` : "")));
  throwIfViolations(violations);
}

function gpuViolations(v: VerifiedGpu, policy: GpuPolicy, prefix: string): PolicyError[] {
  const out: PolicyError[] = [];
  const add = (code: ErrorCode, message: string, details?: Record<string, unknown>) =>
    out.push(new PolicyError(code, `${prefix}${message}`, details === undefined ? {} : { details }));
  if (policy.archs !== undefined && !policy.archs.includes(v.arch)) {
    add("POLICY_GPU", `architecture ${v.arch} is not one of ${policy.archs.join(", ")}`, { arch: v.arch });
  }
  if (policy.minDriverVersion !== undefined && compareDriverVersions(v.driverVersion, policy.minDriverVersion) < 0) {
    add("POLICY_GPU", `driver ${v.driverVersion} is older than ${policy.minDriverVersion}`, {
      driverVersion: v.driverVersion,
      minDriverVersion: policy.minDriverVersion,
    });
  }
  if ((policy.requireRims ?? true) && (v.rims.driver === null || v.rims.vbios === null)) {
    const missing = [v.rims.driver === null ? "driver" : "", v.rims.vbios === null ? "VBIOS" : ""].filter(
      (s) => s !== "",
    );
    add(
      "GPU_RIM_MISSING",
      `no verified ${missing.join(" or ")} RIM for driver ${v.driverVersion} / VBIOS ${v.vbiosVersion}`,
      {
        missing,
      },
    );
  }
  if (policy.requireOcsp === true && v.ocsp.missing.length > 0) {
    add("POLICY_GPU", `no OCSP response for ${v.ocsp.missing.join("; ")}`, { missing: v.ocsp.missing });
  }
  return out;
}

// ---- JSON form: the verifier policy's "gpu" section ----

const KEYS = new Set(["required", "archs", "minDriverVersion", "requireRims", "requireOcsp", "trustedRoots"]);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads the JSON form of the GPU policy. Omitted fields take DEFAULT_GPU_POLICY's value; `null` turns `archs` or
 * `minDriverVersion` off (and resets the others to their default). Unknown keys and bad values are POLICY_INVALID of
 * kind malformed (a bad file: exit 2, as for every policy file), all listed in one error.
 */
export function parseGpuPolicy(json: unknown): GpuPolicy {
  if (json === undefined || json === null) return { ...DEFAULT_GPU_POLICY, trustedRoots: [] };
  if (!isRecord(json)) throw new MalformedInputError("POLICY_INVALID", "the GPU policy must be a JSON object");
  const errors: string[] = [];
  const policy: GpuPolicy = { ...DEFAULT_GPU_POLICY, trustedRoots: [] };
  for (const [key, value] of Object.entries(json)) {
    const path = `gpu.${key}`;
    if (!KEYS.has(key)) {
      errors.push(`${path}: unknown field`);
      continue;
    }
    if (value === null) continue;
    switch (key) {
      case "required":
      case "requireRims":
      case "requireOcsp":
        if (typeof value !== "boolean") errors.push(`${path}: expected a boolean`);
        else policy[key] = value;
        break;
      case "archs":
        if (!Array.isArray(value) || value.length === 0 || !value.every((a) => GPU_ARCHS.includes(a as GpuArch))) {
          errors.push(`${path}: expected a non-empty array of ${GPU_ARCHS.map((a) => JSON.stringify(a)).join(", ")}`);
        } else policy.archs = [...new Set(value as GpuArch[])].sort();
        break;
      case "minDriverVersion":
        if (typeof value !== "string" || !DRIVER_VERSION.test(value)) {
          errors.push(`${path}: expected a dotted decimal version such as "550.90.07"`);
        } else policy.minDriverVersion = value;
        break;
      case "trustedRoots":
        if (!Array.isArray(value) || !value.every((f) => typeof f === "string" && /^[0-9a-fA-F]{64}$/.test(f))) {
          errors.push(`${path}: expected an array of SHA-256 fingerprints (64 hex digits)`);
        } else policy.trustedRoots = [...new Set((value as string[]).map((f) => f.toLowerCase()))].sort();
        break;
    }
  }
  if (errors.length > 0)
    throw new PolicyViolationError(errors.map((e) => new MalformedInputError("POLICY_INVALID", e)));
  return policy;
}

/**
 * The normalised JSON form that goes into the policy digest: every field present, in a fixed order, defaults filled
 * in, `null` for "not checked", arrays sorted and de-duplicated, fingerprints lower case. parseGpuPolicy reads it back
 * to an equal policy.
 */
export function gpuPolicyToJson(policy: GpuPolicy): {
  required: boolean;
  archs: GpuArch[] | null;
  minDriverVersion: string | null;
  requireRims: boolean;
  requireOcsp: boolean;
  trustedRoots: string[];
} {
  return {
    required: policy.required ?? false,
    archs: policy.archs === undefined ? null : [...new Set(policy.archs)].sort(),
    minDriverVersion: policy.minDriverVersion ?? null,
    requireRims: policy.requireRims ?? true,
    requireOcsp: policy.requireOcsp ?? false,
    trustedRoots: [...new Set((policy.trustedRoots ?? []).map((f) => f.toLowerCase()))].sort(),
  };
}
