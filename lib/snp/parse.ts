// Parses the 1184-byte SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP Firmware ABI 56860, Table 23) into a typed report.
// Parsing checks the size, the version and every must-be-zero range, and nothing else: no cryptography, no policy.
// The raw bytes are kept so that the signature is always checked over exactly what the firmware signed.
// No node:* imports and no Buffer: the explorer page (web/) parses reports with this module too.
import { toHex } from "../encoding/index.ts";
import { MalformedInputError } from "../errors.ts";
import { productFromCpuid, type Product } from "./product.ts";

export { PRODUCTS, productFromCpuid, type Product } from "./product.ts";

export const REPORT_SIZE = 0x4a0;
/** The signed part of the report: bytes [0, 0x2A0). */
export const SIGNED_SIZE = 0x2a0;
export const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];

/** One TCB_VERSION, decoded per product (56860 §2.2 TCB_VERSION; Turin moved the fields and added FMC). */
export interface TcbVersion {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin only: the FMC security patch level. */
  fmc?: number;
  /** The 64-bit value as read little-endian, the form the registry stores. */
  raw: bigint;
}

/** GUEST_POLICY (56860 §4.3, Table 9). */
export interface GuestPolicy {
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
  raw: bigint;
}

/** PLATFORM_INFO (56860 Table 24). */
export interface PlatformInfo {
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
  raw: bigint;
}

export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface AttestationReport {
  version: number;
  guestSvn: number;
  policy: GuestPolicy;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: TcbVersion;
  platformInfo: PlatformInfo;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: "vcek" | "vlek" | "none";
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: TcbVersion;
  cpuid?: { family: number; model: number; stepping: number };
  productFromCpuid?: Product;
  /** The product whose TCB layout was used to decode the TCB fields. */
  tcbProduct: Product;
  chipId: Uint8Array;
  committedTcb: TcbVersion;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchTcb: TcbVersion;
  launchMitigationVector?: bigint;
  currentMitigationVector?: bigint;
  /** r and s as 48-byte big-endian integers (converted from the 72-byte little-endian fields). */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
  /** The 1184 bytes as received. */
  raw: Uint8Array;
}

export interface ParseOptions {
  /** Decode the TCB fields with this product's layout (v2 reports carry no CPUID; the certificate says). */
  product?: Product;
}

function malformed(message: string, details?: Record<string, unknown>): never {
  throw new MalformedInputError("SNP_MALFORMED", message, details === undefined ? {} : { details });
}

function u64(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true);
}

function u32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0, true);
}

function copy(bytes: Uint8Array, offset: number, length: number): Uint8Array {
  return bytes.slice(offset, offset + length);
}

function requireZero(bytes: Uint8Array, start: number, end: number, what: string): void {
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0) {
      malformed(`${what}: byte 0x${i.toString(16)} must be zero, is 0x${bytes[i]!.toString(16)}`, { offset: i });
    }
  }
}

/** Decodes a TCB_VERSION for a product. Milan/Genoa: BL, TEE, 4 reserved, SNP, ucode; Turin: FMC, BL, TEE, SNP, 3 reserved, ucode. */
export function decodeTcb(raw: bigint, product: Product): TcbVersion {
  const byte = (i: number) => Number((raw >> BigInt(8 * i)) & 0xffn);
  if (product === "Turin") {
    return { fmc: byte(0), bootloader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7), raw };
  }
  return { bootloader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7), raw };
}

/** The inverse of decodeTcb (used by the simulator and by tests). */
export function encodeTcb(tcb: Omit<TcbVersion, "raw">, product: Product): bigint {
  const bytes = new Array<number>(8).fill(0);
  if (product === "Turin") {
    bytes[0] = tcb.fmc ?? 0;
    bytes[1] = tcb.bootloader;
    bytes[2] = tcb.tee;
    bytes[3] = tcb.snp;
  } else {
    bytes[0] = tcb.bootloader;
    bytes[1] = tcb.tee;
    bytes[6] = tcb.snp;
  }
  bytes[7] = tcb.microcode;
  let raw = 0n;
  for (let i = 7; i >= 0; i--) raw = (raw << 8n) | BigInt(bytes[i]! & 0xff);
  return raw;
}

