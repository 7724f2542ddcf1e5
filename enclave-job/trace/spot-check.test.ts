import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";

import { Wallet } from "ethers";

import type { CliIo } from "../../lib/cli/index.ts";
import type { Statement } from "../../lib/intoto/index.ts";
import { verifyBundle, type VerifierPolicy } from "../../offchain/pipeline/index.ts";
import { deployRegistry, startDevChain } from "../../offchain/testing/chain.ts";
import { runFinetuneJob, type FinetuneTraceOptions } from "../finetune/job.ts";
import { traceTrainerBinary } from "../finetune/llama-build.ts";
import { writeTinyModel } from "../model/tiny.ts";
import { testProvider } from "../testing.ts";
import { commands } from "./cli.ts";
import type { TraceCommitment } from "./commitment.ts";
import { encodeTrace, f32Bits, parseTrace, traceRoot, type Trace } from "./format.ts";
import { runTracedTraining } from "./record.ts";
import { openTracedBundle, spotCheck, type SpotCheckResult } from "./spot-check.ts";
import { directorySource, traceFileName, urlSource, type TraceSource } from "./store.ts";
import { simPolicy, simPolicyJson, traceBuildSkip, trainingText } from "./testing.ts";

/** The simulator's clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-21T12:00:00Z");
const CONFIG = { contextSize: 256, threads: 1, epochs: 2, learningRate: 0.01 };

interface TracedRun {
  bundle: string;
  bytes: Uint8Array;
  traceDir: string;
  root: string;
  steps: number;
}

function captureIo(cwd: string): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTty: false, env: {}, cwd, out, err };
}

describe("training traces with the recording trainer (tiny model, real llama.cpp build)", () => {
  let skip: string | false = false;
  let dir = "";
  let model = "";
  let data = "";
  let binary = "";
  let policy: VerifierPolicy;
  let honest: TracedRun;

  const tracedJob = async (name: string, trace: FinetuneTraceOptions): Promise<TracedRun> => {
    const bundle = join(dir, `${name}.provenance.json`);
    const traceDir = join(dir, `${name}.trace`);
    const result = await runFinetuneJob({
      base: model,
      data,
      trainer: "llama",
      provider: testProvider(NOW),
      now: () => NOW,
      threads: CONFIG.threads,
      cwd: dir,
      output: join(dir, name),
      out: bundle,
      epochs: CONFIG.epochs,
      learningRate: CONFIG.learningRate,
      contextSize: CONFIG.contextSize,
      probes: ["Line 1: The"],
      trainerTimeoutMs: 300_000,
      trace: { ...trace, traceDir },
    });
    assert.ok(result.trace !== undefined);
    return { bundle, bytes: await readFile(bundle), traceDir, root: result.trace.root, steps: result.trace.steps };
  };

  const check = async (run: TracedRun, traceDir: string | TraceSource, samples = 1000, dataPath?: string) => {
    const opened = await openTracedBundle(run.bytes, policy, NOW);
    assert.ok(opened.ok, JSON.stringify(opened.ok ? "" : opened.errors));
    return spotCheck({
      bundle: opened.bundle,
      source: typeof traceDir === "string" ? directorySource(traceDir) : traceDir,
      samples,
      entropy: { source: "caller", seed: "5eed" },
      binary,
      maxFileBytes: 64 << 20,
      workDir: dir,
      replayTimeoutMs: 120_000,
      ...(dataPath === undefined ? {} : { dataPath }),
    });
  };

  const codesByStretch = (result: SpotCheckResult): Record<number, string[]> =>
    Object.fromEntries(result.stretches.map((s) => [s.index, [...new Set(s.errors.map((e) => e.code))]]));

  const ready = (t: TestContext): boolean => {
    if (skip === false) return true;
    t.skip(skip);
    return false;
  };

  before(async () => {
    skip = await traceBuildSkip();
    if (skip !== false) {
      console.log(`skipping the recording-trainer tests: ${skip}`);
      return;
    }
    binary = traceTrainerBinary();
    dir = await mkdtemp(join(tmpdir(), "provenant-trace-"));
    ({ model } = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 3 }));
    data = join(dir, "train.txt");
    await writeFile(data, trainingText(60));
    policy = await simPolicy(NOW);
    honest = await tracedJob("honest", { checkpointEvery: 4, seed: 7 });
  });

  after(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it("when an honest traced fine-tune is spot-checked on every stretch, each replays bit for bit", async (t) => {
    if (!ready(t)) return;
    assert.ok(honest.steps >= 16, `the data gives ${honest.steps} steps`);
    const verdict = verifyBundle(honest.bytes, { policy, now: NOW });
    assert.deepEqual(verdict.errors, []);
    const result = await check(honest, honest.traceDir);
    assert.deepEqual(result.errors, []);
    assert.equal(result.ok, true);
    assert.equal(result.stretchCount, Math.ceil(honest.steps / 4));
    assert.equal(result.samples, result.stretchCount);
    assert.ok(result.stretches.every((s) => s.ok && s.inclusion && s.data === true && s.replay === true));
    assert.equal(result.detectionProbability.probability, 1);
    assert.equal(result.trainer.same, true);
    // The store holds the trace, one file per checkpoint (the base and the output among them) and the data.
    const names = await readdir(honest.traceDir);
    assert.equal(names.filter((n) => n.endsWith(".gguf")).length, result.stretchCount + 1);
    assert.ok(names.includes(traceFileName(honest.root)));
  });

  it("when the trace store is an http(s) base URL, the spot-check reads it there", async (t) => {
    if (!ready(t)) return;
    const server = createServer((req, res) => {
      const name = (req.url ?? "").replace(/^\/store\//, "");
      if (!/^[0-9a-f]{64}\.(trace|gguf|data)$/.test(name)) return void res.writeHead(404).end();
      createReadStream(join(honest.traceDir, name))
        .on("error", () => res.writeHead(404).end())
        .pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/store`;
      const result = await check(honest, urlSource(base, { timeoutMs: 30_000 }), 2);
      assert.deepEqual(result.errors, []);
      assert.equal(result.stretches.length, 2);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("when the same data is trained twice with the same seed and threads, the trace root is the same", async (t) => {
    if (!ready(t)) return;
    const config = { ...CONFIG, seed: 7, schedule: "constant" as const, weightDecay: 0, checkpointEvery: 4 };
    const again = await runTracedTraining({
      base: model,
      data,
      outputModel: join(dir, "again.gguf"),
      traceDir: join(dir, "again.trace"),
      config,
      binary,
      timeoutMs: 300_000,
    });
    assert.equal(again.commitment.root, honest.root);
    const otherSeed = await runTracedTraining({
      base: model,
      data,
      outputModel: join(dir, "seed8.gguf"),
      traceDir: join(dir, "seed8.trace"),
      config: { ...config, seed: 8 },
      binary,
      timeoutMs: 300_000,
    });
    assert.notEqual(otherSeed.commitment.root, honest.root);
  });

  it("when a trainer skips a step, trains on another shard, changes a learning rate or replaces a checkpoint, the sampled stretch catches it", async (t) => {
    if (!ready(t)) return;
    // k = 2: stretch i is steps [2i, 2i + 2). Faults in stretches 1, 2, 4 and the checkpoint between 6 and 7.
    const faulty = await tracedJob("faulty", {
      checkpointEvery: 2,
      seed: 7,
      faults: ["skip:3", "data:4:1", "lr:9:0.05", "checkpoint:14"],
    });
    assert.deepEqual(verifyBundle(faulty.bytes, { policy, now: NOW }).errors, []);
    const result = await check(faulty, faulty.traceDir);
    assert.equal(result.ok, false);
    const codes = codesByStretch(result);
    assert.deepEqual(codes[0], []);
    assert.deepEqual(codes[1], ["TRACE_REPLAY_MISMATCH"]); // one skipped step
    // A different data shard (and, trained on it, a different state after the stretch).
    assert.deepEqual(codes[2], ["TRACE_DATA_MISMATCH", "TRACE_REPLAY_MISMATCH"]);
    assert.deepEqual(codes[3], []);
    assert.deepEqual(codes[4], ["TRACE_REPLAY_MISMATCH"]); // a changed learning rate
    assert.deepEqual(codes[5], []);
    assert.deepEqual(codes[6], ["TRACE_REPLAY_MISMATCH"]); // a replaced checkpoint: the stretch ending at it…
    assert.deepEqual(codes[7], ["TRACE_REPLAY_MISMATCH"]); // …and the one starting from it
    for (let i = 8; i < result.stretchCount; i++) assert.deepEqual(codes[i], [], `stretch ${i}`);
    // Sampling one stretch: caught exactly when the sample is a faked one.
    const one = await check(faulty, faulty.traceDir, 1);
    const sampled = one.stretches[0]!;
    assert.equal(sampled.ok, [0, 3, 5].includes(sampled.index) || sampled.index >= 8);
    assert.equal(one.detectionProbability.probability, 1 / one.stretchCount);
  });

  it("when the trace store's files are not the committed ones, it is TRACE_INCLUSION; when absent, TRACE_MISSING", async (t) => {
    if (!ready(t)) return;
    // A leaf list that does not match the committed root: one loss changed in the trace file.
    const edited = join(dir, "edited.trace");
    await cp(honest.traceDir, edited, { recursive: true });
    const tracePath = join(edited, traceFileName(honest.root));
    const trace = parseTrace(new Uint8Array(await readFile(tracePath)));
    trace.steps[5]!.lossBits ^= 1;
    await writeFile(tracePath, encodeTrace(trace));
    const leafResult = await check(honest, edited, 2);
    assert.equal(leafResult.ok, false);
    assert.ok(leafResult.checks.some((c) => c.code === "TRACE_INCLUSION" && c.name.includes("committed root")));
    assert.ok(leafResult.stretches.every((s) => !s.inclusion && s.errors[0]?.code === "TRACE_INCLUSION"));

    // A checkpoint file swapped for another in the store.
    const swapped = join(dir, "swapped.trace");
    await cp(honest.traceDir, swapped, { recursive: true });
    const ggufs = (await readdir(swapped)).filter((n) => n.endsWith(".gguf")).sort();
    const original = parseTrace(new Uint8Array(await readFile(join(swapped, traceFileName(honest.root)))));
    const second = Buffer.from(original.checkpoints[1]!.digest).toString("hex");
    const other = ggufs.find((n) => !n.startsWith(second))!;
    await cp(join(swapped, other), join(swapped, `${second}.gguf`));
    const swapResult = await check(honest, swapped);
    assert.deepEqual(codesByStretch(swapResult)[1], ["TRACE_INCLUSION"]);
    assert.deepEqual(codesByStretch(swapResult)[0], []);

    const empty = await mkdtemp(join(dir, "empty-"));
    const missing = await check(honest, empty, 1);
    assert.ok(missing.errors.some((e) => e.code === "TRACE_MISSING"));

    // Replaying on other data than the manifest's dataset.
    const otherData = join(dir, "other.txt");
    await writeFile(otherData, trainingText(61));
    const wrongData = await check(honest, honest.traceDir, 1, otherData);
    assert.deepEqual(codesByStretch(wrongData)[wrongData.stretches[0]!.index], ["TRACE_DATA_MISMATCH"]);
  });

  it("when a fine-tune was not traced, the spot-check says TRACE_MISSING", async (t) => {
    if (!ready(t)) return;
    const bundle = join(dir, "plain.provenance.json");
    await runFinetuneJob({
      base: model,
      data,
      trainer: "llama",
      epochs: 1,
      contextSize: 256,
      provider: testProvider(NOW),
      now: () => NOW,
      threads: 1,
      cwd: dir,
      output: join(dir, "plain"),
      out: bundle,
      trainerTimeoutMs: 300_000,
      probes: ["Line"],
    });
    const opened = await openTracedBundle(await readFile(bundle), policy, NOW);
    assert.equal(opened.ok, false);
    assert.deepEqual(opened.ok ? [] : opened.errors.map((e) => e.code), ["TRACE_MISSING"]);
  });

  it("when the manifest is recorded on a chain, the command draws its stretches from the recording block", async (t) => {
    if (!ready(t)) return;
    const chain = await startDevChain();
    try {
      const registry = await deployRegistry(chain.url);
      const verdict = verifyBundle(honest.bytes, { policy, now: NOW });
      assert.ok(verdict.record !== undefined);
      const publisher = new Wallet(registry.publisherKey, registry.provider);
      const tx = await (registry.contract.connect(publisher) as typeof registry.contract).getFunction("publish")([
        verdict.record,
      ]);
      const receipt = await tx.wait();
      registry.provider.destroy();
      const policyFile = join(dir, "policy.json");
      await writeFile(policyFile, JSON.stringify(await simPolicyJson(NOW)));
      const io = captureIo(dir);
      const spot = commands.find((c) => c.path.join(" ") === "audit spot-check")!;
      const argv = [honest.bundle, "--trace-dir", honest.traceDir, "--samples", "2", "--policy", policyFile];
      const common = ["--now", NOW.toISOString(), "--trainer", binary, "--json"];
      const code = await spot.run([...argv, "--rpc", chain.url, "--registry", registry.address, ...common], io);
      const out = JSON.parse(io.out.join("")) as SpotCheckResult & { errors: unknown[] };
      assert.equal(code, 0, JSON.stringify(out.errors));
      assert.equal(out.randomness.source, "chain");
      assert.equal(out.randomness.source === "chain" && out.randomness.blockHash, receipt?.blockHash);
      assert.equal(out.samples, 2);
      assert.ok(Math.abs(out.detectionProbability.probability - 2 / out.stretchCount) < 1e-12);

      // Without a chain, a caller seed, said so; the same seed gives the same stretches.
      const runSeeded = async (): Promise<SpotCheckResult> => {
        const seeded = captureIo(dir);
        assert.equal(await spot.run([...argv, "--seed", "00ff", ...common], seeded), 0);
        return JSON.parse(seeded.out.join("")) as SpotCheckResult;
      };
      const [a, b] = [await runSeeded(), await runSeeded()];
      assert.equal(a.randomness.source, "caller");
      assert.match(a.randomness.note, /caller/);
      assert.deepEqual(
        a.stretches.map((s) => s.index),
        b.stretches.map((s) => s.index),
      );
      const usage = captureIo(dir);
      assert.equal(await spot.run([...argv, "--rpc", chain.url, "--json"], usage), 2);
    } finally {
      await chain.close();
    }
  });
});

describe("spot-check of a trace store, before any replay (no trainer needed)", () => {
  let dir = "";
  let store = "";
  let binary = "";
  let commitment: TraceCommitment;
  let checkpoints: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-spot-store-"));
    store = join(dir, "store");
    await mkdir(store);
    // 8 steps, a checkpoint every 2: checkpoints at 0, 2, 4, 6, 8 and 4 stretches. The records are made up: nothing
    // here replays, so only their commitment matters.
    const digest = (label: string) => new Uint8Array(createHash("sha256").update(label).digest());
    const trace: Trace = {
      steps: Array.from({ length: 8 }, (_, t) => ({
        step: t,
        batchDigest: digest(`batch ${t}`),
        lossBits: f32Bits(2 - t / 10),
        lrBits: f32Bits(0.01),
      })),
      checkpoints: [0, 2, 4, 6, 8].map((step) => ({ step, digest: digest(`checkpoint ${step}`) })),
    };
    checkpoints = trace.checkpoints.map((c) => Buffer.from(c.digest).toString("hex"));
    const root = Buffer.from(traceRoot(trace)).toString("hex");
    await writeFile(join(store, traceFileName(root)), encodeTrace(trace));
    binary = join(dir, "trainer");
    await writeFile(binary, "not run: every stretch stops before its replay");
    commitment = {
      root,
      steps: 8,
      checkpointEvery: 2,
      checkpoints: 5,
      seed: 0,
      threads: 1,
      contextSize: 256,
      epochs: 1,
      optimizer: { name: "sgd", weightDecay: 0 },
      learningRateSchedule: { kind: "constant", initial: 0.01 },
      trainer: {
        name: "provenant-trace-train",
        digest: createHash("sha256").update("other").digest("hex"),
        llamaCpp: "",
      },
      dataDigest: createHash("sha256").update("the data").digest("hex"),
    };
  });

  after(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  const run = (dataset: string, seed = "5eed") =>
    spotCheck({
      bundle: {
        manifestDigest: "0".repeat(64),
        statement: {} as Statement,
        commitment,
        baseModel: checkpoints[0]!,
        outputModel: checkpoints[4]!,
        dataset,
      },
      source: directorySource(store),
      samples: 2,
      entropy: { source: "caller", seed },
      binary,
      maxFileBytes: 1 << 20,
      workDir: dir,
    });

  it("when the trace commits to other data than the manifest's dataset, every sampled stretch is TRACE_DATA_MISMATCH", async () => {
    const result = await run(createHash("sha256").update("another dataset").digest("hex"));
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.checks.filter((c) => !c.ok).map((c) => c.code),
      ["TRACE_DATA_MISMATCH"],
    );
    assert.equal(result.stretches.length, 2);
    for (const s of result.stretches) {
      assert.equal(s.inclusion, true);
      assert.deepEqual(
        s.errors.map((e) => e.code),
        ["TRACE_DATA_MISMATCH"],
      );
    }
    assert.equal(result.detectionProbability.probability, 2 / 4);
    assert.equal(result.trainer.same, false);
  });

  it("when the store lacks a sampled stretch's checkpoint, the stretch is TRACE_MISSING; the same seed draws the same stretches", async () => {
    const a = await run(commitment.dataDigest);
    const b = await run(commitment.dataDigest);
    assert.deepEqual(
      a.checks.filter((c) => !c.ok),
      [],
    );
    assert.deepEqual(
      a.stretches.map((s) => [s.inclusion, s.errors.map((e) => e.code)]),
      [
        [true, ["TRACE_MISSING"]],
        [true, ["TRACE_MISSING"]],
      ],
    );
    assert.deepEqual(
      a.stretches.map((s) => s.index),
      b.stretches.map((s) => s.index),
    );
    const indices = new Set<string>();
    for (const seed of ["01", "02", "03", "04", "05", "06", "07", "08"])
      indices.add((await run(commitment.dataDigest, seed)).stretches.map((s) => s.index).join(","));
    assert.ok(indices.size > 1, "other seeds draw other stretches");
  });
});
