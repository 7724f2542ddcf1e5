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
  /**
   * Per product, a floor for REPORTED_TCB (the TCB the VCEK certifies). When set, its keys are the products the
   * policy accepts: a report of any other product is refused (POLICY_PRODUCT).
   */
  minimumTcb?: Partial<Record<Product, MinimumTcb>>;
  /** A floor for the firmware version (CURRENT and COMMITTED major.minor, then build). */
  minimumFirmware?: { major: number; minor: number; build?: number };
  /** A floor for GUEST_SVN. */
  minimumGuestSvn?: number;
  /** Allowed launch MEASUREMENTs (48 bytes each); the report's must be one of them. */
  measurements?: readonly Uint8Array[];
  /**
   * The names a policy file gives its measurements (`{"name", "value"}` entries), by lower-case hex value: what a
   * reader is shown next to the value (e.g. "provenant-job 0.2.0 on OVMF 2025.02"). Display only, never checked.
   */
  measurementNames?: Readonly<Record<string, string>>;
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
  if (policy.minimumTcb !== undefined && floor === undefined) {
    const accepted = Object.keys(policy.minimumTcb).join(", ");
    add(
      "POLICY_PRODUCT",
      `the report is ${verified.product}'s; this policy accepts ${accepted} only (the products its minimumTcb names)`,
      { expected: Object.keys(policy.minimumTcb), actual: verified.product },
    );
  }
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

/**
 * A value the shipped template (offchain/rofl/policy.json) leaves for the operator to fill, such as
 * "<96 hex: provenant measure --policy-snippet>": never a valid pin, and said so in the error.
 */
function placeholder(value: unknown): string {
  return typeof value === "string" && value.startsWith("<") && value.endsWith(">")
    ? ` (still the template placeholder ${value}: fill it in, see docs/verifier.md)`
    : "";
}

function bytesFrom(value: unknown, length: number, path: string, errors: string[]): Uint8Array | undefined {
  if (typeof value !== "string" || !/^[0-9a-fA-F]*$/.test(value) || value.length !== length * 2) {
    errors.push(`${path}: expected ${length * 2} hex digits${placeholder(value)}`);
    return undefined;
  }
  return Uint8Array.from(Buffer.from(value, "hex"));
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return true;
  }
  return false;
}

/** The longest measurement name: a label for people, not a document. */
export const MAX_MEASUREMENT_NAME = 200;

/**
 * Whether `name` may label a pinned value (a measurement here, a verifier policy's job-code digest): 1 to
 * MAX_MEASUREMENT_NAME characters, not all blank, no control character (it is shown to people next to the value it
 * labels), and not a template placeholder `<…>`.
 */
export function isPinName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.trim() !== "" &&
    name.length <= MAX_MEASUREMENT_NAME &&
    !hasControlCharacter(name) &&
    placeholder(name) === ""
  );
}

/**
 * `measurements`: each entry a 96-hex string or `{"name", "value"}` (what `provenant measure --policy-snippet`
 * prints). Sorted by value, no value twice, at least one entry (an empty allow-list would refuse every image: leave
 * the field out instead, which a verifier refuses to run with unless the policy says development).
 */
function measurementsFrom(
  value: unknown,
  path: string,
  errors: string[],
): { values: Uint8Array[]; names: Record<string, string> } | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    errors.push(`${path}: expected a non-empty array of 96-hex strings or {"name", "value"} objects`);
    return undefined;
  }
  const byHex = new Map<string, Uint8Array>();
  const names: Record<string, string> = {};
  value.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    let raw: unknown = entry;
    let name: string | undefined;
    if (isRecord(entry)) {
      for (const k of Object.keys(entry)) if (k !== "name" && k !== "value") errors.push(`${at}.${k}: unknown field`);
      raw = entry["value"];
      const n = entry["name"];
      if (n !== undefined) {
        if (!isPinName(n))
          errors.push(`${at}.name: expected 1 to ${MAX_MEASUREMENT_NAME} printable characters${placeholder(n)}`);
        else name = n;
      }
    }
    const bytes = bytesFrom(raw, 48, isRecord(entry) ? `${at}.value` : at, errors);
    if (bytes === undefined) return;
    const key = hex(bytes);
    if (byHex.has(key)) errors.push(`${at}: measurement ${key} is listed twice`);
    byHex.set(key, bytes);
    if (name !== undefined) names[key] = name;
  });
  const values = [...byHex.keys()].sort().map((k) => byHex.get(k)!);
  return { values, names };
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
    errors.push(`${path}: expected an integer 0..${max}${placeholder(value)}`);
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
      case "measurements": {
        const read = measurementsFrom(value, path, errors);
        p[key] = read?.values;
        if (read !== undefined && Object.keys(read.names).length > 0) policy.measurementNames = read.names;
        break;
      }
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
        // Its keys are the products the policy accepts: none would refuse every report.
        if (Object.keys(value).length === 0) errors.push(`${path}: expected at least one product`);
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

