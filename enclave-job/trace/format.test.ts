import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { isProvenantError } from "../../lib/errors.ts";
import { buildFinetuneStatement, validateStatement } from "../../lib/intoto/index.ts";
import { finetuneInput } from "../../lib/intoto/testing.ts";
import { leafHash, MerkleTree, verifyInclusion } from "../../lib/merkle/index.ts";
import { readTraceCommitment, toTraceByproduct, type TraceCommitment } from "./commitment.ts";
import {
  batchDigest,
  checkpointLeaf,
  checkpointSteps,
  detectionProbability,
  encodeTrace,
  f32Bits,
  parseRunnerRecords,
  parseTrace,
  sampleStretches,
  stepLeaf,
  stretchesOf,
  traceLeaves,
  traceRoot,
  traceTree,
  type Trace,
} from "./format.ts";

const code = (c: string) => (e: unknown) => isProvenantError(e) && e.code === c;

function sampleTrace(steps = 5, every = 2): Trace {
  return {
    steps: Array.from({ length: steps }, (_, t) => ({
      step: t,
      batchDigest: batchDigest([1, 2, 3, t]),
      lossBits: f32Bits(6 - t / 10),
      lrBits: f32Bits(1e-3),
    })),
    checkpoints: checkpointSteps(steps, every).map((step) => ({
      step,
      digest: new Uint8Array(createHash("sha256").update(`ckpt ${step}`).digest()),
    })),
  };
}

describe("training trace formats", () => {
  it("when a step leaf is computed, it is SHA-256 of the domain, t (u64 BE), the batch digest and the f32 bits (BE)", () => {
    const record = { step: 258, batchDigest: batchDigest([1, -2, 300]), lossBits: f32Bits(2.5), lrBits: f32Bits(0.5) };
    // Laid out by hand: tokens as i32 LE; 2.5f = 0x40200000, 0.5f = 0x3f000000.
    const tokens = Buffer.from([1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x2c, 0x01, 0, 0]);
    const batch = createHash("sha256").update(tokens).digest();
    assert.deepEqual(Buffer.from(record.batchDigest), batch);
    const expected = createHash("sha256")
      .update("provenant/trace/v1")
      .update(Buffer.from([0, 0, 0, 0, 0, 0, 1, 2]))
      .update(batch)
      .update(Buffer.from([0x40, 0x20, 0, 0, 0x3f, 0, 0, 0]))
      .digest();
    assert.deepEqual(Buffer.from(stepLeaf(record)), expected);
    const ckpt = { step: 4, digest: new Uint8Array(32).fill(7) };
    const expectedCkpt = createHash("sha256")
      .update("provenant/trace/checkpoint/v1")
      .update(Buffer.from([0, 0, 0, 0, 0, 0, 0, 4]))
      .update(Buffer.alloc(32, 7))
      .digest();
    assert.deepEqual(Buffer.from(checkpointLeaf(ckpt)), expectedCkpt);
  });

  it("when a trace is built, steps come first and checkpoints after, as RFC 6962 leaves with inclusion proofs", () => {
    const trace = sampleTrace(5, 2);
    const leaves = traceLeaves(trace);
    assert.equal(leaves.length, 5 + 4);
    assert.deepEqual(leaves[5], checkpointLeaf(trace.checkpoints[0]!));
    const tree = traceTree(trace);
    assert.deepEqual(tree.root(), new MerkleTree(leaves.map((l) => leafHash(l))).root());
    verifyInclusion(leafHash(leaves[3]!), 3, 9, tree.inclusionProof(3), traceRoot(trace));
    assert.throws(
      () => verifyInclusion(leafHash(leaves[4]!), 3, 9, tree.inclusionProof(3), traceRoot(trace)),
      code("MERKLE_PROOF_INVALID"),
    );
  });

  it("when checkpoints are every k steps, the stretches cover every step once and the last may be shorter", () => {
    assert.deepEqual(checkpointSteps(10, 4), [0, 4, 8, 10]);
    assert.deepEqual(checkpointSteps(8, 4), [0, 4, 8]);
    assert.deepEqual(checkpointSteps(3, 8), [0, 3]);
    assert.deepEqual(
      stretchesOf(10, 4).map((s) => [s.index, s.from, s.to]),
      [
        [0, 0, 4],
        [1, 4, 8],
        [2, 8, 10],
      ],
    );
    assert.throws(() => checkpointSteps(0, 1), code("TRACE_INCLUSION"));
  });

  it("when a trace file is encoded and parsed, it round-trips; any other length or order is TRACE_INCLUSION", () => {
    const trace = sampleTrace(5, 2);
    const bytes = encodeTrace(trace);
    assert.equal(bytes.length, 20 + 5 * 48 + 4 * 40);
    assert.deepEqual(parseTrace(bytes), trace);
    assert.throws(() => parseTrace(bytes.subarray(0, bytes.length - 1)), code("TRACE_INCLUSION"));
    assert.throws(() => parseTrace(new Uint8Array([...bytes, 0])), code("TRACE_INCLUSION"));
    const badMagic = Buffer.from(bytes);
    badMagic[0] = 0x58;
    assert.throws(() => parseTrace(badMagic), code("TRACE_INCLUSION"));
    const renumbered = Buffer.from(bytes);
    renumbered[20 + 48 + 7] = 9; // step 1 claims to be step 9
    assert.throws(() => parseTrace(renumbered), code("TRACE_INCLUSION"));
    const hugeCount = Buffer.from(bytes);
    hugeCount.writeBigUInt64BE(1n << 40n, 8);
    assert.throws(() => parseTrace(hugeCount), code("TRACE_INCLUSION"));
    // The step bound is the auditor's memory (about 1 GiB of heap to parse and hash 2^20 steps): one more is refused
    // from the header, before anything is allocated.
    const overBound = Buffer.from(bytes);
    overBound.writeBigUInt64BE(BigInt(2 ** 20 + 1), 8);
    assert.throws(() => parseTrace(overBound), /1048577 is out of range/);
    assert.throws(() => stretchesOf(2 ** 20 + 1, 8), code("TRACE_INCLUSION"));
    assert.equal(stretchesOf(2 ** 20, 2 ** 19).length, 2);
    const unordered = sampleTrace(5, 2);
    [unordered.checkpoints[1], unordered.checkpoints[2]] = [unordered.checkpoints[2]!, unordered.checkpoints[1]!];
    assert.throws(() => parseTrace(encodeTrace(unordered)), code("TRACE_INCLUSION"));
    assert.throws(() => parseRunnerRecords(new Uint8Array(81)), code("TRACE_INCLUSION"));
  });

  it("when stretches are sampled, the choice is a deterministic function of the seed, distinct and in range", () => {
    const fuzzSeed = Number(process.env.PROVENANT_FUZZ_SEED ?? 16);
    console.log(`sampling property seed ${fuzzSeed}`);
    for (let round = 0; round < 200; round++) {
      const seed = createHash("sha256").update(`${fuzzSeed}/${round}`).digest();
      const n = 1 + (seed[0]! % 40);
      const m = seed[1]! % 45;
      const chosen = sampleStretches(seed, n, m);
      assert.deepEqual(chosen, sampleStretches(seed, n, m));
      assert.equal(chosen.length, Math.min(m, n));
      assert.equal(new Set(chosen).size, chosen.length);
      assert.ok(chosen.every((i) => Number.isInteger(i) && i >= 0 && i < n));
      assert.deepEqual(
        chosen,
        [...chosen].sort((a, b) => a - b),
      );
    }
    // Every stretch is chosen about equally often (one of 10, 4000 draws: 400 each; ±25 % is far beyond chance).
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 4000; i++) counts[sampleStretches(createHash("sha256").update(`u${i}`).digest(), 10, 1)[0]!]!++;
    assert.ok(
      counts.every((c) => c > 300 && c < 500),
      `counts ${counts.join(",")}`,
    );
  });

  it("when f of N stretches are faked and m sampled, the detection probability is 1 − C(N−f, m)/C(N, m)", () => {
    const choose = (n: number, k: number): number => {
      let r = 1;
      for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
      return r;
    };
    assert.ok(Math.abs(detectionProbability(10, 3, 1) - 0.3) < 1e-15);
    assert.equal(detectionProbability(10, 0, 1), 0);
    assert.equal(detectionProbability(10, 10, 1), 1);
    assert.equal(detectionProbability(10, 8, 3), 1);
    for (const [n, m, f] of [
      [20, 4, 2],
      [50, 10, 5],
      [7, 3, 3],
    ] as const) {
      assert.ok(Math.abs(detectionProbability(n, m, f) - (1 - choose(n - f, m) / choose(n, m))) < 1e-12);
    }
  });
});

