// Parses NVIDIA GPU attestation evidence: an SPDM 1.1 GET_MEASUREMENTS request (DMTF DSP0274 1.1, §10.11) followed
// by the MEASUREMENTS response whose opaque data carries NVIDIA's type-length-value fields. Parsing checks sizes and
// that every length adds up exactly, and nothing else: no cryptography, no policy. The raw bytes are kept so that the
// signature is checked over exactly what the GPU signed.
import { fromHex, toHex } from "../encoding/index.ts";
import { MalformedInputError } from "../errors.ts";

export const SPDM_VERSION_1_1 = 0x11;
/** GET_MEASUREMENTS request code (DSP0274 1.1 Table 4). */
export const GET_MEASUREMENTS = 0xe0;
/** MEASUREMENTS response code (DSP0274 1.1 Table 4). */
export const MEASUREMENTS = 0x60;
/** The request: version, code, param1, param2, 32-byte nonce, SlotIDParam (DSP0274 1.1 Table 42). */
export const REQUEST_LENGTH = 37;
export const NONCE_LENGTH = 32;
/** ECDSA P-384 raw r‖s, Hopper and Blackwell alike (NVIDIA attestation-sdk GpuArchitectureData). */
export const SIGNATURE_LENGTH = 96;
/** Real evidence is about 4 KiB; anything over this is refused before it is read. */
export const MAX_EVIDENCE_BYTES = 1 << 20;
/** NVDEC0_STATUS value that means the decoder is disabled; nvtrust then skips golden index 35. */
export const NVDEC0_DISABLED = 0x55;
/** The largest opaque-data format version NVIDIA's verifier accepts (attestation-sdk MAX_OPAQUE_DATA_VERSION). */
export const MAX_OPAQUE_DATA_VERSION = 2;

/**
 * NVIDIA opaque data field types (nvtrust spdm_msrt_resp_msg.py OPAQUE_DATA_TYPES, attestation-sdk GpuOpaqueDataType).
 * Types not listed here are kept as raw bytes, never refused.
 */
export const OPAQUE_TYPES: Readonly<Record<number, string>> = Object.freeze({
  1: "CERT_ISSUER_NAME",
  2: "CERT_AUTHORITY_KEY_IDENTIFIER",
  3: "DRIVER_VERSION",
  4: "GPU_INFO",
  5: "SKU",
  6: "VBIOS_VERSION",
  7: "MANUFACTURER_ID",
  8: "TAMPER_DETECTION",
  9: "SMC",
  10: "VPR",
  11: "NVDEC0_STATUS",
  12: "MSRSCNT",
  13: "CPRINFO",
  14: "BOARD_ID",
  15: "CHIP_SKU",
  16: "CHIP_SKU_MOD",
  17: "PROJECT",
  18: "PROJECT_SKU",
  19: "PROJECT_SKU_MOD",
  20: "FWID",
  21: "PROTECTED_PCIE_STATUS",
  22: "SWITCH_PDI",
  23: "FLOORSWEPT_PORTS",
  24: "POSITION_ID",
  25: "LOCK_SWITCH_STATUS",
  32: "GPU_LINK_CONN",
  33: "SYS_ENABLE_STATUS",
  34: "OPAQUE_DATA_VERSION",
  35: "CHIP_INFO",
  36: "FEATURE_FLAG",
  255: "INVALID",
});

const T = {
  DRIVER_VERSION: 3,
  VBIOS_VERSION: 6,
  NVDEC0_STATUS: 11,
  MSRSCNT: 12,
  CHIP_SKU: 15,
  CHIP_SKU_MOD: 16,
  PROJECT: 17,
  PROJECT_SKU: 18,
  PROJECT_SKU_MOD: 19,
  FWID: 20,
  SWITCH_PDI: 22,
  OPAQUE_DATA_VERSION: 34,
  FEATURE_FLAG: 36,
} as const;
/** Fields that are read into named values: a second copy would leave "which one counts" to the reader, so it is refused. */
const SINGLE_VALUED: ReadonlySet<number> = new Set(Object.values(T));

/** "NVDAOD": the header of the newer opaque data format (attestation-sdk spdm_opaque_data_parser). */
const NVDAOD_MAGIC = [0x4e, 0x56, 0x44, 0x41, 0x4f, 0x44];
const NVDAOD_HEADER_LENGTH = 12;

