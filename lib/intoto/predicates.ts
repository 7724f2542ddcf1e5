// The in-toto predicate types Provenant reads (DESIGN §3.2), as plain constants with no imports, so that browser-safe
// modules (lib/bundle/core.ts, the explorer page) can name them without loading lib/intoto's node:crypto code.
// lib/intoto/predicates.test.ts proves they equal lib/intoto/index.ts's.

export const PREDICATE_OMS = "https://model_signing/signature/v1.0";
export const PREDICATE_SLSA = "https://slsa.dev/provenance/v1";
export const PREDICATE_EVAL = "https://provenant.dev/eval/v1";
