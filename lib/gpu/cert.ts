// Reads the X.509 certificates of NVIDIA's device identity and RIM signing chains into one checked shape, and checks
// a chain leaf-first up to a root trusted by fingerprint. node:crypto verifies signatures and keys; the extensions
// (basic constraints, key usage, TCG DICE) are decoded with @peculiar/asn1-schema and @peculiar/asn1-x509.
import { X509Certificate } from "node:crypto";

import {
  AsnConvert,
  AsnProp,
  AsnPropTypes,
  AsnType,
  AsnTypeTypes,
  BitString,
  OctetString,
} from "@peculiar/asn1-schema";
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
} from "@peculiar/asn1-x509";

import { ProvenantError, VerificationError } from "../errors.ts";
import { toCertificateRecord, type CertificateRecord } from "../x509/index.ts";
import { childrenOf, slice, wholeTlv } from "./der.ts";

export { sha256Hex } from "../x509/index.ts";

/** TCG DICE TcbInfo (DICE Attestation Architecture §6.1.1); on Hopper leaves it holds NVIDIA's legacy FWID structure. */
export const OID_TCG_DICE_TCB_INFO = "2.23.133.5.4.1";
/** The DiceTcbInfo OID Blackwell leaves carry (attestation-sdk FWID_2_23_133_5_4_1_1). */
export const OID_TCG_DICE_TCB_INFO_BLACKWELL = "2.23.133.5.4.1.1";
/** Every TCG DICE extension (2.23.133.5.4.*) is understood well enough not to be refused when marked critical. */
const DICE_PREFIX = "2.23.133.5.4.";
export const FWID_LENGTH = 48;

/** Extensions whose criticality is understood (RFC 5280 §4.2: an unknown critical extension must be refused). */
const KNOWN_CRITICAL = new Set([
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_extKeyUsage,
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
  "2.5.29.17", // subjectAltName
  "2.5.29.31", // cRLDistributionPoints
  "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
  "1.3.6.1.5.5.7.48.1.5", // id-pkix-ocsp-nocheck
]);

/** ECDSA signature algorithms accepted on NVIDIA certificates (all of NVIDIA's use SHA-384). */
const ECDSA_WITH: Readonly<Record<string, string>> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
};

export const MAX_CHAIN_CERTIFICATES = 8;
const MAX_CERTIFICATE_BYTES = 16 * 1024;

export type ChainCode = "GPU_CHAIN_INVALID" | "GPU_RIM_INVALID";

/** A certificate's common fields (lib/x509) and what NVIDIA's chains are checked on. */
export interface GpuCertificate extends CertificateRecord {
  /** The Name and SubjectPublicKey bits exactly as encoded: what an OCSP CertID hashes (RFC 6960 §4.1.1). */
  subjectDer: Uint8Array;
  subjectPublicKey: Uint8Array;
  isCa: boolean;
  pathLength: number | undefined;
  /** KeyUsageFlags bits, undefined when the extension is absent. */
  keyUsage: number | undefined;
  extendedKeyUsage: readonly string[] | undefined;
  /** Raw extnValue of each extension by OID. */
  extensions: ReadonlyMap<string, { critical: boolean; value: Uint8Array }>;
}

