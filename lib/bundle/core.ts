// The provenance bundle (DESIGN §3.3), browser-safe: strict reading (size limit, UTF-8, JSON without duplicate keys,
// every field type-checked, no unknown fields), deterministic writing, and finding the manifest. Shared by lib/bundle
// (Node) and the explorer page; no node:* imports. It never trusts content: signatures and the binding are checked
// elsewhere.
import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  isPlainObject,
  parseEcSpki,
  parseEnvelope,
  parseEnvelopeDecoded,
  type DsseEnvelope,
} from "../dsse/core.ts";
import { MalformedInputError } from "../errors.ts";
import { PREDICATE_EVAL, PREDICATE_SERVING, PREDICATE_SLSA } from "../intoto/index.ts";
import { parseJsonUnique, parseStrictJsonBytes } from "../json/index.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.provenant.bundle.v1+json";
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
/** Size of an SEV-SNP attestation report (AMD SEV-SNP ABI 56860, Table 23). */
export const SNP_REPORT_BYTES = 1184;
/**
 * Deepest JSON nesting read (a bundle nests 4 levels, a statement about 6). JSON.parse takes seconds on megabytes
 * of "[[[[…" and JSON.stringify overflows the stack on its result, so depth is checked by a linear scan first.
 */
export const MAX_JSON_DEPTH = 64;

/** Bounds on what verifying a bundle will cost, checked before any envelope is parsed (BUNDLE_TOO_COMPLEX). */
export interface BundleLimits {
  /** Most envelopes (the verifier policy's `maxEnvelopes`). */
  maxEnvelopes?: number;
  /** Most signatures in one envelope (the verifier policy's `maxSignaturesPerEnvelope`). */
  maxSignaturesPerEnvelope?: number;
}

export type CpuProvider = "tsm" | "sev-guest" | "sim";

export interface CpuEvidence {
  type: "sev-snp";
  /** Base64 of the 1184-byte report. */
  report: string;
  /** Base64 DER VCEK or VLEK. */
  vcek: string;
  /** Base64 DER ASK|ASVK, then ARK (optional: the ARK is pinned anyway). */
  chain?: string[];
  provider?: CpuProvider;
}

/** The one GPU evidence type (DESIGN §10): an NVIDIA SPDM 1.1 GET_MEASUREMENTS transcript. */
export const GPU_EVIDENCE_TYPE = "nvidia-spdm";
export type GpuArchName = "hopper" | "blackwell";
/** Most GPUs in one bundle (an HGX board has 8). */
export const MAX_BUNDLE_GPUS = 16;
/** Largest SPDM transcript, decoded (lib/gpu MAX_EVIDENCE_BYTES; NVML's buffer is 8 KiB). */
export const MAX_GPU_EVIDENCE_BYTES = 1024 * 1024;
/** Largest device certificate chain, PEM text (NVML's buffer is 5 KiB; NVIDIA's chains are about 4 KiB). */
export const MAX_GPU_CERT_CHAIN_CHARS = 64 * 1024;
/** Most RIMs per GPU (a driver and a VBIOS RIM; lib/gpu refuses a second of a kind) and largest RIM, decoded. */
export const MAX_GPU_RIMS = 4;
export const MAX_GPU_RIM_BYTES = 1024 * 1024;
/** Most OCSP responses per GPU (device chain and two RIM chains: about 10 certificates) and largest, decoded. */
export const MAX_GPU_OCSP = 16;
export const MAX_GPU_OCSP_BYTES = 64 * 1024;

/** One GPU's evidence (DESIGN §3.3 `evidence.gpu[]`), checked for shape and size only; lib/gpu verifies it. */
export interface GpuEvidence {
  type: typeof GPU_EVIDENCE_TYPE;
  /** What the collector reported; the verifier requires it to agree with the leaf certificate's DICE extension. */
  arch: GpuArchName;
  /** Base64 of the SPDM GET_MEASUREMENTS request ‖ response, as NVML returned it. */
  evidence: string;
  /** The device certificate chain, PEM, leaf first (as NVML returns it). */
  certChain: string;
  /** Base64 of the driver and VBIOS RIMs (SWID XML). */
  rims?: string[];
  /** Base64 of DER OCSP responses for the device and RIM chains. */
  ocsp?: string[];
}

