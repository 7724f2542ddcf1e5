// Checks AMD's certificate revocation lists (KDS `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`): an ARK-signed
// X.509 CRL (RFC 5280 §5) listing revoked ASK/ASVK (and VLEK) serials. Parsed with the strict DER reader.
import { constants, verify as cryptoVerify } from "node:crypto";

import { ProvenantError, VerificationError } from "../errors.ts";
import type { AmdCertificate } from "./cert.ts";
import { isRsaPssSha384 } from "./cert.ts";
import { DerReader, readTime } from "./der.ts";

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
      // Every VCEK has serial 0; only intermediates (and VLEKs) are meaningfully listed.
      if (cert.subjectCn === "SEV-VCEK") continue;
      if (crl.revoked.has(cert.serial)) {
        throw new VerificationError("SNP_CERT_REVOKED", `${cert.subjectCn} serial ${cert.serial} is revoked`, {
          details: { serial: cert.serial },
        });
      }
    }
  }
  return { thisUpdate, nextUpdate: nextUpdate! };
}
