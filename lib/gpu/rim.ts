// NVIDIA Reference Integrity Manifests: SWID tags (ISO/IEC 19770-2) with an enveloped XML signature (ECDSA P-384,
// SHA-384, C14N 1.1), signed by a key chained to NVIDIA's pinned RIM root. Verifies one RIM with xml-crypto against
// the certificate this module takes from KeyInfo and chains itself, reads its golden measurements from the signed
// bytes only, and compares them with a report's measurement blocks the way nvtrust's verifier does.
import { createHash, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from "node:crypto";

import { DOMParser, type Document, type Element } from "@xmldom/xmldom";
import { C14nCanonicalization, SignedXml } from "xml-crypto";

import { ProvenantError, VerificationError } from "../errors.ts";
import { checkChain, checkValidity, type GpuCertificate } from "./cert.ts";
import { NVIDIA_RIM_ROOT_FINGERPRINT } from "./nvidia-roots.ts";
import { NVDEC0_DISABLED, type GpuEvidence } from "./parse.ts";

export const MAX_RIM_BYTES = 1 << 20;
const MAX_RESOURCES = 1024;
const MAX_ALTERNATIVES = 16;
const MAX_KEYINFO_CERTIFICATES = 8;
/** Start and end tags, comments and processing instructions together: room for MAX_RESOURCES Resources. */
const MAX_TAGS = 2 * MAX_RESOURCES + 256;

const NS_SWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const NS_DSIG = "http://www.w3.org/2000/09/xmldsig#";
/** The namespace NVIDIA puts the `Hash<n>` attributes in (nvtrust HashFunctionNamespace). */
const NS_HASH = "http://www.w3.org/2001/04/xmlenc#sha384";
const NS_XML = "http://www.w3.org/XML/1998/namespace";

const C14N_11 = "http://www.w3.org/2006/12/xml-c14n11";
const C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384";

export type RimKind = "driver" | "vbios";

export interface GoldenMeasurement {
  /** 0-based golden index; it is compared with report block index + 1. */
  index: number;
  name: string;
  /** Bytes of each value. */
  size: number;
  active: boolean;
  alternatives: readonly Uint8Array[];
}

export interface VerifiedRim {
  kind: RimKind;
  /** `Meta@colloquialVersion` as written (driver `550.144.03`, VBIOS `96.00.5E.00.01`). */
  version: string;
  tagId: string;
  /** `Meta@product`, e.g. GH100. */
  product: string;
  /** Every measurement Resource, active or not, in document order. */
  measurements: readonly GoldenMeasurement[];
  /** KeyInfo's certificates: the signer first, the root last. */
  certificates: readonly GpuCertificate[];
  rootFingerprint: string;
  /** Hex SHA-256 of the document bytes. */
  digest: string;
}

export interface RimVerifyOptions {
  now: Date;
  /** Development root fingerprints trusted besides NVIDIA's pinned RIM root. */
  trustedRoots?: Iterable<string>;
}

function invalid(message: string, cause?: unknown): never {
  throw new VerificationError("GPU_RIM_INVALID", message, cause === undefined ? {} : { cause });
}

/** VBIOS RIM versions are five dot-separated hex pairs (96.00.5E.00.01); driver versions are not (550.144.03). */
export function rimKindOf(version: string): RimKind {
  return /^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$/.test(version) ? "vbios" : "driver";
}

// xml-crypto ships neither C14N 1.1, SHA-384 digests nor ECDSA signatures; these register them. C14N 1.1 differs
// from 1.0 only in how xml:id and xml:base (and inherited xml:* attributes) are handled (W3C C14N 1.1 §2.4);
// documents with any xml:* attribute are refused below, so 1.0's output is 1.1's.
class C14n11Canonicalization extends C14nCanonicalization {
  override getAlgorithmName(): string {
    return C14N_11;
  }
}

class Sha384 {
  getHash(xml: string): string {
    return createHash("sha384").update(xml, "utf8").digest("base64");
  }
  getAlgorithmName(): string {
    return SHA384;
  }
}

/** XMLDSig 1.1 §6.4.3: the ECDSA SignatureValue is r‖s, each 48 bytes for P-384. */
class EcdsaSha384 {
  verifySignature(material: string, key: KeyObject, signatureValue: string): boolean {
    const signature = Buffer.from(signatureValue.replace(/\s+/g, ""), "base64");
    if (signature.length !== 96) return false;
    try {
      return cryptoVerify("sha384", Buffer.from(material, "utf8"), { key, dsaEncoding: "ieee-p1363" }, signature);
    } catch {
      return false;
    }
  }
  /** Used by the simulator only, through the same class the verifier checks with. */
  getSignature(signedInfo: string | Uint8Array, privateKey: KeyObject): string {
    const data = typeof signedInfo === "string" ? Buffer.from(signedInfo, "utf8") : signedInfo;
    return cryptoSign("sha384", data, { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64");
  }
  getAlgorithmName(): string {
    return ECDSA_SHA384;
  }
}

/** A SignedXml with the three algorithms registered and nothing else enabled for signatures. */
export function rimSignedXml(options: ConstructorParameters<typeof SignedXml>[0] = {}): SignedXml {
  const sx = new SignedXml(options);
  const c14n = sx.CanonicalizationAlgorithms as Record<string, new () => unknown>;
  c14n[C14N_11] = C14n11Canonicalization;
  (sx.HashAlgorithms as Record<string, new () => unknown>)[SHA384] = Sha384;
  // Only ECDSA-SHA384: a document naming any other method (RSA, HMAC) fails before a key is used.
  sx.SignatureAlgorithms = { [ECDSA_SHA384]: EcdsaSha384 } as unknown as typeof sx.SignatureAlgorithms;
  return sx;
}

export const RIM_ALGORITHMS = { C14N_11, ENVELOPED, ECDSA_SHA384, SHA384 } as const;

function parseXml(text: string, what: string): Document {
  const problems: string[] = [];
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        problems.push(`${level}: ${message}`);
        if (level !== "warning") throw new Error(message);
      },
    }).parseFromString(text, "text/xml");
  } catch (error) {
    invalid(`${what} is not well-formed XML: ${problems[0] ?? (error as Error).message}`, error);
  }
  if (problems.length > 0) invalid(`${what} is not clean XML: ${problems[0]}`);
  if (doc.documentElement === null) invalid(`${what} has no root element`);
  return doc;
}