/** One DMTF measurement block (DSP0274 1.1 Table 45 and Table 46). */
export interface MeasurementBlock {
  /** 1-based block index; RIM golden index i is block i + 1. */
  index: number;
  /** MeasurementSpecification: 1 (DMTF). */
  specification: number;
  /** DMTFSpecMeasurementValueType (bit 7: raw bit stream instead of a digest). */
  valueType: number;
  value: Uint8Array;
}

export interface OpaqueField {
  type: number;
  /** The NVIDIA name of the type, or `UNKNOWN_<type>`. */
  name: string;
  /** The NVDAOD format's per-entry value type; absent in the legacy format. */
  valueType?: number;
  value: Uint8Array;
}

export interface SpdmRequest {
  version: number;
  code: number;
  /** Bit 0: a signature was requested. */
  param1: number;
  /** Measurement operation: 0xFF asks for every block. */
  param2: number;
  nonce: Uint8Array;
  slotId: number;
}

export interface SpdmResponse {
  version: number;
  code: number;
  param1: number;
  param2: number;
  numberOfBlocks: number;
  measurementRecordLength: number;
  /** The responder's own 32-byte nonce (not the requester's). */
  responderNonce: Uint8Array;
  opaqueLength: number;
}

/** Parsed evidence. Byte fields are views into `raw`, a private copy of the input: treat them as read-only. */
export interface GpuEvidence {
  /** The bytes as received: request ‖ response. */
  raw: Uint8Array;
  request: SpdmRequest;
  response: SpdmResponse;
  blocks: readonly MeasurementBlock[];
  /** The measurement record exactly as signed (the measurement digest covers these bytes). */
  measurementRecord: Uint8Array;
  opaque: {
    format: "legacy" | "nvdaod";
    /** NVDAOD header version, or the legacy OPAQUE_DATA_VERSION field's value; undefined when neither is present. */
    version: { major: number; minor: number } | undefined;
    fields: readonly OpaqueField[];
  };
  /** The last 96 bytes: ECDSA P-384 r‖s. */
  signature: Uint8Array;
  /** raw.length - 96: the signature covers bytes [0, signedLength). */
  signedLength: number;
  driverVersion: string;
  /** Formatted as NVIDIA does, e.g. `96.00.9F.00.01`. */
  vbiosVersion: string;
  vbiosRaw: Uint8Array;
  project: string | undefined;
  projectSku: string | undefined;
  projectSkuMod: string | undefined;
  chipSku: string | undefined;
  chipSkuMod: string | undefined;
  /** The firmware id the GPU reports (48 bytes); undefined on firmware that does not report one. */
  fwid: Uint8Array | undefined;
  /** NVDEC0_STATUS first byte: 0x55 disabled, 0xAA enabled; undefined when absent. */
  nvdec0Status: number | undefined;
  /** FEATURE_FLAG raw bytes (e.g. the PPCIE / multi-GPU mode), undefined when absent. */
  featureFlags: Uint8Array | undefined;
  /** MSRSCNT: per-block measurement counters (u32 LE each). */
  measurementCounts: readonly number[] | undefined;
}

function malformed(message: string, details?: Record<string, unknown>): never {
  throw new MalformedInputError("GPU_MALFORMED", message, details === undefined ? {} : { details });
}

