// The provenance bundle (DESIGN §3.3): what publishers push. Reading, writing and finding the manifest are the
// browser-safe core.ts, which the explorer page shares; this module adds the manifest digest on node:crypto.
import { createHash } from "node:crypto";

import { decodeBase64, type DsseEnvelope } from "../dsse/index.ts";

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
  parseJsonBounded,
  parseStrictJson,
  predicateTypeOf,
  readBundle,
  toBundle,
  writeBundle,
  type BundleLimits,
  type CpuEvidence,
  type CpuProvider,
  type GpuArchName,
  type GpuEvidence,
  type ProvenanceBundle,
} from "./core.ts";

/** Hex SHA-256 of the envelope's decoded payload bytes exactly as signed (DESIGN §3.2: the onchain manifestDigest). */
export function manifestDigestOf(envelope: DsseEnvelope): string {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  return createHash("sha256").update(payload).digest("hex");
}
