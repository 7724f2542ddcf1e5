// Bundled OCSP responses (RFC 6960) for the device and RIM certificate chains, read with @peculiar/asn1-ocsp. A
// response counts for a certificate only when its CertID names that certificate and its issuer, it is signed by a CA
// of the already verified chain (or by a delegated OCSP responder that such a CA issued), and it is current at `now`.
// Nothing is fetched: the collector bundles the responses, the verifier only checks them.
import { createHash, verify as cryptoVerify } from "node:crypto";

import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicOCSPResponse, OCSPResponse, OCSPResponseStatus, id_pkix_ocsp_basic } from "@peculiar/asn1-ocsp";
import { Name } from "@peculiar/asn1-x509";

import { MalformedInputError, ProvenantError, VerificationError } from "../errors.ts";
import { checkValidity, isSignedBy, readGpuCertificate, type GpuCertificate } from "./cert.ts";
import { childrenOf, slice, wholeTlv } from "./der.ts";

export const MAX_OCSP_RESPONSES = 32;
const MAX_OCSP_BYTES = 64 * 1024;
const MAX_SINGLE_RESPONSES = 16;
const MAX_RESPONDER_CERTIFICATES = 4;
const ID_KP_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9";

const HASHES: Readonly<Record<string, string>> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const ECDSA_WITH: Readonly<Record<string, string>> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
};