/** A bounds-checked little-endian reader: every read past the end is GPU_MALFORMED naming the field. */
class Reader {
  offset = 0;
  readonly bytes: Uint8Array;
  readonly end: number;
  constructor(bytes: Uint8Array, start: number, end: number) {
    this.bytes = bytes;
    this.offset = start;
    this.end = end;
  }
  need(n: number, what: string): void {
    if (n > this.end - this.offset) {
      malformed(`${what}: needs ${n} bytes at offset ${this.offset}, ${this.end - this.offset} remain`, {
        field: what,
        offset: this.offset,
      });
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.offset++]!;
  }
  uint(n: number, what: string): number {
    this.need(n, what);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.bytes[this.offset + i]!;
    this.offset += n;
    return v;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

/**
 * NVIDIA's VBIOS version string from the raw field (nvtrust utils.format_vbios_version, attestation-sdk
 * get_vbios_version): the bytes reversed into hex, the second half followed by the byte just before it, cut into
 * dot-separated pairs, upper case. Raw `009f009601000000` gives `96.00.9F.00.01`.
 */
export function formatVbiosVersion(raw: Uint8Array): string {
  if (raw.length < 2 || raw.length % 2 !== 0 || raw.length > 32) {
    malformed(`VBIOS_VERSION is ${raw.length} bytes; an even number from 2 to 32 is expected`);
  }
  // lib/encoding rather than Buffer: the explorer parses GPU evidence in the browser too.
  const hex = toHex(Uint8Array.from(raw).reverse());
  const half = hex.length / 2;
  const digits = hex.slice(half) + hex.slice(half - 2, half);
  const pairs: string[] = [];
  for (let i = 0; i < digits.length; i += 2) pairs.push(digits.slice(i, i + 2));
  return pairs.join(".").toUpperCase();
}

/** The inverse of formatVbiosVersion for 8-byte fields (simulator and tests). */
export function encodeVbiosVersion(version: string): Uint8Array {
  const m = /^([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})$/.exec(version);
  if (m === null) malformed(`VBIOS version ${JSON.stringify(version)} is not five dot-separated hex pairs`);
  const p = m.slice(1, 6).map((h) => parseInt(h, 16));
  return Uint8Array.of(p[3]!, p[2]!, p[1]!, p[0]!, p[4]!, 0, 0, 0);
}

/** A text field: trailing NULs removed (attestation-sdk remove_null_terminators); printable ASCII only. */
function text(field: OpaqueField): string {
  let end = field.value.length;
  while (end > 0 && field.value[end - 1] === 0) end--;
  const bytes = field.value.subarray(0, end);
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b > 0x7e) malformed(`opaque field ${field.name} is not printable text`, { type: field.type });
    out += String.fromCharCode(b);
  }
  return out;
}

function parseRequest(r: Reader): SpdmRequest {
  const version = r.u8("request SPDMVersion");
  if (version !== SPDM_VERSION_1_1) malformed(`request SPDMVersion is 0x${version.toString(16)}, expected 0x11`);
  const code = r.u8("request RequestResponseCode");
  if (code !== GET_MEASUREMENTS) malformed(`request code is 0x${code.toString(16)}, expected 0xE0 (GET_MEASUREMENTS)`);
  const param1 = r.u8("request Param1");
  // DSP0274 1.1 Table 42: Param1 bit 0 asks for a signature; without it the response carries none.
  if ((param1 & 1) !== 1) malformed("the request did not ask for a signature (Param1 bit 0 is clear)");
  const param2 = r.u8("request Param2");
  const nonce = r.take(NONCE_LENGTH, "request Nonce");
  const slotId = r.u8("request SlotIDParam");
  return { version, code, param1, param2, nonce, slotId };
}

/**
 * Checks the measurement record: `count` blocks, each Index(1) MeasurementSpecification(1) MeasurementSize(2 LE) and
 * a DMTF measurement of exactly MeasurementSize bytes: ValueType(1) ValueSize(2 LE) Value. Plain offset arithmetic
 * with no per-block objects, because it runs for every report the verifier sees; returns each block's offset so
 * that the block objects are only built when asked for (blocksOf).
 */
function checkRecord(record: Uint8Array, count: number): number[] {
  // Small on-heap structures: typed arrays over 64 bytes get an off-heap store, which costs more than this loop.
  const offsets: number[] = [];
  const seen = new Int32Array(8);
  const end = record.length;
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (end - at < 7) malformed(`measurement block ${i} is truncated at record offset ${at}`, { block: i, offset: at });
    const index = record[at]!;
    const specification = record[at + 1]!;
    const size = record[at + 2]! | (record[at + 3]! << 8);
    const valueSize = record[at + 5]! | (record[at + 6]! << 8);
    if (index === 0) malformed(`measurement block ${i} has index 0 (indices start at 1)`);
    const bit = 1 << (index & 31);
    if ((seen[index >> 5]! & bit) !== 0) malformed(`measurement block index ${index} appears twice`, { index });
    seen[index >> 5]! |= bit;
    // DSP0274 1.1 Table 45: bit 0 = DMTF; NVIDIA's verifiers accept only the value 1.
    if (specification !== 1) malformed(`measurement block ${index} is not DMTF-specified (${specification})`);
    if (size > end - at - 4) malformed(`measurement block ${index}: MeasurementSize ${size} runs past the record`);
    if (size !== 3 + valueSize) {
      malformed(
        `measurement block ${index}: MeasurementSize ${size} is not 3 + DMTFSpecMeasurementValueSize ${valueSize}`,
      );
    }
    offsets.push(at);
    at += 4 + size;
  }
  if (at !== end) malformed(`the measurement record has ${end - at} bytes after its ${count} blocks`);
  return offsets;
}

