// The AMD EPYC product line of an SEV-SNP report, from its CPUID family and model (report v3+). Browser-safe: the
// verifier (lib/snp/parse.ts) and the explorer page name a chip with this one function.

export type Product = "Milan" | "Genoa" | "Turin";
export const PRODUCTS: readonly Product[] = ["Milan", "Genoa", "Turin"];

/**
 * The product line from CPUID_FAM_ID / CPUID_MOD_ID (extended family and model, as CPUID Fn0000_0001 reports them).
 * Family 19h: models 00h-0Fh Milan, 10h-1Fh and A0h-AFh Genoa (Genoa, Bergamo, Siena); family 1Ah: Turin.
 */
export function productFromCpuid(family: number, model: number): Product | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return "Milan";
    if (model <= 0x1f || (model >= 0xa0 && model <= 0xaf)) return "Genoa";
    return undefined;
  }
  if (family === 0x1a && (model <= 0x1f || (model >= 0x90 && model <= 0xaf))) return "Turin";
  return undefined;
}
