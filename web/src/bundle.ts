// A provenance bundle checked in the browser (DESIGN §3.2-3.3): every DSSE signature against the bundle key with
// @noble/curves (P-256/SHA-256 or P-384/SHA-384; DER or IEEE-P1363), the REPORT_DATA binding of that key, the manifest
// digest (SHA-256 of the payload bytes as signed), and a summary of the SEV-SNP evidence. The AMD certificate chain
// is not checked here: that is the verifier's job, and the chain record says it was done.
import { p256, p384 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

export const BUNDLE_MEDIA_TYPE = "application/vnd.provenant.bundle.v1+json";
const PREDICATE_SLSA = "https://slsa.dev/provenance/v1";
const PREDICATE_EVAL = "https://provenant.dev/eval/v1";
const REPORT_BYTES = 1184;

export class BundleError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid?: string | null; sig: string }[];
}

export interface EnvelopeCheck {
  predicateType: string;
  signaturesValid: boolean;
  keyIdMatches: boolean;
}

export interface BundleCheck {
  envelopes: EnvelopeCheck[];
  allSignaturesValid: boolean;
  curve: "P-256" | "P-384";
  keyId: string;
  bindingKeyOk: boolean;
  bindingNonceOk: boolean;
  manifestDigest: string;
  manifestKind: "finetune" | "eval";
  modelHash: string;
  parentModelHash: string | null;
  evidence: {
    provider: string;
    reportVersion: number;
    product: string;
    reportedTcb: bigint;
    measurement: string;
    measurementHash: string;
  };
}

export function fromBase64(text: string, what: string): Uint8Array {
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    throw new BundleError("BUNDLE_MALFORMED", `${what} is not base64`);
  }
}

const utf8 = new TextEncoder();

/** DSSE v1 pre-authentication encoding. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8.encode(payloadType);
  const head = utf8.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

const OID_P256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384 = [0x2b, 0x81, 0x04, 0x00, 0x22];

function contains(haystack: Uint8Array, needle: number[]): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** The curve and uncompressed point of an EC SubjectPublicKeyInfo (RFC 5480). */
export function parseSpki(spki: Uint8Array): { curve: "P-256" | "P-384"; point: Uint8Array } {
  const curve = contains(spki, OID_P384) ? "P-384" : contains(spki, OID_P256) ? "P-256" : null;
  if (curve === null) throw new BundleError("BUNDLE_MALFORMED", "signer key is not a P-256 or P-384 EC key");
  const size = curve === "P-384" ? 97 : 65;
  const point = spki.subarray(spki.length - size);
  if (point[0] !== 0x04 || spki[spki.length - size - 1] !== 0x00) {
    throw new BundleError("BUNDLE_MALFORMED", "signer key is not an uncompressed EC point");
  }
  return { curve, point };
}

function verifySignature(curve: "P-256" | "P-384", point: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  const ecdsa = curve === "P-384" ? p384 : p256;
  const raw = curve === "P-384" ? 96 : 64;
  // OpenSSL and node:crypto sign with high S half the time: accept both halves, as they do.
  const formats: ("der" | "compact")[] = sig.length === raw ? ["compact", "der"] : ["der"];
  for (const format of formats) {
    try {
      if (ecdsa.verify(sig, message, point, { prehash: true, lowS: false, format })) return true;
    } catch {
      // A signature in the other encoding does not parse; try the next one.
    }
  }
  return false;
}

function predicateTypeOf(payload: Uint8Array): string {
  try {
    const json = JSON.parse(new TextDecoder().decode(payload)) as { predicateType?: unknown };
    return typeof json.predicateType === "string" ? json.predicateType : "";
  } catch {
    return "";
  }
}

