// Verifies an SEV-SNP report: its ECDSA P-384 signature, and the certificate chain ARK → ASK|ASVK → VCEK|VLEK
// up to a pinned AMD root (or a development root a policy names), then binds the report to the certificate:
// signing-key kind, REPORTED_TCB = SPL extensions, CHIP_ID = hwID, product line. Synchronous and offline;
// the verified chain is cached per (VCEK, chain) so a second report from the same chip costs one P-384 verify.
// No AMD certificate is built in: the ASK/ASVK and ARK come from the evidence, else from an injected
// CertificateSource (kds.ts: the disk cache filled from AMD's KDS), else verification fails SNP_CERT_UNAVAILABLE.
import { createHash, verify as cryptoVerify, type KeyObject } from "node:crypto";

import { ProvenantError, VerificationError } from "../errors.ts";
import { ARK_FINGERPRINTS } from "./amd-roots.ts";
import {
  OID_BL_SPL,
  OID_FMC_SPL,
  OID_SNP_SPL,
  OID_TEE_SPL,
  OID_UCODE_SPL,
  productOfCommonName,
  readCertificate,
  readHwid,
  readProductName,
  readSpl,
  type AmdCertificate,
} from "./cert.ts";
import { checkRevocation, type CrlWindow } from "./crl.ts";
import { encodeTcb, parseReport, SIGNED_SIZE, withTcbProduct, type AttestationReport, type Product } from "./parse.ts";

export interface SnpEvidence {
  /** DER (or PEM) VCEK or VLEK. */
  vcek: Uint8Array;
  /** DER ASK or ASVK, then the ARK (as KDS cert_chain serves them). When absent, `certificates` must supply them. */
  chain?: readonly Uint8Array[];
}

export interface VerifiedReport {
  report: AttestationReport;
  product: Product;
  signer: "vcek" | "vlek";
  /** Hex SHA-256 of the ARK DER. */
  rootFingerprint: string;
}

/** Where intermediate and root certificates come from when the evidence does not carry them. */
export interface CertificateSource {
  /** [ASK|ASVK, ARK] as DER for a product, or undefined when unknown. Synchronous: a memory or disk cache. */
  chain(product: Product, signer: "vcek" | "vlek"): readonly Uint8Array[] | undefined;
}

export interface ReportVerifierOptions {
  /** Extra pinned ARK fingerprints (hex SHA-256 of the DER), e.g. the simulator's. AMD's are always pinned. */
  trustedRoots?: readonly string[];
  /**
   * Intermediate/root certificates when the evidence omits them (e.g. the kds.ts store: its disk cache, which
   * `fetchChain` fills from KDS beforehand). Without it, evidence without a chain fails SNP_CERT_UNAVAILABLE.
   */
  certificates?: CertificateSource;
  /** DER CRLs signed by an ARK (KDS `crl`); when given, ASK/ASVK and VLEK serials are checked against them. */
  crls?: readonly Uint8Array[];
}

export interface ReportVerifier {
  verify(bytes: Uint8Array, evidence: SnpEvidence, now: Date): VerifiedReport;
}

interface VerifiedChain {
  product: Product;
  signer: "vcek" | "vlek";
  rootFingerprint: string;
  key: KeyObject;
  leaf: AmdCertificate;
  certificates: readonly AmdCertificate[];
  spl: { bootloader: number; tee: number; snp: number; microcode: number; fmc: number | undefined };
  hwid: Uint8Array | undefined;
  /** When CRLs were checked: the latest thisUpdate and earliest nextUpdate; outside it the check does not hold. */
  crlWindow?: CrlWindow | undefined;
}

const PINNED: ReadonlyMap<string, Product> = new Map(
  (Object.entries(ARK_FINGERPRINTS) as [Product, string][]).map(([p, f]) => [f, p]),
);

function fail(code: "SNP_CHAIN_INVALID" | "SNP_UNTRUSTED_ROOT" | "SNP_PRODUCT_MISMATCH", message: string): never {
  throw new VerificationError(code, message);
}