export function decodePolicy(raw: bigint): GuestPolicy {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
    raw,
  };
}

function decodePlatformInfo(raw: bigint): PlatformInfo {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    smtEnabled: bit(0),
    tsmeEnabled: bit(1),
    eccEnabled: bit(2),
    raplDisabled: bit(3),
    ciphertextHidingEnabled: bit(4),
    aliasCheckComplete: bit(5),
    tioEnabled: bit(7),
    raw,
  };
}

/** 72-byte little-endian component → 48-byte big-endian; the upper 24 bytes are reported, not dropped. */
function componentToBigEndian(bytes: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(48);
  for (let i = 0; i < 48; i++) out[i] = bytes[offset + 47 - i]!;
  return out;
}

/** Parses a report. Throws MalformedInputError SNP_MALFORMED or SNP_UNSUPPORTED_VERSION. */
export function parseReport(bytes: Uint8Array, options: ParseOptions = {}): AttestationReport {
  if (!(bytes instanceof Uint8Array)) malformed("the report is not a byte array");
  if (bytes.length !== REPORT_SIZE) {
    malformed(`a report is ${REPORT_SIZE} bytes, got ${bytes.length}`, { expected: REPORT_SIZE, actual: bytes.length });
  }
  const raw = Uint8Array.from(bytes);
  const version = u32(raw, 0x00);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new MalformedInputError("SNP_UNSUPPORTED_VERSION", `report version ${version} is not supported (2-5)`, {
      details: { version },
    });
  }

  const policyRaw = u64(raw, 0x08);
  // 56860 Table 9: bit 17 is reserved and must be one; firmware refuses to launch a guest otherwise.
  if (((policyRaw >> 17n) & 1n) !== 1n)
    malformed("guest policy bit 17 must be one", { policy: policyRaw.toString(16) });

  const signerInfo = u32(raw, 0x48);
  if (signerInfo >>> 5 !== 0) malformed("reserved bits 5-31 at 0x48 must be zero", { value: signerInfo });
  const keySel = (signerInfo >>> 2) & 7;
  let signingKey: AttestationReport["signingKey"];
  if (keySel === 0) signingKey = "vcek";
  else if (keySel === 1) signingKey = "vlek";
  else if (keySel === 7) signingKey = "none";
  else malformed(`SIGNING_KEY ${keySel} is reserved`, { signingKey: keySel });

  requireZero(raw, 0x4c, 0x50, "reserved after signer info");
  let cpuid: AttestationReport["cpuid"];
  let fromCpuid: Product | undefined;
  if (version >= 3) {
    cpuid = { family: raw[0x188]!, model: raw[0x189]!, stepping: raw[0x18a]! };
    fromCpuid = productFromCpuid(cpuid.family, cpuid.model);
    requireZero(raw, 0x18b, 0x1a0, "reserved after CPUID");
  } else {
    requireZero(raw, 0x188, 0x1a0, "reserved before CHIP_ID (v2)");
  }
  requireZero(raw, 0x1eb, 0x1ec, "reserved after CURRENT version");
  requireZero(raw, 0x1ef, 0x1f0, "reserved after COMMITTED version");
  // v5 (56860 rev 1.58) adds LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR at 0x1F8/0x200. Turin firmware that emits
  // v4 reports already fills them, so v4 is read like v5 there; v2 and v3 keep the range reserved.
  requireZero(raw, version >= 4 ? 0x208 : 0x1f8, SIGNED_SIZE, "reserved before the signature");
  requireZero(raw, 0x330, REPORT_SIZE, "reserved tail of the signature");

  const tcbProduct: Product = options.product ?? fromCpuid ?? "Milan";
  const tcb = (offset: number) => decodeTcb(u64(raw, offset), tcbProduct);
  const report: AttestationReport = {
    version,
    guestSvn: u32(raw, 0x04),
    policy: decodePolicy(policyRaw),
    familyId: copy(raw, 0x10, 16),
    imageId: copy(raw, 0x20, 16),
    vmpl: u32(raw, 0x30),
    signatureAlgo: u32(raw, 0x34),
    currentTcb: tcb(0x38),
    platformInfo: decodePlatformInfo(u64(raw, 0x40)),
    authorKeyEn: (signerInfo & 1) === 1,
    maskChipKey: (signerInfo & 2) === 2,
    signingKey,
    reportData: copy(raw, 0x50, 64),
    measurement: copy(raw, 0x90, 48),
    hostData: copy(raw, 0xc0, 32),
    idKeyDigest: copy(raw, 0xe0, 48),
    authorKeyDigest: copy(raw, 0x110, 48),
    reportId: copy(raw, 0x140, 32),
    reportIdMa: copy(raw, 0x160, 32),
    reportedTcb: tcb(0x180),
    tcbProduct,
    chipId: copy(raw, 0x1a0, 64),
    committedTcb: tcb(0x1e0),
    currentVersion: { build: raw[0x1e8]!, minor: raw[0x1e9]!, major: raw[0x1ea]! },
    committedVersion: { build: raw[0x1ec]!, minor: raw[0x1ed]!, major: raw[0x1ee]! },
    launchTcb: tcb(0x1f0),
    signatureR: componentToBigEndian(raw, 0x2a0),
    signatureS: componentToBigEndian(raw, 0x2e8),
    raw,
  };
  if (cpuid !== undefined) report.cpuid = cpuid;
  if (fromCpuid !== undefined) report.productFromCpuid = fromCpuid;
  if (version >= 4) {
    report.launchMitigationVector = u64(raw, 0x1f8);
    report.currentMitigationVector = u64(raw, 0x200);
  }
  return report;
}

