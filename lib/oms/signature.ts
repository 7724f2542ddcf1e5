// OMS signature files (`model.sig`): a Sigstore bundle v0.3 (sigstore/protobuf-specs sigstore_bundle.proto) holding a
// DSSE envelope with an OMS v1.0 in-toto statement, as sigstore/model-transparency `model_signing` writes them in key
// mode (`publicKey.hint` = hex SHA-256 of the PEM public key) and certificate mode (`x509CertificateChain`, leaf
// first). Verification trusts only the public key or the root certificates it is given, never material in the file.
import { createHash, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";

import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  isPlainObject,
  pae,
  parseEnvelope,
  signEnvelope,
  verifySignatureBytes,
  type DsseEnvelope,
} from "../dsse/index.ts";
import { MalformedInputError, ProvenantError, VerificationError } from "../errors.ts";
import { PREDICATE_OMS, STATEMENT_TYPE, type Statement } from "../intoto/index.ts";
import { parseStrictJson } from "../bundle/index.ts";
import type { SerializationMethod } from "./types.ts";

export const OMS_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
/** model_signing v0.2 predicate: one subject per file, no root digest (signing.py dsse_payload_to_manifest_compat). */
export const PREDICATE_OMS_COMPAT = "https://model_signing/Digests/v0.1";
/** Largest OMS signature accepted; a manifest of a million shards stays well below. */
export const MAX_OMS_SIGNATURE_BYTES = 256 * 1024 * 1024;

export interface OmsVerificationMaterial {
  publicKey?: { hint?: string | null; rawBytes?: string };
  x509CertificateChain?: { certificates: { rawBytes: string }[] };
  certificate?: { rawBytes: string };
  tlogEntries?: unknown[];
  timestampVerificationData?: unknown;
}

export interface OmsSignature {
  mediaType: string;
  verificationMaterial: OmsVerificationMaterial;
  dsseEnvelope: DsseEnvelope;
}

/** What an OMS statement says the model is, normalised from the (possibly older) signed payload. */
export interface OmsManifest {
  modelName: string;
  /** Subject sha256 (hex); for the v0.1 compat predicate, the root recomputed from the listed files. */
  rootDigest: string;
  method: SerializationMethod;
  shardSize?: number;
  allowSymlinks: boolean;
  ignorePaths: string[];
  /** Resource name (normalised POSIX path, or path:start:end) → hex digest, in the order listed. */
  resources: Map<string, string>;
  compat: boolean;
}