/** Sorts certificates into their roles by subject CN (KDS order, ARK first, or with the leaf included). */
function assignRoles(
  chainDer: readonly Uint8Array[],
  what: string,
): { intermediate: AmdCertificate | undefined; ark: AmdCertificate | undefined } {
  if (chainDer.length > 3) fail("SNP_CHAIN_INVALID", `the ${what} holds ${chainDer.length} certificates`);
  let intermediate: AmdCertificate | undefined;
  let ark: AmdCertificate | undefined;
  for (const [i, der] of chainDer.entries()) {
    const cert = readCertificate(der, `${what}[${i}]`);
    if (cert.subjectCn === "SEV-VCEK" || cert.subjectCn === "SEV-VLEK") continue;
    const isRoot = cert.subjectCn.startsWith("ARK-");
    if ((isRoot ? ark : intermediate) !== undefined)
      fail("SNP_CHAIN_INVALID", `the ${what} holds two ${cert.subjectCn}`);
    if (isRoot) ark = cert;
    else intermediate = cert;
  }
  return { intermediate, ark };
}

function certificatesUnavailable(product: Product, signer: "vcek" | "vlek", missing: string): never {
  const intermediate = signer === "vcek" ? "ASK" : "ASVK";
  throw new VerificationError(
    "SNP_CERT_UNAVAILABLE",
    `the bundle carries no ${missing} for ${product} and no certificate cache holds them: include the ${intermediate} ` +
      `and ARK (KDS ${signer}/v1/${product}/cert_chain; \`--chain <pem>\` on the command line), or configure the ` +
      `certificate cache / AMD KDS`,
    { details: { product, signer, missing } },
  );
}

function signedBy(child: AmdCertificate, parent: AmdCertificate, what: string): void {
  if (child.x509.issuer !== parent.x509.subject)
    fail("SNP_CHAIN_INVALID", `${what}: issuer is not its parent's subject`);
  if (!child.rsaPssSha384) fail("SNP_CHAIN_INVALID", `${what}: not signed with RSASSA-PSS SHA-384 (salt 48)`);
  let ok: boolean;
  try {
    ok = child.x509.verify(parent.publicKey);
  } catch {
    ok = false;
  }
  if (!ok) fail("SNP_CHAIN_INVALID", `${what}: signature does not verify with its issuer's key`);
}