/**
 * The bytes of a bundle's base64 fields, each decoded once while the bundle was read (readBundleDecoded), so that a
 * verifier neither decodes nor checks them again. GPU evidence is not here: lib/gpu reads it when there is some.
 */
export interface DecodedBundle {
  /** signer.publicKey: the DER SPKI of K, and its curve as the DER names it. */
  spki: Uint8Array;
  curve: "P-256" | "P-384";
  report: Uint8Array;
  vcek: Uint8Array;
  chain?: Uint8Array[];
  /** Per envelope, in order: the payload bytes exactly as signed, and each signature's bytes. */
  envelopes: { payload: Uint8Array; signatures: Uint8Array[] }[];
}

export interface ProvenanceBundle {
  mediaType: typeof BUNDLE_MEDIA_TYPE;
  envelopes: DsseEnvelope[];
  signer: { publicKey: string /* base64 DER SPKI of K */ };
  /** 64 hex: REPORT_DATA[32:64]. */
  nonce: string;
  evidence: { cpu: CpuEvidence; gpu?: GpuEvidence[] };
}

function malformed(path: string, message: string, cause?: unknown): never {
  throw new MalformedInputError("BUNDLE_MALFORMED", `bundle: ${path}: ${message}`, {
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

function only(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) if (!allowed.includes(key)) malformed(`${path}.${key}`, "unknown field");
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(value)) malformed(path, "expected an object");
  return value as Record<string, unknown>;
}

function base64Field(value: unknown, path: string, allowEmpty = false): Uint8Array {
  if (typeof value !== "string") return malformed(path, "expected a base64 string");
  const bytes = decodeBase64(value, "BUNDLE_MALFORMED", path);
  if (!allowEmpty && bytes.length === 0) malformed(path, "expected non-empty content");
  return bytes;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses strict JSON from bytes: UTF-8 without BOM, nesting ≤ MAX_JSON_DEPTH, no duplicate keys (JSON.parse keeps
 * the last: two readers of one bundle must never see different content). `code` says which part is reading. Sound
 * bytes take one scan and JSON.parse (lib/json parseJsonUnique); anything else goes to lib/json's strict reader, which
 * says what is wrong and where (details.reason, details.offset). A bundle's strings may hold escaped lone surrogates
 * (JSON.parse's reading; no field of a bundle can use one): signed payloads are what lib/json refuses them in.
 */
export function parseStrictJson(
  bytes: Uint8Array,
  code: "BUNDLE_MALFORMED" | "OMS_MALFORMED" = "BUNDLE_MALFORMED",
): unknown {
  if (!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) {
    let text: string | undefined;
    try {
      text = fatalUtf8.decode(bytes);
    } catch {
      // invalid UTF-8: refused below, with its reason
    }
    const value =
      text === undefined
        ? undefined
        : parseJsonUnique(text, MAX_JSON_DEPTH, { refuseLoneSurrogates: false, wellFormed: true });
    if (value !== undefined) return value;
  }
  return parseStrictJsonBytes(bytes, {
    code,
    what: code === "OMS_MALFORMED" ? "OMS signature" : "bundle",
    maxDepth: MAX_JSON_DEPTH,
  });
}

/**
 * Reads and shape-checks a bundle. BUNDLE_TOO_LARGE above `maxBytes` (16 MiB), BUNDLE_TOO_COMPLEX above the
 * envelope or signature bounds, BUNDLE_MALFORMED otherwise.
 */
export function readBundle(bytes: Uint8Array, options: { maxBytes?: number } & BundleLimits = {}): ProvenanceBundle {
  return readBundleWith(bytes, options, false).bundle;
}

/**
 * readBundle, keeping the bytes its base64 checks decode (DecodedBundle): the same checks, errors and bundle, read in
 * one pass, for a verifier that would otherwise decode every field again.
 */
export function readBundleDecoded(
  bytes: Uint8Array,
  options: { maxBytes?: number } & BundleLimits = {},
): { bundle: ProvenanceBundle; decoded: DecodedBundle } {
  return readBundleWith(bytes, options, true) as { bundle: ProvenanceBundle; decoded: DecodedBundle };
}

function readBundleWith(
  bytes: Uint8Array,
  options: { maxBytes?: number } & BundleLimits,
  decode: boolean,
): { bundle: ProvenanceBundle; decoded: DecodedBundle | undefined } {
  const maxBytes = options.maxBytes ?? MAX_BUNDLE_BYTES;
  if (bytes.length > maxBytes) {
    throw new MalformedInputError("BUNDLE_TOO_LARGE", `bundle is ${bytes.length} bytes, more than ${maxBytes}`, {
      details: { expected: maxBytes, actual: bytes.length },
    });
  }
  return toBundleWith(parseStrictJson(bytes), options, decode);
}

function tooComplex(path: string, what: string, actual: number, limit: number): never {
  throw new MalformedInputError("BUNDLE_TOO_COMPLEX", `bundle: ${path}: ${actual} ${what}, more than ${limit}`, {
    details: { path, expected: limit, actual },
  });
}

/**
 * Counts envelopes and signatures against the limits before anything else about them is read: a bundle of 16,000
 * junk signatures is refused here, before one byte of them is decoded.
 */
function checkLimits(envelopes: unknown[], limits: BundleLimits): void {
  const maxEnvelopes = limits.maxEnvelopes ?? Infinity;
  if (envelopes.length > maxEnvelopes) tooComplex("envelopes", "envelopes", envelopes.length, maxEnvelopes);
  const maxSignatures = limits.maxSignaturesPerEnvelope ?? Infinity;
  envelopes.forEach((entry, i) => {
    const signatures = isPlainObject(entry) ? entry.signatures : undefined;
    if (Array.isArray(signatures) && signatures.length > maxSignatures)
      tooComplex(`envelopes[${i}].signatures`, "signatures", signatures.length, maxSignatures);
  });
}

/** Shape-checks an already parsed bundle object and returns a normalised copy. */
export function toBundle(json: unknown, limits: BundleLimits = {}): ProvenanceBundle {
  return toBundleWith(json, limits, false).bundle;
}

/** toBundle, with the decoded bytes of its base64 fields when `decode` (readBundleDecoded). */
function toBundleWith(
  json: unknown,
  limits: BundleLimits,
  decode: boolean,
): { bundle: ProvenanceBundle; decoded: DecodedBundle | undefined } {
  const root = object(json, "$");
  only(root, "$", ["mediaType", "envelopes", "signer", "nonce", "evidence"]);
  if (root.mediaType !== BUNDLE_MEDIA_TYPE) malformed("mediaType", `expected ${BUNDLE_MEDIA_TYPE}`);

  if (!Array.isArray(root.envelopes) || root.envelopes.length === 0)
    malformed("envelopes", "expected a non-empty array");
  checkLimits(root.envelopes as unknown[], limits);
  const decodedEnvelopes: DecodedBundle["envelopes"] = [];
  const envelopes = (root.envelopes as unknown[]).map((entry, i) => {
    try {
      if (!decode) return parseEnvelope(entry);
      const read = parseEnvelopeDecoded(entry);
      decodedEnvelopes.push({ payload: read.payload, signatures: read.signatures });
      return read.envelope;
    } catch (error) {
      return malformed(`envelopes[${i}]`, error instanceof Error ? error.message : String(error), error);
    }
  });

  const signer = object(root.signer, "signer");
  only(signer, "signer", ["publicKey"]);
  const spki = base64Field(signer.publicKey, "signer.publicKey");
  // The DER is parsed here (RFC 5480); the point is checked to be on the curve when the key is imported to verify.
  let curve: string;
  try {
    curve = parseEcSpki(spki, "BUNDLE_MALFORMED").curve;
  } catch (error) {
    return malformed("signer.publicKey", error instanceof Error ? error.message : String(error), error);
  }
  if (curve !== "P-384" && curve !== "P-256")
    return malformed("signer.publicKey", `expected an EC P-384 or P-256 key, got ${curve}`);

  if (typeof root.nonce !== "string" || !/^[0-9a-f]{64}$/.test(root.nonce)) malformed("nonce", "expected 64 hex");

  const evidence = object(root.evidence, "evidence");
  only(evidence, "evidence", ["cpu", "gpu"]);
  const cpuIn = object(evidence.cpu, "evidence.cpu");
  only(cpuIn, "evidence.cpu", ["type", "report", "vcek", "chain", "provider"]);
  if (cpuIn.type !== "sev-snp") malformed("evidence.cpu.type", "expected sev-snp");
  const report = base64Field(cpuIn.report, "evidence.cpu.report");
  if (report.length !== SNP_REPORT_BYTES) {
    malformed("evidence.cpu.report", `expected ${SNP_REPORT_BYTES} bytes, got ${report.length}`);
  }
  const vcek = base64Field(cpuIn.vcek, "evidence.cpu.vcek");
  const cpu: CpuEvidence = { type: "sev-snp", report: cpuIn.report as string, vcek: cpuIn.vcek as string };
  let chain: Uint8Array[] | undefined;
  if (cpuIn.chain !== undefined) {
    if (!Array.isArray(cpuIn.chain)) malformed("evidence.cpu.chain", "expected an array");
    chain = (cpuIn.chain as unknown[]).map((c, i) => base64Field(c, `evidence.cpu.chain[${i}]`));
    cpu.chain = [...(cpuIn.chain as string[])];
  }
  if (cpuIn.provider !== undefined) {
    if (cpuIn.provider !== "tsm" && cpuIn.provider !== "sev-guest" && cpuIn.provider !== "sim") {
      malformed("evidence.cpu.provider", "expected tsm, sev-guest or sim");
    }
    cpu.provider = cpuIn.provider as CpuProvider;
  }
  const bundle: ProvenanceBundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes,
    signer: { publicKey: signer.publicKey as string },
    nonce: root.nonce as string,
    evidence: { cpu },
  };
  if (evidence.gpu !== undefined) bundle.evidence.gpu = toGpuEntries(evidence.gpu);
  const decoded: DecodedBundle | undefined = decode
    ? {
        spki,
        curve,
        report,
        vcek,
        ...(chain === undefined ? {} : { chain }),
        envelopes: decodedEnvelopes,
      }
    : undefined;
  return { bundle, decoded };
}

/** Base64 whose decoded size is at most `max` bytes, checked on the text's length before a byte is decoded. */
function boundedBase64(value: unknown, path: string, max: number): void {
  if (typeof value !== "string") malformed(path, "expected a base64 string");
  if ((value as string).length > Math.ceil(max / 3) * 4) malformed(path, `more than ${max} bytes`);
  base64Field(value, path);
}

/** A bounded list, its length checked before any element is read. */
function boundedArray(value: unknown, path: string, max: number, min = 0): unknown[] {
  if (!Array.isArray(value)) return malformed(path, "expected an array");
  if (value.length < min)
    malformed(path, min === 1 ? "expected a non-empty array (omit the field instead)" : "too short");
  if (value.length > max) malformed(path, `${value.length} entries, at most ${max}`);
  return value;
}

/**
 * `evidence.gpu`: one entry per GPU, `{type: "nvidia-spdm", arch, evidence, certChain, rims?, ocsp?}`, every size
 * bounded before it is decoded. The first shape (`nvidia-hopper-spdm` with a hex `report`) carried bytes nobody
 * verified and no job ever wrote; it is refused with a message that names its replacement.
 */
function toGpuEntries(value: unknown): GpuEvidence[] {
  return boundedArray(value, "evidence.gpu", MAX_BUNDLE_GPUS, 1).map((entry, i) => {
    const path = `evidence.gpu[${i}]`;
    const gpu = object(entry, path);
    if (gpu.type === "nvidia-hopper-spdm" || "report" in gpu) {
      malformed(
        path,
        'the {type: "nvidia-hopper-spdm", report: <hex>} shape is no longer read: write {type: "nvidia-spdm", ' +
          "arch, evidence: <base64>, certChain: <PEM>, rims?, ocsp?} (docs/formats.md)",
      );
    }
    only(gpu, path, ["type", "arch", "evidence", "certChain", "rims", "ocsp"]);
    if (gpu.type !== GPU_EVIDENCE_TYPE) malformed(`${path}.type`, `expected ${GPU_EVIDENCE_TYPE}`);
    if (gpu.arch !== "hopper" && gpu.arch !== "blackwell") malformed(`${path}.arch`, "expected hopper or blackwell");
    boundedBase64(gpu.evidence, `${path}.evidence`, MAX_GPU_EVIDENCE_BYTES);
    const chain = gpu.certChain;
    if (typeof chain !== "string" || chain.length > MAX_GPU_CERT_CHAIN_CHARS) {
      malformed(
        `${path}.certChain`,
        `expected a PEM certificate chain of at most ${MAX_GPU_CERT_CHAIN_CHARS} characters`,
      );
    }
    if (!(chain as string).includes("-----BEGIN CERTIFICATE-----")) {
      malformed(`${path}.certChain`, "expected a PEM certificate chain");
    }
    const out: GpuEvidence = {
      type: GPU_EVIDENCE_TYPE,
      arch: gpu.arch as GpuArchName,
      evidence: gpu.evidence as string,
      certChain: chain as string,
    };
    if (gpu.rims !== undefined) {
      const rims = boundedArray(gpu.rims, `${path}.rims`, MAX_GPU_RIMS, 1);
      rims.forEach((rim, j) => boundedBase64(rim, `${path}.rims[${j}]`, MAX_GPU_RIM_BYTES));
      out.rims = [...(rims as string[])];
    }
    if (gpu.ocsp !== undefined) {
      const ocsp = boundedArray(gpu.ocsp, `${path}.ocsp`, MAX_GPU_OCSP, 1);
      ocsp.forEach((response, j) => boundedBase64(response, `${path}.ocsp[${j}]`, MAX_GPU_OCSP_BYTES));
      out.ocsp = [...(ocsp as string[])];
    }
    return out;
  });
}

/** The SEV-SNP report's MEASUREMENT: 48 bytes at 0x90 (AMD SEV-SNP ABI 56860, Table 23). */
const MEASUREMENT_OFFSET = 0x90;
const MEASUREMENT_BYTES = 48;
/** SPDM 1.1 MEASUREMENTS: the 37-byte request, then MeasurementRecordLength (3 bytes LE) at 42, the record at 45. */
const SPDM_RECORD_LENGTH_OFFSET = 42;
const SPDM_RECORD_OFFSET = 45;

/**
 * What a record's measurementHash is computed from (docs/formats.md), for auditors and the explorer, without hashing
 * (node:crypto or @noble/hashes does that): the report's MEASUREMENT and each GPU's SPDM measurement record exactly
 * as signed (bytes [45, 45 + L1) of its evidence), in bundle order. measurementHash = SHA-256(MEASUREMENT ‖
 * SHA-256(record₀) ‖ SHA-256(record₁) ‖ …), and SHA-256(MEASUREMENT) for a bundle without GPUs. Shape only: nothing
 * is verified here (the pipeline records it only for evidence that verified). BUNDLE_MALFORMED when a length is off.
 */
export function measurementHashInputs(bundle: ProvenanceBundle): {
  measurement: Uint8Array;
  gpuMeasurementRecords: Uint8Array[];
} {
  const report = decodeBase64(bundle.evidence.cpu.report, "BUNDLE_MALFORMED", "evidence.cpu.report");
  if (report.length !== SNP_REPORT_BYTES) malformed("evidence.cpu.report", `expected ${SNP_REPORT_BYTES} bytes`);
  const measurement = report.slice(MEASUREMENT_OFFSET, MEASUREMENT_OFFSET + MEASUREMENT_BYTES);
  const gpuMeasurementRecords = (bundle.evidence.gpu ?? []).map((gpu, i) => {
    const path = `evidence.gpu[${i}].evidence`;
    const evidence = decodeBase64(gpu.evidence, "BUNDLE_MALFORMED", path);
    if (evidence.length < SPDM_RECORD_OFFSET) malformed(path, "too short for an SPDM MEASUREMENTS response");
    const o = SPDM_RECORD_LENGTH_OFFSET;
    const length = evidence[o]! | (evidence[o + 1]! << 8) | (evidence[o + 2]! << 16);
    if (SPDM_RECORD_OFFSET + length > evidence.length) malformed(path, "the measurement record runs past the evidence");
    return evidence.slice(SPDM_RECORD_OFFSET, SPDM_RECORD_OFFSET + length);
  });
  return { measurement, gpuMeasurementRecords };
}

/** Serialises a bundle deterministically (fixed key order, two-space indent, final newline) after checking it. */
export function writeBundle(bundle: ProvenanceBundle): Uint8Array {
  const checked = toBundle(bundle);
  const cpu: Record<string, unknown> = {
    type: checked.evidence.cpu.type,
    report: checked.evidence.cpu.report,
    vcek: checked.evidence.cpu.vcek,
  };
  if (checked.evidence.cpu.chain !== undefined) cpu.chain = checked.evidence.cpu.chain;
  if (checked.evidence.cpu.provider !== undefined) cpu.provider = checked.evidence.cpu.provider;
  const evidence: Record<string, unknown> = { cpu };
  if (checked.evidence.gpu !== undefined) {
    evidence.gpu = checked.evidence.gpu.map((g) => ({
      type: g.type,
      arch: g.arch,
      evidence: g.evidence,
      certChain: g.certChain,
      ...(g.rims === undefined ? {} : { rims: g.rims }),
      ...(g.ocsp === undefined ? {} : { ocsp: g.ocsp }),
    }));
  }
  const ordered = {
    mediaType: checked.mediaType,
    envelopes: checked.envelopes.map((e) => ({
      payloadType: e.payloadType,
      payload: e.payload,
      signatures: e.signatures.map((s) => (s.keyid === undefined ? { sig: s.sig } : { keyid: s.keyid, sig: s.sig })),
    })),
    signer: { publicKey: checked.signer.publicKey },
    nonce: checked.nonce,
    evidence,
  };
  const bytes = new TextEncoder().encode(`${JSON.stringify(ordered, null, 2)}\n`);
  if (bytes.length > MAX_BUNDLE_BYTES) {
    throw new MalformedInputError("BUNDLE_TOO_LARGE", `bundle would be ${bytes.length} bytes`, {
      details: { expected: MAX_BUNDLE_BYTES, actual: bytes.length },
    });
  }
  return bytes;
}

/**
 * The predicateType an envelope's payload declares, or undefined when the payload is not an in-toto JSON object.
 * Read with the strict reader every reader of a payload uses (lib/json): a payload with two predicateTypes, a BOM
 * or invalid UTF-8 declares none, so no reader can take it for a manifest that another reader would not.
 */
export function predicateTypeOf(envelope: DsseEnvelope): string | undefined {
  if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE) return undefined;
  try {
    return predicateTypeOfJson(parseStrictJsonBytes(decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload")));
  } catch {
    return undefined;
  }
}

/** The predicateType of a payload already read strictly (predicateTypeOf's last step, for a reader that read it). */
export function predicateTypeOfJson(json: unknown): string | undefined {
  return isPlainObject(json) && typeof json.predicateType === "string" ? json.predicateType : undefined;
}

/**
 * The bundle's manifest: its one fine-tune (SLSA provenance), eval or serving (`provenant serve`, DESIGN §12)
 * envelope. BUNDLE_MALFORMED when there is none or more than one. The caller still verifies its signature and
 * validates its statement (lib/intoto validateStatement reads all three).
 */
export function findManifest(bundle: ProvenanceBundle): { envelope: DsseEnvelope; index: number } {
  const index = manifestIndexOf(bundle.envelopes.map(predicateTypeOf));
  return { envelope: bundle.envelopes[index]!, index };
}

/**
 * findManifest over the envelopes' predicate types (predicateTypeOf of each, in order), for a reader that has read
 * the payloads already: the index of the one manifest; BUNDLE_MALFORMED when there is none or more than one.
 */
export function manifestIndexOf(types: readonly (string | undefined)[]): number {
  const found: number[] = [];
  types.forEach((type, index) => {
    if (type === PREDICATE_SLSA || type === PREDICATE_EVAL || type === PREDICATE_SERVING) found.push(index);
  });
  if (found.length !== 1) {
    malformed("envelopes", `expected exactly one fine-tune, eval or serving manifest, found ${found.length}`);
  }
  return found[0]!;
}