function productOf(report: Uint8Array): string {
  // CPUID family/model at 0x188/0x189 (report version ≥ 3; AMD SEV-SNP ABI 56860, Table 23).
  const family = report[0x188]!;
  const model = report[0x189]!;
  if (family === 0x19 && model <= 0x0f) return "Milan";
  if (family === 0x19 && model >= 0x10 && model <= 0x1f) return "Genoa";
  if (family === 0x19 && model >= 0xa0 && model <= 0xaf) return "Genoa";
  if (family === 0x1a) return "Turin";
  return "unknown";
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Checks a bundle's bytes; BundleError for anything that is not a bundle. */
export function checkBundle(bytes: Uint8Array): BundleCheck {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new BundleError("BUNDLE_MALFORMED", "the file is not JSON");
  }
  const b = json as {
    mediaType?: unknown;
    envelopes?: unknown;
    signer?: { publicKey?: unknown };
    nonce?: unknown;
    evidence?: { cpu?: { report?: unknown; provider?: unknown } };
  };
  if (b.mediaType !== BUNDLE_MEDIA_TYPE)
    throw new BundleError("BUNDLE_MALFORMED", `mediaType is not ${BUNDLE_MEDIA_TYPE}`);
  if (!Array.isArray(b.envelopes) || b.envelopes.length === 0) {
    throw new BundleError("BUNDLE_MALFORMED", "the bundle has no envelopes");
  }
  if (typeof b.signer?.publicKey !== "string") throw new BundleError("BUNDLE_MALFORMED", "signer.publicKey is missing");
  if (typeof b.evidence?.cpu?.report !== "string")
    throw new BundleError("BUNDLE_MALFORMED", "evidence.cpu.report is missing");
  const spki = fromBase64(b.signer.publicKey, "signer.publicKey");
  const { curve, point } = parseSpki(spki);
  const keyId = bytesToHex(sha256(spki));

  let manifest: { payload: Uint8Array; kind: "finetune" | "eval" } | null = null;
  const envelopes = (b.envelopes as Envelope[]).map((e, i) => {
    if (typeof e?.payload !== "string" || typeof e.payloadType !== "string" || !Array.isArray(e.signatures)) {
      throw new BundleError("DSSE_MALFORMED", `envelope ${i} is not a DSSE envelope`);
    }
    const payload = fromBase64(e.payload, `envelopes[${i}].payload`);
    const message = pae(e.payloadType, payload);
    const signaturesValid =
      e.signatures.length > 0 &&
      e.signatures.every((s) => verifySignature(curve, point, message, fromBase64(s.sig, `envelopes[${i}] sig`)));
    const keyIdMatches = e.signatures.every((s) => s.keyid === undefined || s.keyid === null || s.keyid === keyId);
    const predicateType = predicateTypeOf(payload);
    if (predicateType === PREDICATE_SLSA || predicateType === PREDICATE_EVAL) {
      if (manifest !== null) throw new BundleError("BUNDLE_MALFORMED", "more than one manifest envelope");
      manifest = { payload, kind: predicateType === PREDICATE_SLSA ? "finetune" : "eval" };
    }
    return { predicateType, signaturesValid, keyIdMatches };
  });
  const found = manifest as { payload: Uint8Array; kind: "finetune" | "eval" } | null;
  if (found === null) throw new BundleError("BUNDLE_MALFORMED", "no fine-tune or eval manifest envelope");

  const statement = JSON.parse(new TextDecoder().decode(found.payload)) as {
    subject?: { digest?: { sha256?: string } }[];
    predicate?: { buildDefinition?: { resolvedDependencies?: { name?: string; digest?: { sha256?: string } }[] } };
  };
  const modelHash = statement.subject?.[0]?.digest?.sha256;
  if (typeof modelHash !== "string") throw new BundleError("STATEMENT_INVALID", "the manifest names no subject digest");
  const parent = statement.predicate?.buildDefinition?.resolvedDependencies?.find((d) => d.name === "base-model");

  const report = fromBase64(b.evidence.cpu.report, "evidence.cpu.report");
  if (report.length !== REPORT_BYTES) throw new BundleError("SNP_MALFORMED", `report is ${report.length} bytes`);
  const reportData = report.subarray(0x50, 0x90);
  const nonce = typeof b.nonce === "string" ? b.nonce.toLowerCase() : "";
  const measurement = report.subarray(0x90, 0xc0);
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  return {
    envelopes,
    allSignaturesValid: envelopes.every((e) => e.signaturesValid && e.keyIdMatches),
    curve,
    keyId,
    bindingKeyOk: sameBytes(reportData.subarray(0, 32), sha256(spki)),
    bindingNonceOk: bytesToHex(reportData.subarray(32, 64)) === nonce,
    manifestDigest: bytesToHex(sha256(found.payload)),
    manifestKind: found.kind,
    modelHash: modelHash.toLowerCase(),
    parentModelHash: parent?.digest?.sha256?.toLowerCase() ?? null,
    evidence: {
      provider: typeof b.evidence.cpu.provider === "string" ? b.evidence.cpu.provider : "unknown",
      reportVersion: view.getUint32(0, true),
      product: productOf(report),
      reportedTcb: view.getBigUint64(0x180, true),
      measurement: bytesToHex(measurement),
      measurementHash: bytesToHex(sha256(measurement)),
    },
  };
}