/** Verifies the chain for one VCEK/VLEK; no report involved, so the result is cacheable. */
function verifyChain(
  evidence: SnpEvidence,
  trusted: ReadonlySet<string>,
  options: ReportVerifierOptions,
): VerifiedChain {
  const leaf = readCertificate(evidence.vcek, "VCEK/VLEK");
  const signer = leaf.subjectCn === "SEV-VLEK" ? "vlek" : leaf.subjectCn === "SEV-VCEK" ? "vcek" : undefined;
  if (signer === undefined)
    fail("SNP_CHAIN_INVALID", `leaf subject CN ${JSON.stringify(leaf.subjectCn)} is neither SEV-VCEK nor SEV-VLEK`);
  const issuerProduct = productOfCommonName(leaf.issuerCn);
  if (issuerProduct === undefined)
    fail("SNP_CHAIN_INVALID", `leaf issuer CN ${JSON.stringify(leaf.issuerCn)} names no product`);
  const expectedIssuer = signer === "vcek" ? `SEV-${issuerProduct}` : `SEV-VLEK-${issuerProduct}`;
  if (leaf.issuerCn !== expectedIssuer)
    fail("SNP_CHAIN_INVALID", `a ${signer.toUpperCase()} must be issued by ${expectedIssuer}, not ${leaf.issuerCn}`);

  // The evidence's chain first; what it lacks comes from the certificate source (cache / KDS), never from the code.
  // KDS serves ASK|ASVK then ARK; other tools put the ARK first or include the leaf. Roles go by subject CN.
  let { intermediate, ark } =
    evidence.chain !== undefined && evidence.chain.length > 0
      ? assignRoles(evidence.chain, "chain")
      : { intermediate: undefined, ark: undefined };
  // An ARK alone gets no intermediate from elsewhere: whoever sent the root must send the ASK/ASVK it signed.
  if (intermediate === undefined && ark !== undefined)
    fail("SNP_CHAIN_INVALID", `the chain has no ${expectedIssuer} certificate`);
  if (intermediate === undefined || ark === undefined) {
    const missing = intermediate === undefined ? (signer === "vcek" ? "ASK/ARK" : "ASVK/ARK") : "ARK";
    const sourced = options.certificates?.chain(issuerProduct, signer);
    if (sourced === undefined || sourced.length === 0) certificatesUnavailable(issuerProduct, signer, missing);
    const fromSource = assignRoles(sourced, "cached chain");
    intermediate ??= fromSource.intermediate;
    ark ??= fromSource.ark;
    if (intermediate === undefined || ark === undefined) certificatesUnavailable(issuerProduct, signer, missing);
  }

  // The root is trusted only by fingerprint, never because it came with the evidence.
  const pinnedProduct = PINNED.get(ark.fingerprint);
  if (pinnedProduct === undefined && !trusted.has(ark.fingerprint)) {
    fail("SNP_UNTRUSTED_ROOT", `ARK ${ark.fingerprint} is not pinned`);
  }
  const product = pinnedProduct ?? productOfCommonName(ark.subjectCn);
  if (product === undefined || ark.subjectCn !== `ARK-${product}`)
    fail("SNP_CHAIN_INVALID", `ARK CN ${ark.subjectCn} names no product`);
  if (product !== issuerProduct)
    fail("SNP_PRODUCT_MISMATCH", `the leaf is issued for ${issuerProduct}, the root is ${product}'s`);
  if (intermediate.subjectCn !== expectedIssuer)
    fail("SNP_CHAIN_INVALID", `intermediate CN ${intermediate.subjectCn}, expected ${expectedIssuer}`);

  signedBy(ark, ark, "ARK (self-signed)");
  signedBy(intermediate, ark, expectedIssuer);
  signedBy(leaf, intermediate, leaf.subjectCn);

  const key = leaf.publicKey;
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    fail("SNP_CHAIN_INVALID", "the VCEK/VLEK key is not an EC P-384 key");
  }
  const productName = readProductName(leaf);
  if (productName !== undefined && !productName.startsWith(product)) {
    fail("SNP_PRODUCT_MISMATCH", `productName ${productName} does not match the chain's ${product}`);
  }
  const spl = (oid: string, name: string): number => {
    const value = readSpl(leaf, oid);
    if (value === undefined) fail("SNP_CHAIN_INVALID", `the ${signer.toUpperCase()} has no ${name} extension`);
    return value;
  };
  const chain: VerifiedChain = {
    product,
    signer,
    rootFingerprint: ark.fingerprint,
    key,
    leaf,
    certificates: [leaf, intermediate, ark],
    spl: {
      bootloader: spl(OID_BL_SPL, "blSPL"),
      tee: spl(OID_TEE_SPL, "teeSPL"),
      snp: spl(OID_SNP_SPL, "snpSPL"),
      microcode: spl(OID_UCODE_SPL, "ucodeSPL"),
      fmc: product === "Turin" ? spl(OID_FMC_SPL, "fmcSPL") : undefined,
    },
    hwid: readHwid(leaf),
  };
  if (options.crls !== undefined) chain.crlWindow = checkRevocation(options.crls, ark, [intermediate, leaf]);
  return chain;
}

