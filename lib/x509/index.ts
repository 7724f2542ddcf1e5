// The fields every X.509 certificate the verifier reads carries (AMD's SEV-SNP chains in lib/snp, NVIDIA's device
// identity and RIM chains in lib/gpu), taken once from node:crypto's X509Certificate. Each reader adds its own
// checks and extensions on top; nothing here decides trust (roots are pinned by fingerprint where chains are built).
import { createHash, type KeyObject, type X509Certificate } from "node:crypto";

export interface CertificateRecord {
  der: Uint8Array;
  x509: X509Certificate;
  /** Hex SHA-256 of the DER. */
  fingerprint: string;
  subjectCn: string;
  issuerCn: string;
  /** Lower-case hex, no leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
}

/** Hex SHA-256 of `bytes` (a certificate's fingerprint). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The CN of a distinguished name as node:crypto prints it (one "KEY=value" per line); "" when there is none. */
function commonName(dn: string): string {
  for (const line of dn.split("\n")) if (line.startsWith("CN=")) return line.slice(3);
  return "";
}

/**
 * The common fields of a certificate already parsed by node:crypto from `der`. Reading the key or names may throw
 * (an unsupported key): callers map that to their own code. Dates are as node:crypto gives them (check for NaN).
 */
export function toCertificateRecord(der: Uint8Array, x509: X509Certificate): CertificateRecord {
  return {
    der,
    x509,
    fingerprint: sha256Hex(der),
    subjectCn: commonName(x509.subject),
    issuerCn: commonName(x509.issuer),
    serial: x509.serialNumber.toLowerCase().replace(/^0+(?=.)/, ""),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    publicKey: x509.publicKey,
  };
}
