// NVIDIA GPU attestation: parse (SPDM transcript → evidence), verify (chain, signature, FWID, nonce, OCSP, RIMs),
// validate (GPU policy), simulate (a development GPU with its own roots). DESIGN §10; docs/gpu.md.
export {
  encodeVbiosVersion,
  formatVbiosVersion,
  MAX_EVIDENCE_BYTES,
  NONCE_LENGTH,
  NVDEC0_DISABLED,
  OPAQUE_TYPES,
  opaqueTypeName,
  parseGpuEvidence,
  REQUEST_LENGTH,
  SIGNATURE_LENGTH,
  toEvidenceBytes,
} from "./parse.ts";
export type { GpuEvidence, MeasurementBlock, OpaqueField, SpdmRequest, SpdmResponse } from "./parse.ts";
export { GPU_ARCHS, OID_TCG_DICE_TCB_INFO, OID_TCG_DICE_TCB_INFO_BLACKWELL } from "./cert.ts";
export type { GpuArch } from "./cert.ts";
export { NVIDIA_DEVICE_ROOT_FINGERPRINT, NVIDIA_RIM_ROOT_FINGERPRINT } from "./nvidia-roots.ts";
export { appraiseMeasurements, createRimVerifier, rimKindOf, verifyRim } from "./rim.ts";
export type { GoldenMeasurement, MeasurementAppraisal, RimKind, RimVerifyOptions, VerifiedRim } from "./rim.ts";
export { createGpuVerifier, gpuNonceFor, verifiedGpuToJson, verifyGpuEvidence } from "./verify.ts";
export type { GpuEvidenceInput, GpuVerifier, GpuVerifyOptions, RimSummary, VerifiedGpu } from "./verify.ts";
export {
  compareDriverVersions,
  DEFAULT_GPU_POLICY,
  gpuPolicyToJson,
  parseGpuPolicy,
  validateGpu,
  validateGpus,
} from "./validate.ts";
export type { GpuPolicy } from "./validate.ts";
export { createGpuSimulator } from "./sim.ts";
export type { GpuSimulator, GpuSimulatorOptions, SimEvidenceFields, SimOcspOptions, SimRimOptions } from "./sim.ts";