function malformed(path: string, message: string, cause?: unknown): never {
  throw new MalformedInputError("OMS_MALFORMED", `OMS signature: ${path}: ${message}`, {
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

function rawBytesList(value: unknown, path: string): void {
  if (!Array.isArray(value) || value.length === 0) malformed(path, "expected a non-empty array");
  (value as unknown[]).forEach((c, i) => {
    if (!isPlainObject(c) || typeof c.rawBytes !== "string" || c.rawBytes === "") {
      malformed(`${path}[${i}].rawBytes`, "expected base64 DER");
    }
    parseCertificate(
      decodeBase64(c.rawBytes as string, "OMS_MALFORMED", `${path}[${i}].rawBytes`),
      `${path}[${i}].rawBytes`,
    );
  });
}

/** A DER (or PEM) certificate, or OMS_MALFORMED naming where it came from: never node's raw Error/TypeError. */
function parseCertificate(der: Uint8Array, path: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (error) {
    return malformed(path, "a certificate does not parse (expected DER X.509)", error);
  }
}

/**
 * Reads an OMS signature file (a Sigstore bundle) and checks its shape against the OMS v1.0 bundle schema, with the
 * tolerances the reference verifier has: keyid absent, empty or null; `publicKey.rawBytes` instead of `hint`.
 */
export function parseOmsSignature(bytes: Uint8Array): OmsSignature {
  if (bytes.length === 0) malformed("$", "empty file");
  if (bytes.length > MAX_OMS_SIGNATURE_BYTES) malformed("$", `larger than ${MAX_OMS_SIGNATURE_BYTES} bytes`);
  const json = parseStrictJson(bytes, "OMS_MALFORMED");
  if (!isPlainObject(json)) return malformed("$", "expected an object");
  for (const key of Object.keys(json)) {
    if (key !== "mediaType" && key !== "verificationMaterial" && key !== "dsseEnvelope")
      malformed(key, "unknown field");
  }
  if (typeof json.mediaType !== "string" || !json.mediaType.startsWith("application/vnd.dev.sigstore.bundle")) {
    malformed("mediaType", "expected a Sigstore bundle media type");
  }
  const vm = json.verificationMaterial;
  if (!isPlainObject(vm)) return malformed("verificationMaterial", "missing");
  if (vm.tlogEntries !== undefined && !Array.isArray(vm.tlogEntries))
    malformed("verificationMaterial.tlogEntries", "expected an array");
  const material = (["publicKey", "x509CertificateChain", "certificate"] as const).filter((k) => vm[k] !== undefined);
  if (material.length > 1) {
    malformed(
      "verificationMaterial",
      `expected one of publicKey, x509CertificateChain or certificate, got ${material.join(", ")}`,
    );
  }
  if (vm.publicKey !== undefined) {
    const pk = vm.publicKey;
    if (!isPlainObject(pk)) return malformed("verificationMaterial.publicKey", "expected an object");
    const hasHint = typeof pk.hint === "string";
    const hasRaw = typeof pk.rawBytes === "string";
    if (!hasHint && !hasRaw) malformed("verificationMaterial.publicKey", "expected hint or rawBytes");
    if (pk.hint !== undefined && pk.hint !== null && typeof pk.hint !== "string")
      malformed("verificationMaterial.publicKey.hint", "expected a string");
    if (hasRaw) decodeBase64(pk.rawBytes as string, "OMS_MALFORMED", "verificationMaterial.publicKey.rawBytes");
  } else if (vm.x509CertificateChain !== undefined) {
    const chain = vm.x509CertificateChain;
    if (!isPlainObject(chain)) return malformed("verificationMaterial.x509CertificateChain", "expected an object");
    rawBytesList(chain.certificates, "verificationMaterial.x509CertificateChain.certificates");
  } else if (vm.certificate !== undefined) {
    rawBytesList([vm.certificate], "verificationMaterial.certificate");
    if (!Array.isArray(vm.tlogEntries) || vm.tlogEntries.length === 0) {
      malformed("verificationMaterial.tlogEntries", "Sigstore keyless signatures need transparency log entries");
    }
  } else {
    malformed("verificationMaterial", "expected publicKey, x509CertificateChain or certificate");
  }
  let envelope: DsseEnvelope;
  try {
    envelope = parseEnvelope(json.dsseEnvelope);
  } catch (error) {
    return malformed("dsseEnvelope", error instanceof Error ? error.message : String(error), error);
  }
  if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE)
    malformed("dsseEnvelope.payloadType", `expected ${INTOTO_PAYLOAD_TYPE}`);
  return {
    mediaType: json.mediaType as string,
    verificationMaterial: vm as OmsVerificationMaterial,
    dsseEnvelope: envelope,
  };
}

/** The key hint model_signing writes: hex SHA-256 of the public key as PEM SubjectPublicKeyInfo. */
export function keyHintOf(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "pem" }))
    .digest("hex");
}

/** Writes a signature file the way model_signing does: compact JSON, keyid "", tlogEntries []. */
export function writeOmsSignature(signature: OmsSignature): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(signature));
}

/**
 * Signs an OMS statement. Key mode by default; with `certificates` (DER, signing certificate first, then the chain
 * up to but excluding nothing: whatever the verifier needs) it writes certificate mode.
 */
