import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { fuzzSeed } from "../../test/reliability/fuzz.ts";
import { ProvenantError } from "../errors.ts";
import { createGpuVerifier, parseGpuEvidence, toEvidenceBytes } from "./index.ts";

const fixtures = new URL("../../test/fixtures/gpu/", import.meta.url);
const report = toEvidenceBytes(readFileSync(new URL("hopperAttestationReport.txt", fixtures)));
const chainPem = readFileSync(new URL("hopperCertChain.txt", fixtures), "latin1");
const NOW = new Date("2026-11-27T00:00:00Z");
/** A fixed number of inputs (not a time budget): the same seed replays the same run on any machine. */
const CASES = 2000;

const seed = fuzzSeed("lib/gpu fuzz");

/** xorshift32: deterministic, so a failure can be replayed with PROVENANT_FUZZ_SEED. */
function rng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Flips bits, overwrites bytes, truncates, or inserts/removes bytes (so the lengths stop adding up). */
function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const kind = next() % 5;
  if (kind === 3) return bytes.slice(0, next() % (bytes.length + 1));
  if (kind === 4) {
    const at = next() % bytes.length;
    const out = [...bytes];
    if (next() % 2 === 0) out.splice(at, 1 + (next() % 8));
    else out.splice(at, 0, ...Array.from({ length: 1 + (next() % 8) }, () => next() & 0xff));
    return Uint8Array.from(out);
  }
  const out = bytes.slice();
  // Aim at the headers and length fields most of the time: that is where parsers go wrong.
  const hot = [0, 1, 2, 3, 36, 37, 38, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 3597, 3598, 3599, 3600, 3601];
  for (let i = 0, n = 1 + (next() % 4); i < n; i++) {
    const at = next() % 3 === 0 ? hot[next() % hot.length]! : next() % out.length;
    out[at] = kind === 0 ? out[at]! ^ (1 << (next() % 8)) : next() & 0xff;
  }
  return out;
}

describe("fuzzing the GPU evidence parser and verifier", () => {
  it("when the real report is mutated, parse and verify only ever throw coded errors and never accept a change", () => {
    const next = rng(seed);
    const verifier = createGpuVerifier();
    const outcomes = new Map<string, number>();
    let cases = 0;
    while (cases < CASES) {
      cases++;
      const bytes = mutate(report, next);
      const same = bytes.length === report.length && Buffer.compare(Buffer.from(bytes), Buffer.from(report)) === 0;
      const attempt = (fn: () => unknown): string => {
        try {
          fn();
          return "OK";
        } catch (error) {
          if (!(error instanceof ProvenantError)) assert.fail(`seed ${seed}: uncoded ${String(error)}`);
          return error.code;
        }
      };
      attempt(() => parseGpuEvidence(bytes));
      const verified = attempt(() =>
        verifier.verify({ evidence: bytes, certChainPem: chainPem }, { expectedNonce: null, now: NOW }),
      );
      outcomes.set(verified, (outcomes.get(verified) ?? 0) + 1);
      // Parsing may accept a changed block value; verification never may accept any change.
      if (verified === "OK") assert.ok(same, `seed ${seed}: a mutated report verified`);
    }
    console.log(`${cases} cases`, Object.fromEntries(outcomes));
    assert.equal(cases, CASES);
    assert.ok((outcomes.get("GPU_MALFORMED") ?? 0) > 0);
    assert.ok((outcomes.get("GPU_BAD_SIGNATURE") ?? 0) > 0);
  });

  it("when random bytes and hex text come in, they are GPU_MALFORMED, never a crash", () => {
    const next = rng(seed ^ 0x5a5a5a5a);
    for (let i = 0; i < 300; i++) {
      const length = next() % 200;
      const bytes = Uint8Array.from({ length }, () => next() & 0xff);
      if (i % 3 === 0 && length > 0) bytes[0] = 0x11;
      try {
        parseGpuEvidence(toEvidenceBytes(i % 5 === 0 ? Buffer.from(bytes).toString("hex") : bytes));
        assert.fail("random bytes parsed");
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        assert.ok(error instanceof ProvenantError && error.code === "GPU_MALFORMED", String(error));
      }
    }
  });
});
