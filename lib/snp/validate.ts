// Holds a verified report against a policy (go-sev-guest validate.Options). Plain, documented data: `undefined`
// means "not checked", except for allowDebug, allowMigrationAgent and vmpl, where it means the safe default
// (debug and a migration agent refused, VMPL 0). Every violation is collected before one PolicyViolationError is thrown.
import { timingSafeEqual } from "node:crypto";

import {
  MalformedInputError,
  PolicyError,
  PolicyViolationError,
  throwIfViolations,
  type ErrorCode,
} from "../errors.ts";
import { PRODUCTS, type FirmwareVersion, type Product, type TcbVersion } from "./parse.ts";
import type { VerifiedReport } from "./verify.ts";

/** A floor for each TCB component; components left out are not checked. */
export interface MinimumTcb {
  bootloader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  /** Turin only. */
  fmc?: number;
}

export interface SnpPolicy {
  /** false: refuse a guest whose policy allows debugging (GUEST_POLICY bit 19). Default false. */
  allowDebug?: boolean;
  /** false: refuse a guest whose policy allows a migration agent (GUEST_POLICY bit 18). Default false. */
  allowMigrationAgent?: boolean;
  /** The VMPL the report must come from. Default 0 (the most privileged level; a lower level can be a paravisor's guest). */
  vmpl?: number;
  /** The required SIGNATURE_ALGO. Default 1 (ECDSA P-384 with SHA-384). */
  signatureAlgo?: number;
  /** Per product, a floor for REPORTED_TCB (the TCB the VCEK certifies). */
  minimumTcb?: Partial<Record<Product, MinimumTcb>>;
  /** A floor for the firmware version (CURRENT and COMMITTED major.minor, then build). */
  minimumFirmware?: { major: number; minor: number; build?: number };
  /** A floor for GUEST_SVN. */
  minimumGuestSvn?: number;
  /** Allowed launch MEASUREMENTs (48 bytes each); the report's must be one of them. */
  measurements?: readonly Uint8Array[];
  /** The exact HOST_DATA (32 bytes). */
  hostData?: Uint8Array;
  /** Allowed ID_KEY_DIGESTs (48 bytes each). */
  idKeyDigests?: readonly Uint8Array[];
  /** Allowed AUTHOR_KEY_DIGESTs (48 bytes each); a report with AUTHOR_KEY_EN clear has an all-zero digest. */
  authorKeyDigests?: readonly Uint8Array[];
  /** The exact REPORT_DATA (64 bytes). Bundles bind a key instead; this is for one-off checks. */
  reportData?: Uint8Array;
}

/** Debug and migration agent refused, VMPL 0, ECDSA P-384. */
export const DEFAULT_SNP_POLICY: SnpPolicy = Object.freeze({
  allowDebug: false,
  allowMigrationAgent: false,
  vmpl: 0,
  signatureAlgo: 1,
});

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function tcbBelow(tcb: TcbVersion, floor: MinimumTcb): string[] {
  const low: string[] = [];
  for (const key of ["bootloader", "tee", "snp", "microcode", "fmc"] as const) {
    const min = floor[key];
    if (min !== undefined && (tcb[key] ?? 0) < min) low.push(`${key} ${tcb[key] ?? 0} < ${min}`);
  }
  return low;
}

function versionBelow(v: FirmwareVersion, min: { major: number; minor: number; build?: number }): boolean {
  if (v.major !== min.major) return v.major < min.major;
  if (v.minor !== min.minor) return v.minor < min.minor;
  return min.build !== undefined && v.build < min.build;
}

