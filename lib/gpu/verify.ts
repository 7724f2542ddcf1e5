// Verifies NVIDIA GPU evidence: the device certificate chain up to the pinned NVIDIA Device Identity CA, the ECDSA
// P-384 signature over the SPDM transcript, the FWID against the leaf's TCG DICE extension, the request nonce, the
// bundled OCSP responses, and the driver / VBIOS RIMs with their golden measurements. Synchronous and offline; the
// verified device chain is cached by its bytes, so a further report from the same GPU costs a parse and one verify.
import { createHash, hash, timingSafeEqual, verify as cryptoVerify } from "node:crypto";

import { MalformedInputError, ProvenantError, VerificationError } from "../errors.ts";
import {
  checkChain,
  checkValidity,
  readLeafFwid,
  readPemCertificates,
  type GpuArch,
  type GpuCertificate,
} from "./cert.ts";
import { NVIDIA_DEVICE_ROOT_FINGERPRINT } from "./nvidia-roots.ts";
import { checkOcsp, parseOcspResponses, type ParsedOcspResponse } from "./ocsp.ts";
import { NONCE_LENGTH, parseEvidenceView, toEvidenceBytes, type GpuEvidence } from "./parse.ts";
import { appraiseMeasurements, createRimVerifier, type MeasurementAppraisal, type VerifiedRim } from "./rim.ts";
import { DEFAULT_GPU_POLICY, validateGpu, type GpuPolicy } from "./validate.ts";

/** What a bundle (or the CLI) carries for one GPU. */
export interface GpuEvidenceInput {
  /** The SPDM request ‖ response, as raw bytes or as the hex text NVIDIA's tools write. */
  evidence: Uint8Array | string;
  /** The device certificate chain as PEM, leaf first, root last (what NVML returns). */
  certChainPem: string | Uint8Array;
  /** The architecture the collector reported; when given it must agree with the leaf's DICE extension. */
  arch?: GpuArch;
  /** Driver and VBIOS RIMs (SWID XML); which is which is read from each RIM's version. */
  rims?: readonly (Uint8Array | string)[];
  /** DER OCSP responses for certificates of the device and RIM chains. */
  ocsp?: readonly Uint8Array[];
}

export interface GpuVerifyOptions {
  /** The 32 bytes the request must carry (gpuNonceFor(REPORT_DATA)); `null` skips the check (diagnostics only). */
  expectedNonce: Uint8Array | null;
  now: Date;
  /** Development roots (device or RIM) trusted besides NVIDIA's pinned ones: the policy's gpu.trustedRoots. */
  trustedRoots?: readonly string[];
}

export interface RimSummary {
  version: string;
  /** Hex SHA-256 of the RIM document. */
  digest: string;
  signer: string;
  rootFingerprint: string;
}

/** A GPU whose evidence verified. Every value is plain data except `evidence`, the parsed transcript. */
export interface VerifiedGpu {
  arch: GpuArch;
  driverVersion: string;
  vbiosVersion: string;
  /** Hex of the 32-byte request nonce. */
  nonce: string;
  /** Hex FWID the report carries (equal to the leaf's); null when the firmware reports none (nvtrust then skips it). */
  fwid: string | null;
  measurements: MeasurementAppraisal;
  /**
   * Hex SHA-256 of the response's measurement record exactly as signed (every DMTF block: index, specification,
   * size, value type, value). The pipeline folds it into the record's measurementHash.
   */
  measurementDigest: string;
  /** Hex SHA-256 of the device root certificate. */
  rootFingerprint: string;
  rims: { driver: RimSummary | null; vbios: RimSummary | null };
  /** Subjects of chain certificates with a good OCSP response, and of those that had none. */
  ocsp: { checked: string[]; missing: string[] };
  ids: {
    project: string | null;
    projectSku: string | null;
    projectSkuMod: string | null;
    chipSku: string | null;
    chipSkuMod: string | null;
    /** The leaf certificate's subject CN, e.g. "GH100 A01 GSP FMC LF". */
    leaf: string;
  };
  /** NVDEC0_STATUS: 0x55 disabled, 0xAA enabled; null when absent. */
  nvdec0Status: number | null;
  /** FEATURE_FLAG as hex; null when absent. */
  featureFlags: string | null;
  /** The parsed transcript; its byte fields are views of the evidence bytes the caller passed (do not reuse them). */
  evidence: GpuEvidence;
}