/**
 * The JSON form of a policy (the inverse of parseSnpPolicy for every set field). Measurements take one canonical
 * form whichever way the file wrote them: `{"name", "value"}` objects sorted by value, `name` only where one was
 * given, so that the policy digest covers the names people are shown.
 */
export function snpPolicyToJson(policy: SnpPolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(policy)) {
    if (value === undefined || key === "measurementNames") continue;
    if (key === "measurements") {
      out[key] = measurementEntries(policy);
      continue;
    }
    if (value instanceof Uint8Array) out[key] = hex(value);
    else if (Array.isArray(value)) out[key] = value.map((v: Uint8Array) => hex(v));
    else if (isRecord(value)) out[key] = JSON.parse(JSON.stringify(value)) as unknown;
    else out[key] = value;
  }
  return out;
}

/** The policy's measurements as `{name?, value}` (lower-case hex), sorted by value: for display and the JSON form. */
export function measurementEntries(policy: SnpPolicy): { name?: string; value: string }[] {
  const values = (policy.measurements ?? []).map(hex).sort();
  return [...new Set(values)].map((value) => {
    const name = policy.measurementNames?.[value];
    return name === undefined ? { value } : { name, value };
  });
}

/** The TCB components a product's floor must set to pin it (Turin adds the FMC, ABI 56860 Table 3). */
export function tcbComponents(product: Product): readonly (keyof MinimumTcb)[] {
  return product === "Turin"
    ? ["fmc", "bootloader", "tee", "snp", "microcode"]
    : ["bootloader", "tee", "snp", "microcode"];
}

/**
 * Why an SNP policy leaves the door open (DESIGN §11): no measurement allow-list, no TCB floor, a floor that leaves
 * a component of its product unset, or a guest the host can look into. An empty list means it pins what ran: every
 * report must come from an allowed launch image, of a product it names, at or above that product's whole floor.
 */
export function snpPolicyGaps(policy: SnpPolicy): { field: string; message: string }[] {
  const gaps: { field: string; message: string }[] = [];
  // A debuggable guest's memory can be read and written by the hypervisor after launch (SNP_DBG_DECRYPT and
  // SNP_DBG_ENCRYPT, AMD SEV-SNP ABI 56860), and a migration agent can export it: the measurement then says nothing.
  if (policy.allowDebug === true)
    gaps.push({ field: "snp.allowDebug", message: "debuggable guests are accepted: the host can rewrite what runs" });
  if (policy.allowMigrationAgent === true)
    gaps.push({
      field: "snp.allowMigrationAgent",
      message: "guests with a migration agent are accepted: an unmeasured agent can read and move their memory",
    });
  if (policy.measurements === undefined || policy.measurements.length === 0)
    gaps.push({ field: "snp.measurements", message: "no launch measurement is pinned: any guest image is accepted" });
  const floors = policy.minimumTcb;
  if (floors === undefined || Object.keys(floors).length === 0)
    gaps.push({
      field: "snp.minimumTcb",
      message: "no TCB floor is set: reports of any product and firmware are accepted",
    });
  else
    for (const [product, floor] of Object.entries(floors) as [Product, MinimumTcb][]) {
      const missing = tcbComponents(product).filter((k) => floor[k] === undefined);
      if (missing.length > 0)
        gaps.push({
          field: `snp.minimumTcb.${product}`,
          message: `the ${product} floor leaves ${missing.join(", ")} unset`,
        });
    }
  return gaps;
}