/** Throws PolicyViolationError (codes POLICY_*) listing every violation, or returns. */
export function validateReport(verified: VerifiedReport, policy: SnpPolicy): void {
  const r = verified.report;
  const violations: PolicyError[] = [];
  const add = (code: ErrorCode, message: string, details?: Record<string, unknown>) =>
    violations.push(new PolicyError(code, message, details === undefined ? {} : { details }));

  // Safe defaults: only an explicit `true` allows debug or a migration agent; only an explicit vmpl allows another
  // level than 0. An empty policy ({}) must not let a debuggable guest through.
  if (policy.allowDebug !== true && r.policy.debug) add("POLICY_DEBUG", "the guest policy allows debugging");
  if (policy.allowMigrationAgent !== true && r.policy.migrateMa) {
    add("POLICY_MIGRATION_AGENT", "the guest policy allows a migration agent");
  }
  const vmpl = policy.vmpl ?? 0;
  if (r.vmpl !== vmpl) {
    add("POLICY_VMPL", `VMPL is ${r.vmpl}, the policy requires ${vmpl}`, {
      expected: vmpl,
      actual: r.vmpl,
    });
  }
  if (policy.signatureAlgo !== undefined && r.signatureAlgo !== policy.signatureAlgo) {
    add("POLICY_SIGNATURE_ALGO", `signature algorithm ${r.signatureAlgo}, expected ${policy.signatureAlgo}`);
  }
  const floor = policy.minimumTcb?.[verified.product];
  if (floor !== undefined) {
    const low = tcbBelow(r.reportedTcb, floor);
    if (low.length > 0) add("POLICY_TCB", `REPORTED_TCB below the ${verified.product} floor: ${low.join(", ")}`);
  }
  if (policy.minimumFirmware !== undefined) {
    for (const [name, v] of [
      ["current", r.currentVersion],
      ["committed", r.committedVersion],
    ] as const) {
      if (versionBelow(v, policy.minimumFirmware)) {
        const m = policy.minimumFirmware;
        add(
          "POLICY_FIRMWARE",
          `${name} firmware ${v.major}.${v.minor} build ${v.build} is below ${m.major}.${m.minor} build ${m.build ?? 0}`,
        );
      }
    }
  }
  if (policy.minimumGuestSvn !== undefined && r.guestSvn < policy.minimumGuestSvn) {
    add("POLICY_GUEST_SVN", `GUEST_SVN ${r.guestSvn} < ${policy.minimumGuestSvn}`);
  }
  if (policy.measurements !== undefined && !policy.measurements.some((m) => sameBytes(m, r.measurement))) {
    add("POLICY_MEASUREMENT", `MEASUREMENT ${hex(r.measurement)} is not allowed`, { actual: hex(r.measurement) });
  }
  if (policy.hostData !== undefined && !sameBytes(policy.hostData, r.hostData)) {
    add("POLICY_HOST_DATA", `HOST_DATA ${hex(r.hostData)}, expected ${hex(policy.hostData)}`);
  }
  if (policy.reportData !== undefined && !sameBytes(policy.reportData, r.reportData)) {
    add("POLICY_REPORT_DATA", `REPORT_DATA ${hex(r.reportData)}, expected ${hex(policy.reportData)}`);
  }
  if (policy.idKeyDigests !== undefined && !policy.idKeyDigests.some((d) => sameBytes(d, r.idKeyDigest))) {
    add("POLICY_ID_KEY", `ID_KEY_DIGEST ${hex(r.idKeyDigest)} is not allowed`);
  }
  if (policy.authorKeyDigests !== undefined && !policy.authorKeyDigests.some((d) => sameBytes(d, r.authorKeyDigest))) {
    add("POLICY_ID_KEY", `AUTHOR_KEY_DIGEST ${hex(r.authorKeyDigest)} is not allowed`);
  }
  throwIfViolations(violations);
}

// ---- JSON form: the same fields, byte values as lower-case hex strings ----

function bytesFrom(value: unknown, length: number, path: string, errors: string[]): Uint8Array | undefined {
  if (typeof value !== "string" || !/^[0-9a-fA-F]*$/.test(value) || value.length !== length * 2) {
    errors.push(`${path}: expected ${length * 2} hex digits`);
    return undefined;
  }
  return Uint8Array.from(Buffer.from(value, "hex"));
}

function listFrom(value: unknown, length: number, path: string, errors: string[]): Uint8Array[] | undefined {
  if (!Array.isArray(value)) {
    errors.push(`${path}: expected an array of hex strings`);
    return undefined;
  }
  const out: Uint8Array[] = [];
  value.forEach((v, i) => {
    const b = bytesFrom(v, length, `${path}[${i}]`, errors);
    if (b !== undefined) out.push(b);
  });
  return out;
}

function byteNumber(value: unknown, path: string, errors: string[], max = 255): number | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    errors.push(`${path}: expected an integer 0..${max}`);
    return undefined;
  }
  return value;
}

