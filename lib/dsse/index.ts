// DSSE v1 (secure-systems-lab/dsse protocol.md) on node:crypto: ECDSA signing with the hash that follows the curve,
// and verification that accepts DER and IEEE-P1363 signatures. PAE, envelope parsing, base64 and the signature
// encodings live in core.ts, which the explorer page imports too. Verification trusts only the key it is handed.
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

import { MalformedInputError, VerificationError } from "../errors.ts";
import {
  EC_CURVES,
  pae,
  parseEcSpki,
  parseEnvelopeDecoded,
  signatureCandidates,
  type DsseEnvelope,
  type EcCurve,
} from "./core.ts";

export {
  EC_CURVES,
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  derToP1363,
  isPlainObject,
  p1363ToDer,
  pae,
  parseEcSpki,
  parseEnvelope,
  parseEnvelopeDecoded,
  signatureCandidates,
  verifyEcSignatureWeb,
  type DecodedEnvelope,
  type DsseEnvelope,
  type DsseSignature,
  type EcCurve,
  type EcPublicKey,
} from "./core.ts";

/** Node's curve names for the curves lib/dsse/core.ts knows. */
const NODE_CURVES: Readonly<Record<string, EcCurve>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

/** Curves of keys already looked at: reading `asymmetricKeyDetails` builds a new object on every access. */
const curves = new WeakMap<KeyObject, EcCurve>();

/** The curve of an EC key; DSSE_MALFORMED for any other key or curve. */
function curveOf(key: KeyObject): EcCurve {
  const known = curves.get(key);
  if (known !== undefined) return known;
  if (key.asymmetricKeyType !== "ec") {
    throw new MalformedInputError("DSSE_MALFORMED", `unsupported key type ${String(key.asymmetricKeyType)}`, {
      details: { expected: "ec (P-256, P-384, P-521) or ed25519", actual: key.asymmetricKeyType },
    });
  }
  const named = key.asymmetricKeyDetails?.namedCurve;
  const curve = named === undefined ? undefined : NODE_CURVES[named];
  if (curve === undefined) {
    throw new MalformedInputError("DSSE_MALFORMED", `unsupported curve ${String(named)}`, {
      details: { expected: "P-256, P-384 or P-521", actual: named },
    });
  }
  curves.set(key, curve);
  return curve;
}

/** Most signer keys kept imported (importEcPublicKey): publishers reuse few keys; a flood of new ones only evicts. */
const MAX_IMPORTED_KEYS = 256;
const importedKeys = new Map<string, KeyObject>();

/**
 * The node:crypto key of an EC DER SubjectPublicKeyInfo (P-256, P-384, P-521; RFC 5480), imported once per distinct
 * SPKI and kept in a bounded LRU: importing parses the DER and checks the point is on the curve, which costs about a
 * tenth of a P-384 verification, on every bundle of a key otherwise. Its curve is read once, from the DER (core.ts
 * parseEcSpki) and from node:crypto, and the two must agree. DSSE_MALFORMED for anything else; node:crypto's own
 * error when it refuses the DER (a point off the curve).
 */
export function importEcPublicKey(spki: Uint8Array): KeyObject {
  const id = Buffer.from(spki.buffer, spki.byteOffset, spki.length).toString("latin1");
  const cached = importedKeys.get(id);
  if (cached !== undefined) {
    // Most recently used last: the first entry is the one to evict.
    importedKeys.delete(id);
    importedKeys.set(id, cached);
    return cached;
  }
  const { curve } = parseEcSpki(spki);
  const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  if (curveOf(key) !== curve)
    throw new MalformedInputError("DSSE_MALFORMED", `the key's DER names ${curve}, node:crypto read another curve`);
  if (importedKeys.size >= MAX_IMPORTED_KEYS) importedKeys.delete(importedKeys.keys().next().value!);
  importedKeys.set(id, key);
  return key;
}

/** The digest that goes with a key: P-256→SHA-256, P-384→SHA-384, P-521→SHA-512; null for Ed25519. */
export function hashAlgorithmOf(key: KeyObject): "sha256" | "sha384" | "sha512" | null {
  if (key.asymmetricKeyType === "ed25519") return null;
  const hash = EC_CURVES[curveOf(key)].hash;
  return hash === "SHA-256" ? "sha256" : hash === "SHA-384" ? "sha384" : "sha512";
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
  // The same r‖s readings the page verifies with WebCrypto (core.ts): strict DER converted, or P1363 as it is.
  const size = EC_CURVES[curveOf(publicKey)].fieldBytes;
  return signatureCandidates(signature, size).some((raw) =>
    safeVerify(algorithm, message, publicKey, raw, "ieee-p1363"),
  );
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
  const decoded = parseEnvelopeDecoded(envelope);
  verifyEnvelopeBytes(decoded.envelope.payloadType, decoded.payload, decoded.signatures, publicKey);
  return decoded.payload;
}

/**
 * verifyEnvelope for an envelope whose payload and signatures were decoded once already (core.ts
 * parseEnvelopeDecoded, lib/bundle readBundleDecoded): at least one of `signatures` (DER or raw r‖s) must verify with
 * `publicKey` over PAE(payloadType, payload). Throws DSSE_BAD_SIGNATURE otherwise.
 */
export function verifyEnvelopeBytes(
  payloadType: string,
  payload: Uint8Array,
  signatures: readonly Uint8Array[],
  publicKey: KeyObject,
): void {
  const message = pae(payloadType, payload);
  for (const sig of signatures) if (verifySignatureBytes(publicKey, message, sig)) return;
  throw new VerificationError("DSSE_BAD_SIGNATURE", "no envelope signature verifies with the given public key", {
    details: { signatures: signatures.length, keyid: keyIdOf(publicKey) },
  });
}
