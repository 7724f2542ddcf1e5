// Checks AMD's certificate revocation lists (KDS `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`): an ARK-signed
// X.509 CRL (RFC 5280 §5) listing revoked ASK/ASVK (and VLEK) serials. Parsed with the strict DER reader.
import { constants, verify as cryptoVerify } from "node:crypto";

import { createHash } from "node:crypto";

import { ProvenantError, VerificationError } from "../errors.ts";
import type { AmdCertificate } from "./cert.ts";
import { isRsaPssSha384, readCertificate } from "./cert.ts";
import { DerReader, readTime } from "./der.ts";

/**
 * Whether a CRL entry can name this certificate. AMD's VCEKs all carry serial 0 (the real Milan VCEK in
 * test/fixtures/snp does): a listed 0 would name every chip, so a VCEK is revoked through its ASK, the way AMD
 * revokes it (and go-sev-guest checks it); TCB updates supersede VCEKs otherwise. ASKs, ASVKs and VLEKs have their
 * own serials and are matched by them.
 */
function isListable(cert: AmdCertificate): boolean {
  return !(cert.subjectCn === "SEV-VCEK" && cert.serial === "0");
}

export interface ParsedCrl {
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Revoked serial numbers, lower-case hex without leading zeros. */
  revoked: Set<string>;
  tbs: Uint8Array;
  signatureAlgorithm: Uint8Array;
  signature: Uint8Array;
}

