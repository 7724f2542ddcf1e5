// The verifier's pure core: bundle bytes + policy + `now` (+ a warm report verifier) → a verdict with every reason
// code and, when accepted, the onchain record. No I/O, never throws. Steps follow DESIGN §1 a–g: the report's
// certificate chain to a pinned ARK, its signature and fields (lib/snp verify), the SNP policy (lib/snp validate),
// REPORT_DATA binding the signer key K and the nonce, every envelope signed by K, and consistent statements.
// Cost is bounded before it is spent: the envelope and signature counts are checked while the bundle is read
// (BUNDLE_TOO_COMPLEX), shape and policy checks collect every reason, and cryptography fails fast: once one proof
// is broken (the report's chain or signature, the binding, an envelope), no further signature is verified.
// Revocation: the chain is held against AMD's ARK-signed CRLs the caller supplies (the service fetches them from
// KDS); every payload is read by lib/intoto parseStatementPayload, the strict reader every reader of a bundle shares.
// A serving statement (DESIGN §12) is a manifest too: read and bound to K by lib/receipt, recorded as kind 3.
// h (DESIGN §10): every GPU's evidence verified by lib/gpu for the nonce gpuNonceFor(REPORT_DATA), then held against
// the policy's `gpu` section; the record's measurementHash covers each GPU's measured state (measurementHashOf).
import { createHash, timingSafeEqual, type KeyObject } from "node:crypto";

import {
  manifestIndexOf,
  measurementHashOf,
  predicateTypeOfJson,
  readBundleDecoded,
  type DecodedBundle,
  type ProvenanceBundle,
} from "../../lib/bundle/index.ts";
import {
  decodeBase64,
  importEcPublicKey,
  INTOTO_PAYLOAD_TYPE,
  verifyEnvelopeBytes,
  type DsseEnvelope,
} from "../../lib/dsse/index.ts";
import {
  createGpuVerifier,
  gpuNonceFor,
  NVIDIA_DEVICE_ROOT_FINGERPRINT,
  parseGpuEvidence,
  validateGpus,
  type GpuEvidenceInput,
  type GpuVerifier,
  type VerifiedGpu,
} from "../../lib/gpu/index.ts";
import {
  MalformedInputError,
  PolicyError,
  ProvenantError,
  throwIfViolations,
  toErrorList,
  VerificationError,
  type ErrorCode,
} from "../../lib/errors.ts";
import {
  jobCodeDigestOf,
  parseStatementPayload,
  runtimeOf,
  validateStatement,
  type RuntimeInfo,
  type Statement,
  type ValidatedStatement,
} from "../../lib/intoto/index.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import { PREDICATE_SERVING, verifyServingStatement } from "../../lib/receipt/index.ts";
import { KIND_AUDIT, KIND_FINETUNE, KIND_SERVING, type AttestationRecord } from "../../lib/registry/record.ts";
import { chainNeeds, completeChain, type ChainNeeds } from "../../lib/snp/kds.ts";
import {
  ARK_FINGERPRINTS,
  checkChainRevocation,
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
  ACCEPTED_KINDS,
  assertPolicyNotOpen,
  defaultVerifierPolicy,
  MAX_POLICY_BUNDLE_BYTES,
  parseVerifierPolicy,
  parseVerifierPolicyBytes,
  policyDigest,
  policyOpenness,
  type AcceptedKind,
  type PinnedDigest,
  type PolicyOpenness,
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
  kind?: "finetune" | "eval" | "serving";
  errors: { code: ErrorCode; message: string }[];
  record?: AttestationRecord;
  /**
   * Set when the verdict carries SNP_CERT_UNAVAILABLE because the evidence lacks its ASK|ASVK or ARK: the product's
   * `cert_chain` that would complete it (the service fetches it and verifies again).
   */
  certificatesNeeded?: { product: Product; signer: "vcek" | "vlek" };
  /**
   * Set when no usable CRL covered the report's chain: the product's KDS `crl` that would (fetched, then verified
   * again). `required`: the verdict carries SNP_CERT_UNAVAILABLE for it (a chain to one of AMD's roots, revocation
   * required); otherwise the bundle was judged without it and the verdict warns SNP_REVOCATION_UNCHECKED.
   */
  crlNeeded?: {
    product: Product;
    signer: "vcek" | "vlek";
    required: boolean;
    reason: "none" | "not-signed" | "stale" | "no-next-update";
  };
  /**
   * What the bundle was judged with that a reader should know and that refuses nothing: POLICY_OPEN (the policy pins
   * no measurement or TCB floor), SNP_REVOCATION_UNCHECKED (no usable CRL; never for a chain to AMD's roots when
   * revocation is required).
   */
  warnings?: { code: ErrorCode; message: string }[];
  evidence?: {
    product: Product;
    signer: "vcek" | "vlek";
    reportedTcb: string;
    measurement: string;
    /** The name the policy gives this measurement (`{"name", "value"}` in `snp.measurements`), if any. */
    measurementName?: string;
    /**
     * The root the report's chain ends in, as verified (never the bundle's unsigned `evidence.cpu.provider` label,
     * which is not shown): one of AMD's pinned ARKs, or a development root that the policy lists in trustedRoots.
     */
    root: { kind: "amd" | "development"; product: Product; fingerprint: string; name: string };
    /** Whether the chain was held against a current ARK-signed CRL, and which (its thisUpdate/nextUpdate). */
    revocation: { checked: true; thisUpdate: string; nextUpdate: string } | { checked: false; reason: string };
  };
  /** The job-code digest the manifest names (`sha256:<hex>`, jobCodeDigestOf), when it names one by SHA-256. */
  jobCodeDigest?: string;
  /** Each GPU the bundle carries evidence for, in bundle order, verified or not (step h; absent when none). */
  gpus?: GpuVerdict[];
  /** Where the manifest says the job ran (its signed runtime record: backend, GPUs, driver), when it has one. */
  runtime?: RuntimeInfo;
}