function blocksOf(record: Uint8Array, offsets: readonly number[]): MeasurementBlock[] {
  return offsets.map((at) => ({
    index: record[at]!,
    specification: record[at + 1]!,
    valueType: record[at + 4]!,
    value: record.subarray(at + 7, at + 4 + (record[at + 2]! | (record[at + 3]! << 8))),
  }));
}

function parseOpaque(data: Uint8Array): GpuEvidence["opaque"] {
  let start = 0;
  let format: "legacy" | "nvdaod" = "legacy";
  let version: { major: number; minor: number } | undefined;
  if (data.length >= NVDAOD_HEADER_LENGTH && NVDAOD_MAGIC.every((b, i) => data[i] === b)) {
    // NVDAOD header: magic(6) profile(u16 LE, must be 0) major(1) minor(1) reserved(2); entries then carry a value type.
    const profile = data[6]! | (data[7]! << 8);
    if (profile !== 0) malformed(`opaque data profile ${profile} is not supported (0 expected)`);
    format = "nvdaod";
    version = { major: data[8]!, minor: data[9]! };
    start = NVDAOD_HEADER_LENGTH;
  }
  const r = new Reader(data, start, data.length);
  const fields: OpaqueField[] = [];
  const seen = new Set<number>();
  while (r.offset < r.end) {
    const type = r.uint(2, "opaque DataType");
    const valueType = format === "nvdaod" ? r.uint(2, "opaque DataValueType") : undefined;
    const size = r.uint(2, "opaque DataSize");
    const value = r.take(size, "opaque Data");
    if (SINGLE_VALUED.has(type)) {
      if (seen.has(type)) malformed(`opaque field ${OPAQUE_TYPES[type]} appears twice`, { type });
      seen.add(type);
    }
    const field: OpaqueField = { type, name: OPAQUE_TYPES[type] ?? `UNKNOWN_${type}`, value };
    if (valueType !== undefined) field.valueType = valueType;
    fields.push(field);
  }
  if (format === "legacy") {
    const v = fields.find((f) => f.type === T.OPAQUE_DATA_VERSION);
    if (v !== undefined) {
      if (v.value.length === 0 || v.value.length > 8) malformed("OPAQUE_DATA_VERSION is not 1 to 8 bytes");
      let n = 0;
      for (let i = v.value.length - 1; i >= 0; i--) n = n * 256 + v.value[i]!;
      version = { major: n, minor: 0 };
    }
  }
  if (version !== undefined && version.major > MAX_OPAQUE_DATA_VERSION) {
    malformed(`opaque data version ${version.major} is newer than this verifier knows (${MAX_OPAQUE_DATA_VERSION})`);
  }
  return { format, version, fields };
}

function u32List(field: OpaqueField | undefined): number[] | undefined {
  if (field === undefined) return undefined;
  const view = new DataView(field.value.buffer, field.value.byteOffset, field.value.length);
  const out: number[] = [];
  for (let i = 0; i < field.value.length; i += 4) out.push(view.getUint32(i, true));
  return out;
}

/**
 * Parses evidence bytes (request ‖ response). Throws MalformedInputError GPU_MALFORMED for anything that does not
 * add up: wrong codes or version, a length that runs past the end or leaves bytes over, a duplicate block index or
 * named opaque field, a missing DRIVER_VERSION or VBIOS_VERSION.
 */
export function parseGpuEvidence(bytes: Uint8Array): GpuEvidence {
  if (!(bytes instanceof Uint8Array)) malformed("the evidence is not a byte array");
  if (bytes.length > MAX_EVIDENCE_BYTES) malformed(`the evidence is ${bytes.length} bytes, over ${MAX_EVIDENCE_BYTES}`);
  return parseEvidenceView(bytes.slice());
}

/**
 * parseGpuEvidence without the private copy: the result's byte fields are views of `raw` itself. For the verifier,
 * which parses and verifies in one synchronous call (a copy is an off-heap allocation per report).
 */