export function signOmsStatement(
  statement: Statement,
  privateKey: KeyObject,
  options: { certificates?: readonly Uint8Array[] } = {},
): OmsSignature {
  const payload = new TextEncoder().encode(JSON.stringify(statement, null, 2));
  const envelope = signEnvelope(payload, INTOTO_PAYLOAD_TYPE, privateKey, "");
  let verificationMaterial: OmsVerificationMaterial;
  if (options.certificates !== undefined && options.certificates.length > 0) {
    const leaf = parseCertificate(options.certificates[0]!, "certificates[0]");
    const mine = createPublicKey(privateKey).export({ type: "spki", format: "der" });
    if (!leaf.publicKey.export({ type: "spki", format: "der" }).equals(mine)) {
      throw new MalformedInputError(
        "OMS_CHAIN_INVALID",
        "the signing certificate's public key is not the signing key's",
      );
    }
    verificationMaterial = {
      x509CertificateChain: {
        certificates: options.certificates.map((c) => ({ rawBytes: Buffer.from(c).toString("base64") })),
      },
      tlogEntries: [],
    };
  } else {
    verificationMaterial = { publicKey: { hint: keyHintOf(privateKey) }, tlogEntries: [] };
  }
  return { mediaType: OMS_BUNDLE_MEDIA_TYPE, verificationMaterial, dsseEnvelope: envelope };
}

/** Python's repr() of bytes, which model_signing v0.2's buggy PAE signed (sign_sigstore_pb.pae_compat). */
function pythonBytesRepr(bytes: Uint8Array): string {
  const hasSingle = bytes.includes(0x27);
  const quote = hasSingle && !bytes.includes(0x22) ? '"' : "'";
  let out = "b" + quote;
  for (const b of bytes) {
    if (b === 0x5c) out += "\\\\";
    else if (b === quote.charCodeAt(0)) out += "\\" + quote;
    else if (b === 0x09) out += "\\t";
    else if (b === 0x0a) out += "\\n";
    else if (b === 0x0d) out += "\\r";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\x" + b.toString(16).padStart(2, "0");
  }
  return out + quote;
}

/** Exported for tests. */
export function paeCompat(payload: Uint8Array): Uint8Array {
  return new TextEncoder().encode(
    `DSSEV1 ${INTOTO_PAYLOAD_TYPE.length} ${INTOTO_PAYLOAD_TYPE} ${payload.length} ${pythonBytesRepr(payload)}`,
  );
}

/** Reads the digitalSignature bit of the KeyUsage extension (RFC 5280 §4.2.1.3) from a certificate's DER. */
function hasDigitalSignatureUsage(der: Uint8Array): boolean | undefined {
  const oid = [0x06, 0x03, 0x55, 0x1d, 0x0f];
  outer: for (let i = 0; i + oid.length < der.length; i++) {
    for (let j = 0; j < oid.length; j++) if (der[i + j] !== oid[j]) continue outer;
    let k = i + oid.length;
    if (der[k] === 0x01) k += 3; // critical BOOLEAN
    if (der[k] !== 0x04) return undefined; // OCTET STRING
    k += 2;
    if (der[k] !== 0x03) return undefined; // BIT STRING
    const first = der[k + 3];
    return first !== undefined && (first & 0x80) !== 0;
  }
  return undefined;
}

function chainError(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError("OMS_CHAIN_INVALID", message, { details });
}

function validAt(cert: X509Certificate, at: Date): boolean {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  return from.getTime() <= at.getTime() && at.getTime() <= to.getTime();
}