/**
 * What a stored verdict keeps besides its codes and record, for GET /bundles/:digest: each GPU (verified or not),
 * the manifest's runtime record, the evidence summary (the root the report chained to, the measurement and the name
 * the policy gives it, revocation), the job-code digest and the warnings; undefined when the verdict has none of them.
 */
export function verdictDetails(verdict: BundleVerdict): Record<string, unknown> | undefined {
  const details = {
    ...(verdict.gpus === undefined ? {} : { gpus: verdict.gpus }),
    ...(verdict.runtime === undefined ? {} : { runtime: verdict.runtime }),
    ...(verdict.evidence === undefined ? {} : { evidence: verdict.evidence }),
    ...(verdict.jobCodeDigest === undefined ? {} : { jobCodeDigest: verdict.jobCodeDigest }),
    ...(verdict.warnings === undefined || verdict.warnings.length === 0 ? {} : { warnings: verdict.warnings }),
  };
  return Object.keys(details).length === 0 ? undefined : details;
}

/** One GPU as a verdict shows it (docs/gpu.md): what it is, and whether its evidence verified. */
export interface GpuVerdict {
  index: number;
  arch: "hopper" | "blackwell";
  /** true only when the evidence verified (chain, signature, FWID, nonce, RIMs, measurements). */
  verified: boolean;
  /** Read from the evidence (shown even when it did not verify; null when it does not parse). */
  driverVersion: string | null;
  vbiosVersion: string | null;
  /** Hex SHA-256 of the signed measurement record (what measurementHash folds in); null unless verified. */
  measurementDigest: string | null;
  /** The device chain's root: NVIDIA's pinned Device Identity CA or a development root the policy lists. */
  root: { kind: "nvidia" | "development"; fingerprint: string } | null;
  /** Versions of the verified driver and VBIOS RIMs. */
  rims: { driver: string | null; vbios: string | null };
  measurements: { checked: number; matched: number } | null;
  /** Why it did not verify; absent when verified or when a broken proof earlier stopped the check. */
  error?: { code: ErrorCode; message: string };
}

/**
 * AMD's certificate revocation lists for the pipeline (DESIGN §4; KDS `{vcek|vlek}/v1/{product}/crl`, ARK-signed).
 * Their signature is checked against the chain's ARK, so where they come from does not matter.
 */
export interface RevocationSource {
  /** The CRLs (DER) that may cover a product's VCEK (or VLEK) chains; an empty list when none is at hand. */
  crls(product: Product, signer: "vcek" | "vlek"): readonly Uint8Array[];
  /**
   * true: a report chained to one of AMD's roots without a current CRL of its ARK is SNP_CERT_UNAVAILABLE (the
   * service; `bundle verify` unless --no-crl). A development root's CRL is checked when one is given, never required:
   * AMD does not publish it. false: checked when given, otherwise a warning.
   */
  required: boolean;
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
  /** AMD's CRLs; without it revocation is not checked and the verdict warns SNP_REVOCATION_UNCHECKED. */
  revocation?: RevocationSource;
}

const AMD_ROOTS: ReadonlyMap<string, Product> = new Map(
  (Object.entries(ARK_FINGERPRINTS) as [Product, string][]).map(([product, fingerprint]) => [fingerprint, product]),
);