export function parseEvidenceView(raw: Uint8Array): GpuEvidence {
  if (!(raw instanceof Uint8Array)) malformed("the evidence is not a byte array");
  if (raw.length > MAX_EVIDENCE_BYTES) malformed(`the evidence is ${raw.length} bytes, over ${MAX_EVIDENCE_BYTES}`);
  if (raw.length < REQUEST_LENGTH + 42 + SIGNATURE_LENGTH) {
    malformed(`the evidence is ${raw.length} bytes, too short for a request and a signed response`);
  }
  const r = new Reader(raw, 0, raw.length);
  const request = parseRequest(r);

  // DSP0274 1.1 Table 46 (MEASUREMENTS response): version, code, param1, param2, NumberOfBlocks, 3-byte
  // MeasurementRecordLength, record, 32-byte nonce, 2-byte OpaqueLength, opaque data, signature.
  const version = r.u8("response SPDMVersion");
  if (version !== request.version)
    malformed(`response SPDMVersion 0x${version.toString(16)} differs from the request's`);
  const code = r.u8("response RequestResponseCode");
  if (code !== MEASUREMENTS) malformed(`response code is 0x${code.toString(16)}, expected 0x60 (MEASUREMENTS)`);
  const param1 = r.u8("response Param1");
  const param2 = r.u8("response Param2");
  const numberOfBlocks = r.u8("response NumberOfBlocks");
  if (numberOfBlocks === 0) malformed("the response carries no measurement blocks");
  const measurementRecordLength = r.uint(3, "response MeasurementRecordLength");
  const measurementRecord = r.take(measurementRecordLength, "response MeasurementRecord");
  const offsets = checkRecord(measurementRecord, numberOfBlocks);
  const responderNonce = r.take(NONCE_LENGTH, "response Nonce");
  const opaqueLength = r.uint(2, "response OpaqueLength");
  const opaque = parseOpaque(r.take(opaqueLength, "response OpaqueData"));
  const remaining = raw.length - r.offset;
  if (remaining !== SIGNATURE_LENGTH) {
    malformed(`after the opaque data ${remaining} bytes remain; the signature is exactly ${SIGNATURE_LENGTH}`, {
      expected: SIGNATURE_LENGTH,
      actual: remaining,
    });
  }
  const signature = raw.subarray(r.offset);

  // One pass over the fields for the named ones (duplicates were refused in parseOpaque).
  const named = new Map<number, OpaqueField>();
  for (const f of opaque.fields) if (SINGLE_VALUED.has(f.type)) named.set(f.type, f);
  const optionalText = (type: number) => {
    const f = named.get(type);
    return f === undefined ? undefined : text(f);
  };
  const driverField = named.get(T.DRIVER_VERSION);
  if (driverField === undefined) malformed("the opaque data has no DRIVER_VERSION");
  const vbiosField = named.get(T.VBIOS_VERSION);
  if (vbiosField === undefined) malformed("the opaque data has no VBIOS_VERSION");
  const driverVersion = text(driverField);
  if (driverVersion === "") malformed("DRIVER_VERSION is empty");
  const nvdec = named.get(T.NVDEC0_STATUS);
  if (nvdec !== undefined && nvdec.value.length === 0) malformed("NVDEC0_STATUS is empty");
  const pdi = named.get(T.SWITCH_PDI);
  if (pdi !== undefined && pdi.value.length % 8 !== 0) malformed("SWITCH_PDI is not a multiple of 8 bytes");
  const counts = named.get(T.MSRSCNT);
  if (counts !== undefined && counts.value.length % 4 !== 0) malformed("MSRSCNT is not a multiple of 4 bytes");

  return new ParsedEvidence(
    {
      raw,
      request,
      response: {
        version,
        code,
        param1,
        param2,
        numberOfBlocks,
        measurementRecordLength,
        responderNonce,
        opaqueLength,
      },
      measurementRecord,
      opaque,
      signature,
      signedLength: raw.length - SIGNATURE_LENGTH,
      driverVersion,
      vbiosVersion: formatVbiosVersion(vbiosField.value),
      vbiosRaw: vbiosField.value,
      project: optionalText(T.PROJECT),
      projectSku: optionalText(T.PROJECT_SKU),
      projectSkuMod: optionalText(T.PROJECT_SKU_MOD),
      chipSku: optionalText(T.CHIP_SKU),
      chipSkuMod: optionalText(T.CHIP_SKU_MOD),
      fwid: named.get(T.FWID)?.value,
      nvdec0Status: nvdec?.value[0],
      featureFlags: named.get(T.FEATURE_FLAG)?.value,
    },
    offsets,
    counts,
  );
}