function elementChildren(parent: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === 1) {
      const e = n as Element;
      if (e.namespaceURI === ns && e.localName === local) out.push(e);
    }
  }
  return out;
}

function one(parent: Element, ns: string, local: string, what: string): Element {
  const found = elementChildren(parent, ns, local);
  if (found.length !== 1) invalid(`${what}: expected one ${local}, found ${found.length}`);
  return found[0]!;
}

/** Checks the Signature element's shape before any cryptography: what is signed, how, and by which certificates. */
function checkSignatureShape(doc: Document): { signature: Element; certificates: Uint8Array[] } {
  const root = doc.documentElement!;
  const signatures = doc.getElementsByTagNameNS(NS_DSIG, "Signature");
  if (signatures.length !== 1) invalid(`a RIM carries exactly one Signature, this one ${signatures.length}`);
  const signature = signatures.item(0)!;
  if (signature.parentNode !== root) invalid("the Signature is not a child of the SoftwareIdentity (not enveloped)");
  const signedInfo = one(signature, NS_DSIG, "SignedInfo", "Signature");
  const c14n = one(signedInfo, NS_DSIG, "CanonicalizationMethod", "SignedInfo").getAttribute("Algorithm");
  if (c14n !== C14N_11 && c14n !== C14N_10) invalid(`SignedInfo canonicalization ${c14n} is not C14N 1.1`);
  const method = one(signedInfo, NS_DSIG, "SignatureMethod", "SignedInfo").getAttribute("Algorithm");
  if (method !== ECDSA_SHA384) invalid(`signature method ${method} is not ecdsa-sha384`);
  const reference = one(signedInfo, NS_DSIG, "Reference", "SignedInfo");
  // Only the enveloping document itself may be referenced: no external or fragment references.
  if (reference.getAttribute("URI") !== "" || !reference.hasAttribute("URI")) {
    invalid(
      `the Reference URI is ${JSON.stringify(reference.getAttribute("URI"))}; only "" (the whole document) is accepted`,
    );
  }
  const transforms = elementChildren(one(reference, NS_DSIG, "Transforms", "Reference"), NS_DSIG, "Transform").map(
    (t) => t.getAttribute("Algorithm"),
  );
  if (
    transforms.length !== 2 ||
    transforms[0] !== ENVELOPED ||
    (transforms[1] !== C14N_11 && transforms[1] !== C14N_10)
  ) {
    invalid(`the Reference transforms ${JSON.stringify(transforms)} are not [enveloped-signature, C14N 1.1]`);
  }
  const digest = one(reference, NS_DSIG, "DigestMethod", "Reference").getAttribute("Algorithm");
  if (digest !== SHA384) invalid(`digest method ${digest} is not SHA-384`);
  const keyInfo = one(signature, NS_DSIG, "KeyInfo", "Signature");
  const x509Data = one(keyInfo, NS_DSIG, "X509Data", "KeyInfo");
  const certs = elementChildren(x509Data, NS_DSIG, "X509Certificate");
  if (certs.length === 0 || certs.length > MAX_KEYINFO_CERTIFICATES) {
    invalid(`KeyInfo holds ${certs.length} certificates; 1 to ${MAX_KEYINFO_CERTIFICATES} are accepted`);
  }
  const certificates = certs.map((c) => {
    const b64 = (c.textContent ?? "").replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) invalid("a KeyInfo certificate is not base64");
    return new Uint8Array(Buffer.from(b64, "base64"));
  });
  return { signature, certificates };
}