interface SingleStatus {
  hash: string;
  nameHash: Uint8Array;
  keyHash: Uint8Array;
  /** Lower-case hex without leading zeros, like GpuCertificate.serial. */
  serial: string;
  status: "good" | "revoked" | "unknown";
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

export interface ParsedOcspResponse {
  index: number;
  tbs: Uint8Array;
  signature: Uint8Array;
  hash: string;
  responder: { byKey?: Uint8Array; byName?: Uint8Array };
  certificates: readonly GpuCertificate[];
  singles: readonly SingleStatus[];
}

function malformed(message: string, cause?: unknown): never {
  throw new MalformedInputError("GPU_MALFORMED", message, cause === undefined ? {} : { cause });
}

const hex = (b: ArrayBuffer | Uint8Array) =>
  Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("hex");
const serialHex = (b: ArrayBuffer) => hex(b).replace(/^0+(?=.)/, "");

/** Parses DER OCSP responses (RFC 6960 §4.2.1); anything that does not read is GPU_MALFORMED. */
export function parseOcspResponses(ders: readonly Uint8Array[]): ParsedOcspResponse[] {
  if (ders.length > MAX_OCSP_RESPONSES) malformed(`${ders.length} OCSP responses, over ${MAX_OCSP_RESPONSES}`);
  return ders.map((der, index) => {
    try {
      return parseOne(der, index);
    } catch (error) {
      if (error instanceof ProvenantError) throw error;
      malformed(`OCSP response ${index} is not a readable OCSP response`, error);
    }
  });
}

function parseOne(der: Uint8Array, index: number): ParsedOcspResponse {
  if (!(der instanceof Uint8Array) || der.length === 0) malformed(`OCSP response ${index} is empty`);
  if (der.length > MAX_OCSP_BYTES) malformed(`OCSP response ${index} is ${der.length} bytes, over ${MAX_OCSP_BYTES}`);
  wholeTlv(der, "GPU_MALFORMED", `OCSP response ${index}`);
  const response = AsnConvert.parse(der, OCSPResponse);
  if (response.responseStatus !== OCSPResponseStatus.successful) {
    malformed(`OCSP response ${index} has response status ${response.responseStatus}, not successful: it says nothing`);
  }
  const bytes = response.responseBytes;
  if (bytes === undefined || bytes.responseType !== id_pkix_ocsp_basic)
    malformed(`OCSP response ${index} is not a basic response`);
  const basicDer = new Uint8Array(bytes.response.buffer);
  const basicTlv = wholeTlv(basicDer, "GPU_MALFORMED", `OCSP response ${index}`);
  const [tbsTlv] = childrenOf(basicDer, basicTlv, "GPU_MALFORMED");
  if (tbsTlv === undefined) malformed(`OCSP response ${index} has no tbsResponseData`);
  const basic = AsnConvert.parse(basicDer, BasicOCSPResponse);
  const hash = ECDSA_WITH[basic.signatureAlgorithm.algorithm];
  if (hash === undefined)
    malformed(`OCSP response ${index} is signed with ${basic.signatureAlgorithm.algorithm}, not ECDSA`);
  const data = basic.tbsResponseData;
  if (data.responses.length === 0 || data.responses.length > MAX_SINGLE_RESPONSES) {
    malformed(`OCSP response ${index} holds ${data.responses.length} single responses`);
  }
  const certs = basic.certs ?? [];
  if (certs.length > MAX_RESPONDER_CERTIFICATES)
    malformed(`OCSP response ${index} carries ${certs.length} certificates`);
  const responder: ParsedOcspResponse["responder"] = {};
  if (data.responderID.byKey !== undefined) responder.byKey = new Uint8Array(data.responderID.byKey.buffer);
  if (data.responderID.byName !== undefined)
    responder.byName = new Uint8Array(AsnConvert.serialize(data.responderID.byName));
  return {
    index,
    tbs: slice(basicDer, tbsTlv).slice(),
    // The BIT STRING of the signature as parsed: X.509-style DER-encoded ECDSA (r, s).
    signature: new Uint8Array(basic.signature),
    hash,
    responder,
    certificates: certs.map((c, i) =>
      readGpuCertificate(
        new Uint8Array(AsnConvert.serialize(c)),
        `OCSP response ${index} certificate ${i}`,
        "GPU_CHAIN_INVALID",
      ),
    ),
    singles: data.responses.map((s) => {
      const alg = HASHES[s.certID.hashAlgorithm.algorithm];
      if (alg === undefined)
        malformed(`OCSP response ${index}: CertID hash ${s.certID.hashAlgorithm.algorithm} is not known`);
      const st = s.certStatus;
      const status = st.good !== undefined ? "good" : st.revoked !== undefined ? "revoked" : "unknown";
      return {
        hash: alg,
        nameHash: new Uint8Array(s.certID.issuerNameHash.buffer),
        keyHash: new Uint8Array(s.certID.issuerKeyHash.buffer),
        serial: serialHex(s.certID.serialNumber),
        status,
        thisUpdate: s.thisUpdate,
        nextUpdate: s.nextUpdate,
      };
    }),
  };
}

const normalisedName = (der: Uint8Array) => hex(AsnConvert.serialize(AsnConvert.parse(der, Name)));

function responderMatches(response: ParsedOcspResponse, cert: GpuCertificate): boolean {
  if (response.responder.byKey !== undefined) {
    return hex(createHash("sha1").update(cert.subjectPublicKey).digest()) === hex(response.responder.byKey);
  }
  if (response.responder.byName !== undefined) {
    try {
      return normalisedName(response.responder.byName) === normalisedName(cert.subjectDer);
    } catch {
      return false;
    }
  }
  return false;
}

function signedBy(response: ParsedOcspResponse, cert: GpuCertificate): boolean {
  try {
    return cryptoVerify(response.hash, response.tbs, { key: cert.publicKey, dsaEncoding: "der" }, response.signature);
  } catch {
    return false;
  }
}

export interface OcspResult {
  /** Subjects of the certificates that have a good, current, properly signed response. */
  checked: string[];
  /** Subjects of the certificates that needed a response and had none. */
  missing: string[];
}

/**
 * Holds each certificate `chain[i]`, `firstIndex <= i < chain.length - 1`, against the responses that name it.
 * A response must be signed by a CA of the chain above it (`chain[j]`, `j > i`) or by a delegated responder
 * certificate it carries, issued by such a CA, valid at `now` and marked for OCSP signing (RFC 6960 §4.2.2.2).
 * Throws GPU_CERT_REVOKED (revoked or unknown), GPU_CERT_EXPIRED (not current: thisUpdate <= now <= nextUpdate,
 * nextUpdate required) or GPU_CHAIN_INVALID (a responder that is not authorised); returns what was checked and what
 * had no response. The chain itself must already be verified.
 */
export function checkOcsp(
  responses: readonly ParsedOcspResponse[],
  chain: readonly GpuCertificate[],
  firstIndex: number,
  now: Date,
  what: string,
): OcspResult {
  const result: OcspResult = { checked: [], missing: [] };
  const t = now.getTime();
  for (let i = firstIndex; i < chain.length - 1; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    const label = `${what}: ${cert.subjectCn}`;
    let found = false;
    for (const response of responses) {
      const single = response.singles.find((s) => {
        const h = (b: Uint8Array) => createHash(s.hash).update(b).digest("hex");
        return (
          s.serial === cert.serial &&
          hex(s.nameHash) === h(issuer.subjectDer) &&
          hex(s.keyHash) === h(issuer.subjectPublicKey)
        );
      });
      if (single === undefined) continue;
      authorise(response, chain, i, now, label);
      if (single.status !== "good") {
        throw new VerificationError("GPU_CERT_REVOKED", `${label} is ${single.status} according to OCSP`, {
          details: { subject: cert.subjectCn, serial: cert.serial, status: single.status },
        });
      }
      if (single.nextUpdate === undefined || t < single.thisUpdate.getTime() || t > single.nextUpdate.getTime()) {
        throw new VerificationError(
          "GPU_CERT_EXPIRED",
          `${label}: the OCSP response is current ${single.thisUpdate.toISOString()} to ${single.nextUpdate?.toISOString() ?? "(no nextUpdate)"}, not at ${now.toISOString()}`,
        );
      }
      found = true;
    }
    (found ? result.checked : result.missing).push(cert.subjectCn);
  }
  return result;
}

function authorise(
  response: ParsedOcspResponse,
  chain: readonly GpuCertificate[],
  i: number,
  now: Date,
  label: string,
): void {
  // A CA above the certificate in the verified chain (normally its issuer) signed the response itself.
  for (let j = i + 1; j < chain.length; j++) {
    if (responderMatches(response, chain[j]!) && signedBy(response, chain[j]!)) return;
  }
  // A delegated responder: carried in the response, issued by a CA above the certificate, valid, for OCSP signing.
  for (const delegate of response.certificates) {
    if (!responderMatches(response, delegate) || !signedBy(response, delegate)) continue;
    const issuedByChain = chain.slice(i + 1).some((ca) => isSignedBy(delegate, ca));
    if (!issuedByChain) {
      throw new VerificationError(
        "GPU_CHAIN_INVALID",
        `${label}: the OCSP responder ${delegate.subjectCn} is not issued by the chain`,
      );
    }
    if (!(delegate.extendedKeyUsage ?? []).includes(ID_KP_OCSP_SIGNING)) {
      throw new VerificationError(
        "GPU_CHAIN_INVALID",
        `${label}: the OCSP responder ${delegate.subjectCn} is not authorised for OCSP signing`,
      );
    }
    checkValidity([delegate], now, `${label} OCSP responder`);
    return;
  }
  throw new VerificationError(
    "GPU_CHAIN_INVALID",
    `${label}: OCSP response ${response.index} is not signed by its issuer or a delegated responder`,
  );
}
