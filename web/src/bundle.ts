// A provenance bundle checked in the browser with lib's own browser-safe modules: the strict reader of lib/bundle
// (shape, sizes, the signer key read from its DER, the inputs of the record's measurementHash), DSSE PAE and the
// DER/P1363 signature readings of lib/dsse (verified with WebCrypto), the statement validator of lib/intoto, the report
// parser and CPUID product mapping of lib/snp, then the REPORT_DATA binding and the manifest digest. The AMD
// certificate chain is not checked here: the verifier did that, and `provenant audit` redoes it.
import {
  BUNDLE_MEDIA_TYPE,
  findManifest,
  measurementHashInputs,
  predicateTypeOf,
  readBundle,
} from "../../lib/bundle/core.ts";
import { decodeBase64, pae, parseEcSpki, verifyEcSignatureWeb, type EcCurve } from "../../lib/dsse/core.ts";
import { equalBytes, toHex } from "../../lib/encoding/index.ts";
import { MalformedInputError } from "../../lib/errors.ts";
import { jobCodeDigestOf, parseStatementPayload, type StatementKind } from "../../lib/intoto/index.ts";
import { parseReport } from "../../lib/snp/parse.ts";
import type { RegistryRecord } from "../../offchain/client/core.ts";
import { sha256 } from "./hash.ts";

export { BUNDLE_MEDIA_TYPE };

/** What a bundle's manifest is: lib/bundle findManifest takes a fine-tune, eval or serving statement, never an OMS one. */
export type ManifestKind = Exclude<StatementKind, "oms">;

/** How the page names each manifest kind (the registry's words: an eval manifest is recorded as an audit). */
export const MANIFEST_KIND_LABELS: Record<ManifestKind, string> = {
  finetune: "fine-tune",
  eval: "audit",
  serving: "serving",
};

export interface EnvelopeCheck {
  predicateType: string;
  /** At least one signature verifies with the bundle key (lib/dsse verifyEnvelope's rule). */
  signaturesValid: boolean;
  /** Every signature's keyid, where given, is the bundle key's id (a hint only: it does not decide validity). */
  keyIdMatches: boolean;
}

export interface BundleCheck {
  envelopes: EnvelopeCheck[];
  allSignaturesValid: boolean;
  curve: EcCurve;
  keyId: string;
  bindingKeyOk: boolean;
  bindingNonceOk: boolean;
  manifestDigest: string;
  /** lib/intoto's kind of the manifest statement (a serving bundle's is "serving"). */
  manifestKind: ManifestKind;
  modelHash: string;
  /** The fine-tune's base model; for a serving statement its log id, as the kind 3 record stores it. */
  parentModelHash: string | null;
  /** The job code the manifest names (lib/intoto jobCodeDigestOf); null when it names only a git commit. */
  jobCodeDigest: string | null;
  /** The record's measurementHash recomputed from the bundle (MEASUREMENT, and each GPU's measurement record). */
  measurementHash: string;
  gpus: number;
  /** The report as lib/snp parses it; null with `reportError` when it does not parse. */
  evidence: {
    provider: string;
    reportVersion: number;
    /** The product from CPUID (lib/snp productFromCpuid); "unknown" for v2 reports and unknown chips. */
    product: string;
    reportedTcb: bigint;
    measurement: string;
  } | null;
  reportError: { code: string; message: string } | null;
}

function codeOf(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  return {
    code: typeof e.code === "string" ? e.code : "INTERNAL",
    message: typeof e.message === "string" ? e.message : String(error),
  };
}