function fail(code: ChainCode, message: string, cause?: unknown): never {
  throw new VerificationError(code, message, cause === undefined ? {} : { cause });
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block of PEM text as DER, in order; at most `max` (more is refused). */
export function readPemCertificates(
  pem: string | Uint8Array,
  what: string,
  code: ChainCode,
  max = MAX_CHAIN_CERTIFICATES,
): Uint8Array[] {
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("latin1");
  if (text.length > max * MAX_CERTIFICATE_BYTES * 2) fail(code, `${what} is too large`);
  const out: Uint8Array[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (out.length >= max) fail(code, `${what} holds more than ${max} certificates`);
    out.push(new Uint8Array(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64")));
  }
  if (out.length === 0) fail(code, `${what} holds no PEM certificate`);
  return out;
}

/** Parses one DER certificate; anything unreadable is `code` (GPU_CHAIN_INVALID or GPU_RIM_INVALID), never uncoded. */
export function readGpuCertificate(der: Uint8Array, what: string, code: ChainCode): GpuCertificate {
  if (!(der instanceof Uint8Array) || der.length === 0) fail(code, `${what}: no certificate bytes`);
  if (der.length > MAX_CERTIFICATE_BYTES) fail(code, `${what}: ${der.length} bytes is too large for a certificate`);
  try {
    return readCertificateUnchecked(Uint8Array.from(der), what, code);
  } catch (error) {
    if (error instanceof VerificationError && error.code === code) throw error;
    if (error instanceof ProvenantError) fail(code, `${what}: ${error.message}`, error);
    fail(code, `${what}: not a readable X.509 certificate`, error);
  }
}

function readCertificateUnchecked(der: Uint8Array, what: string, code: ChainCode): GpuCertificate {
  // TBSCertificate (RFC 5280 §4.1): [0] version, serial, signature, issuer, validity, subject, spki, ...
  const outer = wholeTlv(der, code, what);
  const [tbs] = childrenOf(der, outer, code);
  if (tbs === undefined) fail(code, `${what}: empty certificate`);
  const fields = childrenOf(der, tbs, code);
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subjectTlv = fields[base + 4];
  const spkiTlv = fields[base + 5];
  if (subjectTlv === undefined || spkiTlv === undefined) fail(code, `${what}: truncated TBSCertificate`);
  const spkiParts = childrenOf(der, spkiTlv, code);
  const bits = spkiParts[1];
  if (bits === undefined || bits.tag !== 0x03 || bits.end - bits.contentStart < 2) fail(code, `${what}: no key bits`);

  const parsed = AsnConvert.parse(der, Certificate);
  const outerAlg = parsed.signatureAlgorithm.algorithm;
  const innerAlg = parsed.tbsCertificate.signature.algorithm;
  if (outerAlg !== innerAlg) fail(code, `${what}: the signature algorithms inside and outside the TBS differ`);
  if (ECDSA_WITH[outerAlg] === undefined)
    fail(code, `${what}: signature algorithm ${outerAlg} is not ECDSA with SHA-2`);

  const extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
  for (const ext of parsed.tbsCertificate.extensions ?? []) {
    if (extensions.has(ext.extnID)) fail(code, `${what}: extension ${ext.extnID} appears twice`);
    const value = new Uint8Array(ext.extnValue.buffer);
    if (ext.critical && !KNOWN_CRITICAL.has(ext.extnID) && !ext.extnID.startsWith(DICE_PREFIX)) {
      fail(code, `${what}: unknown critical extension ${ext.extnID}`);
    }
    extensions.set(ext.extnID, { critical: ext.critical, value });
  }
  const bc = extensions.get(id_ce_basicConstraints);
  const basic = bc === undefined ? undefined : AsnConvert.parse(bc.value, BasicConstraints);
  const ku = extensions.get(id_ce_keyUsage);
  const eku = extensions.get(id_ce_extKeyUsage);

  const record = toCertificateRecord(der, new X509Certificate(der));
  if (Number.isNaN(record.notBefore.getTime()) || Number.isNaN(record.notAfter.getTime()))
    fail(code, `${what}: unreadable validity`);
  return {
    ...record,
    subjectDer: slice(der, subjectTlv).slice(),
    subjectPublicKey: der.slice(bits.contentStart + 1, bits.end),
    isCa: basic?.cA === true,
    pathLength: basic?.cA === true ? basic.pathLenConstraint : undefined,
    keyUsage: ku === undefined ? undefined : AsnConvert.parse(ku.value, KeyUsage).toNumber(),
    extendedKeyUsage: eku === undefined ? undefined : [...AsnConvert.parse(eku.value, ExtendedKeyUsage)],
    extensions,
  };
}

/** Whether `child` names `parent` as its issuer and carries a valid signature from `parent`'s key. */
export function isSignedBy(child: GpuCertificate, parent: GpuCertificate): boolean {
  try {
    return child.x509.checkIssued(parent.x509) && child.x509.verify(parent.publicKey);
  } catch {
    return false;
  }
}

export interface CheckedChain {
  /** Leaf first, root last. */
  certificates: readonly GpuCertificate[];
  rootFingerprint: string;
}

/**
 * Checks a chain given leaf first: the last certificate is a self-signed root whose SHA-256 is in `trusted` (a root
 * that arrives with the evidence is trusted only by fingerprint), each certificate is issued and signed by the next,
 * every issuer is a CA allowed to sign certificates (basic constraints, key usage, path length).
 * Validity at `now` is checked separately (checkValidity), so that the result can be cached.
 */
export function checkChain(
  ders: readonly Uint8Array[],
  trusted: ReadonlySet<string>,
  what: string,
  code: ChainCode,
): CheckedChain {
  if (ders.length < 2 || ders.length > MAX_CHAIN_CERTIFICATES) {
    fail(
      code,
      `the ${what} has ${ders.length} certificates; 2 to ${MAX_CHAIN_CERTIFICATES} are expected (NVIDIA's have 5 and 4)`,
    );
  }
  const certificates = ders.map((der, i) => readGpuCertificate(der, `${what}[${i}]`, code));
  const root = certificates[certificates.length - 1]!;
  // The root first: a substituted root (same subject, another key) is an untrusted root, not a broken link.
  if (!isSignedBy(root, root))
    fail(code, `the last certificate of the ${what} (${root.subjectCn}) is not a self-signed root`);
  if (!trusted.has(root.fingerprint)) {
    throw new VerificationError(
      "GPU_UNTRUSTED_ROOT",
      `the ${what} ends in ${root.subjectCn} ${root.fingerprint}, which is not pinned`,
      {
        details: { fingerprint: root.fingerprint, subject: root.subjectCn },
      },
    );
  }
  for (let i = 0; i < certificates.length - 1; i++) {
    const child = certificates[i]!;
    const parent = certificates[i + 1]!;
    if (!isSignedBy(child, parent)) {
      fail(
        code,
        `${what}[${i}] (${child.subjectCn}) is not issued and signed by ${what}[${i + 1}] (${parent.subjectCn})`,
      );
    }
    if (!parent.isCa) fail(code, `${what}[${i + 1}] (${parent.subjectCn}) signs a certificate but is not a CA`);
    if (parent.keyUsage !== undefined && (parent.keyUsage & KeyUsageFlags.keyCertSign) === 0) {
      fail(code, `${what}[${i + 1}] (${parent.subjectCn}) may not sign certificates (key usage)`);
    }
    // RFC 5280 §4.2.1.9: the number of intermediate CAs below this one may not exceed its pathLenConstraint.
    if (parent.pathLength !== undefined && i > parent.pathLength) {
      fail(
        code,
        `${what}[${i + 1}] (${parent.subjectCn}) allows ${parent.pathLength} CAs below it, the chain has ${i}`,
      );
    }
  }
  if (!root.isCa) fail(code, `the root of the ${what} is not a CA`);
  return { certificates, rootFingerprint: root.fingerprint };
}

/** Every certificate must be valid at `now`; GPU_CERT_EXPIRED names the first that is not. */
export function checkValidity(certificates: readonly GpuCertificate[], now: Date, what: string): void {
  const t = now instanceof Date ? now.getTime() : NaN;
  if (!Number.isFinite(t)) throw new VerificationError("GPU_CERT_EXPIRED", "`now` is not a valid date");
  for (const cert of certificates) {
    if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) {
      throw new VerificationError(
        "GPU_CERT_EXPIRED",
        `${what}: ${cert.subjectCn} is valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not at ${now.toISOString()}`,
        {
          details: {
            subject: cert.subjectCn,
            notBefore: cert.notBefore.toISOString(),
            notAfter: cert.notAfter.toISOString(),
          },
        },
      );
    }
  }
}

// ---- TCG DICE TcbInfo (DICE Attestation Architecture v1.1 §6.1.1), decoded with asn1-schema ----

class Fwid {
  hashAlg = "";
  digest = new OctetString();
}
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(Fwid.prototype, "hashAlg");
AsnProp({ type: OctetString })(Fwid.prototype, "digest");

/** DiceTcbInfo: every field IMPLICIT context-tagged and optional. */
export class DiceTcbInfo {
  vendor?: string;
  model?: string;
  version?: string;
  svn?: number;
  layer?: number;
  index?: number;
  fwids?: Fwid[];
  flags?: BitString;
  vendorInfo?: OctetString;
  type?: OctetString;
  flagsMask?: BitString;
  integrityRegisters?: ArrayBuffer;
}
AsnType({ type: AsnTypeTypes.Sequence })(DiceTcbInfo);
{
  const p = DiceTcbInfo.prototype;
  const field = (context: number, type: Parameters<typeof AsnProp>[0]["type"], name: keyof DiceTcbInfo) =>
    AsnProp({ type, context, implicit: true, optional: true })(p, name);
  field(0, AsnPropTypes.Utf8String, "vendor");
  field(1, AsnPropTypes.Utf8String, "model");
  field(2, AsnPropTypes.Utf8String, "version");
  field(3, AsnPropTypes.Integer, "svn");
  field(4, AsnPropTypes.Integer, "layer");
  field(5, AsnPropTypes.Integer, "index");
  AsnProp({ type: Fwid, repeated: "sequence", context: 6, implicit: true, optional: true })(p, "fwids");
  field(7, BitString, "flags");
  field(8, OctetString, "vendorInfo");
  field(9, OctetString, "type");
  field(10, BitString, "flagsMask");
  field(11, AsnPropTypes.Any, "integrityRegisters");
}

/** Builds a DiceTcbInfo value (the simulator's Blackwell leaf). */
export function encodeDiceTcbInfo(input: {
  vendor?: string;
  model?: string;
  version?: string;
  svn?: number;
  layer?: number;
  fwids: readonly { hashAlg: string; digest: Uint8Array }[];
}): Uint8Array {
  const info = new DiceTcbInfo();
  if (input.vendor !== undefined) info.vendor = input.vendor;
  if (input.model !== undefined) info.model = input.model;
  if (input.version !== undefined) info.version = input.version;
  if (input.svn !== undefined) info.svn = input.svn;
  if (input.layer !== undefined) info.layer = input.layer;
  info.fwids = input.fwids.map((f) =>
    Object.assign(new Fwid(), { hashAlg: f.hashAlg, digest: new OctetString(f.digest) }),
  );
  return new Uint8Array(AsnConvert.serialize(info));
}

export type GpuArch = "hopper" | "blackwell";
export const GPU_ARCHS: readonly GpuArch[] = ["hopper", "blackwell"];

/**
 * The architecture and the FWID the leaf certifies. Blackwell leaves carry `2.23.133.5.4.1.1`, a DiceTcbInfo whose
 * `fwids[0].digest` is the FWID; Hopper leaves carry `2.23.133.5.4.1`, NVIDIA's legacy structure that ends in the
 * 48-byte FWID (nvtrust cc_admin_utils.extract_fwid takes its last 48 bytes). With `claimed` (the architecture NVML
 * reported), that architecture's rule is used and its extension must be present, as NVIDIA's SDK does (it takes the
 * architecture from the device and calls 2.23.133.5.4.1.1 an alias, so the OID alone does not decide it); without,
 * the Blackwell extension means Blackwell.
 */
export function readLeafFwid(leaf: GpuCertificate, claimed?: GpuArch): { arch: GpuArch; fwid: Uint8Array } {
  const blackwell = leaf.extensions.get(OID_TCG_DICE_TCB_INFO_BLACKWELL);
  const hopper = leaf.extensions.get(OID_TCG_DICE_TCB_INFO);
  const arch: GpuArch | undefined =
    claimed ?? (blackwell !== undefined ? "blackwell" : hopper !== undefined ? "hopper" : undefined);
  if (arch === undefined) {
    fail(
      "GPU_CHAIN_INVALID",
      `the leaf (${leaf.subjectCn}) carries no TCG DICE extension (2.23.133.5.4.1 or 2.23.133.5.4.1.1)`,
    );
  }
  if (arch === "hopper") {
    if (hopper === undefined) fail("GPU_CHAIN_INVALID", `a Hopper leaf must carry ${OID_TCG_DICE_TCB_INFO}`);
    if (hopper.value.length < FWID_LENGTH) fail("GPU_CHAIN_INVALID", `${OID_TCG_DICE_TCB_INFO} is shorter than a FWID`);
    return { arch, fwid: hopper.value.slice(hopper.value.length - FWID_LENGTH) };
  }
  if (blackwell === undefined)
    fail("GPU_CHAIN_INVALID", `a Blackwell leaf must carry ${OID_TCG_DICE_TCB_INFO_BLACKWELL}`);
  let info: DiceTcbInfo;
  try {
    wholeTlv(blackwell.value, "GPU_CHAIN_INVALID", `${OID_TCG_DICE_TCB_INFO_BLACKWELL}`);
    info = AsnConvert.parse(blackwell.value, DiceTcbInfo);
  } catch (error) {
    fail("GPU_CHAIN_INVALID", `${OID_TCG_DICE_TCB_INFO_BLACKWELL} is not a DiceTcbInfo`, error);
  }
  const first = info.fwids?.[0];
  if (first === undefined) fail("GPU_CHAIN_INVALID", `the leaf's DiceTcbInfo lists no FWID`);
  return { arch, fwid: new Uint8Array(first.digest.buffer).slice() };
}
