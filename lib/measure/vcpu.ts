// vCPU signatures: the CPUID Fn0000_0001_EAX value (family, model, stepping; AMD CPUID Specification #25481) that
// QEMU puts in RDX at reset for each AMD CPU model it defines (target/i386/cpu.c builtin_x86_defs).

/** CPUID Fn0000_0001_EAX from family, model and stepping (extended family above 0xF, extended model). */
export function cpuSig(family: number, model: number, stepping: number): number {
  const familyLow = family > 0xf ? 0xf : family;
  const familyHigh = family > 0xf ? (family - 0xf) & 0xff : 0;
  return (
    ((familyHigh << 20) | (((model >> 4) & 0xf) << 16) | (familyLow << 8) | ((model & 0xf) << 4) | (stepping & 0xf)) >>>
    0
  );
}

const EPYC = cpuSig(23, 1, 2);
const ROME = cpuSig(23, 49, 0);
const MILAN = cpuSig(25, 1, 1);
const GENOA = cpuSig(25, 17, 0);
const TURIN = cpuSig(26, 0, 0);

/**
 * The names sev-snp-measure accepts (vcpu_types.py), then the later versions of the same QEMU models, which keep
 * their family, model and stepping (QEMU versions a model without changing its CPUID signature).
 */
export const CPU_SIGS: ReadonlyMap<string, number> = new Map([
  ["EPYC", EPYC],
  ["EPYC-v1", EPYC],
  ["EPYC-v2", EPYC],
  ["EPYC-IBPB", EPYC],
  ["EPYC-v3", EPYC],
  ["EPYC-v4", EPYC],
  ["EPYC-Rome", ROME],
  ["EPYC-Rome-v1", ROME],
  ["EPYC-Rome-v2", ROME],
  ["EPYC-Rome-v3", ROME],
  ["EPYC-Milan", MILAN],
  ["EPYC-Milan-v1", MILAN],
  ["EPYC-Milan-v2", MILAN],
  ["EPYC-Genoa", GENOA],
  ["EPYC-Genoa-v1", GENOA],
  ["EPYC-Turin", TURIN],
  // Later QEMU versions of the same models.
  ["EPYC-v5", EPYC],
  ["EPYC-Rome-v4", ROME],
  ["EPYC-Rome-v5", ROME],
  ["EPYC-Milan-v3", MILAN],
  ["EPYC-Genoa-v2", GENOA],
  ["EPYC-Turin-v1", TURIN],
]);

/** The signature of a QEMU CPU model name (matched without regard to case), or undefined. */
export function cpuSigOf(name: string): { name: string; sig: number } | undefined {
  for (const [known, sig] of CPU_SIGS) if (known.toLowerCase() === name.toLowerCase()) return { name: known, sig };
  return undefined;
}