/** Checks a bundle's bytes. Throws lib's coded errors (BUNDLE_MALFORMED, BUNDLE_TOO_LARGE, …) for what lib refuses. */
export async function checkBundle(bytes: Uint8Array): Promise<BundleCheck> {
  if (globalThis.crypto?.subtle === undefined) {
    // Not a secure context (plain http from another host than localhost): say so rather than call signatures bad.
    throw Object.assign(new Error("checking signatures needs WebCrypto: open the explorer over https or localhost"), {
      code: "USAGE",
    });
  }
  const bundle = readBundle(bytes);
  const { envelope: manifest } = findManifest(bundle);
  const spki = decodeBase64(bundle.signer.publicKey, "BUNDLE_MALFORMED", "signer.publicKey");
  const { curve } = parseEcSpki(spki, "BUNDLE_MALFORMED");
  const keyHash = await sha256(spki);
  const keyId = toHex(keyHash);

  const envelopes: EnvelopeCheck[] = [];
  for (const [i, e] of bundle.envelopes.entries()) {
    const message = pae(e.payloadType, decodeBase64(e.payload, "DSSE_MALFORMED", `envelopes[${i}].payload`));
    let signaturesValid = false;
    for (const [j, s] of e.signatures.entries()) {
      const sig = decodeBase64(s.sig, "DSSE_MALFORMED", `envelopes[${i}].signatures[${j}].sig`);
      if (await verifyEcSignatureWeb(spki, message, sig)) {
        signaturesValid = true;
        break;
      }
    }
    const keyIdMatches = e.signatures.every(
      (s) => s.keyid === undefined || s.keyid === null || s.keyid === "" || s.keyid === keyId,
    );
    envelopes.push({ predicateType: predicateTypeOf(e) ?? "", signaturesValid, keyIdMatches });
  }

  // The manifest statement as the verifier reads it: STATEMENT_INVALID for anything lib/intoto refuses.
  const payload = decodeBase64(manifest.payload, "DSSE_MALFORMED", "payload");
  const statement = parseStatementPayload(manifest.payloadType, payload, "manifest");
  const manifestKind = statement.kind;
  // Unreachable while findManifest takes no OMS statement; refused rather than mislabelled should that change.
  if (manifestKind === "oms") throw new MalformedInputError("BUNDLE_MALFORMED", "the manifest is an OMS statement");
  // docs/formats.md: measurementHash = SHA-256(MEASUREMENT ‖ SHA-256(record₀) ‖ …); SHA-256(MEASUREMENT) without GPUs.
  const { measurement, gpuMeasurementRecords } = measurementHashInputs(bundle);
  const gpuDigests = await Promise.all(gpuMeasurementRecords.map((record) => sha256(record)));
  const measured = new Uint8Array(measurement.length + 32 * gpuDigests.length);
  measured.set(measurement, 0);
  gpuDigests.forEach((d, i) => measured.set(d, measurement.length + 32 * i));

  const reportBytes = decodeBase64(bundle.evidence.cpu.report, "BUNDLE_MALFORMED", "evidence.cpu.report");
  let reportData: Uint8Array | null = null;
  let evidence: BundleCheck["evidence"] = null;
  let reportError: BundleCheck["reportError"] = null;
  try {
    const report = parseReport(reportBytes);
    reportData = report.reportData;
    evidence = {
      provider: bundle.evidence.cpu.provider ?? "unknown",
      reportVersion: report.version,
      product: report.productFromCpuid ?? "unknown",
      reportedTcb: report.reportedTcb.raw,
      measurement: toHex(report.measurement),
    };
  } catch (error) {
    reportError = codeOf(error);
  }
  return {
    envelopes,
    allSignaturesValid: envelopes.every((e) => e.signaturesValid),
    curve,
    keyId,
    // DESIGN §3.3: REPORT_DATA[0:32] = SHA-256(DER SPKI of K), REPORT_DATA[32:64] = nonce, as lib/snp reads it: a
    // report lib does not parse binds nothing (the verifier refuses it).
    bindingKeyOk: reportData !== null && equalBytes(reportData.subarray(0, 32), keyHash),
    bindingNonceOk: reportData !== null && toHex(reportData.subarray(32, 64)) === bundle.nonce,
    manifestDigest: toHex(await sha256(payload)),
    manifestKind,
    modelHash: statement.subjectDigests[0]!.toLowerCase(),
    parentModelHash: statement.parentModelHash?.toLowerCase() ?? null,
    jobCodeDigest: jobCodeDigestOf(statement.statement) ?? null,
    measurementHash: toHex(await sha256(measured)),
    gpus: gpuMeasurementRecords.length,
    evidence,
    reportError,
  };
}

export interface ChainCheck {
  ok: boolean;
  text: string;
}

/**
 * The checks of a dropped bundle against its record on the chain: the same comparisons as `provenant audit` (model
 * hash, parent model, measurement hash, not revoked) except the policy digest, which needs the auditor's own policy.
 */
export function chainChecks(
  check: BundleCheck,
  record: Pick<
    RegistryRecord,
    "modelHash" | "parentModelHash" | "measurementHash" | "revoked" | "revocationReason"
  > | null,
): ChainCheck[] {
  if (record === null) return [{ ok: false, text: "manifest not recorded on chain" }];
  return [
    { ok: true, text: "manifest recorded on chain" },
    { ok: record.modelHash === check.modelHash, text: "same model hash on chain" },
    {
      ok: record.parentModelHash === check.parentModelHash,
      text:
        record.parentModelHash === check.parentModelHash
          ? "same parent model on chain"
          : `parent model: chain ${record.parentModelHash ?? "none"}, bundle ${check.parentModelHash ?? "none"}`,
    },
    { ok: record.measurementHash === check.measurementHash, text: "same measurement hash on chain" },
    { ok: !record.revoked, text: record.revoked ? `revoked: ${record.revocationReason ?? ""}` : "not revoked" },
  ];
}
