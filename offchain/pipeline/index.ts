// The verifier's pure core: bundle bytes + policy + `now` (+ a warm report verifier) → a verdict with every reason
// code and, when accepted, the onchain record. No I/O, never throws. Steps follow DESIGN §1 a–g: the report's
// certificate chain to a pinned ARK, its signature and fields (lib/snp verify), the SNP policy (lib/snp validate),
// REPORT_DATA binding the signer key K and the nonce, every envelope signed by K, and consistent statements.
// Cost is bounded before it is spent: the envelope and signature counts are checked while the bundle is read
// (BUNDLE_TOO_COMPLEX), shape and policy checks collect every reason, and cryptography fails fast: once one proof
// is broken (the report's chain or signature, the binding, an envelope), no further signature is verified.
import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from "node:crypto";

import {
  findManifest,
  manifestDigestOf,
  parseJsonBounded,
  readBundle,
  type ProvenanceBundle,
} from "../../lib/bundle/index.ts";
import { decodeBase64, verifyEnvelope } from "../../lib/dsse/index.ts";
import {
  MalformedInputError,
  PolicyError,
  ProvenantError,
  throwIfViolations,
  toErrorList,
  VerificationError,
  type ErrorCode,
} from "../../lib/errors.ts";
import { validateStatement, type ValidatedStatement } from "../../lib/intoto/index.ts";
import type { AttestationRecord } from "../../lib/registry/record.ts";
import { chainNeeds, completeChain, type ChainNeeds } from "../../lib/snp/kds.ts";
import {
  createReportVerifier,
  parseReport,
  validateReport,
  type AttestationReport,
  type CertificateSource,
  type Product,
  type VerifiedReport,
} from "../../lib/snp/index.ts";
import { policyDigest, type VerifierPolicy } from "./policy.ts";

export {
  defaultVerifierPolicy,
  MAX_POLICY_BUNDLE_BYTES,
  parseVerifierPolicy,
  parseVerifierPolicyBytes,
  policyDigest,
  type AcceptedKind,
  type VerifierPolicy,
  type VerifierPolicyJson,
} from "./policy.ts";

export type ReportVerifier = ReturnType<typeof createReportVerifier>;

/** The record a verdict carries is the registry's `Attestation` tuple, declared once in lib/registry/record.ts. */
export type { AttestationRecord } from "../../lib/registry/record.ts";

export interface BundleVerdict {
  ok: boolean;
  /** Hex SHA-256 of the bundle file bytes. */
  bundleDigest: string;
  manifestDigest?: string;
  modelHash?: string;
  kind?: "finetune" | "eval";
  errors: { code: ErrorCode; message: string }[];
  record?: AttestationRecord;
  /**
   * Set when the verdict carries SNP_CERT_UNAVAILABLE because the evidence lacks its ASK|ASVK or ARK: the product's
   * `cert_chain` that would complete it (the service fetches it and verifies again).
   */
  certificatesNeeded?: { product: Product; signer: "vcek" | "vlek" };
  evidence?: {
    product: Product;
    signer: "vcek" | "vlek";
    reportedTcb: string;
    measurement: string;
    provider: string;
  };
}

export interface VerifyContext {
  policy: VerifierPolicy;
  now: Date;
  /** A report verifier whose certificate cache stays warm across bundles; made from the policy when omitted. */
  verifier?: ReportVerifier;
  /**
   * Certificates to complete a partial chain with (an ASK-only or ARK-only `evidence.cpu.chain`), by the product
   * the VCEK's issuer names; the service's are fetched from AMD's KDS. The ARK is still trusted only when pinned.
   */
  certificates?: CertificateSource;
}

const ZERO32 = `0x${"00".repeat(32)}`;
const verifiers = new WeakMap<VerifierPolicy, ReportVerifier>();

/** One report verifier per policy object, so its certificate cache stays warm (HELPERS: createReportVerifier). */
export function reportVerifierFor(policy: VerifierPolicy): ReportVerifier {
  let verifier = verifiers.get(policy);
  if (verifier === undefined) {
    verifier = createReportVerifier({ trustedRoots: policy.trustedRoots });
    verifiers.set(policy, verifier);
  }
  return verifier;
}

