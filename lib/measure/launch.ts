// The SEV-SNP launch digest of a direct-boot guest, computed offline (the report's MEASUREMENT; AMD SEV-SNP ABI
// 56860 §8.17 SNP_LAUNCH_UPDATE), in the order QEMU (target/i386/sev.c) and sev-snp-measure (guest.py) measure it:
// the OVMF pages, then each SEV metadata section in the image's order (the hashes page in place of
// SNP_KERNEL_HASHES), then one VMSA per vCPU. Pure and synchronous: it takes the parsed image and the file digests.
import { MalformedInputError, UsageError } from "../errors.ts";
import { LaunchDigest, LD_BYTES, PAGE_TYPES, sha384 } from "./gctx.ts";
import {
  hasKernelHashes,
  PAGE_SIZE,
  SEV_ES_RESET_BLOCK_GUID,
  SEV_HASH_TABLE_RV_GUID,
  tableU32,
  type OvmfImage,
} from "./ovmf.ts";
import { buildSevHashesPage, type KernelHashes } from "./sev-hashes.ts";
import { BSP_EIP, buildVmsaPage, VMM_TYPES, type VmmType } from "./vmsa.ts";

/** QEMU's limit on vCPUs for an x86 machine (x2APIC); also bounds the work. */
export const MAX_VCPUS = 4096;

export interface LaunchInputs {
  ovmf: OvmfImage;
  /** A digest of the OVMF pages computed earlier (`--snp-ovmf-hash`): the chain starts from it. */
  ovmfHash?: Uint8Array;
  /** The kernel, initrd and command line digests; absent when the guest boots without a kernel. */
  kernelHashes?: KernelHashes;
  vcpus: number;
  /** CPUID Fn0000_0001_EAX of the guest's vCPU model (QEMU puts it in RDX; EC2 and GCE do not use it). */
  vcpuSig: number;
  vmm: VmmType;
  /** SEV_FEATURES of every VMSA; bit 0 (SNPActive) is 1 for an SNP guest. */
  guestFeatures: bigint;
}

export interface LaunchMeasurement {
  /** The launch digest, 48 bytes. */
  measurement: Uint8Array;
  /** The digest after the OVMF pages alone (what `--snp-ovmf-hash` takes), 48 bytes. */
  ovmfHash: Uint8Array;
}

/** The launch digest of the OVMF pages alone (sev-snp-measure `--mode snp:ovmf-hash`). */
export function ovmfLaunchDigest(ovmf: OvmfImage): Uint8Array {
  const ld = new LaunchDigest();
  ld.normalPages(ovmf.gpa, ovmf.bytes);
  return ld.digest();
}

function malformed(message: string, details?: Record<string, unknown>): never {
  throw new MalformedInputError("MEASURE_OVMF_MALFORMED", message, details === undefined ? {} : { details });
}

function checkInputs(inputs: LaunchInputs): void {
  const { vcpus, vcpuSig, guestFeatures, vmm } = inputs;
  if (!Number.isSafeInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS)
    throw new UsageError(`vcpus must be an integer from 1 to ${MAX_VCPUS}, got ${vcpus}`);
  if (!Number.isSafeInteger(vcpuSig) || vcpuSig < 0 || vcpuSig > 0xffff_ffff)
    throw new UsageError(`the vCPU signature must fit 32 bits, got ${vcpuSig}`);
  if (guestFeatures < 0n || guestFeatures > 0xffff_ffff_ffff_ffffn)
    throw new UsageError(`guest features must fit 64 bits, got ${guestFeatures}`);
  if (!VMM_TYPES.includes(vmm)) throw new UsageError(`unknown VMM type ${String(vmm)} (${VMM_TYPES.join(", ")})`);
  if (inputs.ovmfHash !== undefined && inputs.ovmfHash.length !== LD_BYTES)
    throw new UsageError(`a precomputed OVMF hash is ${LD_BYTES} bytes, got ${inputs.ovmfHash.length}`);
}

/** Throws MEASURE_NO_KERNEL_HASHES unless the image measures a kernel (callers check before hashing the files). */
export function assertMeasuresKernel(ovmf: OvmfImage): void {
  if (!hasKernelHashes(ovmf)) {
    throw new MalformedInputError(
      "MEASURE_NO_KERNEL_HASHES",
      "a kernel was given but this OVMF has no SNP_KERNEL_HASHES section, so it cannot measure a kernel, initrd " +
        "and command line: build OVMF from OvmfPkg/AmdSev/AmdSevX64.dsc",
    );
  }
}

