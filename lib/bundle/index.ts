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
  jsonDepthExceeds,
  MAX_BUNDLE_GPUS,
  MAX_GPU_CERT_CHAIN_CHARS,
  MAX_GPU_EVIDENCE_BYTES,
  MAX_GPU_OCSP,
  MAX_GPU_OCSP_BYTES,
  MAX_GPU_RIM_BYTES,
  MAX_GPU_RIMS,
  MAX_JSON_DEPTH,
  measurementHashInputs,
  parseJsonBounded,
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
  const h = createHash("sha256").update(measurement);
  for (const record of gpuMeasurementRecords) h.update(createHash("sha256").update(record).digest());
  return h.digest("hex");
}

/** Hex SHA-256 of the envelope's decoded payload bytes exactly as signed (DESIGN §3.2: the onchain manifestDigest). */
export function manifestDigestOf(envelope: DsseEnvelope): string {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  return createHash("sha256").update(payload).digest("hex");
}
