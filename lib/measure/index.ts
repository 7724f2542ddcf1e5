// SEV-SNP launch measurement (DESIGN §11): the MEASUREMENT of a direct-boot guest computed offline, as
// virtee/sev-snp-measure `--mode snp` computes it, and the policy fragment that pins it.
export { LaunchDigest, LD_BYTES, PAGE_TYPES, VMSA_GPA } from "./gctx.ts";
export {
  OVMF_MAX_BYTES,
  SECTION_TYPES,
  bytesToGuid,
  guidToBytes,
  hasKernelHashes,
  parseOvmf,
  type OvmfImage,
  type OvmfSection,
  type SectionType,
} from "./ovmf.ts";
export {
  SEV_HASHES_TABLE_LENGTH,
  buildSevHashesPage,
  buildSevHashesTable,
  cmdlineDigest,
  type KernelHashes,
} from "./sev-hashes.ts";
export { BSP_EIP, VMM_TYPES, VMSA_SIZE, buildVmsaPage, type VmmType } from "./vmsa.ts";
export { CPU_SIGS, cpuSig, cpuSigOf } from "./vcpu.ts";
export {
  MAX_VCPUS,
  assertMeasuresKernel,
  computeLaunchDigest,
  ovmfLaunchDigest,
  type LaunchInputs,
  type LaunchMeasurement,
} from "./launch.ts";
export {
  measureLaunchFiles,
  parseOvmfHash,
  readOvmf,
  sha256File,
  type FilesMeasurement,
  type MeasureFilesOptions,
} from "./files.ts";
export { toPolicySnippet, type MeasurementPolicySnippet } from "./policy.ts";