const ZERO32 = `0x${"00".repeat(32)}`;
const verifiers = new WeakMap<VerifierPolicy, ReportVerifier>();
const gpuVerifiers = new WeakMap<VerifierPolicy, GpuVerifier>();

/** One GPU verifier per policy object, so its caches of verified device chains and RIMs stay warm. */
function gpuVerifierFor(policy: VerifierPolicy): GpuVerifier {
  let verifier = gpuVerifiers.get(policy);
  if (verifier === undefined) {
    verifier = createGpuVerifier();
    gpuVerifiers.set(policy, verifier);
  }
  return verifier;
}

/** The record's measurementHash: lib/bundle's one formula, which an auditor recomputes from the bundle alone. */
export { measurementHashOf };

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
    return { ok: false, bundleDigest, errors: c.errors, warnings: [] };
  }
}

function verifySteps(bytes: Uint8Array, bundleDigest: string, context: VerifyContext, c: Collector): BundleVerdict {
  const { policy, now } = context;
  const warnings: { code: ErrorCode; message: string }[] = [];
  const verdict: BundleVerdict = { ok: false, bundleDigest, errors: c.errors, warnings };
  const open = openWarning(policy);
  if (open !== undefined) warnings.push(open);

  // Shape: size, JSON (depth-bounded), the cost bounds (BUNDLE_TOO_COMPLEX), the bundle schema. Nothing else can be
  // checked without it. Read once: every base64 field is decoded here and its bytes used by every step after.
  const read = c.run(() =>
    readBundleDecoded(bytes, {
      maxBytes: policy.maxBundleBytes,
      maxEnvelopes: policy.maxEnvelopes,
      maxSignaturesPerEnvelope: policy.maxSignaturesPerEnvelope,
    }),
  );
  if (read === undefined) return verdict;
  const { bundle, decoded } = read;

  // The signer key K (DER SPKI), needed by the binding and the envelope steps.
  const spki = decoded.spki;
  const key = c.run(() => toPublicKey(spki));
  // Once a proof is broken, no further signature is verified (shape and policy reasons are still collected).
  let proofBroken = false;

  // a–c: the report, its certificate chain to a pinned root, its fields against the certificate.
  const reportBytes = decoded.report;
  /** The leaf and the chain it was verified with: what the revocation check reads. */
  let verifiedWith: { vcek: Uint8Array; chain: readonly Uint8Array[] } | undefined;
  const verified = c.run((): VerifiedReport => {
    const vcek = decoded.vcek;
    const given = decoded.chain;
    const chain = completeEvidenceChain(vcek, given, context.certificates, verdict);
    verifiedWith = { vcek, chain: chain ?? [] };
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
  // a: the chain against AMD's CRLs (a revoked ASK/ASVK or VLEK is a broken proof, like a bad signature).
  else if (verifiedWith !== undefined) {
    const { vcek, chain } = verifiedWith;
    const checked = c.run(() => (checkRevocationStep(verified, vcek, chain, context, verdict), true));
    if (checked === undefined) proofBroken = true;
  }
  // Without a verified report the binding is still checked on the parsed one, so that every reason shows.
  const report: AttestationReport | undefined = verified?.report ?? c.run(() => parseReport(reportBytes));

  // d: the SNP policy (collects every violation).
  if (verified !== undefined) c.run(() => validateReport(verified, policy.snp));

  // e: REPORT_DATA = SHA-256(SPKI of K) ‖ nonce.
  if (report !== undefined) {
    const bound = c.run(() => (verifyBinding(report, spki, bundle.nonce), true));
    if (bound === undefined) proofBroken = true;
  }

  // h: every GPU's evidence, for gpuNonceFor(REPORT_DATA) (fail fast like every proof; skipped once one is broken),
  // then the policy's gpu section over the verified ones (collects every violation).
  const gpu = verifyGpuStep(bundle, report, context, c, proofBroken);
  if (gpu.broken) proofBroken = true;
  if (gpu.views.length > 0) verdict.gpus = gpu.views;

  // The manifest: found from the payloads alone (its signature is step f's), so that f reads a serving one as such.
  // Each in-toto payload is read (strict JSON) once, here; step f validates what was read.
  const payloads = readPayloads(bundle, decoded);
  const found = c.run(() => findBundleManifest(bundle, payloads));

  // f: every envelope signed by K, in order, stopping at the first that is not; their payloads, as statements.
  const statements: (BundleStatement | undefined)[] = [];
  let allSigned = key !== undefined && !proofBroken;
  for (const [i, envelope] of bundle.envelopes.entries()) {
    if (!allSigned || key === undefined) break;
    if (found?.serving === true && i === found.index) {
      // The serving key S is K (docs/serving.md): the statement names K's SPKI, and K's signature is checked with it.
      const serving = c.run(() => toServingStatement(envelope, spki));
      if (serving === undefined) allSigned = false;
      else statements[i] = serving;
      continue;
    }
    const { payload, signatures } = decoded.envelopes[i]!;
    const signed = c.run(() => (verifyEnvelopeBytes(envelope.payloadType, payload, signatures, key), true));
    if (signed === undefined) allSigned = false;
    else statements[i] = c.run(() => toStatement(envelope, payload, payloads[i], i));
  }

  // g: statements consistent; the record.
  if (found !== undefined) {
    const manifest = statements[found.index];
    // DESIGN §3.2: the onchain manifestDigest is the SHA-256 of the payload bytes exactly as signed (manifestDigestOf).
    const manifestDigest = sha256(decoded.envelopes[found.index]!.payload).toString("hex");
    verdict.manifestDigest = manifestDigest;
    if (manifest !== undefined && manifest.kind !== "oms") {
      verdict.kind = manifest.kind;
      const modelHash = manifest.subjectDigests[0];
      if (modelHash !== undefined) verdict.modelHash = modelHash;
      // Consistency needs every statement: it is judged only when every envelope verified.
      const jobCode = jobCodeOf(manifest);
      if (jobCode !== undefined) verdict.jobCodeDigest = `sha256:${jobCode}`;
      if (allSigned && reportBytes !== undefined)
        c.run(() => checkConsistency(bundle, manifest, statements, policy, reportBytes));
      // h, continued: the signed runtime record against the GPU evidence the bundle carries.
      const runtime =
        manifest.kind === "finetune" || manifest.kind === "eval" ? runtimeOf(manifest.statement) : undefined;
      if (runtime !== undefined) {
        verdict.runtime = runtime;
        if (allSigned) c.run(() => checkRuntime(runtime, bundle, policy, warnings));
      }
      if (c.errors.length === 0 && verified !== undefined && manifestDigest !== undefined && modelHash !== undefined) {
        verdict.record = {
          modelHash: `0x${modelHash}`,
          manifestDigest: `0x${manifestDigest}`,
          parentModelHash:
            // A serving statement's is its log id (SHA-256 of S's DER SPKI), which registers the log for anchoring.
            manifest.kind === "finetune" || manifest.kind === "serving"
              ? `0x${manifest.parentModelHash ?? ""}`
              : ZERO32,
          measurementHash: `0x${measurementHashOf(
            verified.report.measurement,
            gpu.verified.map((g) => g.measurementDigest),
          )}`,
          policyDigest: `0x${policyDigest(policy)}`,
          reportedTcb: verified.report.reportedTcb.raw.toString(),
          kind: manifest.kind === "finetune" ? KIND_FINETUNE : manifest.kind === "serving" ? KIND_SERVING : KIND_AUDIT,
        };
      }
    }
  }

  if (verified !== undefined) {
    const measurement = Buffer.from(verified.report.measurement).toString("hex");
    const measurementName = policy.snp.measurementNames?.[measurement];
    verdict.evidence = {
      product: verified.product,
      signer: verified.signer,
      reportedTcb: verified.report.reportedTcb.raw.toString(),
      measurement,
      ...(measurementName === undefined ? {} : { measurementName }),
      root: rootOf(verified),
      revocation: revocationOf(verdict),
    };
  }
  verdict.ok = c.errors.length === 0 && verdict.record !== undefined && allSigned;
  if (!verdict.ok && c.errors.length === 0)
    c.add(new ProvenantError("internal", "INTERNAL", "no record could be derived from an otherwise valid bundle"));
  if (!verdict.ok) delete verdict.record;
  if (!verdict.errors.some((e) => e.code === "SNP_CERT_UNAVAILABLE")) delete verdict.certificatesNeeded;
  return verdict;
}

/** The POLICY_OPEN warning of an open policy, written once per policy object (it goes with every verdict). */
const openWarnings = new WeakMap<VerifierPolicy, { code: ErrorCode; message: string } | null>();

function openWarning(policy: VerifierPolicy): { code: ErrorCode; message: string } | undefined {
  let warning = openWarnings.get(policy);
  if (warning === undefined) {
    warning = policy.openness.open
      ? {
          code: "POLICY_OPEN",
          message:
            `the policy is open${policy.development ? ' ("development": true)' : ""}: ` +
            policy.openness.reasons.map((r) => `${r.field}: ${r.message}`).join("; "),
        }
      : null;
    openWarnings.set(policy, warning);
  }
  return warning === null ? undefined : { ...warning };
}

/**
 * What a GPU entry that did not verify says: its claimed arch and the versions its evidence names, if it parses.
 * Only for those: a verified GPU's view is filled from its verification, which parsed the evidence already.
 */
function gpuViewOf(entry: NonNullable<ProvenanceBundle["evidence"]["gpu"]>[number], index: number): GpuVerdict {
  let driverVersion: string | null = null;
  let vbiosVersion: string | null = null;
  try {
    const parsed = parseGpuEvidence(decodeBase64(entry.evidence, "BUNDLE_MALFORMED", `evidence.gpu[${index}]`));
    driverVersion = parsed.driverVersion;
    vbiosVersion = parsed.vbiosVersion;
  } catch {
    // Shown as unknown; the verification step says why.
  }
  return {
    index,
    arch: entry.arch,
    verified: false,
    driverVersion,
    vbiosVersion,
    measurementDigest: null,
    root: null,
    rims: { driver: null, vbios: null },
    measurements: null,
  };
}

function toGpuInput(entry: NonNullable<ProvenanceBundle["evidence"]["gpu"]>[number], i: number): GpuEvidenceInput {
  const at = `evidence.gpu[${i}]`;
  return {
    evidence: b64(entry.evidence, "BUNDLE_MALFORMED", `${at}.evidence`),
    certChainPem: entry.certChain,
    arch: entry.arch,
    ...(entry.rims === undefined
      ? {}
      : { rims: entry.rims.map((r, j) => b64(r, "BUNDLE_MALFORMED", `${at}.rims[${j}]`)) }),
    ...(entry.ocsp === undefined
      ? {}
      : { ocsp: entry.ocsp.map((r, j) => b64(r, "BUNDLE_MALFORMED", `${at}.ocsp[${j}]`)) }),
  };
}

/**
 * h: each GPU entry verified by lib/gpu (device chain to NVIDIA's pinned root or a policy's gpu.trustedRoots,
 * signature, FWID, request nonce = gpuNonceFor(REPORT_DATA) so the evidence belongs to this key and bundle, RIMs and
 * golden measurements, bundled OCSP), stopping at the first that fails, and none once a proof is broken; then
 * validateGpus with the policy's gpu section (required, archs, minDriverVersion, requireRims, requireOcsp).
 */
function verifyGpuStep(
  bundle: ProvenanceBundle,
  report: AttestationReport | undefined,
  context: VerifyContext,
  c: Collector,
  proofBroken: boolean,
): { verified: VerifiedGpu[]; views: GpuVerdict[]; broken: boolean } {
  const { policy, now } = context;
  const entries = bundle.evidence.gpu ?? [];
  const views: GpuVerdict[] = [];
  const verified: VerifiedGpu[] = [];
  let broken = false;
  const expectedNonce = report === undefined ? undefined : gpuNonceFor(report.reportData);
  for (const [i, entry] of entries.entries()) {
    if (proofBroken || broken || expectedNonce === undefined) break;
    const before = c.errors.length;
    const v = c.run(() =>
      gpuVerifierFor(policy).verify(toGpuInput(entry, i), {
        expectedNonce,
        now,
        trustedRoots: policy.gpu.trustedRoots ?? [],
      }),
    );
    if (v === undefined) {
      broken = true;
      const view = gpuViewOf(entry, i);
      views.push(view);
      const error = c.errors[before];
      if (error !== undefined) {
        // Say which GPU: the error as lib/gpu words it names no index.
        c.errors[before] = { code: error.code, message: `evidence.gpu[${i}]: ${error.message}` };
        view.error = { code: error.code, message: error.message };
      }
      continue;
    }
    verified.push(v);
    views.push({
      index: i,
      arch: entry.arch,
      verified: true,
      driverVersion: v.driverVersion,
      vbiosVersion: v.vbiosVersion,
      measurementDigest: v.measurementDigest,
      root: {
        kind: v.rootFingerprint === NVIDIA_DEVICE_ROOT_FINGERPRINT ? "nvidia" : "development",
        fingerprint: v.rootFingerprint,
      },
      rims: { driver: v.rims.driver?.version ?? null, vbios: v.rims.vbios?.version ?? null },
      measurements: { checked: v.measurements.checked, matched: v.measurements.matched },
    });
  }
  // Entries left unverified because an earlier proof broke are shown from their evidence alone.
  for (let i = views.length; i < entries.length; i++) views.push(gpuViewOf(entries[i]!, i));
  // `required` asks for evidence; evidence that is carried but does not verify is refused by its own error above.
  const gpuPolicy = entries.length === 0 ? policy.gpu : { ...policy.gpu, required: false };
  if (!broken && !proofBroken) c.run(() => validateGpus(verified, gpuPolicy));
  else if (entries.length === 0) c.run(() => validateGpus([], gpuPolicy));
  return { verified, views, broken };
}

/**
 * h, the statement's side: the runtime record K signed (lib/intoto RuntimeInfo) must name exactly the GPU evidence
 * the bundle carries (by SHA-256, in order), so evidence can be neither dropped from a bundle nor added to it; GPU
 * evidence collected in CC devtools mode or a non-production CC environment is refused unless the policy says
 * `"development": true`; and a manifest that ran on CUDA without GPU evidence is refused when the policy requires
 * GPUs, otherwise accepted with a warning (nothing proves which GPU ran it). STATEMENT_GPU_UNVERIFIED, POLICY_GPU.
 */
function checkRuntime(
  runtime: RuntimeInfo,
  bundle: ProvenanceBundle,
  policy: VerifierPolicy,
  warnings: { code: ErrorCode; message: string }[],
): void {
  const problems: ProvenantError[] = [];
  const entries = bundle.evidence.gpu ?? [];
  const carried = entries.map((e, i) =>
    sha256(b64(e.evidence, "BUNDLE_MALFORMED", `evidence.gpu[${i}].evidence`)).toString("hex"),
  );
  const named = runtime.gpuEvidence?.evidence ?? [];
  if (carried.length !== named.length || carried.some((d, i) => d !== named[i])) {
    problems.push(
      new VerificationError(
        "STATEMENT_GPU_UNVERIFIED",
        `the signed manifest names ${named.length} GPU evidence transcript(s), the bundle carries ${carried.length} ` +
          "that are not exactly those: GPU evidence was added to or removed from the bundle",
        { details: { expected: named, actual: carried } },
      ),
    );
  }
  const collected = runtime.gpuEvidence;
  if (collected !== null && (collected.devToolsMode || collected.environment !== "prod") && !policy.development) {
    problems.push(
      new PolicyError(
        "POLICY_GPU",
        `the GPU evidence was collected ${collected.devToolsMode ? "in CC devtools mode" : `in the ${collected.environment} CC environment`} ` +
          `(${collected.provider}), which allows debugging the GPU: only a policy with "development": true accepts it`,
        {
          details: {
            provider: collected.provider,
            environment: collected.environment,
            devToolsMode: collected.devToolsMode,
          },
        },
      ),
    );
  }
  if (runtime.backend === "cuda" && entries.length === 0) {
    const message =
      `the manifest says it ran on CUDA (${runtime.devices.join(", ") || "no device named"}) but the bundle carries no ` +
      "GPU evidence: nothing proves which GPU ran it";
    if (policy.gpu.required === true) problems.push(new PolicyError("STATEMENT_GPU_UNVERIFIED", message));
    else warnings.push({ code: "STATEMENT_GPU_UNVERIFIED", message });
  }
  throwIfViolations(problems);
}

/** The root a verified report chained to: one of AMD's pinned ARKs, or a development root the policy trusts. */
function rootOf(verified: VerifiedReport): NonNullable<BundleVerdict["evidence"]>["root"] {
  const fingerprint = verified.rootFingerprint;
  const amd = AMD_ROOTS.get(fingerprint);
  return amd !== undefined
    ? { kind: "amd", product: amd, fingerprint, name: `AMD ${amd} root` }
    : { kind: "development", product: verified.product, fingerprint, name: `development root ${fingerprint}` };
}

/** The revocation outcome the revocation step left on the verdict (a `checked` record, or why not). */
const revocationOutcome = new WeakMap<BundleVerdict, NonNullable<BundleVerdict["evidence"]>["revocation"]>();

function revocationOf(verdict: BundleVerdict): NonNullable<BundleVerdict["evidence"]>["revocation"] {
  return revocationOutcome.get(verdict) ?? { checked: false, reason: "the report's chain did not verify" };
}

/**
 * a, revocation: the verified chain against the ARK-signed CRLs the context supplies. A listed ASK/ASVK or VLEK is
 * SNP_CERT_REVOKED. Without a usable CRL (none, not signed by this ARK, stale), a chain to one of AMD's roots is
 * SNP_CERT_UNAVAILABLE when revocation is required; otherwise the bundle is judged without it and the verdict says
 * so (SNP_REVOCATION_UNCHECKED). Either way `crlNeeded` names the CRL that would settle it.
 */
function checkRevocationStep(
  verified: VerifiedReport,
  leaf: Uint8Array,
  evidenceChain: readonly Uint8Array[],
  context: VerifyContext,
  verdict: BundleVerdict,
): void {
  const { product, signer } = verified;
  const source = context.revocation;
  if (source === undefined) {
    revocationOutcome.set(verdict, { checked: false, reason: "no CRL source was configured" });
    verdict.warnings?.push({
      code: "SNP_REVOCATION_UNCHECKED",
      message: "revocation was not checked: this verification was given no CRLs",
    });
    return;
  }
  // The intermediate and ARK the chain was verified with: the evidence's, completed from the certificate source.
  const chain = [...evidenceChain, ...(context.certificates?.chain(product, signer) ?? [])];
  const result = checkChainRevocation({
    leaf,
    chain,
    rootFingerprint: verified.rootFingerprint,
    crls: source.crls(product, signer),
    now: context.now,
  });
  if (result.status === "good") {
    revocationOutcome.set(verdict, {
      checked: true,
      thisUpdate: result.thisUpdate.toISOString(),
      nextUpdate: result.nextUpdate.toISOString(),
    });
    return;
  }
  const amd = AMD_ROOTS.has(verified.rootFingerprint);
  const required = amd && source.required;
  verdict.crlNeeded = { product, signer, required, reason: result.reason };
  const where = `KDS ${signer}/v1/${product}/crl`;
  if (required)
    throw new VerificationError(
      "SNP_CERT_UNAVAILABLE",
      `no usable CRL of AMD's ${product} root (${result.message}): revocation cannot be checked; fetch ${where} ` +
        "(it is cached and reused until its nextUpdate)",
      { details: { product, signer, reason: result.reason } },
    );
  revocationOutcome.set(verdict, { checked: false, reason: result.message });
  verdict.warnings?.push({
    code: "SNP_REVOCATION_UNCHECKED",
    message: `revocation was not checked: ${result.message} (${amd ? "" : "development root; "}${where})`,
  });
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

/** K as a node:crypto key, imported once per distinct SPKI (lib/dsse importEcPublicKey: a bounded LRU). */
function toPublicKey(spki: Uint8Array): KeyObject {
  try {
    return importEcPublicKey(spki);
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

/** An in-toto payload read once (strict JSON, lib/json): its value, or why it is not strict JSON. */
type ReadPayload = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Every in-toto envelope's payload read as lib/intoto parseStatementPayload reads it (parseStrictJsonBytes with its
 * code and `what`), once: the manifest is found from these values and step f validates them. Other payload types
 * are not read (undefined): parseStatementPayload refuses them on their type alone.
 */
function readPayloads(bundle: ProvenanceBundle, decoded: DecodedBundle): (ReadPayload | undefined)[] {
  return bundle.envelopes.map((envelope, i) => {
    if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE) return undefined;
    try {
      const value = parseStrictJsonBytes(decoded.envelopes[i]!.payload, {
        code: "STATEMENT_INVALID",
        what: `envelopes[${i}]`,
      });
      return { ok: true, value };
    } catch (error) {
      return { ok: false, error };
    }
  });
}

/**
 * An envelope's signed payload as a statement, read the one way every reader reads it (lib/intoto
 * parseStatementPayload): an in-toto payloadType on every envelope (an OMS statement typed text/plain is no
 * evidence), strict JSON (no duplicate keys at any depth, UTF-8 without BOM), a valid statement. The strict read was
 * done by readPayloads with parseStatementPayload's own arguments; what is left of it is validateStatement.
 */
function toStatement(
  envelope: DsseEnvelope,
  payload: Uint8Array,
  read: ReadPayload | undefined,
  index: number,
): ValidatedStatement {
  if (read === undefined) return parseStatementPayload(envelope.payloadType, payload, `envelopes[${index}]`);
  if (!read.ok) throw read.error;
  return validateStatement(read.value);
}

/** A statement of the bundle: lib/intoto's reading (a serving statement's parentModelHash is its log id). */
type BundleStatement = ValidatedStatement;

/**
 * A serving statement envelope (DESIGN §12), read by lib/receipt verifyServingStatement, the one reader of the format
 * (in-toto payloadType, strict JSON, every field): its servingKey must be the bundle's signer K, byte for byte
 * (BINDING_KEY_MISMATCH), so that REPORT_DATA[0:32] = SHA-256(SPKI(S)) = logId binds the attestation to S; the
 * envelope's signature is checked with that key (DSSE_BAD_SIGNATURE), and logId = keyid = SHA-256 of the SPKI.
 */
function toServingStatement(envelope: DsseEnvelope, spki: Uint8Array): ValidatedStatement {
  const served = verifyServingStatement(envelope, spki);
  return {
    kind: "serving",
    statement: served.statement as unknown as Statement,
    subjectDigests: served.statement.subject.map((s) => s.digest.sha256),
    parentModelHash: served.logId,
  };
}

/**
 * The bundle's manifest: its one fine-tune, eval or serving manifest (lib/bundle findManifest over the payloads read
 * once, manifestIndexOf; BUNDLE_MALFORMED when there is none or more than one), and whether it is a serving statement.
 */
function findBundleManifest(
  bundle: ProvenanceBundle,
  payloads: readonly (ReadPayload | undefined)[],
): { envelope: DsseEnvelope; index: number; serving: boolean } {
  // lib/bundle predicateTypeOf: an in-toto payload that is strict JSON, an object with a string predicateType.
  const types = payloads.map((read) => (read?.ok === true ? predicateTypeOfJson(read.value) : undefined));
  const index = manifestIndexOf(types);
  return { envelope: bundle.envelopes[index]!, index, serving: types[index] === PREDICATE_SERVING };
}

/** The job-code digest a manifest names (64 hex): the fine-tune's, the audit's or the serving statement's. */
function jobCodeOf(manifest: BundleStatement): string | undefined {
  return jobCodeDigestOf(manifest.statement);
}

/**
 * g: kinds accepted; every subject of the manifest is a model an OMS statement of the bundle names; digests well
 * formed; a fine-tune's `snp-report` byproducts are this bundle's report; the job code is one the policy pins.
 */
function checkConsistency(
  bundle: ProvenanceBundle,
  manifest: BundleStatement,
  statements: (BundleStatement | undefined)[],
  policy: VerifierPolicy,
  reportBytes: Uint8Array,
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
    statements.filter((s) => s?.kind === "oms").flatMap((s) => (s as BundleStatement).subjectDigests),
  );
  const manifests = statements.filter((s) => s !== undefined && s.kind !== "oms");
  if (manifests.length > 1)
    problems.push(new MalformedInputError("BUNDLE_MALFORMED", "the bundle holds more than one manifest"));
  // Every subject, not only the first: a manifest about two models must carry what hashes each of them.
  manifest.subjectDigests.forEach((digest, i) => {
    if (!omsDigests.has(digest))
      problems.push(
        new VerificationError(
          "MODEL_DIGEST_MISMATCH",
          `the manifest's subject[${i}] is not a model that an OMS statement of the bundle names`,
          { details: { expected: digest, actual: [...omsDigests] } },
        ),
      );
  });
  if (manifest.kind === "finetune") {
    // DESIGN §3.2: the fine-tune's byproducts name the digest of its SNP report; a digest of another report would
    // tie the manifest to evidence it was not made with. (An eval predicate carries no report digest.)
    const reportDigest = sha256(reportBytes).toString("hex");
    const run = manifest.statement.predicate.runDetails as { byproducts?: { name?: unknown; digest?: unknown }[] };
    (run.byproducts ?? []).forEach((b, i) => {
      const digest = (b.digest as { sha256?: unknown } | undefined)?.sha256;
      if (b.name === "snp-report" && digest !== reportDigest)
        problems.push(
          new MalformedInputError(
            "STATEMENT_INVALID",
            `the manifest's snp-report byproduct (runDetails.byproducts[${i}]) is not the SHA-256 of the bundle's report`,
            {
              details: {
                path: `predicate.runDetails.byproducts[${i}].digest.sha256`,
                expected: reportDigest,
                actual: digest,
              },
            },
          ),
        );
    });
  }
  if (policy.jobCodeDigests !== undefined) {
    const jobCode = jobCodeOf(manifest);
    const pinned = policy.jobCodeDigests.map((d) => d.value);
    if (jobCode === undefined || !pinned.includes(`sha256:${jobCode}`))
      problems.push(
        new PolicyError(
          "POLICY_JOB_CODE",
          jobCode === undefined
            ? "the manifest names its job code by no SHA-256 digest, and this policy pins jobCodeDigests"
            : `job code sha256:${jobCode} is not one this policy pins`,
          { details: { expected: pinned, actual: jobCode === undefined ? null : `sha256:${jobCode}` } },
        ),
      );
  }
  if (bundle.envelopes.length === 0)
    problems.push(new MalformedInputError("BUNDLE_MALFORMED", "the bundle has no envelopes"));
  throwIfViolations(problems);
}