interface VerifiedChain {
  certificates: readonly GpuCertificate[];
  rootFingerprint: string;
  arch: GpuArch;
  fwid: Uint8Array;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function verifyDeviceChain(
  pem: string | Uint8Array,
  trusted: ReadonlySet<string>,
  claimed: GpuArch | undefined,
): VerifiedChain {
  const ders = readPemCertificates(pem, "device certificate chain", "GPU_CHAIN_INVALID");
  const chain = checkChain(ders, trusted, "device chain", "GPU_CHAIN_INVALID");
  const leaf = chain.certificates[0]!;
  const key = leaf.publicKey;
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    throw new VerificationError("GPU_CHAIN_INVALID", `the leaf ${leaf.subjectCn} does not hold a P-384 key`);
  }
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & 1) === 0) {
    throw new VerificationError("GPU_CHAIN_INVALID", `the leaf ${leaf.subjectCn} may not sign (key usage)`);
  }
  const { arch, fwid } = readLeafFwid(leaf, claimed);
  return { ...chain, arch, fwid };
}

function verifySignature(evidence: GpuEvidence, leaf: GpuCertificate): void {
  let ok: boolean;
  try {
    ok = cryptoVerify(
      "sha384",
      evidence.raw.subarray(0, evidence.signedLength),
      { key: leaf.publicKey, dsaEncoding: "ieee-p1363" },
      evidence.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new VerificationError(
      "GPU_BAD_SIGNATURE",
      `the signature over bytes [0, ${evidence.signedLength}) does not verify with the leaf ${leaf.subjectCn}'s key`,
    );
  }
}

function checkFwid(evidence: GpuEvidence, chain: VerifiedChain): void {
  // nvtrust (cc_admin_utils.verify_gpu_certificate_chain) and the attestation SDK skip the comparison when the
  // report carries no FWID, as older firmware does; a signature by the leaf key already binds the report to it.
  if (evidence.fwid === undefined) return;
  if (!sameBytes(evidence.fwid, chain.fwid)) {
    throw new VerificationError(
      "GPU_FWID_MISMATCH",
      `the report's FWID differs from the leaf certificate's (${chain.arch})`,
      {
        details: { report: hex(evidence.fwid), certificate: hex(chain.fwid), arch: chain.arch },
      },
    );
  }
}

function checkNonce(evidence: GpuEvidence, expected: Uint8Array | null): void {
  if (expected === null) return;
  if (!(expected instanceof Uint8Array) || expected.length !== NONCE_LENGTH) {
    throw new VerificationError("GPU_NONCE_MISMATCH", `the expected nonce must be ${NONCE_LENGTH} bytes`);
  }
  if (!sameBytes(evidence.request.nonce, expected)) {
    throw new VerificationError("GPU_NONCE_MISMATCH", "the request nonce is not the expected one", {
      details: { expected: hex(expected), actual: hex(evidence.request.nonce) },
    });
  }
}

function summary(rim: VerifiedRim | undefined): RimSummary | null {
  if (rim === undefined) return null;
  return {
    version: rim.version,
    digest: rim.digest,
    signer: rim.certificates[0]!.subjectCn,
    rootFingerprint: rim.rootFingerprint,
  };
}

export interface GpuVerifier {
  /** Cryptographic verification only (fails fast with one coded error); see verifyGpuEvidence for the policy too. */
  verify(input: GpuEvidenceInput, options: GpuVerifyOptions): VerifiedGpu;
}

function asCoded(error: unknown): ProvenantError {
  if (error instanceof ProvenantError) return error;
  return new VerificationError("GPU_CHAIN_INVALID", `unexpected failure: ${String(error)}`, { cause: error });
}

const NONE: readonly string[] = Object.freeze([]);
const PINNED_DEVICE_ONLY: ReadonlySet<string> = new Set([NVIDIA_DEVICE_ROOT_FINGERPRINT]);

/** A verifier with caches of verified device chains (by their bytes) and RIMs (by their digest). */
export function createGpuVerifier(): GpuVerifier {
  /** By (claimed arch, extra roots), then by the chain's PEM text (V8 hashes a string once) or its bytes' SHA-256. */
  const chains = new Map<string, Map<string, VerifiedChain>>();
  let cached = 0;
  const rimVerifier = createRimVerifier();
  return {
    verify(input, options) {
      try {
        if (input === null || typeof input !== "object") {
          throw new MalformedInputError("GPU_MALFORMED", "the GPU evidence is not an object");
        }
        // Parsed and verified in this one synchronous call, so a view of the caller's bytes is safe here.
        const evidence = parseEvidenceView(toEvidenceBytes(input.evidence));
        const extra =
          options.trustedRoots === undefined || options.trustedRoots.length === 0
            ? NONE
            : options.trustedRoots.map((f) => String(f).toLowerCase());
        const trusted = extra === NONE ? PINNED_DEVICE_ONLY : new Set([NVIDIA_DEVICE_ROOT_FINGERPRINT, ...extra]);
        if (typeof input.certChainPem !== "string" && !(input.certChainPem instanceof Uint8Array)) {
          throw new VerificationError("GPU_CHAIN_INVALID", "the evidence carries no certificate chain");
        }
        const pemKey =
          typeof input.certChainPem === "string" ? input.certChainPem : hash("sha256", input.certChainPem, "hex");
        const scope = `${input.arch ?? ""}|${extra.length === 0 ? "" : [...trusted].sort().join(",")}`;
        let byPem = chains.get(scope);
        if (byPem === undefined) chains.set(scope, (byPem = new Map()));
        let chain = byPem.get(pemKey);
        if (chain === undefined) {
          chain = verifyDeviceChain(input.certChainPem, trusted, input.arch);
          if (cached >= 1024) {
            chains.clear();
            chains.set(scope, (byPem = new Map()));
            cached = 0;
          }
          byPem.set(pemKey, chain);
          cached++;
        }
        checkValidity(chain.certificates, options.now, "device chain");
        verifySignature(evidence, chain.certificates[0]!);
        checkFwid(evidence, chain);
        checkNonce(evidence, options.expectedNonce);

        const responses: ParsedOcspResponse[] =
          input.ocsp === undefined || input.ocsp.length === 0 ? [] : parseOcspResponses(input.ocsp);
        const ocsp = { checked: [] as string[], missing: [] as string[] };
        const addOcsp = (certificates: readonly GpuCertificate[], first: number, what: string) => {
          if (responses.length === 0) {
            for (let i = first; i < certificates.length - 1; i++)
              ocsp.missing.push(`${what}: ${certificates[i]!.subjectCn}`);
            return;
          }
          const r = checkOcsp(responses, certificates, first, options.now, what);
          ocsp.checked.push(...r.checked.map((s) => `${what}: ${s}`));
          ocsp.missing.push(...r.missing.map((s) => `${what}: ${s}`));
        };
        // The device leaf is made on the GPU and has no OCSP entry; nvtrust checks from index 1 (the BROM) up.
        addOcsp(chain.certificates, 1, "device chain");

        const rims: { driver?: VerifiedRim; vbios?: VerifiedRim } = {};
        const rimInputs = input.rims ?? [];
        // A third RIM is always a second of a kind: refused before any XML signature is paid for.
        if (rimInputs.length > 2)
          throw new VerificationError(
            "GPU_RIM_INVALID",
            `${rimInputs.length} RIMs given; at most a driver and a VBIOS RIM`,
          );
        for (const xml of rimInputs) {
          const rim = rimVerifier.verify(xml, { now: options.now, trustedRoots: extra });
          if (rims[rim.kind] !== undefined) {
            throw new VerificationError(
              "GPU_RIM_INVALID",
              `two ${rim.kind} RIMs given (${rims[rim.kind]!.version}, ${rim.version})`,
            );
          }
          const reported = rim.kind === "driver" ? evidence.driverVersion : evidence.vbiosVersion;
          // nvtrust compares both versions lower-cased (RIM.verify); VBIOS versions differ in case between tools.
          if (rim.version.toLowerCase() !== reported.toLowerCase()) {
            throw new VerificationError(
              "GPU_RIM_VERSION_MISMATCH",
              `the ${rim.kind} RIM is for version ${rim.version}, the GPU reports ${reported}`,
              { details: { kind: rim.kind, rim: rim.version, reported } },
            );
          }
          rims[rim.kind] = rim;
          addOcsp(rim.certificates, 0, `${rim.kind} RIM chain`);
        }
        const measurements: MeasurementAppraisal =
          rims.driver === undefined && rims.vbios === undefined
            ? { checked: 0, matched: 0, mismatched: [], skipped: [] }
            : appraiseMeasurements(evidence, rims);
        if (measurements.mismatched.length > 0) {
          throw new VerificationError(
            "GPU_MEASUREMENT_MISMATCH",
            `${measurements.mismatched.length} of ${measurements.checked} golden measurements differ from the report (indices ${measurements.mismatched.join(", ")})`,
            { details: { ...measurements } },
          );
        }
        return {
          arch: chain.arch,
          driverVersion: evidence.driverVersion,
          vbiosVersion: evidence.vbiosVersion,
          nonce: hex(evidence.request.nonce),
          fwid: evidence.fwid === undefined ? null : hex(evidence.fwid),
          measurements,
          measurementDigest: hash("sha256", evidence.measurementRecord, "hex"),
          rootFingerprint: chain.rootFingerprint,
          rims: { driver: summary(rims.driver), vbios: summary(rims.vbios) },
          ocsp,
          ids: {
            project: evidence.project ?? null,
            projectSku: evidence.projectSku ?? null,
            projectSkuMod: evidence.projectSkuMod ?? null,
            chipSku: evidence.chipSku ?? null,
            chipSkuMod: evidence.chipSkuMod ?? null,
            leaf: chain.certificates[0]!.subjectCn,
          },
          nvdec0Status: evidence.nvdec0Status ?? null,
          featureFlags: evidence.featureFlags === undefined ? null : hex(evidence.featureFlags),
          evidence,
        };
      } catch (error) {
        throw asCoded(error);
      }
    },
  };
}

const shared = createGpuVerifier();

/**
 * The pipeline's one call: verifies one GPU's evidence (chain, signature, FWID, nonce, OCSP, RIMs, measurements),
 * then holds it against the GPU policy. Trust in development roots comes from `policy.trustedRoots` only.
 * Throws a VerificationError (GPU_*; the first failed proof) or a PolicyViolationError (POLICY_GPU, GPU_RIM_MISSING:
 * every violation). Caches verified chains and RIMs across calls.
 */
export function verifyGpuEvidence(
  input: GpuEvidenceInput,
  options: { expectedNonce: Uint8Array | null; now: Date; policy?: GpuPolicy; verifier?: GpuVerifier },
): VerifiedGpu {
  const policy = options.policy ?? DEFAULT_GPU_POLICY;
  const verified = (options.verifier ?? shared).verify(input, {
    expectedNonce: options.expectedNonce,
    now: options.now,
    trustedRoots: policy.trustedRoots ?? [],
  });
  validateGpu(verified, policy);
  return verified;
}

/** The nonce a GPU must sign for a CPU report: SHA-256("provenant/nvidia-gpu-nonce/v1" ‖ REPORT_DATA), 32 bytes. */
export function gpuNonceFor(reportData: Uint8Array): Uint8Array {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new MalformedInputError("GPU_MALFORMED", "REPORT_DATA must be 64 bytes");
  }
  return new Uint8Array(
    createHash("sha256").update("provenant/nvidia-gpu-nonce/v1", "utf8").update(reportData).digest(),
  );
}

/** The plain-data view of a VerifiedGpu (no parsed transcript), as a bundle verdict or `--json` shows it. */
export function verifiedGpuToJson(v: VerifiedGpu): Omit<VerifiedGpu, "evidence"> {
  const { evidence: _evidence, ...rest } = v;
  return JSON.parse(JSON.stringify(rest)) as Omit<VerifiedGpu, "evidence">;
}