function isSelfSigned(cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(cert) && cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks a certificate-mode chain (leaf first, then untrusted intermediates) up to a self-signed root among
 * `trusted`, at the leaf's notBefore as model_signing does, and that the leaf may sign. Returns the leaf's public key.
 */
export function verifyCertificateChain(chain: readonly Uint8Array[], trusted: readonly X509Certificate[]): KeyObject {
  if (trusted.length === 0) chainError("no trusted certificates given (--certificate-chain)");
  if (chain.length === 0) malformed("verificationMaterial.x509CertificateChain.certificates", "expected a certificate");
  const certs: X509Certificate[] = chain.map((der, i) =>
    parseCertificate(der, `verificationMaterial.x509CertificateChain.certificates[${i}]`),
  );
  const leaf = certs[0]!;
  const at = new Date(leaf.validFrom);
  const trustedDer = trusted.map((t) => t.raw);
  const candidates = [...certs.slice(1), ...trusted];
  let current = leaf;
  for (let depth = 0; depth < 10; depth++) {
    if (!validAt(current, at))
      chainError(`${current.subject} is not valid at ${at.toISOString()}`, { subject: current.subject });
    const isTrusted = trustedDer.some((d) => d.equals(current.raw));
    if (isTrusted && isSelfSigned(current)) {
      if (current === leaf) chainError("the signing certificate is itself a trusted root");
      const usage = hasDigitalSignatureUsage(leaf.raw);
      const codeSigning = (leaf.keyUsage ?? []).includes("1.3.6.1.5.5.7.3.3");
      if (usage !== true && !codeSigning) chainError("the signing certificate may not be used for signing");
      return leaf.publicKey;
    }
    const issuer = candidates.find((c) => {
      if (c === current || c.raw.equals(current.raw)) return false;
      try {
        return current.checkIssued(c) && current.verify(c.publicKey);
      } catch {
        return false;
      }
    });
    if (issuer === undefined)
      chainError(`no trusted issuer found for ${current.subject}`, { subject: current.subject });
    if (!isSelfSigned(issuer) && !issuer.ca) chainError(`${issuer.subject} is not a CA`, { subject: issuer.subject });
    current = issuer;
  }
  return chainError("certificate chain too long");
}

export interface OmsTrust {
  /** Key mode: the signer's public key. Also accepted for certificate mode when it equals the leaf's key. */
  publicKey?: KeyObject;
  /** Certificate mode: trusted certificates (the root, and intermediates if wanted). */
  trustedCertificates?: readonly X509Certificate[];
}

/**
 * Verifies the signature of an OMS signature file with the given trust and returns the signed payload bytes.
 * OMS_BAD_SIGNATURE when the key does not match or the signature does not verify, OMS_CHAIN_INVALID for the chain.
 */
export function verifyOmsSignature(signature: OmsSignature, trust: OmsTrust): Uint8Array {
  const vm = signature.verificationMaterial;
  let key: KeyObject;
  if (vm.x509CertificateChain !== undefined) {
    const chain = vm.x509CertificateChain.certificates.map((c, i) =>
      decodeBase64(c.rawBytes, "OMS_MALFORMED", `x509CertificateChain.certificates[${i}]`),
    );
    if (trust.trustedCertificates !== undefined && trust.trustedCertificates.length > 0) {
      key = verifyCertificateChain(chain, trust.trustedCertificates);
    } else if (trust.publicKey !== undefined) {
      const leafKey = parseCertificate(
        chain[0]!,
        "verificationMaterial.x509CertificateChain.certificates[0]",
      ).publicKey.export({ type: "spki", format: "der" });
      if (!leafKey.equals(trust.publicKey.export({ type: "spki", format: "der" }))) {
        throw new VerificationError("OMS_BAD_SIGNATURE", "the signing certificate's key is not the given public key");
      }
      key = trust.publicKey;
    } else return chainError("a certificate-mode signature needs --certificate-chain (or the signer's public key)");
  } else if (vm.publicKey !== undefined) {
    if (trust.publicKey === undefined) {
      throw new VerificationError("OMS_BAD_SIGNATURE", "a key-mode signature needs the signer's public key");
    }
    const hint = vm.publicKey.hint;
    // An absent or empty hint is the older format (rawBytes); the reference only warns.
    if (typeof hint === "string" && hint !== "" && hint !== keyHintOf(trust.publicKey)) {
      throw new VerificationError("OMS_BAD_SIGNATURE", "the signature's key hint does not match the given public key", {
        details: { expected: keyHintOf(trust.publicKey), actual: hint },
      });
    }
    key = trust.publicKey;
  } else {
    throw new MalformedInputError(
      "OMS_MALFORMED",
      "Sigstore keyless signatures (Fulcio/Rekor) are not supported offline",
    );
  }
  const envelope = signature.dsseEnvelope;
  const payload = decodeBase64(envelope.payload, "OMS_MALFORMED", "dsseEnvelope.payload");
  const first = envelope.signatures[0]!;
  const sig = decodeBase64(first.sig, "OMS_MALFORMED", "dsseEnvelope.signatures[0].sig");
  let ok: boolean;
  try {
    ok =
      verifySignatureBytes(key, pae(envelope.payloadType, payload), sig) ||
      verifySignatureBytes(key, paeCompat(payload), sig);
  } catch (error) {
    if (error instanceof ProvenantError) {
      throw new VerificationError("OMS_BAD_SIGNATURE", `unsupported signing key: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (!ok) throw new VerificationError("OMS_BAD_SIGNATURE", "the DSSE signature does not verify with the given key");
  return payload;
}

/** pathlib.PurePosixPath normalisation of a resource path: no empty or "." components, no trailing slash. */
function normaliseName(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) return ".";
  return (path.startsWith("/") ? "/" : "") + parts.join("/");
}

function shardSizeFromAlgorithm(algorithm: unknown): number | undefined {
  if (typeof algorithm !== "string") return undefined;
  const m = /^sha256-sharded-(\d+)$/.exec(algorithm);
  return m === null ? undefined : Number(m[1]);
}

function asBool(value: unknown, path: string): boolean {
  if (typeof value === "boolean") return value;
  if (value === "false" || value === "False") return false;
  if (value === "true" || value === "True") return true;
  return malformed(path, "expected a boolean");
}

/**
 * Reads the signed OMS statement into a manifest, tolerating what real files carry: float shard sizes, shard sizes
 * only in "sha256-sharded-N" algorithm strings, names like "./a", and the v0.1 compat predicate.
 */
export function toOmsManifest(payload: Uint8Array): OmsManifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (error) {
    return malformed("payload", "not UTF-8 JSON", error);
  }
  if (!isPlainObject(json)) return malformed("payload", "expected an object");
  if (json._type !== STATEMENT_TYPE) malformed("payload._type", `expected ${STATEMENT_TYPE}`);
  if (!Array.isArray(json.subject)) return malformed("payload.subject", "expected an array");
  const subjects = json.subject as unknown[];
  if (json.predicateType === PREDICATE_OMS_COMPAT) return compatManifest(subjects);
  if (json.predicateType !== PREDICATE_OMS) malformed("payload.predicateType", `expected ${PREDICATE_OMS}`);
  if (subjects.length !== 1) malformed("payload.subject", "expected exactly one subject");
  const subject = subjects[0];
  if (!isPlainObject(subject) || !isPlainObject(subject.digest) || typeof subject.digest.sha256 !== "string") {
    return malformed("payload.subject[0].digest.sha256", "missing");
  }
  const rootDigest = subject.digest.sha256;
  if (!/^[0-9a-f]{64}$/.test(rootDigest)) malformed("payload.subject[0].digest.sha256", "expected 64 hex");
  const predicate = json.predicate;
  if (!isPlainObject(predicate)) return malformed("payload.predicate", "expected an object");
  const serialization = predicate.serialization;
  if (!isPlainObject(serialization)) return malformed("payload.predicate.serialization", "expected an object");
  const method = serialization.method;
  if (method !== "files" && method !== "shards")
    return malformed("payload.predicate.serialization.method", "expected files or shards");
  const hashType = serialization.hash_type;
  if (typeof hashType !== "string" || !/^sha256(-sharded-\d+)?$/.test(hashType)) {
    malformed("payload.predicate.serialization.hash_type", "only sha256 is supported");
  }
  const allowSymlinks = asBool(serialization.allow_symlinks ?? false, "payload.predicate.serialization.allow_symlinks");
  const ignorePaths: string[] = [];
  if (serialization.ignore_paths !== undefined) {
    if (!Array.isArray(serialization.ignore_paths))
      malformed("payload.predicate.serialization.ignore_paths", "expected an array");
    for (const p of serialization.ignore_paths as unknown[]) {
      if (typeof p !== "string") malformed("payload.predicate.serialization.ignore_paths", "expected strings");
      ignorePaths.push(p as string);
    }
  }
  if (!Array.isArray(predicate.resources)) return malformed("payload.predicate.resources", "expected an array");
  const resources = new Map<string, string>();
  const root = createHash("sha256");
  let shardSize: number | undefined;
  if (method === "shards") {
    const declared = serialization.shard_size ?? shardSizeFromAlgorithm(hashType);
    shardSize = typeof declared === "string" ? Number(declared) : (declared as number | undefined);
    if (shardSize === undefined || !Number.isSafeInteger(shardSize) || shardSize <= 0) {
      malformed("payload.predicate.serialization.shard_size", "expected a positive integer");
    }
  }
  (predicate.resources as unknown[]).forEach((entry, i) => {
    const path = `payload.predicate.resources[${i}]`;
    if (!isPlainObject(entry)) return malformed(path, "expected an object");
    const { name, digest, algorithm } = entry;
    if (typeof name !== "string" || name === "") malformed(`${path}.name`, "expected a non-empty string");
    if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest))
      malformed(`${path}.digest`, "expected 64 hex (sha256)");
    if (typeof algorithm !== "string" || !/^sha256(-sharded-\d+)?$/.test(algorithm))
      malformed(`${path}.algorithm`, "only sha256 is supported");
    let key: string;
    if (method === "shards") {
      const m = /^(.*):(\d+):(\d+)$/s.exec(name as string);
      if (m === null) return malformed(`${path}.name`, "expected path:start:end");
      key = `${normaliseName(m[1]!)}:${Number(m[2])}:${Number(m[3])}`;
    } else key = normaliseName(name as string);
    if (resources.has(key)) malformed(`${path}.name`, `duplicate resource ${key}`);
    resources.set(key, digest as string);
    root.update(Buffer.from(digest as string, "hex"));
  });
  // The reference rebuilds the root from the resources in the order listed and refuses a mismatch.
  if (root.digest("hex") !== rootDigest) {
    throw new VerificationError("MODEL_DIGEST_MISMATCH", "the signed resources do not hash to the signed root digest", {
      details: { expected: rootDigest },
    });
  }
  const manifest: OmsManifest = {
    modelName: typeof subject.name === "string" ? subject.name : "",
    rootDigest,
    method,
    allowSymlinks,
    ignorePaths,
    resources,
    compat: false,
  };
  if (shardSize !== undefined) manifest.shardSize = shardSize;
  return manifest;
}

function compatManifest(subjects: unknown[]): OmsManifest {
  const resources = new Map<string, string>();
  subjects.forEach((s, i) => {
    if (
      !isPlainObject(s) ||
      typeof s.name !== "string" ||
      !isPlainObject(s.digest) ||
      typeof s.digest.sha256 !== "string"
    ) {
      return malformed(`payload.subject[${i}]`, "expected {name, digest.sha256}");
    }
    if (!/^[0-9a-f]{64}$/.test(s.digest.sha256)) malformed(`payload.subject[${i}].digest.sha256`, "expected 64 hex");
    resources.set(normaliseName(s.name), s.digest.sha256);
  });
  return {
    modelName: "compat-undefined-not-present",
    rootDigest: "",
    method: "files",
    allowSymlinks: false,
    ignorePaths: [],
    resources,
    compat: true,
  };
}