/** Re-decodes the TCB fields with another product's layout (v2 reports, where only the certificate names it). */
export function withTcbProduct(report: AttestationReport, product: Product): AttestationReport {
  if (report.tcbProduct === product) return report;
  return {
    ...report,
    tcbProduct: product,
    currentTcb: decodeTcb(report.currentTcb.raw, product),
    reportedTcb: decodeTcb(report.reportedTcb.raw, product),
    committedTcb: decodeTcb(report.committedTcb.raw, product),
    launchTcb: decodeTcb(report.launchTcb.raw, product),
  };
}

const hex = toHex;
const tcbJson = (t: TcbVersion) => ({ ...t, raw: t.raw.toString(16).padStart(16, "0") });

/** Every field as JSON: bytes as hex, 64-bit values as 16-digit hex. */
export function reportToJson(report: AttestationReport): Record<string, unknown> {
  const out: Record<string, unknown> = {
    version: report.version,
    guestSvn: report.guestSvn,
    policy: { ...report.policy, raw: report.policy.raw.toString(16).padStart(16, "0") },
    familyId: hex(report.familyId),
    imageId: hex(report.imageId),
    vmpl: report.vmpl,
    signatureAlgo: report.signatureAlgo,
    currentTcb: tcbJson(report.currentTcb),
    platformInfo: { ...report.platformInfo, raw: report.platformInfo.raw.toString(16).padStart(16, "0") },
    authorKeyEn: report.authorKeyEn,
    maskChipKey: report.maskChipKey,
    signingKey: report.signingKey,
    reportData: hex(report.reportData),
    measurement: hex(report.measurement),
    hostData: hex(report.hostData),
    idKeyDigest: hex(report.idKeyDigest),
    authorKeyDigest: hex(report.authorKeyDigest),
    reportId: hex(report.reportId),
    reportIdMa: hex(report.reportIdMa),
    reportedTcb: tcbJson(report.reportedTcb),
    chipId: hex(report.chipId),
    committedTcb: tcbJson(report.committedTcb),
    currentVersion: report.currentVersion,
    committedVersion: report.committedVersion,
    launchTcb: tcbJson(report.launchTcb),
    signature: { r: hex(report.signatureR), s: hex(report.signatureS) },
  };
  if (report.cpuid !== undefined) out["cpuid"] = report.cpuid;
  if (report.productFromCpuid !== undefined) out["productFromCpuid"] = report.productFromCpuid;
  if (report.launchMitigationVector !== undefined) {
    out["launchMitigationVector"] = report.launchMitigationVector.toString(16).padStart(16, "0");
  }
  if (report.currentMitigationVector !== undefined) {
    out["currentMitigationVector"] = report.currentMitigationVector.toString(16).padStart(16, "0");
  }
  return out;
}