/** Refuses what the XML parser or C14N would treat in ways this verifier does not check. */
function checkDocumentSafety(doc: Document): void {
  const all = doc.getElementsByTagName("*");
  if (all.length > MAX_TAGS) invalid(`the RIM has ${all.length} elements`);
  for (let i = 0; i < all.length; i++) {
    const attrs = all.item(i)!.attributes;
    for (let j = 0; j < attrs.length; j++) {
      if (attrs.item(j)!.namespaceURI === NS_XML) {
        invalid(`the RIM uses ${attrs.item(j)!.name}; xml:* attributes are refused (C14N 1.1 treats them specially)`);
      }
    }
  }
  if (doc.documentElement!.namespaceURI !== NS_SWID || doc.documentElement!.localName !== "SoftwareIdentity") {
    invalid("the root element is not a SWID SoftwareIdentity");
  }
}

function decodeText(xml: Uint8Array | string): string {
  if (typeof xml === "string") {
    if (xml.length > MAX_RIM_BYTES) invalid(`the RIM is over ${MAX_RIM_BYTES} characters`);
    return xml.replace(/^\uFEFF/, "");
  }
  if (!(xml instanceof Uint8Array)) invalid("the RIM is neither text nor bytes");
  if (xml.length > MAX_RIM_BYTES) invalid(`the RIM is ${xml.length} bytes, over ${MAX_RIM_BYTES}`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(xml).replace(/^\uFEFF/, "");
  } catch (error) {
    invalid("the RIM is not UTF-8 text", error);
  }
}