type EagerFields = Omit<GpuEvidence, "blocks" | "measurementCounts">;

/**
 * The parsed evidence. The block objects and the counters are built on first use (the appraisal, a caller that
 * shows them): verifying the signature needs neither, and the verifier's hot path should not allocate them.
 */
class ParsedEvidence implements GpuEvidence {
  readonly raw: Uint8Array;
  readonly request: SpdmRequest;
  readonly response: SpdmResponse;
  readonly measurementRecord: Uint8Array;
  readonly opaque: GpuEvidence["opaque"];
  readonly signature: Uint8Array;
  readonly signedLength: number;
  readonly driverVersion: string;
  readonly vbiosVersion: string;
  readonly vbiosRaw: Uint8Array;
  readonly project: string | undefined;
  readonly projectSku: string | undefined;
  readonly projectSkuMod: string | undefined;
  readonly chipSku: string | undefined;
  readonly chipSkuMod: string | undefined;
  readonly fwid: Uint8Array | undefined;
  readonly nvdec0Status: number | undefined;
  readonly featureFlags: Uint8Array | undefined;
  #offsets: readonly number[];
  #countsField: OpaqueField | undefined;
  #blocks: MeasurementBlock[] | undefined;

  constructor(fields: EagerFields, offsets: readonly number[], counts: OpaqueField | undefined) {
    this.raw = fields.raw;
    this.request = fields.request;
    this.response = fields.response;
    this.measurementRecord = fields.measurementRecord;
    this.opaque = fields.opaque;
    this.signature = fields.signature;
    this.signedLength = fields.signedLength;
    this.driverVersion = fields.driverVersion;
    this.vbiosVersion = fields.vbiosVersion;
    this.vbiosRaw = fields.vbiosRaw;
    this.project = fields.project;
    this.projectSku = fields.projectSku;
    this.projectSkuMod = fields.projectSkuMod;
    this.chipSku = fields.chipSku;
    this.chipSkuMod = fields.chipSkuMod;
    this.fwid = fields.fwid;
    this.nvdec0Status = fields.nvdec0Status;
    this.featureFlags = fields.featureFlags;
    this.#offsets = offsets;
    this.#countsField = counts;
  }

  get blocks(): readonly MeasurementBlock[] {
    return (this.#blocks ??= blocksOf(this.measurementRecord, this.#offsets));
  }

  get measurementCounts(): readonly number[] | undefined {
    return u32List(this.#countsField);
  }
}

const HEX_TEXT = /^(?:0x)?([0-9a-fA-F\s]*)$/;

/**
 * Evidence as NVIDIA's tools write it (lower-case hex text, maybe with whitespace or a trailing newline) or as raw
 * bytes. Raw evidence starts with 0x11, which is not a hex digit, so the two cannot be confused.
 */
export function toEvidenceBytes(input: Uint8Array | string): Uint8Array {
  if (typeof input !== "string") {
    if (!(input instanceof Uint8Array)) malformed("the evidence is neither bytes nor text");
    if (input.length > 0 && input[0] === SPDM_VERSION_1_1) return input;
    if (input.length > 2 * MAX_EVIDENCE_BYTES + 4096) malformed("the evidence text is too large");
    // Latin-1, one character per byte (what Buffer's "latin1" gives), without Buffer: the explorer runs this too.
    let text = "";
    for (let i = 0; i < input.length; i += 8192) text += String.fromCharCode(...input.subarray(i, i + 8192));
    input = text;
  }
  if (input.length > 2 * MAX_EVIDENCE_BYTES + 4096) malformed("the evidence text is too large");
  const match = HEX_TEXT.exec(input.trim());
  if (match === null) malformed("the evidence is neither raw SPDM bytes nor hex text");
  const digits = match[1]!.replace(/\s+/g, "");
  if (digits.length === 0 || digits.length % 2 !== 0) malformed("the evidence hex text has an odd or zero length");
  // HEX_TEXT admitted only hex digits and whitespace, and the length is even: fromHex cannot refuse them.
  return fromHex(digits)!;
}

/** The name of an opaque field type. */
export function opaqueTypeName(type: number): string {
  return OPAQUE_TYPES[type] ?? `UNKNOWN_${type}`;
}
