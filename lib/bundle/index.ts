// The provenance bundle (DESIGN §3.3): what publishers push. Reading, writing and finding the manifest are the
// browser-safe core.ts, which the explorer page shares; this module adds the manifest digest on node:crypto.
import { createHash } from "node:crypto";

import { decodeBase64, type DsseEnvelope } from "../dsse/index.ts";
import { measurementHashInputs, type ProvenanceBundle } from "./core.ts";

export {
  BUNDLE_MEDIA_TYPE,
  MAX_BUNDLE_BYTES,
  SNP_REPORT_BYTES,
  findManifest,
  GPU_EVIDENCE_TYPE,
  MAX_BUNDLE_GPUS,
  MAX_GPU_CERT_CHAIN_CHARS,
  MAX_GPU_EVIDENCE_BYTES,
  MAX_GPU_OCSP,
  MAX_GPU_OCSP_BYTES,
  MAX_GPU_RIM_BYTES,
  MAX_GPU_RIMS,
  MAX_JSON_DEPTH,
  measurementHashInputs,
  parseStrictJson,
  manifestIndexOf,
  predicateTypeOf,
  predicateTypeOfJson,
  readBundle,
  readBundleDecoded,
  toBundle,
  writeBundle,
  type BundleLimits,
  type CpuEvidence,
  type CpuProvider,
  type DecodedBundle,
  type GpuArchName,
  type GpuEvidence,
  type ProvenanceBundle,
} from "./core.ts";

/**
 * The record's measurementHash recomputed from a bundle's bytes alone (measurementHashInputs): SHA-256(MEASUREMENT ‖
 * SHA-256(each GPU's measurement record)…), SHA-256(MEASUREMENT) without GPUs. Hex, no 0x. Verifies nothing.
 */
export function measurementHashOfBundle(bundle: ProvenanceBundle): string {
  const { measurement, gpuMeasurementRecords } = measurementHashInputs(bundle);
  return measurementHashOf(
    measurement,
    gpuMeasurementRecords.map((record) => createHash("sha256").update(record).digest("hex")),
  );
}

/**
 * The record's measurementHash (docs/formats.md), the one formula the verifier records and an auditor recomputes:
 * SHA-256(MEASUREMENT) for a bundle without GPUs, as before GPUs were verified, so existing records keep their
 * meaning; with GPUs, SHA-256(MEASUREMENT ‖ gpu[0].measurementDigest ‖ …), the 48-byte launch digest then each GPU's
 * 32-byte measurement-record digest (raw bytes, given here as hex), in bundle order. Hex, no 0x.
 */
export function measurementHashOf(measurement: Uint8Array, gpuMeasurementDigests: readonly string[] = []): string {
  const h = createHash("sha256").update(measurement);
  for (const digest of gpuMeasurementDigests) h.update(Buffer.from(digest, "hex"));
  return h.digest("hex");
}

/** Hex SHA-256 of the envelope's decoded payload bytes exactly as signed (DESIGN §3.2: the onchain manifestDigest). */
export function manifestDigestOf(envelope: DsseEnvelope): string {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  return createHash("sha256").update(payload).digest("hex");
}