function sha256(bytes: Uint8Array | string): Buffer {
  return createHash("sha256").update(bytes).digest();
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Strict base64 (lib/encoding: one linear pass, safe on the whole 16 MiB). */
function b64(text: string, code: "BUNDLE_MALFORMED", what: string): Uint8Array {
  return decodeBase64(text, code, what);
}

/** What the evidence's chain lacks, remembered per (VCEK, chain) so that certificates are not re-parsed per bundle. */
const needsCache = new Map<string, ChainNeeds | undefined>();

function cachedChainNeeds(vcek: Uint8Array, chain: readonly Uint8Array[] | undefined): ChainNeeds | undefined {
  const h = createHash("sha256").update(vcek);
  for (const c of chain ?? []) h.update(createHash("sha256").update(c).digest());
  const key = `${chain?.length ?? -1}:${h.digest("hex")}`;
  if (needsCache.has(key)) return needsCache.get(key);
  const needs = chainNeeds(vcek, chain);
  if (needsCache.size >= 1024) needsCache.clear();
  needsCache.set(key, needs);
  return needs;
}

/** Collects the coded errors of one step; anything uncoded becomes INTERNAL (never a crash). */
class Collector {
  readonly errors: { code: ErrorCode; message: string }[] = [];
  run<T>(step: () => T): T | undefined {
    try {
      return step();
    } catch (error) {
      this.add(error);
      return undefined;
    }
  }
  add(error: unknown): void {
    for (const e of toErrorList(error)) {
      if (!this.errors.some((x) => x.code === e.code && x.message === e.message)) this.errors.push(e);
    }
  }
}

/** Verifies one bundle file's bytes against a policy at `now`. Never throws. */
export function verifyBundle(bytes: Uint8Array, context: VerifyContext): BundleVerdict {
  const bundleDigest = sha256(bytes).toString("hex");
  const c = new Collector();
  try {
    return verifySteps(bytes, bundleDigest, context, c);
  } catch (error) {
    c.add(error); // a bug in a step must not take the service down
    return { ok: false, bundleDigest, errors: c.errors };
  }
}

function verifySteps(bytes: Uint8Array, bundleDigest: string, context: VerifyContext, c: Collector): BundleVerdict {
  const { policy, now } = context;
  const verdict: BundleVerdict = { ok: false, bundleDigest, errors: c.errors };

  // Shape: size, JSON (depth-bounded), the cost bounds (BUNDLE_TOO_COMPLEX), the bundle schema. Nothing else can be
  // checked without it.
  const bundle = c.run(() =>
    readBundle(bytes, {
      maxBytes: policy.maxBundleBytes,
      maxEnvelopes: policy.maxEnvelopes,
      maxSignaturesPerEnvelope: policy.maxSignaturesPerEnvelope,
    }),
  );
  if (bundle === undefined) return verdict;

  // The signer key K (DER SPKI), needed by the binding and the envelope steps.
  const spki = c.run(() => b64(bundle.signer.publicKey, "BUNDLE_MALFORMED", "signer.publicKey"));
  const key = spki === undefined ? undefined : c.run(() => toPublicKey(spki));
  // Once a proof is broken, no further signature is verified (shape and policy reasons are still collected).
  let proofBroken = false;

  // a–c: the report, its certificate chain to a pinned root, its fields against the certificate.
  const reportBytes = c.run(() => b64(bundle.evidence.cpu.report, "BUNDLE_MALFORMED", "evidence.cpu.report"));
  let verified: VerifiedReport | undefined;
  let report: AttestationReport | undefined;
  if (reportBytes !== undefined) {
    verified = c.run(() => {
      const vcek = b64(bundle.evidence.cpu.vcek, "BUNDLE_MALFORMED", "evidence.cpu.vcek");
      const given = bundle.evidence.cpu.chain?.map((cert, i) =>
        b64(cert, "BUNDLE_MALFORMED", `evidence.cpu.chain[${i}]`),
      );
      const chain = completeEvidenceChain(vcek, given, context.certificates, verdict);
      const verifier = context.verifier ?? reportVerifierFor(policy);
      try {
        return verifier.verify(reportBytes, chain === undefined ? { vcek } : { vcek, chain }, now);
      } catch (error) {
        const needs = cachedChainNeeds(vcek, given);
        if (error instanceof ProvenantError && error.code === "SNP_CERT_UNAVAILABLE" && needs !== undefined)
          verdict.certificatesNeeded = { product: needs.product, signer: needs.signer };
        throw error;
      }
    });
    if (verified === undefined) proofBroken = true;
    // Without a verified report the binding is still checked on the parsed one, so that every reason shows.
    report = verified?.report ?? c.run(() => parseReport(reportBytes));
  }

  // d: the SNP policy (collects every violation).
  if (verified !== undefined) c.run(() => validateReport(verified, policy.snp));

  // e: REPORT_DATA = SHA-256(SPKI of K) ‖ nonce.
  if (report !== undefined && spki !== undefined) {
    const bound = c.run(() => (verifyBinding(report, spki, bundle.nonce), true));
    if (bound === undefined) proofBroken = true;
  }

  // f: every envelope signed by K, in order, stopping at the first that is not; their payloads, as statements.
  const statements: (ValidatedStatement | undefined)[] = [];
  let allSigned = key !== undefined && !proofBroken;
  for (const [i, envelope] of bundle.envelopes.entries()) {
    if (!allSigned || key === undefined) break;
    const payload = c.run(() => verifyEnvelope(envelope, key));
    if (payload === undefined) allSigned = false;
    else statements[i] = c.run(() => toStatement(payload, i));
  }

  // g: statements consistent; the record.
  const found = c.run(() => findManifest(bundle));
  if (found !== undefined) {
    const manifest = statements[found.index];
    const manifestDigest = c.run(() => manifestDigestOf(found.envelope));
    if (manifestDigest !== undefined) verdict.manifestDigest = manifestDigest;
    if (manifest !== undefined && manifest.kind !== "oms") {
      verdict.kind = manifest.kind;
      const modelHash = manifest.subjectDigests[0];
      if (modelHash !== undefined) verdict.modelHash = modelHash;
      // Consistency needs every statement: it is judged only when every envelope verified.
      if (allSigned) c.run(() => checkConsistency(bundle, manifest, statements, policy));
      if (c.errors.length === 0 && verified !== undefined && manifestDigest !== undefined && modelHash !== undefined) {
        verdict.record = {
          modelHash: `0x${modelHash}`,
          manifestDigest: `0x${manifestDigest}`,
          parentModelHash: manifest.kind === "finetune" ? `0x${manifest.parentModelHash ?? ""}` : ZERO32,
          measurementHash: `0x${sha256(verified.report.measurement).toString("hex")}`,
          policyDigest: `0x${policyDigest(policy)}`,
          reportedTcb: verified.report.reportedTcb.raw.toString(),
          kind: manifest.kind === "finetune" ? 1 : 2,
        };
      }
    }
  }

  // GPU evidence: required or not (its presence only; see docs/verifier.md).
  if (policy.requireGpuEvidence && (bundle.evidence.gpu === undefined || bundle.evidence.gpu.length === 0))
    c.add(new PolicyError("POLICY_GPU_EVIDENCE", "the policy requires GPU evidence and the bundle has none"));

  if (verified !== undefined) {
    verdict.evidence = {
      product: verified.product,
      signer: verified.signer,
      reportedTcb: verified.report.reportedTcb.raw.toString(),
      measurement: Buffer.from(verified.report.measurement).toString("hex"),
      provider: bundle.evidence.cpu.provider ?? "unknown",
    };
  }
  verdict.ok = c.errors.length === 0 && verdict.record !== undefined && allSigned;
  if (!verdict.ok && c.errors.length === 0)
    c.add(new ProvenantError("internal", "INTERNAL", "no record could be derived from an otherwise valid bundle"));
  if (!verdict.ok) delete verdict.record;
  if (!verdict.errors.some((e) => e.code === "SNP_CERT_UNAVAILABLE")) delete verdict.certificatesNeeded;
  return verdict;
}

/**
 * The chain to verify with: the evidence's, with a missing ASK|ASVK or ARK taken from `certificates`. An ARK-only
 * chain that cannot be completed is SNP_CERT_UNAVAILABLE naming the product (its ASK can be fetched), rather than the
 * verifier's SNP_CHAIN_INVALID, so that the service fetches it instead of refusing the bundle for good.
 */
function completeEvidenceChain(
  vcek: Uint8Array,
  given: readonly Uint8Array[] | undefined,
  certificates: CertificateSource | undefined,
  verdict: BundleVerdict,
): readonly Uint8Array[] | undefined {
  const needs = cachedChainNeeds(vcek, given);
  if (needs === undefined || needs.missing.length === 0) return given;
  const completed = completeChain(vcek, given, certificates);
  if (completed !== undefined) return completed.chain;
  if (!needs.missing.includes("ark")) {
    verdict.certificatesNeeded = { product: needs.product, signer: needs.signer };
    const intermediate = needs.signer === "vcek" ? "ASK" : "ASVK";
    throw new VerificationError(
      "SNP_CERT_UNAVAILABLE",
      `the bundle carries the ARK but no ${intermediate} for ${needs.product}, and no certificate cache holds it: ` +
        `include the ${intermediate} (KDS ${needs.signer}/v1/${needs.product}/cert_chain)`,
      { details: { product: needs.product, signer: needs.signer, missing: "intermediate" } },
    );
  }
  return given;
}

function toPublicKey(spki: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch (error) {
    throw new MalformedInputError("BUNDLE_MALFORMED", "signer.publicKey is not a DER SubjectPublicKeyInfo", {
      cause: error,
    });
  }
}

/** DESIGN §3.3: REPORT_DATA[0:32] = SHA-256(DER SPKI of K), REPORT_DATA[32:64] = nonce. */
export function verifyBinding(report: AttestationReport, spki: Uint8Array, nonceHex: string): void {
  const errors: ProvenantError[] = [];
  const data = report.reportData;
  if (!equalBytes(data.subarray(0, 32), sha256(spki)))
    errors.push(
      new VerificationError("BINDING_KEY_MISMATCH", "REPORT_DATA[0:32] is not the SHA-256 of the signer's public key", {
        details: { expected: sha256(spki).toString("hex"), actual: Buffer.from(data.subarray(0, 32)).toString("hex") },
      }),
    );
  const nonce = /^[0-9a-fA-F]{64}$/.test(nonceHex) ? Buffer.from(nonceHex, "hex") : Buffer.alloc(0);
  if (!equalBytes(data.subarray(32, 64), nonce))
    errors.push(
      new VerificationError("BINDING_NONCE_MISMATCH", "REPORT_DATA[32:64] is not the bundle's nonce", {
        details: { expected: nonceHex, actual: Buffer.from(data.subarray(32, 64)).toString("hex") },
      }),
    );
  throwIfViolations(errors);
}

function toStatement(payload: Uint8Array, index: number): ValidatedStatement {
  let json: unknown;
  try {
    json = parseJsonBounded(Buffer.from(payload).toString("utf8"));
  } catch (error) {
    throw new MalformedInputError("STATEMENT_INVALID", `envelopes[${index}]: payload is not JSON`, { cause: error });
  }
  return validateStatement(json);
}

/** g: kinds accepted; the manifest's subject is a model an OMS statement of the bundle names; digests well formed. */
function checkConsistency(
  bundle: ProvenanceBundle,
  manifest: ValidatedStatement,
  statements: (ValidatedStatement | undefined)[],
  policy: VerifierPolicy,
): void {
  const problems: ProvenantError[] = [];
  if (manifest.kind !== "oms" && !policy.acceptedKinds.includes(manifest.kind))
    problems.push(
      new PolicyError("POLICY_STATEMENT_KIND", `manifests of kind ${manifest.kind} are not accepted by this policy`),
    );
  const hex64 = /^[0-9a-f]{64}$/;
  const modelHash = manifest.subjectDigests[0];
  if (modelHash === undefined || !hex64.test(modelHash))
    problems.push(new MalformedInputError("STATEMENT_INVALID", "the manifest's subject has no sha256 digest"));
  if (manifest.kind === "finetune" && (manifest.parentModelHash === undefined || !hex64.test(manifest.parentModelHash)))
    problems.push(new MalformedInputError("STATEMENT_INVALID", "the fine-tune manifest names no base-model digest"));
  const omsDigests = new Set(
    statements.filter((s) => s?.kind === "oms").flatMap((s) => (s as ValidatedStatement).subjectDigests),
  );
  const manifests = statements.filter((s) => s !== undefined && s.kind !== "oms");
  if (manifests.length > 1)
    problems.push(new MalformedInputError("BUNDLE_MALFORMED", "the bundle holds more than one manifest"));
  if (modelHash !== undefined && !omsDigests.has(modelHash))
    problems.push(
      new VerificationError(
        "MODEL_DIGEST_MISMATCH",
        "the manifest's subject is not a model that an OMS statement of the bundle names",
        { details: { expected: modelHash, actual: [...omsDigests] } },
      ),
    );
  if (bundle.envelopes.length === 0)
    problems.push(new MalformedInputError("BUNDLE_MALFORMED", "the bundle has no envelopes"));
  throwIfViolations(problems);
}