/** The hashes page for the SNP_KERNEL_HASHES section, checked before any hashing starts. */
function kernelHashesPage(ovmf: OvmfImage, hashes: KernelHashes): Uint8Array {
  assertMeasuresKernel(ovmf);
  const tableGpa = tableU32(ovmf, SEV_HASH_TABLE_RV_GUID);
  if (tableGpa === undefined) malformed("OVMF has an SNP_KERNEL_HASHES section but no SEV hashes table entry");
  const page = buildSevHashesPage(hashes, tableGpa & (PAGE_SIZE - 1));
  if (page === undefined) malformed(`the SEV hashes table at ${tableGpa} does not fit in its page`, { tableGpa });
  for (const section of ovmf.sections) {
    if (section.type === "SNP_KERNEL_HASHES" && section.size !== PAGE_SIZE)
      malformed(`the SNP_KERNEL_HASHES section is ${section.size} bytes, not one page`, { size: section.size });
  }
  return page;
}

/** Computes the launch digest. Throws MEASURE_OVMF_MALFORMED, MEASURE_NO_KERNEL_HASHES or USAGE. */
export function computeLaunchDigest(inputs: LaunchInputs): LaunchMeasurement {
  checkInputs(inputs);
  const { ovmf, vmm } = inputs;
  // Everything that can fail is checked before the first page is hashed.
  const hashesPage = inputs.kernelHashes === undefined ? undefined : kernelHashesPage(ovmf, inputs.kernelHashes);
  const apEip = tableU32(ovmf, SEV_ES_RESET_BLOCK_GUID);
  if (apEip === undefined) malformed("OVMF has no SEV-ES reset block, so an SEV-SNP guest cannot start from it");
  if (inputs.vcpus > 1 && apEip === 0) malformed("OVMF's SEV-ES reset block gives no AP reset address");

  const ovmfHash = inputs.ovmfHash ?? ovmfLaunchDigest(ovmf);
  const ld = new LaunchDigest(ovmfHash);
  for (const section of ovmf.sections) {
    switch (section.type) {
      case "SNP_SEC_MEMORY":
        // GCE leaves the pre-validated SEC memory unmeasured; QEMU and EC2 add it as zero pages.
        ld.emptyPages(vmm === "gce" ? PAGE_TYPES.UNMEASURED : PAGE_TYPES.ZERO, section.gpa, section.size);
        break;
      case "SNP_SECRETS":
        ld.emptyPages(PAGE_TYPES.SECRETS, section.gpa, PAGE_SIZE);
        break;
      case "CPUID":
        // EC2 adds the CPUID page after every other section (below).
        if (vmm !== "ec2") ld.emptyPages(PAGE_TYPES.CPUID, section.gpa, PAGE_SIZE);
        break;
      case "SNP_KERNEL_HASHES":
        if (hashesPage !== undefined) ld.normalPages(section.gpa, hashesPage);
        else ld.emptyPages(PAGE_TYPES.ZERO, section.gpa, section.size);
        break;
      case "SVSM_CAA":
        ld.emptyPages(PAGE_TYPES.ZERO, section.gpa, section.size);
        break;
    }
  }
  if (vmm === "ec2") {
    for (const section of ovmf.sections)
      if (section.type === "CPUID") ld.emptyPages(PAGE_TYPES.CPUID, section.gpa, PAGE_SIZE);
  }
  // The BSP starts at the reset vector, every AP at the reset block's EIP; each VMSA is measured once per vCPU.
  const bsp = sha384(buildVmsaPage(BSP_EIP, inputs.guestFeatures, inputs.vcpuSig, vmm));
  const ap = inputs.vcpus > 1 ? sha384(buildVmsaPage(apEip, inputs.guestFeatures, inputs.vcpuSig, vmm)) : bsp;
  for (let i = 0; i < inputs.vcpus; i++) ld.vmsaPage(i === 0 ? bsp : ap);
  return { measurement: ld.digest(), ovmfHash: Uint8Array.from(ovmfHash) };
}
