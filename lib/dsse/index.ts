// DSSE v1 (secure-systems-lab/dsse protocol.md): the pre-authentication encoding, ECDSA signing with the hash that
// follows the curve, and verification that accepts DER and IEEE-P1363 signatures. Parsing trusts nothing: every field
// is type-checked and base64 is decoded strictly. Verification trusts only the public key it is handed.
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

import { MalformedInputError, VerificationError } from "../errors.ts";

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

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal bytes (protocol.md). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType);
  const head = encoder.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** The digest that goes with a key: P-256→SHA-256, P-384→SHA-384, P-521→SHA-512; null for Ed25519. */
export function hashAlgorithmOf(key: KeyObject): "sha256" | "sha384" | "sha512" | null {
  if (key.asymmetricKeyType === "ed25519") return null;
  if (key.asymmetricKeyType !== "ec") {
    throw new MalformedInputError("DSSE_MALFORMED", `unsupported key type ${String(key.asymmetricKeyType)}`, {
      details: { expected: "ec (P-256, P-384, P-521) or ed25519", actual: key.asymmetricKeyType },
    });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  switch (curve) {
    case "prime256v1":
      return "sha256";
    case "secp384r1":
      return "sha384";
    case "secp521r1":
      return "sha512";
    default:
      throw new MalformedInputError("DSSE_MALFORMED", `unsupported curve ${String(curve)}`, {
        details: { expected: "P-256, P-384 or P-521", actual: curve },
      });
  }
}

/** Hex SHA-256 of the DER SubjectPublicKeyInfo (DESIGN §3.2). Accepts a private key too (its public half). */
export function keyIdOf(publicKey: KeyObject): string {
  const key = publicKey.type === "private" ? createPublicKey(publicKey) : publicKey;
  return createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest("hex");
}

/**
 * Signs `payload` as a DSSE envelope: ECDSA with the curve's hash, DER-encoded signature. `keyid` defaults to
 * keyIdOf(the public key); pass "" to write an empty one (as model_signing does).
 */
export function signEnvelope(
  payload: Uint8Array,
  payloadType: string,
  privateKey: KeyObject,
  keyid?: string,
): DsseEnvelope {
  if (privateKey.type !== "private") {
    throw new MalformedInputError("DSSE_MALFORMED", "signing needs a private key", {
      details: { expected: "private", actual: privateKey.type },
    });
  }
  const algorithm = hashAlgorithmOf(privateKey);
  const signature = sign(algorithm, pae(payloadType, payload), { key: privateKey, dsaEncoding: "der" });
  return {
    payloadType,
    payload: Buffer.from(payload).toString("base64"),
    signatures: [{ keyid: keyid ?? keyIdOf(privateKey), sig: signature.toString("base64") }],
  };
}

/** True when `signature` (DER or raw r‖s) is a valid signature of `message` by `publicKey`. */
export function verifySignatureBytes(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  const algorithm = hashAlgorithmOf(publicKey);
  if (algorithm === null) return safeVerify(null, message, publicKey, signature, undefined);
  // A DER signature starts with SEQUENCE (0x30); a P1363 one has a fixed length of twice the field size. Try the
  // likely encoding first, then the other, so neither depends on a guess.
  const encodings: ("der" | "ieee-p1363")[] = signature[0] === 0x30 ? ["der", "ieee-p1363"] : ["ieee-p1363", "der"];
  return encodings.some((encoding) => safeVerify(algorithm, message, publicKey, signature, encoding));
}

function safeVerify(
  algorithm: string | null,
  message: Uint8Array,
  key: KeyObject,
  signature: Uint8Array,
  dsaEncoding: "der" | "ieee-p1363" | undefined,
): boolean {
  try {
    return verify(algorithm, message, dsaEncoding === undefined ? key : { key, dsaEncoding }, signature);
  } catch {
    return false;
  }
}

/**
 * Verifies that at least one signature of the envelope is valid for `publicKey` over PAE(payloadType, payload)
 * and returns the payload bytes exactly as signed. Throws DSSE_BAD_SIGNATURE otherwise.
 */
export function verifyEnvelope(envelope: DsseEnvelope, publicKey: KeyObject): Uint8Array {
  const checked = parseEnvelope(envelope);
  const payload = decodeBase64(checked.payload, "DSSE_MALFORMED", "payload");
  const message = pae(checked.payloadType, payload);
  for (const [index, signature] of checked.signatures.entries()) {
    const sig = decodeBase64(signature.sig, "DSSE_MALFORMED", `signatures[${index}].sig`);
    if (verifySignatureBytes(publicKey, message, sig)) return payload;
  }
  throw new VerificationError("DSSE_BAD_SIGNATURE", "no envelope signature verifies with the given public key", {
    details: { signatures: checked.signatures.length, keyid: keyIdOf(publicKey) },
  });
}

/** Checks the shape of an untrusted envelope (object, strings, base64, at least one signature). */
export function parseEnvelope(json: unknown): DsseEnvelope {
  const fail = (path: string, message: string): never => {
    throw new MalformedInputError("DSSE_MALFORMED", `DSSE envelope: ${path}: ${message}`, { details: { path } });
  };
  if (!isPlainObject(json)) return fail("$", "expected an object");
  for (const key of Object.keys(json)) {
    if (key !== "payloadType" && key !== "payload" && key !== "signatures") fail(key, "unknown field");
  }
  const { payloadType, payload, signatures } = json;
  if (typeof payloadType !== "string" || payloadType === "") fail("payloadType", "expected a non-empty string");
  if (typeof payload !== "string") fail("payload", "expected a base64 string");
  decodeBase64(payload as string, "DSSE_MALFORMED", "payload");
  if (!Array.isArray(signatures) || signatures.length === 0) fail("signatures", "expected a non-empty array");
  const out: DsseSignature[] = [];
  for (const [index, entry] of (signatures as unknown[]).entries()) {
    const path = `signatures[${index}]`;
    if (!isPlainObject(entry)) return fail(path, "expected an object");
    for (const key of Object.keys(entry)) if (key !== "sig" && key !== "keyid") fail(`${path}.${key}`, "unknown field");
    if (typeof entry.sig !== "string" || entry.sig === "") fail(`${path}.sig`, "expected a non-empty base64 string");
    decodeBase64(entry.sig as string, "DSSE_MALFORMED", `${path}.sig`);
    const keyid = entry.keyid;
    if (keyid !== undefined && keyid !== null && typeof keyid !== "string") fail(`${path}.keyid`, "expected a string");
    const signature: DsseSignature = { sig: entry.sig as string };
    if (keyid !== undefined) signature.keyid = keyid as string | null;
    out.push(signature);
  }
  return { payloadType: payloadType as string, payload: payload as string, signatures: out };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64: the standard alphabet with padding, or the URL-safe alphabet without (DSSE allows both).
 * Whitespace, stray characters and bad padding are refused with the given code.
 */
export function decodeBase64(
  text: string,
  code: "DSSE_MALFORMED" | "BUNDLE_MALFORMED" | "OMS_MALFORMED",
  path: string,
): Uint8Array {
  if (BASE64.test(text)) return new Uint8Array(Buffer.from(text, "base64"));
  if (BASE64URL.test(text) && text.length % 4 !== 1) return new Uint8Array(Buffer.from(text, "base64url"));
  throw new MalformedInputError(code, `${path}: not valid base64`, { details: { path } });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
