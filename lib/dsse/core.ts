// The browser-safe core of DSSE v1 (secure-systems-lab/dsse protocol.md), shared by lib/dsse (Node) and the explorer
// page: PAE, envelope parsing, strict base64, EC public keys read from their DER SubjectPublicKeyInfo (RFC 5480), and
// the two ECDSA signature encodings (DER, IEEE-P1363 r‖s). No node:* imports; verification here uses WebCrypto.
import { fromBase64, isBase64 } from "../encoding/index.ts";
import { MalformedInputError } from "../errors.ts";

export const INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

export interface DsseSignature {
  /** Optional key hint; absent, empty or null are all accepted (OMS envelope schema). */
  keyid?: string | null;
  /** Base64 signature over PAE(payloadType, payload). */
  sig: string;
}

export interface DsseEnvelope {
  payloadType: string;
  /** Base64 of the payload bytes exactly as signed. */
  payload: string;
  signatures: DsseSignature[];
}

const encoder = new TextEncoder();

/** UTF-8 length of a string (payload types are ASCII: their length, without encoding them). */
function utf8Length(text: string): number {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return encoder.encode(text).length;
  return text.length;
}

/**
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal bytes (protocol.md).
 * Written into one buffer of the exact size (the payload is copied once).
 */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const typeLength = utf8Length(payloadType);
  const head = `DSSEv1 ${typeLength} ${payloadType} ${payload.length} `;
  const headLength = head.length - payloadType.length + typeLength;
  const out = new Uint8Array(headLength + payload.length);
  encoder.encodeInto(head, out);
  out.set(payload, headLength);
  return out;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Strict base64: the standard alphabet with padding, or the URL-safe alphabet without (DSSE allows both).
 * Whitespace, stray characters and bad padding are refused with the given code.
 */
export function decodeBase64(
  text: string,
  code: "DSSE_MALFORMED" | "BUNDLE_MALFORMED" | "OMS_MALFORMED",
  path: string,
): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === undefined) throw new MalformedInputError(code, `${path}: not valid base64`, { details: { path } });
  return bytes;
}

/** Checks the shape of an untrusted envelope (object, strings, base64, at least one signature). */
export function parseEnvelope(json: unknown): DsseEnvelope {
  return readEnvelope(json, false).envelope;
}

/** An envelope with its payload and signatures decoded, each once (parseEnvelopeDecoded). */
export interface DecodedEnvelope {
  envelope: DsseEnvelope;
  /** The payload bytes exactly as signed. */
  payload: Uint8Array;
  /** Each signature's bytes, in the envelope's order. */
  signatures: Uint8Array[];
}

/**
 * parseEnvelope, keeping what the base64 checks decode: the same checks and errors, and a verifier that takes the
 * bytes (lib/dsse verifyEnvelopeBytes) decodes nothing again.
 */
export function parseEnvelopeDecoded(json: unknown): DecodedEnvelope {
  return readEnvelope(json, true);
}

function readEnvelope(json: unknown, decode: boolean): DecodedEnvelope {
  const fail = (path: string, message: string): never => {
    throw new MalformedInputError("DSSE_MALFORMED", `DSSE envelope: ${path}: ${message}`, { details: { path } });
  };
  /** Strict base64: checked only, or checked and decoded in the same pass (fromBase64 accepts what isBase64 does). */
  const base64 = (text: string, path: string): Uint8Array => {
    const bytes = decode ? fromBase64(text) : isBase64(text) ? NOT_DECODED : undefined;
    return bytes ?? fail(path, "not valid base64");
  };
  if (!isPlainObject(json)) return fail("$", "expected an object");
  for (const key of Object.keys(json)) {
    if (key !== "payloadType" && key !== "payload" && key !== "signatures") fail(key, "unknown field");
  }
  const { payloadType, payload, signatures } = json;
  if (typeof payloadType !== "string" || payloadType === "") fail("payloadType", "expected a non-empty string");
  if (typeof payload !== "string") fail("payload", "expected a base64 string");
  const payloadBytes = base64(payload as string, "payload");
  if (!Array.isArray(signatures) || signatures.length === 0) fail("signatures", "expected a non-empty array");
  const out: DsseSignature[] = [];
  const signatureBytes: Uint8Array[] = [];
  for (const [index, entry] of (signatures as unknown[]).entries()) {
    const path = `signatures[${index}]`;
    if (!isPlainObject(entry)) return fail(path, "expected an object");
    for (const key of Object.keys(entry)) if (key !== "sig" && key !== "keyid") fail(`${path}.${key}`, "unknown field");
    if (typeof entry.sig !== "string" || entry.sig === "") fail(`${path}.sig`, "expected a non-empty base64 string");
    // Checked, and decoded only when asked: whoever verifies a parseEnvelope result decodes it.
    signatureBytes.push(base64(entry.sig as string, `${path}.sig`));
    const keyid = entry.keyid;
    if (keyid !== undefined && keyid !== null && typeof keyid !== "string") fail(`${path}.keyid`, "expected a string");
    const signature: DsseSignature = { sig: entry.sig as string };
    if (keyid !== undefined) signature.keyid = keyid as string | null;
    out.push(signature);
  }
  return {
    envelope: { payloadType: payloadType as string, payload: payload as string, signatures: out },
    payload: payloadBytes,
    signatures: signatureBytes,
  };
}