/** Parses a DER CRL; throws SNP_CERT_UNAVAILABLE (the revocation data cannot be used) when malformed. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  try {
    const r = new DerReader(der, "SNP_CERT_UNAVAILABLE");
    const root = r.expect(r.node(0), 0x30, "CertificateList");
    if (root.end !== der.length) r.fail("trailing bytes after the CRL");
    const [tbs, alg, sig] = r.children(root);
    const fields = r.children(r.expect(tbs, 0x30, "TBSCertList"));
    let i = 0;
    if (fields[i]?.tag === 0x02) i++;
    i++; // signature AlgorithmIdentifier
    const issuer = r.expect(fields[i++], 0x30, "issuer");
    const thisUpdate = readTime(r, fields[i++] ?? r.fail("missing thisUpdate"));
    let nextUpdate: Date | undefined;
    if (fields[i] !== undefined && (fields[i]!.tag === 0x17 || fields[i]!.tag === 0x18))
      nextUpdate = readTime(r, fields[i++]!);
    const revoked = new Set<string>();
    if (fields[i]?.tag === 0x30) {
      for (const entry of r.children(fields[i]!)) {
        const [serial] = r.children(r.expect(entry, 0x30, "revoked entry"));
        const bytes = r.content(r.expect(serial, 0x02, "serial"));
        revoked.add(
          Buffer.from(bytes)
            .toString("hex")
            .replace(/^0+(?=.)/, ""),
        );
      }
    }
    const sigBits = r.content(r.expect(sig, 0x03, "signatureValue"));
    if (sigBits[0] !== 0) r.fail("signature BIT STRING has unused bits");
    return {
      issuerDer: Uint8Array.from(r.encoding(issuer)),
      thisUpdate,
      nextUpdate,
      revoked,
      tbs: Uint8Array.from(r.encoding(tbs)),
      signatureAlgorithm: Uint8Array.from(r.encoding(alg ?? r.fail("missing signatureAlgorithm"))),
      signature: Uint8Array.from(sigBits.subarray(1)),
    };
  } catch (error) {
    if (error instanceof ProvenantError) throw error;
    throw new VerificationError("SNP_CERT_UNAVAILABLE", `unreadable CRL: ${String(error)}`);
  }
}

/** True when the CRL is signed by this ARK (RSASSA-PSS SHA-384, salt 48). */
export function isCrlSignedBy(crl: ParsedCrl, ark: AmdCertificate): boolean {
  if (!isRsaPssSha384(crl.signatureAlgorithm)) return false;
  try {
    return cryptoVerify(
      "sha384",
      crl.tbs,
      { key: ark.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
      crl.signature,
    );
  } catch {
    return false;
  }
}

/** When the revocation check holds: from the latest thisUpdate to the earliest nextUpdate of the CRLs used. */
export interface CrlWindow {
  thisUpdate: Date;
  nextUpdate: Date;
}

/**
 * Checks `certificates` against every CRL among `crls` that this ARK signed. Throws SNP_CERT_REVOKED for a listed
 * serial, and SNP_CERT_UNAVAILABLE when no CRL signed by the ARK was given or one of those used has no nextUpdate
 * (it could never be known stale). Returns the window in which all of them are current: the latest thisUpdate and
 * the earliest nextUpdate; the caller checks `now` against it (on every verification, cached or not).
 */
export function checkRevocation(
  crls: readonly Uint8Array[],
  ark: AmdCertificate,
  certificates: readonly AmdCertificate[],
): CrlWindow {
  const parsed = crls.map(parseCrl).filter((c) => isCrlSignedBy(c, ark));
  if (parsed.length === 0) {
    throw new VerificationError("SNP_CERT_UNAVAILABLE", `no CRL signed by ${ark.subjectCn} was supplied`);
  }
  let thisUpdate = parsed[0]!.thisUpdate;
  let nextUpdate: Date | undefined;
  for (const crl of parsed) {
    if (crl.nextUpdate === undefined) {
      throw new VerificationError(
        "SNP_CERT_UNAVAILABLE",
        `a CRL signed by ${ark.subjectCn} (thisUpdate ${crl.thisUpdate.toISOString()}) has no nextUpdate`,
      );
    }
    if (crl.thisUpdate.getTime() > thisUpdate.getTime()) thisUpdate = crl.thisUpdate;
    if (nextUpdate === undefined || crl.nextUpdate.getTime() < nextUpdate.getTime()) nextUpdate = crl.nextUpdate;
    for (const cert of certificates) {
      if (!isListable(cert)) continue;
      if (crl.revoked.has(cert.serial)) {
        throw new VerificationError("SNP_CERT_REVOKED", `${cert.subjectCn} serial ${cert.serial} is revoked`, {
          details: { serial: cert.serial },
        });
      }
    }
  }
  return { thisUpdate, nextUpdate: nextUpdate! };
}

/** What a revocation check of one chain could establish (a revoked certificate throws SNP_CERT_REVOKED instead). */
export type ChainRevocation =
  | {
      status: "good";
      /** The CRL used: the newest one the ARK signed that is issued by `now`. */
      thisUpdate: Date;
      nextUpdate: Date;
    }
  | {
      status: "unusable";
      /**
       * none: no CRL was given; not-signed: none is signed by this chain's ARK; stale: the newest is past its
       * nextUpdate (or every one is issued after `now`); no-next-update: the newest could never be known stale.
       */
      reason: "none" | "not-signed" | "stale" | "no-next-update";
      message: string;
    };

interface ChainCrlFacts {
  root: string;
  /** The ARK-signed CRLs, parsed. */
  signed: ParsedCrl[];
  /** The revocation found, if any: thrown on every call. */
  revoked: VerificationError | undefined;
}

const factsCache = new Map<string, ChainCrlFacts>();

function digestOf(parts: readonly Uint8Array[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(createHash("sha256").update(p).digest());
  return h.digest("hex");
}

/** Parses the chain and the CRLs once per (leaf, chain, CRLs): the RSA-PSS check of a CRL is not paid per report. */
function chainCrlFacts(
  leafDer: Uint8Array,
  chainDer: readonly Uint8Array[],
  rootFingerprint: string,
  crls: readonly Uint8Array[],
): ChainCrlFacts {
  const key = `${rootFingerprint}:${chainDer.length}:${crls.length}:${digestOf([leafDer, ...chainDer, ...crls])}`;
  const known = factsCache.get(key);
  if (known !== undefined) return known;
  const leaf = readCertificate(leafDer, "VCEK/VLEK");
  const certs = chainDer.map((der, i) => readCertificate(der, `chain[${i}]`));
  const ark = certs.find((c) => c.fingerprint === rootFingerprint);
  const intermediate = certs.find((c) => c.subjectCn === leaf.issuerCn && c.fingerprint !== rootFingerprint);
  if (ark === undefined || intermediate === undefined)
    throw new VerificationError(
      "SNP_CERT_UNAVAILABLE",
      "the revocation check needs the chain's ARK and intermediate certificate, and they were not supplied",
    );
  const signed: ParsedCrl[] = [];
  for (const der of crls) {
    let crl: ParsedCrl;
    try {
      crl = parseCrl(der);
    } catch {
      continue; // an unreadable CRL is no CRL; the caller is told when none is usable
    }
    if (isCrlSignedBy(crl, ark)) signed.push(crl);
  }
  let revoked: VerificationError | undefined;
  // Every ARK-signed CRL counts, however old: a certificate once revoked stays revoked (RFC 5280 §3.3).
  for (const crl of signed) {
    for (const cert of [intermediate, leaf]) {
      if (revoked !== undefined || !isListable(cert) || !crl.revoked.has(cert.serial)) continue;
      revoked = new VerificationError(
        "SNP_CERT_REVOKED",
        `${cert.subjectCn} serial ${cert.serial} is revoked by ${ark.subjectCn}'s CRL of ${crl.thisUpdate.toISOString()}` +
          (cert === intermediate && leaf.subjectCn === "SEV-VCEK" ? ", and with it every VCEK it issued" : ""),
        { details: { subject: cert.subjectCn, serial: cert.serial, crlThisUpdate: crl.thisUpdate.toISOString() } },
      );
    }
  }
  const facts = { root: ark.subjectCn, signed, revoked };
  if (factsCache.size >= 256) factsCache.clear();
  factsCache.set(key, facts);
  return facts;
}

/**
 * Checks a verified chain (the leaf, and the chain holding its intermediate and the ARK whose fingerprint the
 * verification pinned) against AMD's ARK-signed CRLs (KDS `{vcek|vlek}/v1/{product}/crl`) at `now`. Throws
 * SNP_CERT_REVOKED when a CRL the ARK signed lists the ASK/ASVK or the VLEK (a VCEK is revoked through its ASK);
 * otherwise says whether the newest such CRL was usable: signed by this ARK, issued by `now`, with a nextUpdate that
 * `now` has not passed. Trust comes from the ARK's signature alone, never from where the CRL came from.
 */
export function checkChainRevocation(input: {
  leaf: Uint8Array;
  chain: readonly Uint8Array[];
  rootFingerprint: string;
  crls: readonly Uint8Array[];
  now: Date;
}): ChainRevocation {
  if (input.crls.length === 0) return { status: "unusable", reason: "none", message: "no CRL was supplied" };
  const facts = chainCrlFacts(input.leaf, input.chain, input.rootFingerprint, input.crls);
  if (facts.revoked !== undefined) throw facts.revoked;
  if (facts.signed.length === 0)
    return { status: "unusable", reason: "not-signed", message: `no CRL signed by ${facts.root} was supplied` };
  const t = input.now.getTime();
  let newest: ParsedCrl | undefined;
  for (const crl of facts.signed)
    if (crl.thisUpdate.getTime() <= t && (newest === undefined || crl.thisUpdate > newest.thisUpdate)) newest = crl;
  if (newest === undefined)
    return {
      status: "unusable",
      reason: "stale",
      message: `every CRL of ${facts.root} is issued after ${input.now.toISOString()}`,
    };
  if (newest.nextUpdate === undefined)
    return {
      status: "unusable",
      reason: "no-next-update",
      message: `the CRL of ${facts.root} (thisUpdate ${newest.thisUpdate.toISOString()}) has no nextUpdate`,
    };
  if (t > newest.nextUpdate.getTime())
    return {
      status: "unusable",
      reason: "stale",
      message: `the newest CRL of ${facts.root} expired at ${newest.nextUpdate.toISOString()}`,
    };
  return { status: "good", thisUpdate: newest.thisUpdate, nextUpdate: newest.nextUpdate };
}