const POLICY_KEYS = new Set([
  "allowDebug",
  "allowMigrationAgent",
  "vmpl",
  "signatureAlgo",
  "minimumTcb",
  "minimumFirmware",
  "minimumGuestSvn",
  "measurements",
  "hostData",
  "idKeyDigests",
  "authorKeyDigests",
  "reportData",
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads the JSON form of an SNP policy. Omitted fields take DEFAULT_SNP_POLICY's value. `null` is the same as leaving
 * a field out, with one difference: `"signatureAlgo": null` turns the default signature-algorithm check off. It does
 * not turn off the debug, migration-agent or VMPL checks: validateReport treats an absent allowDebug /
 * allowMigrationAgent as false and an absent vmpl as 0, so those refusals stay on (only `true` or another VMPL relaxes
 * them). Unknown keys and bad values are POLICY_INVALID of kind malformed (a bad file, exit 2; all listed in one error).
 */
export function parseSnpPolicy(json: unknown): SnpPolicy {
  const errors: string[] = [];
  if (json === undefined) return { ...DEFAULT_SNP_POLICY };
  if (!isRecord(json)) throw new MalformedInputError("POLICY_INVALID", "the SNP policy must be a JSON object");
  const policy: SnpPolicy = { ...DEFAULT_SNP_POLICY };
  const p = policy as Record<string, unknown>;
  for (const [key, value] of Object.entries(json)) {
    if (!POLICY_KEYS.has(key)) {
      errors.push(`snp.${key}: unknown field`);
      continue;
    }
    if (value === null) {
      delete p[key];
      continue;
    }
    const path = `snp.${key}`;
    switch (key) {
      case "allowDebug":
      case "allowMigrationAgent":
        if (typeof value !== "boolean") errors.push(`${path}: expected a boolean`);
        else p[key] = value;
        break;
      case "vmpl":
        p[key] = byteNumber(value, path, errors, 3);
        break;
      case "signatureAlgo":
      case "minimumGuestSvn":
        p[key] = byteNumber(value, path, errors, 0xffffffff);
        break;
      case "measurements":
        p[key] = listFrom(value, 48, path, errors);
        break;
      case "idKeyDigests":
      case "authorKeyDigests":
        p[key] = listFrom(value, 48, path, errors);
        break;
      case "hostData":
        p[key] = bytesFrom(value, 32, path, errors);
        break;
      case "reportData":
        p[key] = bytesFrom(value, 64, path, errors);
        break;
      case "minimumFirmware": {
        if (!isRecord(value)) {
          errors.push(`${path}: expected {major, minor, build?}`);
          break;
        }
        const major = byteNumber(value["major"], `${path}.major`, errors);
        const minor = byteNumber(value["minor"], `${path}.minor`, errors);
        const fw: { major: number; minor: number; build?: number } = { major: major ?? 0, minor: minor ?? 0 };
        if (value["build"] !== undefined) {
          const build = byteNumber(value["build"], `${path}.build`, errors);
          if (build !== undefined) fw.build = build;
        }
        for (const k of Object.keys(value))
          if (!["major", "minor", "build"].includes(k)) errors.push(`${path}.${k}: unknown field`);
        p[key] = fw;
        break;
      }
      case "minimumTcb": {
        if (!isRecord(value)) {
          errors.push(`${path}: expected {Milan?, Genoa?, Turin?}`);
          break;
        }
        const out: Partial<Record<Product, MinimumTcb>> = {};
        for (const [product, floor] of Object.entries(value)) {
          if (!PRODUCTS.includes(product as Product) || !isRecord(floor)) {
            errors.push(`${path}.${product}: expected a product name and an object`);
            continue;
          }
          const f: MinimumTcb = {};
          for (const [k, v] of Object.entries(floor)) {
            if (!["bootloader", "tee", "snp", "microcode", "fmc"].includes(k)) {
              errors.push(`${path}.${product}.${k}: unknown field`);
              continue;
            }
            const n = byteNumber(v, `${path}.${product}.${k}`, errors);
            if (n !== undefined) f[k as keyof MinimumTcb] = n;
          }
          out[product as Product] = f;
        }
        p[key] = out;
        break;
      }
    }
    if (p[key] === undefined) delete p[key];
  }
  if (errors.length > 0) {
    throw new PolicyViolationError(errors.map((e) => new MalformedInputError("POLICY_INVALID", e)));
  }
  return policy;
}

/** The JSON form of a policy (the inverse of parseSnpPolicy for every set field). */
export function snpPolicyToJson(policy: SnpPolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(policy)) {
    if (value === undefined) continue;
    if (value instanceof Uint8Array) out[key] = hex(value);
    else if (Array.isArray(value)) out[key] = value.map((v: Uint8Array) => hex(v));
    else if (isRecord(value)) out[key] = JSON.parse(JSON.stringify(value)) as unknown;
    else out[key] = value;
  }
  return out;
}