function readMeasurements(signedXml: string): Pick<VerifiedRim, "version" | "tagId" | "product" | "measurements"> {
  const doc = parseXml(signedXml, "the signed RIM content");
  const root = doc.documentElement!;
  const metas = elementChildren(root, NS_SWID, "Meta").filter((m) => m.hasAttribute("colloquialVersion"));
  const meta = metas[0];
  if (meta === undefined) invalid("the RIM has no Meta element with a colloquialVersion");
  const version = meta.getAttribute("colloquialVersion") ?? "";
  if (!/^[\x21-\x7e]{1,64}$/.test(version)) invalid(`the RIM version ${JSON.stringify(version)} is not a version`);
  const resources = doc.getElementsByTagNameNS(NS_SWID, "Resource");
  if (resources.length > MAX_RESOURCES) invalid(`the RIM has ${resources.length} Resources, over ${MAX_RESOURCES}`);
  const measurements: GoldenMeasurement[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < resources.length; i++) {
    const r = resources.item(i)!;
    if (r.getAttribute("type") !== "Measurement") continue;
    const integer = (name: string, min: number, max: number): number => {
      const raw = r.getAttribute(name) ?? "";
      if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        invalid(`Resource ${i}: ${name}=${JSON.stringify(raw)} is not an integer ${min}..${max}`);
      }
      return Number(raw);
    };
    // Golden index i is report block i + 1, and SPDM block indices stop at 254 (255 is reserved).
    const index = integer("index", 0, 253);
    if (seen.has(index)) invalid(`two measurements have index ${index}`);
    seen.add(index);
    const activeText = r.getAttribute("active");
    if (activeText !== "True" && activeText !== "False")
      invalid(`Resource ${index}: active=${JSON.stringify(activeText)}`);
    const count = integer("alternatives", 1, MAX_ALTERNATIVES);
    const size = integer("size", 1, 64);
    const alternatives: Uint8Array[] = [];
    for (let a = 0; a < count; a++) {
      const hex = r.getAttributeNS(NS_HASH, `Hash${a}`);
      if (hex === null || !/^[0-9a-fA-F]*$/.test(hex) || hex.length !== 2 * size) {
        invalid(`Resource ${index}: Hash${a} is not ${size} bytes of hex`);
      }
      alternatives.push(new Uint8Array(Buffer.from(hex, "hex")));
    }
    measurements.push({ index, name: r.getAttribute("name") ?? "", size, active: activeText === "True", alternatives });
  }
  if (measurements.length === 0) invalid("the RIM lists no measurements");
  return {
    version,
    tagId: root.getAttribute("tagId") ?? "",
    product: meta.getAttribute("product") ?? "",
    measurements,
  };
}

function verifyVerifiedRim(xml: Uint8Array | string, trusted: ReadonlySet<string>, digest: string): VerifiedRim {
  const text = decodeText(xml);
  // Bound the tree before building it: a real RIM has about 90 tags (64 Resources, the signature, 4 certificates).
  let tags = 0;
  for (let i = text.indexOf("<"); i !== -1; i = text.indexOf("<", i + 1)) {
    if (++tags > MAX_TAGS) invalid(`the RIM has more than ${MAX_TAGS} tags`);
  }
  // DTDs and entities are never needed by a RIM; refusing them before parsing rules out entity expansion.
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) invalid("a RIM may not contain a DTD or entity declarations");
  const doc = parseXml(text, "the RIM");
  checkDocumentSafety(doc);
  const { signature, certificates: ders } = checkSignatureShape(doc);
  const chain = checkChain(ders, trusted, "RIM signing chain", "GPU_RIM_INVALID");
  const signer = chain.certificates[0]!;
  const key = signer.publicKey;
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    invalid(`the RIM signer ${signer.subjectCn} does not hold a P-384 key`);
  }
  if (signer.keyUsage !== undefined && (signer.keyUsage & 1) === 0) {
    invalid(`the RIM signer ${signer.subjectCn} may not make digital signatures (key usage)`);
  }
  // The key is the certificate chosen and chained above, passed as publicCert; getCertFromKeyInfo returns null so
  // that xml-crypto never picks a key from the document on its own.
  const sx = rimSignedXml({ publicCert: key as unknown as string, getCertFromKeyInfo: () => null });
  let ok = false;
  try {
    sx.loadSignature(signature as unknown as Node);
    ok = sx.checkSignature(text);
  } catch (error) {
    invalid(`the RIM signature does not verify: ${(error as Error).message.slice(0, 200)}`, error);
  }
  if (!ok) invalid("the RIM's signed content does not match its digest");
  const signed = sx.getSignedReferences();
  if (signed.length !== 1) invalid("the RIM signature covers no content");
  const content = readMeasurements(signed[0]!);
  return {
    ...content,
    kind: rimKindOf(content.version),
    certificates: chain.certificates,
    rootFingerprint: chain.rootFingerprint,
    digest,
  };
}

