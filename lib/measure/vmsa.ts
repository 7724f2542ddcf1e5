// The initial VMSA (VM save area) of each vCPU as the VMM hands it to SNP_LAUNCH_UPDATE: the reset state of an
// x86 CPU (AMD APM Vol 2 §14.1.3 and Table B-4, "VMSA layout, state save area") with the conventions of each VMM
// as sev-snp-measure records them (vmsa.py: QEMU/KVM, AWS EC2, Google GCE). Every field not set here is zero.
export type VmmType = "qemu" | "ec2" | "gce";
export const VMM_TYPES: readonly VmmType[] = ["qemu", "ec2", "gce"];

export const VMSA_SIZE = 4096;
/** The boot processor starts at the architectural reset vector. */
export const BSP_EIP = 0xffff_fff0;

/** Offsets in the save area (struct sev_es_save_area in Linux arch/x86/include/asm/svm.h; APM Vol 2 Table B-4). */
const OFFSET = {
  es: 0x000,
  cs: 0x010,
  ss: 0x020,
  ds: 0x030,
  fs: 0x040,
  gs: 0x050,
  gdtr: 0x060,
  ldtr: 0x070,
  idtr: 0x080,
  tr: 0x090,
  efer: 0x0d0,
  cr4: 0x148,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
  gPat: 0x268,
  rdx: 0x310,
  sevFeatures: 0x3b0,
  xcr0: 0x3e8,
  mxcsr: 0x408,
  x87Fcw: 0x410,
} as const;

interface VmmRegisters {
  csAttrib: number;
  ssAttrib: number;
  trAttrib: number;
  rdx: bigint;
  mxcsr: number;
  fcw: number;
  gPat: bigint;
}

/** PAT MSR power-on value (AMD APM Vol 2 §A.3). */
const DEFAULT_G_PAT = 0x0007_0406_0007_0406n;

/**
 * Where the VMMs differ. QEMU/KVM: accessed code/data/TSS segment types, RDX = the CPUID signature (the reset value
 * of EDX is the processor's family/model/stepping), MXCSR and FCW at their reset values. EC2: the boot CPU's CS not
 * accessed, non-accessed SS and a 32-bit busy TSS type, RDX 0x600 (KVM's reset value when no CPUID is set), the FPU
 * state zero. GCE: QEMU's segments, RDX 0x600, the FPU state zero and its own PAT value.
 */
function vmmRegisters(vmm: VmmType, eip: number, vcpuSig: number): VmmRegisters {
  switch (vmm) {
    case "qemu":
      return {
        csAttrib: 0x9b,
        ssAttrib: 0x93,
        trAttrib: 0x8b,
        rdx: BigInt(vcpuSig),
        mxcsr: 0x1f80,
        fcw: 0x37f,
        gPat: DEFAULT_G_PAT,
      };
    case "ec2":
      return {
        csAttrib: eip === BSP_EIP ? 0x9a : 0x9b,
        ssAttrib: 0x92,
        trAttrib: 0x83,
        rdx: 0x600n,
        mxcsr: 0,
        fcw: 0,
        gPat: DEFAULT_G_PAT,
      };
    case "gce":
      return { csAttrib: 0x9b, ssAttrib: 0x93, trAttrib: 0x8b, rdx: 0x600n, mxcsr: 0, fcw: 0, gPat: 0x0007_0106n };
  }
}

/** The 4 KiB VMSA of a vCPU that starts at `eip` (the BSP at BSP_EIP, APs at the OVMF reset block's EIP). */
export function buildVmsaPage(eip: number, guestFeatures: bigint, vcpuSig: number, vmm: VmmType): Uint8Array {
  const page = new Uint8Array(VMSA_SIZE);
  const view = new DataView(page.buffer);
  const r = vmmRegisters(vmm, eip, vcpuSig);
  const segment = (at: number, selector: number, attrib: number, limit: number, base: number): void => {
    view.setUint16(at, selector, true);
    view.setUint16(at + 2, attrib, true);
    view.setUint32(at + 4, limit, true);
    view.setBigUint64(at + 8, BigInt(base), true);
  };
  const u64 = (at: number, value: bigint): void => view.setBigUint64(at, value, true);
  // Real mode at reset: CS base is the top of the reset EIP's 64 KiB segment, RIP the offset within it.
  segment(OFFSET.es, 0, 0x93, 0xffff, 0);
  segment(OFFSET.cs, 0xf000, r.csAttrib, 0xffff, (eip & 0xffff_0000) >>> 0);
  segment(OFFSET.ss, 0, r.ssAttrib, 0xffff, 0);
  segment(OFFSET.ds, 0, 0x93, 0xffff, 0);
  segment(OFFSET.fs, 0, 0x93, 0xffff, 0);
  segment(OFFSET.gs, 0, 0x93, 0xffff, 0);
  segment(OFFSET.gdtr, 0, 0, 0xffff, 0);
  segment(OFFSET.ldtr, 0, 0x82, 0xffff, 0);
  segment(OFFSET.idtr, 0, 0, 0xffff, 0);
  segment(OFFSET.tr, 0, r.trAttrib, 0xffff, 0);
  u64(OFFSET.efer, 0x1000n); // KVM sets EFER.SVME
  u64(OFFSET.cr4, 0x40n); // KVM sets CR4.MCE
  u64(OFFSET.cr0, 0x10n); // CR0.ET
  u64(OFFSET.dr7, 0x400n);
  u64(OFFSET.dr6, 0xffff0ff0n);
  u64(OFFSET.rflags, 0x2n);
  u64(OFFSET.rip, BigInt(eip & 0xffff));
  u64(OFFSET.gPat, r.gPat);
  u64(OFFSET.rdx, r.rdx);
  // SEV_FEATURES: bit 0 SNPActive and the features the guest kernel enables (ABI 56860 Table 9 "VMSA SEV_FEATURES").
  u64(OFFSET.sevFeatures, guestFeatures);
  u64(OFFSET.xcr0, 0x1n);
  view.setUint32(OFFSET.mxcsr, r.mxcsr, true);
  view.setUint16(OFFSET.x87Fcw, r.fcw, true);
  return page;
}
