// Reads AMD SEV-SNP certificates (ARK, ASK/ASVK, VCEK/VLEK; AMD spec 57230) into one checked shape.
// node:crypto does the X.509 and signature work; a small DER walk reads the AMD extensions it does not expose.
import { X509Certificate } from "node:crypto";

import { VerificationError } from "../errors.ts";
import { toCertificateRecord, type CertificateRecord } from "../x509/index.ts";
import { DerReader } from "./der.ts";
import type { Product } from "./parse.ts";

export { sha256Hex } from "../x509/index.ts";

export const OID_STRUCT_VERSION = "1.3.6.1.4.1.3704.1.1";
export const OID_PRODUCT_NAME = "1.3.6.1.4.1.3704.1.2";
export const OID_BL_SPL = "1.3.6.1.4.1.3704.1.3.1";
export const OID_TEE_SPL = "1.3.6.1.4.1.3704.1.3.2";
export const OID_SNP_SPL = "1.3.6.1.4.1.3704.1.3.3";
export const OID_UCODE_SPL = "1.3.6.1.4.1.3704.1.3.8";
export const OID_FMC_SPL = "1.3.6.1.4.1.3704.1.3.9";
export const OID_HWID = "1.3.6.1.4.1.3704.1.4";
export const OID_CSP_ID = "1.3.6.1.4.1.3704.1.5";

const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
const OID_SHA384 = "2.16.840.1.101.3.4.2.2";
const OID_MGF1 = "1.2.840.113549.1.1.8";

/**
 * True for an AlgorithmIdentifier of RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 and trailer 1 (RFC 4055 §3.1),
 * read field by field: AMD's ARKs encode the default trailer field explicitly, VCEKs omit it.
 */
export function isRsaPssSha384(algorithm: Uint8Array): boolean {
  try {
    const r = new DerReader(algorithm, "SNP_CHAIN_INVALID");
    const [oid, params, extra] = r.children(r.expect(r.node(0), 0x30, "AlgorithmIdentifier"));
    if (extra !== undefined || r.oid(oid!) !== OID_RSASSA_PSS) return false;
    let hash = "",
      mgf = "",
      mgfHash = "",
      salt = -1n,
      trailer = 1n;
    for (const field of r.children(r.expect(params, 0x30, "RSASSA-PSS-params"))) {
      const [inner] = r.children(field);
      if (inner === undefined) return false;
      if (field.tag === 0xa0) hash = r.oid(r.children(inner)[0]!);
      else if (field.tag === 0xa1) {
        const [mgfOid, mgfParams] = r.children(inner);
        mgf = r.oid(mgfOid!);
        mgfHash = r.oid(r.children(r.expect(mgfParams, 0x30, "MGF params"))[0]!);
      } else if (field.tag === 0xa2) salt = r.unsignedInteger(inner);
      else if (field.tag === 0xa3) trailer = r.unsignedInteger(inner);
      else return false;
    }
    return hash === OID_SHA384 && mgf === OID_MGF1 && mgfHash === OID_SHA384 && salt === 48n && trailer === 1n;
  } catch {
    return false;
  }
}

/** A certificate's common fields (lib/x509) and the AMD-specific ones. */
export interface AmdCertificate extends CertificateRecord {
  /** True when both the TBS and outer signature algorithms are RSASSA-PSS SHA-384 salt 48. */
  rsaPssSha384: boolean;
  /** AMD extensions by OID: the raw extnValue bytes. */
  amdExtensions: Map<string, Uint8Array>;
}