/** What readEnvelope keeps for base64 it only checked (parseEnvelope discards it). */
const NOT_DECODED = new Uint8Array(0);

// ── EC keys and signatures ──────────────────────────────────────────────────────────────────────────────────────

export type EcCurve = "P-256" | "P-384" | "P-521";

/** Named curves (RFC 5480 §2.1.1.1), their field size in bytes and the hash DESIGN §3.2 pairs with each. */
export const EC_CURVES: Readonly<
  Record<EcCurve, { oid: string; fieldBytes: number; hash: "SHA-256" | "SHA-384" | "SHA-512" }>
> = {
  "P-256": { oid: "1.2.840.10045.3.1.7", fieldBytes: 32, hash: "SHA-256" },
  "P-384": { oid: "1.3.132.0.34", fieldBytes: 48, hash: "SHA-384" },
  "P-521": { oid: "1.3.132.0.35", fieldBytes: 66, hash: "SHA-512" },
};

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";

export interface EcPublicKey {
  curve: EcCurve;
  /** The uncompressed point 04 ‖ X ‖ Y (SEC 1 §2.3.3). */
  point: Uint8Array;
}

interface Tlv {
  tag: number;
  /** Start and end of the value. */
  start: number;
  end: number;
}

/** Reads one DER TLV at `offset` inside [offset, limit): definite lengths in their minimal form only (X.690 §10.1). */
function readTlv(bytes: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = bytes[offset]!;
  let length = bytes[offset + 1]!;
  let start = offset + 2;
  if (length >= 0x80) {
    const count = length & 0x7f;
    // Keys and signatures are far below 64 KiB: one or two length bytes, and the long form only when needed.
    if (count === 0 || count > 2 || start + count > limit || bytes[start] === 0) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | bytes[start + i]!;
    if (length < 0x80) return undefined;
    start += count;
  }
  if (start + length > limit) return undefined;
  return { tag, start, end: start + length };
}

/** Dotted form of a DER OBJECT IDENTIFIER value (X.690 §8.19). */
function oidToString(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0 || bytes[bytes.length - 1]! >= 0x80) return undefined;
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (value === 0 && b === 0x80) return undefined; // non-minimal arc
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) return undefined;
    if (b < 0x80) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join(".");
}

/**
 * Reads an EC public key from its DER SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve },
 * BIT STRING (no unused bits) 04 ‖ X ‖ Y } and nothing after it (RFC 5480 §2). P-256, P-384 and P-521 with an
 * uncompressed point; anything else is refused with `code`. The point is not checked to be on the curve here:
 * importing the key (node:crypto or WebCrypto) does that.
 */
export function parseEcSpki(
  spki: Uint8Array,
  code: "DSSE_MALFORMED" | "BUNDLE_MALFORMED" | "OMS_MALFORMED" = "DSSE_MALFORMED",
): EcPublicKey {
  const fail = (message: string): never => {
    throw new MalformedInputError(code, `public key: ${message}`, {
      details: { expected: "EC P-256/P-384/P-521 SPKI" },
    });
  };
  const outer = readTlv(spki, 0, spki.length);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== spki.length) return fail("not a DER SEQUENCE");
  const algorithm = readTlv(spki, outer.start, outer.end);
  if (algorithm === undefined || algorithm.tag !== 0x30) return fail("no AlgorithmIdentifier");
  const kind = readTlv(spki, algorithm.start, algorithm.end);
  if (kind === undefined || kind.tag !== 0x06) return fail("no algorithm OID");
  if (oidToString(spki.subarray(kind.start, kind.end)) !== OID_EC_PUBLIC_KEY) return fail("not an EC key");
  const named = readTlv(spki, kind.end, algorithm.end);
  if (named === undefined || named.tag !== 0x06 || named.end !== algorithm.end) return fail("no named curve");
  const oid = oidToString(spki.subarray(named.start, named.end));
  const curve = (Object.keys(EC_CURVES) as EcCurve[]).find((c) => EC_CURVES[c].oid === oid);
  if (curve === undefined) return fail(`unsupported curve ${String(oid)}`);
  const bits = readTlv(spki, algorithm.end, outer.end);
  if (bits === undefined || bits.tag !== 0x03 || bits.end !== outer.end) return fail("no BIT STRING");
  const size = EC_CURVES[curve].fieldBytes;
  if (bits.end - bits.start !== 2 + 2 * size || spki[bits.start] !== 0 || spki[bits.start + 1] !== 0x04) {
    return fail(`expected an uncompressed ${curve} point (${1 + 2 * size} bytes)`);
  }
  return { curve, point: spki.slice(bits.start + 1, bits.end) };
}

