// The reliability suite in its short form, part of `npm test`: bounded fuzzing of every untrusted-input parser and a
// small kill -9 soak of the verifier. `npm run test:reliability` runs the long form and writes
// bench/results/reliability.json.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { checkSeeds, fuzzSeed, runFuzz } from "./reliability/fuzz.ts";
import { runSoak } from "./reliability/soak.ts";
import { createFuzzTargets } from "./reliability/targets.ts";

describe("reliability (short form)", { timeout: 240_000 }, () => {
  it("when every parser is fed mutated and random input, every outcome is a result or a coded error", async () => {
    const { targets } = await createFuzzTargets();
    assert.deepEqual(checkSeeds(targets), [], "every seed is accepted before it is mutated");
    const seed = fuzzSeed("reliability fuzz");
    const result = runFuzz(targets, { totalInputs: 12_000, maxSeconds: 25, seed });
    assert.deepEqual(result.findings, [], `fuzz seed ${seed}`);
    assert.ok(result.inputs >= 2_000, `only ${result.inputs} inputs ran`);
    for (const [name, stats] of Object.entries(result.byTarget)) {
      assert.ok(stats.refused > 0, `${name}: some mutations must be refused`);
    }
    assert.ok(result.heapGrowthMB < 256, `heap grew ${result.heapGrowthMB.toFixed(0)} MB`);
  });

  it("when the verifier is killed at random while it works through valid and invalid bundles, nothing is lost or doubled", async () => {
    const result = await runSoak({
      seed: fuzzSeed("reliability soak"),
      bundles: 36,
      invalidShare: 0.35,
      killWithinMs: 1_500,
      killForMs: 12_000,
      finishWithinMs: 60_000,
    });
    assert.deepEqual(result.problems, []);
    assert.equal(result.bundlesLost, 0);
    assert.equal(result.duplicates, 0);
    assert.equal(result.invalidRefused, result.invalid);
    assert.ok(result.restarts >= 1, `restarted ${result.restarts} times`);
  });
});
