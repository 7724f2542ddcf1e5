// A provenance bundle checked in the browser with lib's own browser-safe modules: the strict reader of lib/bundle
// (shape, sizes, the signer key read from its DER), DSSE PAE and the DER/P1363 signature readings of lib/dsse (verified
// with WebCrypto), the report parser and CPUID product mapping of lib/snp, then the REPORT_DATA binding and the manifest
// digest. The AMD certificate chain is not checked here: the verifier did that, and `provenant audit` redoes it.
import { findManifest, predicateTypeOf, readBundle, BUNDLE_MEDIA_TYPE } from "../../lib/bundle/core.ts";
import { decodeBase64, pae, parseEcSpki, verifyEcSignatureWeb, type EcCurve } from "../../lib/dsse/core.ts";
import { equalBytes, toHex } from "../../lib/encoding/index.ts";
import { PREDICATE_SLSA } from "../../lib/intoto/predicates.ts";
import { parseReport } from "../../lib/snp/parse.ts";
import { sha256 } from "./hash.ts";

export { BUNDLE_MEDIA_TYPE };

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
  manifestKind: "finetune" | "eval";
  modelHash: string;
  parentModelHash: string | null;
  /** The report as lib/snp parses it; null with `reportError` when it does not parse. */
  evidence: {
    provider: string;
    reportVersion: number;
    /** The product from CPUID (lib/snp productFromCpuid); "unknown" for v2 reports and unknown chips. */
    product: string;
    reportedTcb: bigint;
    measurement: string;
    measurementHash: string;
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

  const payload = decodeBase64(manifest.payload, "DSSE_MALFORMED", "payload");
  let statement: {
    subject?: { digest?: { sha256?: unknown } }[];
    predicate?: { buildDefinition?: { resolvedDependencies?: { name?: unknown; digest?: { sha256?: unknown } }[] } };
  };
  try {
    statement = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload)) as typeof statement;
  } catch {
    throw Object.assign(new Error("the manifest payload is not JSON"), { code: "STATEMENT_INVALID" });
  }
  const modelHash = statement.subject?.[0]?.digest?.sha256;
  if (typeof modelHash !== "string" || !/^[0-9a-f]{64}$/i.test(modelHash)) {
    throw Object.assign(new Error("the manifest names no sha256 subject digest"), { code: "STATEMENT_INVALID" });
  }
  const deps = statement.predicate?.buildDefinition?.resolvedDependencies;
  const parent = Array.isArray(deps) ? deps.find((d) => d?.name === "base-model")?.digest?.sha256 : undefined;

  const reportBytes = decodeBase64(bundle.evidence.cpu.report, "BUNDLE_MALFORMED", "evidence.cpu.report");
  const reportData = reportBytes.subarray(0x50, 0x90);
  let evidence: BundleCheck["evidence"] = null;
  let reportError: BundleCheck["reportError"] = null;
  try {
    const report = parseReport(reportBytes);
    evidence = {
      provider: bundle.evidence.cpu.provider ?? "unknown",
      reportVersion: report.version,
      product: report.productFromCpuid ?? "unknown",
      reportedTcb: report.reportedTcb.raw,
      measurement: toHex(report.measurement),
      measurementHash: toHex(await sha256(report.measurement)),
    };
  } catch (error) {
    reportError = codeOf(error);
  }
  return {
    envelopes,
    allSignaturesValid: envelopes.every((e) => e.signaturesValid),
    curve,
    keyId,
    // DESIGN §3.3: REPORT_DATA[0:32] = SHA-256(DER SPKI of K), REPORT_DATA[32:64] = nonce.
    bindingKeyOk: equalBytes(reportData.subarray(0, 32), keyHash),
    bindingNonceOk: toHex(reportData.subarray(32, 64)) === bundle.nonce,
    manifestDigest: toHex(await sha256(payload)),
    manifestKind: predicateTypeOf(manifest) === PREDICATE_SLSA ? "finetune" : "eval",
    modelHash: modelHash.toLowerCase(),
    parentModelHash: typeof parent === "string" ? parent.toLowerCase() : null,
    evidence,
    reportError,
  };
}