/** The minimal DER INTEGER content of an unsigned big-endian number (X.690 §8.3). */
function derInteger(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const body = magnitude.subarray(i);
  const pad = body[0]! >= 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + body.length);
  out[0] = 0x02;
  out[1] = pad + body.length;
  out.set(body, 2 + pad);
  return out;
}

function derLength(length: number): number[] {
  return length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, length >> 8, length & 0xff];
}

/** IEEE-P1363 r ‖ s (two halves of equal size) → DER ECDSA-Sig-Value SEQUENCE { r INTEGER, s INTEGER }. */
export function p1363ToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new MalformedInputError("DSSE_MALFORMED", `an r‖s signature has an even, non-zero length, got ${raw.length}`);
  }
  const r = derInteger(raw.subarray(0, raw.length / 2));
  const s = derInteger(raw.subarray(raw.length / 2));
  const head = [0x30, ...derLength(r.length + s.length)];
  const out = new Uint8Array(head.length + r.length + s.length);
  out.set(head, 0);
  out.set(r, head.length);
  out.set(s, head.length + r.length);
  return out;
}

/** A positive, minimally encoded DER INTEGER of at most `size` bytes, left-padded to `size`; undefined otherwise. */
function readUnsigned(bytes: Uint8Array, tlv: Tlv, size: number): Uint8Array | undefined {
  let start = tlv.start;
  const length = tlv.end - start;
  if (tlv.tag !== 0x02 || length === 0 || bytes[start]! >= 0x80) return undefined;
  if (bytes[start] === 0 && length > 1) {
    if (bytes[start + 1]! < 0x80) return undefined; // a leading zero that is not needed: not DER
    start++;
  }
  if (tlv.end - start > size) return undefined;
  const out = new Uint8Array(size);
  out.set(bytes.subarray(start, tlv.end), size - (tlv.end - start));
  return out;
}

/**
 * DER ECDSA-Sig-Value → IEEE-P1363 r ‖ s for a curve whose field is `size` bytes. Strict DER, as OpenSSL's verify
 * is (it re-encodes and compares): minimal lengths and integers, no negative values, nothing after the SEQUENCE.
 * Undefined when `der` is not such a signature.
 */
export function derToP1363(der: Uint8Array, size: number): Uint8Array | undefined {
  const seq = readTlv(der, 0, der.length);
  if (seq === undefined || seq.tag !== 0x30 || seq.end !== der.length) return undefined;
  const rTlv = readTlv(der, seq.start, seq.end);
  if (rTlv === undefined) return undefined;
  const sTlv = readTlv(der, rTlv.end, seq.end);
  if (sTlv === undefined || sTlv.end !== seq.end) return undefined;
  const r = readUnsigned(der, rTlv, size);
  const s = readUnsigned(der, sTlv, size);
  if (r === undefined || s === undefined) return undefined;
  const out = new Uint8Array(2 * size);
  out.set(r, 0);
  out.set(s, size);
  return out;
}

/**
 * Every IEEE-P1363 reading of an untrusted ECDSA signature, the likelier first: a DER signature starts with SEQUENCE
 * (0x30), a P1363 one has exactly twice the field size. DSSE verifiers accept both encodings (DESIGN §3.2), and
 * Node (lib/dsse) and the page (WebCrypto, which takes only r‖s) verify the same candidates.
 */
export function signatureCandidates(signature: Uint8Array, size: number): Uint8Array[] {
  const fromDer = derToP1363(signature, size);
  const raw = signature.length === 2 * size ? signature : undefined;
  const ordered = signature[0] === 0x30 ? [fromDer, raw] : [raw, fromDer];
  return ordered.filter((c): c is Uint8Array => c !== undefined);
}

/** WebCrypto's BufferSource type wants an ArrayBuffer-backed view; every view here is one (none is shared). */
function asBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/**
 * True when `signature` (DER or r‖s) over `message` verifies with the EC key `spki` and the hash its curve calls for,
 * using WebCrypto (the page; Node's globalThis.crypto too). High-S signatures are accepted, as OpenSSL accepts them.
 * DSSE_MALFORMED when the key is not a supported EC SPKI; false for a key WebCrypto refuses (a point off the curve).
 */
export async function verifyEcSignatureWeb(
  spki: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<boolean> {
  const { curve } = parseEcSpki(spki);
  let key: CryptoKey;
  try {
    key = await subtle.importKey("spki", asBuffer(spki), { name: "ECDSA", namedCurve: curve }, false, ["verify"]);
  } catch {
    return false;
  }
  for (const raw of signatureCandidates(signature, EC_CURVES[curve].fieldBytes)) {
    if (await subtle.verify({ name: "ECDSA", hash: EC_CURVES[curve].hash }, key, asBuffer(raw), asBuffer(message)))
      return true;
  }
  return false;
}