/** A RIM verifier that caches what does not depend on `now` (signature, chain, content) by the document's SHA-256. */
export function createRimVerifier(): { verify(xml: Uint8Array | string, options: RimVerifyOptions): VerifiedRim } {
  const cache = new Map<string, VerifiedRim>();
  return {
    verify(xml, options) {
      try {
        const trusted = new Set([
          NVIDIA_RIM_ROOT_FINGERPRINT,
          ...[...(options.trustedRoots ?? [])].map((f) => f.toLowerCase()),
        ]);
        const digest = createHash("sha256")
          .update(typeof xml === "string" ? Buffer.from(xml, "utf8") : xml)
          .digest("hex");
        const key = `${digest}|${[...trusted].sort().join(",")}`;
        let rim = cache.get(key);
        if (rim === undefined) {
          rim = verifyVerifiedRim(xml, trusted, digest);
          if (cache.size >= 64) cache.clear();
          cache.set(key, rim);
        }
        checkValidity(rim.certificates, options.now, `the ${rim.kind} RIM ${rim.version}`);
        return rim;
      } catch (error) {
        if (error instanceof ProvenantError) throw error;
        invalid(`the RIM could not be verified: ${String(error)}`, error);
      }
    },
  };
}

/**
 * Verifies one RIM: document shape (one enveloped signature, ecdsa-sha384, C14N 1.1, SHA-384, no DTD), the KeyInfo
 * chain to NVIDIA's pinned RIM root (or a trusted development root), every certificate valid at `now`, the XML
 * signature with the signer certificate, then reads the golden measurements from the signed content.
 * Throws GPU_RIM_INVALID, GPU_UNTRUSTED_ROOT or GPU_CERT_EXPIRED.
 */
export function verifyRim(xml: Uint8Array | string, options: RimVerifyOptions): VerifiedRim {
  return createRimVerifier().verify(xml, options);
}

export interface MeasurementAppraisal {
  /** Golden indices compared (active, not skipped). */
  checked: number;
  matched: number;
  /** Golden indices whose report block matches none of the alternatives (or is missing). */
  mismatched: number[];
  /** Golden indices not compared: 35 while NVDEC0 is disabled. */
  skipped: number[];
}

/**
 * Compares every active golden measurement with report block index + 1, as nvtrust's Verifier does: a match is any
 * alternative equal to the block's value with the RIM's size equal to the value's length; index 35 is skipped when
 * NVDEC0_STATUS is 0x55 (disabled). A driver and a VBIOS RIM may not both define an active index (GPU_RIM_INVALID).
 */
export function appraiseMeasurements(
  evidence: Pick<GpuEvidence, "blocks" | "nvdec0Status">,
  rims: {
    driver?: Pick<VerifiedRim, "measurements"> | undefined;
    vbios?: Pick<VerifiedRim, "measurements"> | undefined;
  },
): MeasurementAppraisal {
  const golden = new Map<number, GoldenMeasurement>();
  for (const m of rims.driver?.measurements ?? []) if (m.active) golden.set(m.index, m);
  for (const m of rims.vbios?.measurements ?? []) {
    if (!m.active) continue;
    if (golden.has(m.index)) invalid(`the driver and VBIOS RIMs both define measurement index ${m.index}`);
    golden.set(m.index, m);
  }
  const blocks = new Map(evidence.blocks.map((b) => [b.index, b.value]));
  const result: MeasurementAppraisal = { checked: 0, matched: 0, mismatched: [], skipped: [] };
  for (const index of [...golden.keys()].sort((a, b) => a - b)) {
    if (index === 35 && evidence.nvdec0Status === NVDEC0_DISABLED) {
      result.skipped.push(index);
      continue;
    }
    const m = golden.get(index)!;
    const value = blocks.get(index + 1);
    result.checked++;
    const ok =
      value !== undefined &&
      m.size === value.length &&
      m.alternatives.some((alt) => alt.length === value.length && timingSafeEqual(alt, value));
    if (ok) result.matched++;
    else result.mismatched.push(index);
  }
  return result;
}