function chainInvalid(message: string, cause?: unknown): never {
  throw new VerificationError("SNP_CHAIN_INVALID", message, cause === undefined ? {} : { cause });
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

/**
 * Parses DER (or PEM text as bytes) into an AmdCertificate; anything unreadable is SNP_CHAIN_INVALID, never an
 * uncoded error. Input that does not start with a DER SEQUENCE is read as text and the PEM armor is found anywhere
 * in it (a BOM, whitespace or explanatory text before it). DER must be exactly one certificate: trailing bytes are
 * refused (they would be carried unsigned, and hashed into the fingerprint).
 */
export function readCertificate(input: Uint8Array, what: string): AmdCertificate {
  if (!(input instanceof Uint8Array) || input.length === 0) chainInvalid(`${what}: no certificate bytes`);
  let der: Uint8Array = input;
  if (input[0] !== 0x30 /* DER SEQUENCE */) {
    const match = PEM_CERTIFICATE.exec(Buffer.from(input).toString("latin1"));
    if (match === null) chainInvalid(`${what}: neither DER nor a PEM certificate`);
    der = new Uint8Array(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64"));
    if (der.length === 0) chainInvalid(`${what}: empty PEM certificate`);
  }
  try {
    const outer = new DerReader(der, "SNP_CHAIN_INVALID").node(0);
    if (outer.end !== der.length) chainInvalid(`${what}: ${der.length - outer.end} bytes after the certificate`);
  } catch (error) {
    if (error instanceof VerificationError) throw error;
    chainInvalid(`${what}: not a DER certificate`, error);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (error) {
    chainInvalid(`${what}: not an X.509 certificate`, error);
  }
  let extensions: Map<string, Uint8Array>;
  let rsaPss: boolean;
  try {
    ({ extensions, rsaPss } = readTbs(Uint8Array.from(der)));
  } catch (error) {
    chainInvalid(`${what}: unreadable certificate structure`, error);
  }
  let record: CertificateRecord;
  try {
    record = toCertificateRecord(Uint8Array.from(der), x509);
  } catch (error) {
    chainInvalid(`${what}: unreadable public key or names`, error);
  }
  return {
    ...record,
    rsaPssSha384: rsaPss,
    amdExtensions: extensions,
  };
}

function readTbs(der: Uint8Array): { extensions: Map<string, Uint8Array>; rsaPss: boolean } {
  const r = new DerReader(der, "SNP_CHAIN_INVALID");
  const cert = r.expect(r.node(0), 0x30, "Certificate");
  const [tbs, outerAlg] = r.children(cert);
  const tbsFields = r.children(r.expect(tbs, 0x30, "TBSCertificate"));
  const innerAlg = tbsFields[tbsFields[0]?.tag === 0xa0 ? 2 : 1];
  const rsaPss =
    outerAlg !== undefined &&
    innerAlg !== undefined &&
    isRsaPssSha384(r.encoding(outerAlg)) &&
    Buffer.compare(Buffer.from(r.encoding(outerAlg)), Buffer.from(r.encoding(innerAlg))) === 0;
  const extensions = new Map<string, Uint8Array>();
  const extField = tbsFields.find((n) => n.tag === 0xa3);
  if (extField !== undefined) {
    const [seq] = r.children(extField);
    for (const ext of r.children(r.expect(seq, 0x30, "Extensions"))) {
      const parts = r.children(r.expect(ext, 0x30, "Extension"));
      const oid = r.oid(parts[0]!);
      const value = r.expect(parts[parts.length - 1], 0x04, "extnValue");
      if (oid.startsWith("1.3.6.1.4.1.3704.")) extensions.set(oid, Uint8Array.from(r.content(value)));
    }
  }
  return { extensions, rsaPss };
}

/**
 * An SPL extension: a DER INTEGER 0..255. KDS encodes 0x80..0xFF with a leading zero byte (02 02 00 DB);
 * reading the first or last content byte alone, as some decoders did, gets those values wrong.
 */
export function readSpl(cert: AmdCertificate, oid: string): number | undefined {
  const value = cert.amdExtensions.get(oid);
  if (value === undefined) return undefined;
  const r = new DerReader(value, "SNP_CHAIN_INVALID");
  const node = r.node(0);
  if (node.end !== value.length) chainInvalid(`extension ${oid}: trailing bytes`);
  const n = r.unsignedInteger(node);
  if (n > 255n) chainInvalid(`extension ${oid}: SPL ${n} is larger than a byte`);
  return Number(n);
}

/** hwID (…1.4): the raw chip id bytes (64, or 8 on Turin); an OCTET STRING wrapper is accepted too. */
export function readHwid(cert: AmdCertificate): Uint8Array | undefined {
  const value = cert.amdExtensions.get(OID_HWID);
  if (value === undefined) return undefined;
  if (value.length === 64 || value.length === 8) return value;
  if (value[0] === 0x04 && (value[1] === 64 || value[1] === 8) && value.length === value[1] + 2) return value.slice(2);
  return chainInvalid(`hwID extension has ${value.length} bytes`);
}

/** productName (…1.2), an IA5String such as "Milan-B0". */
export function readProductName(cert: AmdCertificate): string | undefined {
  const value = cert.amdExtensions.get(OID_PRODUCT_NAME);
  if (value === undefined) return undefined;
  const r = new DerReader(value, "SNP_CHAIN_INVALID");
  const node = r.node(0);
  if (node.tag !== 0x16 && node.tag !== 0x0c && node.tag !== 0x13) chainInvalid("productName is not a string");
  return Buffer.from(r.content(node)).toString("latin1");
}

/** The product named by an AMD common name: ARK-Milan, SEV-Milan, SEV-VLEK-Milan. */
export function productOfCommonName(cn: string): Product | undefined {
  const match = /^(?:ARK|SEV|SEV-VLEK)-(Milan|Genoa|Turin)$/.exec(cn);
  return match === null ? undefined : (match[1] as Product);
}