function checkValidity(chain: VerifiedChain, now: Date): void {
  const t = now.getTime();
  if (!Number.isFinite(t)) throw new VerificationError("SNP_CERT_EXPIRED", "`now` is not a valid date");
  // Re-checked on every call, the cached path included: every CRL used must be current at `now`.
  const crl = chain.crlWindow;
  if (crl !== undefined && t > crl.nextUpdate.getTime()) {
    throw new VerificationError("SNP_CERT_UNAVAILABLE", `a CRL expired at ${crl.nextUpdate.toISOString()}`);
  }
  if (crl !== undefined && t < crl.thisUpdate.getTime()) {
    throw new VerificationError(
      "SNP_CERT_UNAVAILABLE",
      `a CRL is issued ${crl.thisUpdate.toISOString()}, after ${now.toISOString()}`,
    );
  }
  for (const cert of chain.certificates) {
    if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) {
      throw new VerificationError(
        "SNP_CERT_EXPIRED",
        `${cert.subjectCn} is valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not at ${now.toISOString()}`,
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

function verifySignature(report: AttestationReport, key: KeyObject): void {
  if (report.signatureAlgo !== 1) {
    throw new VerificationError(
      "SNP_BAD_SIGNATURE",
      `signature algorithm ${report.signatureAlgo} is not ECDSA P-384 SHA-384 (1)`,
    );
  }
  const raw = report.raw;
  // r and s are 72-byte little-endian fields; a P-384 value fills 48 bytes, the rest must be zero (56860 Table 137).
  for (const base of [0x2a0, 0x2e8]) {
    for (let i = base + 48; i < base + 72; i++) {
      if (raw[i] !== 0) throw new VerificationError("SNP_BAD_SIGNATURE", "a signature component exceeds 384 bits");
    }
  }
  const signature = new Uint8Array(96);
  signature.set(report.signatureR, 0);
  signature.set(report.signatureS, 48);
  let ok: boolean;
  try {
    ok = cryptoVerify("sha384", raw.subarray(0, SIGNED_SIZE), { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new VerificationError("SNP_BAD_SIGNATURE", "the report signature does not verify with the VCEK/VLEK key");
}

function bindReport(parsed: AttestationReport, chain: VerifiedChain): AttestationReport {
  if (parsed.signingKey !== chain.signer) {
    throw new VerificationError(
      "SNP_SIGNER_MISMATCH",
      `the report says it was signed by ${parsed.signingKey}, the certificate is a ${chain.signer.toUpperCase()}`,
      { details: { report: parsed.signingKey, certificate: chain.signer } },
    );
  }
  if (parsed.version >= 3 && parsed.productFromCpuid === undefined) {
    // v3+ reports name their CPU: one this verifier does not recognise cannot be bound to the chain's product.
    const c = parsed.cpuid;
    throw new VerificationError(
      "SNP_PRODUCT_MISMATCH",
      `CPUID family ${c?.family.toString(16)}h model ${c?.model.toString(16)}h is no known SEV-SNP product; ` +
        `the certificate chain is ${chain.product}'s`,
      { details: { cpuid: c, certificate: chain.product } },
    );
  }
  if (parsed.version >= 3 && parsed.productFromCpuid !== chain.product) {
    throw new VerificationError(
      "SNP_PRODUCT_MISMATCH",
      `CPUID says ${parsed.productFromCpuid}, the certificate chain is ${chain.product}'s`,
      { details: { cpuid: parsed.productFromCpuid, certificate: chain.product } },
    );
  }
  const report = withTcbProduct(parsed, chain.product);
  const t = report.reportedTcb;
  const s = chain.spl;
  // The whole 64-bit value: reserved bytes (Milan/Genoa 2-5, Turin 4-6) are zero in the certified encoding, so a
  // report with anything there differs from what the VCEK certifies even when the named fields agree.
  const certified = encodeTcb(
    {
      bootloader: s.bootloader,
      tee: s.tee,
      snp: s.snp,
      microcode: s.microcode,
      ...(chain.product === "Turin" ? { fmc: s.fmc ?? 0 } : {}),
    },
    chain.product,
  );
  const mismatched = t.raw !== certified;
  if (mismatched) {
    throw new VerificationError(
      "SNP_TCB_MISMATCH",
      `REPORTED_TCB ${JSON.stringify({ ...t, raw: undefined })} differs from the certificate's SPLs ${JSON.stringify(s)}`,
      {
        details: { reported: t.raw.toString(16), certificate: s, certified: certified.toString(16) },
      },
    );
  }
  if (chain.product === "Turin") {
    // A Turin chip is identified by CHIP_ID[0:8] (its hwID is 8 bytes); the other 56 bytes are zero on real parts.
    for (let i = 8; i < 64; i++) {
      if (report.chipId[i] !== 0) {
        throw new VerificationError("SNP_CHIP_ID_MISMATCH", `Turin CHIP_ID byte ${i} is not zero (bytes 8-63 must be)`);
      }
    }
  }
  if (chain.signer === "vcek" && report.maskChipKey) {
    // With MASK_CHIP_KEY set the firmware does not use the VCEK (the chip key is masked): a report that says so
    // cannot have been signed by one, and its zero CHIP_ID would bind it to no chip.
    throw new VerificationError(
      "SNP_SIGNER_MISMATCH",
      "the report has MASK_CHIP_KEY set, so no VCEK can have signed it (only a VLEK is usable with a masked chip key)",
      { details: { maskChipKey: true, certificate: chain.signer } },
    );
  }
  if (chain.signer === "vcek") {
    const hwid = chain.hwid;
    const length = chain.product === "Turin" ? 8 : 64;
    if (hwid === undefined || hwid.length !== length) {
      throw new VerificationError("SNP_CHIP_ID_MISMATCH", `the VCEK carries no ${length}-byte hwID`);
    }
    const chip = report.chipId;
    let diff = 0;
    for (let i = 0; i < length; i++) diff |= chip[i]! ^ hwid[i]!;
    if (diff !== 0) {
      throw new VerificationError("SNP_CHIP_ID_MISMATCH", "CHIP_ID differs from the VCEK's hwID", {
        details: { chipId: Buffer.from(chip).toString("hex"), hwid: Buffer.from(hwid).toString("hex") },
      });
    }
  }
  return report;
}

function asVerificationError(error: unknown): ProvenantError {
  if (error instanceof ProvenantError) return error;
  return new VerificationError("SNP_CHAIN_INVALID", `unexpected failure: ${String(error)}`, { cause: error });
}

/** A verifier with a per-(VCEK, chain) cache of verified chains; `verify` is synchronous and throws coded errors. */
export function createReportVerifier(options: ReportVerifierOptions = {}): ReportVerifier {
  const trusted = new Set((options.trustedRoots ?? []).map((f) => f.toLowerCase()));
  const cache = new Map<string, VerifiedChain>();
  const keyOf = (evidence: SnpEvidence): string => {
    const h = createHash("sha256").update(evidence.vcek);
    for (const c of evidence.chain ?? []) h.update(c);
    return `${evidence.chain?.length ?? 0}:${h.digest("hex")}`;
  };
  return {
    verify(bytes, evidence, now) {
      try {
        const parsed = parseReport(bytes);
        if (evidence === null || typeof evidence !== "object" || !(evidence.vcek instanceof Uint8Array)) {
          throw new VerificationError("SNP_CERT_UNAVAILABLE", "the evidence carries no VCEK/VLEK certificate");
        }
        const key = keyOf(evidence);
        let chain = cache.get(key);
        if (chain === undefined) {
          chain = verifyChain(evidence, trusted, options);
          if (cache.size >= 1024) cache.clear();
          cache.set(key, chain);
        }
        checkValidity(chain, now);
        verifySignature(parsed, chain.key);
        const report = bindReport(parsed, chain);
        return { report, product: chain.product, signer: chain.signer, rootFingerprint: chain.rootFingerprint };
      } catch (error) {
        throw asVerificationError(error);
      }
    },
  };
}

/** One-shot verification (no cache across calls). */
export function verifyReport(
  bytes: Uint8Array,
  evidence: SnpEvidence,
  now: Date,
  options: ReportVerifierOptions = {},
): VerifiedReport {
  return createReportVerifier(options).verify(bytes, evidence, now);
}