describe("training-trace commitment", () => {
  const commitment: TraceCommitment = {
    root: "1".repeat(64),
    steps: 10,
    checkpointEvery: 4,
    checkpoints: 4,
    seed: 7,
    threads: 1,
    contextSize: 64,
    epochs: 2,
    optimizer: { name: "sgd", weightDecay: 0 },
    learningRateSchedule: { kind: "constant", initial: 0.001 },
    trainer: { name: "provenant-trace-train", digest: "2".repeat(64), llamaCpp: "ggml-org/llama.cpp@x" },
    dataDigest: "c".repeat(64),
  };

  it("when it goes into the SLSA byproducts, the statement validates and the commitment reads back unchanged", () => {
    const input = finetuneInput();
    const statement = buildFinetuneStatement({
      ...input,
      byproducts: [...input.byproducts, toTraceByproduct(commitment)],
    });
    const validated = validateStatement(JSON.parse(JSON.stringify(statement)));
    assert.deepEqual(readTraceCommitment(validated.statement), commitment);
  });

  it("when the manifest has no training-trace byproduct, it is TRACE_MISSING", () => {
    assert.throws(() => readTraceCommitment(buildFinetuneStatement(finetuneInput())), code("TRACE_MISSING"));
  });

  it("when the annotations are not what a replay needs, the validator or the reader refuses them", () => {
    const input = finetuneInput();
    const bad = toTraceByproduct(commitment);
    const statement = buildFinetuneStatement({
      ...input,
      byproducts: [{ ...bad, annotations: { ...bad.annotations, steps: -1, trainer: { name: "x" } } }],
    });
    assert.throws(() => validateStatement(JSON.parse(JSON.stringify(statement))), code("STATEMENT_INVALID"));
    const adamw = buildFinetuneStatement({
      ...input,
      byproducts: [{ ...bad, annotations: { ...bad.annotations, optimizer: { name: "adamw", weightDecay: 0 } } }],
    });
    assert.throws(() => readTraceCommitment(adamw), code("TRACE_MISSING"));
    const miscounted = buildFinetuneStatement({
      ...input,
      byproducts: [{ ...bad, annotations: { ...bad.annotations, checkpoints: 3 } }],
    });
    assert.throws(() => readTraceCommitment(miscounted), code("TRACE_MISSING"));
    const tooLong = buildFinetuneStatement({
      ...input,
      byproducts: [
        { ...bad, annotations: { ...bad.annotations, steps: 2 ** 20 + 1, checkpointEvery: 2 ** 20, checkpoints: 3 } },
      ],
    });
    assert.throws(() => readTraceCommitment(tooLong), code("TRACE_MISSING"));
  });
});
