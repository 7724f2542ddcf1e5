// A traced fine-tune: runs the recording trainer, checks its leaves against this side's computation, hashes every
// checkpoint the OMS way, and writes the content-addressed trace directory (trace file, checkpoints, data) from
// which the commitment (the training-trace byproduct) is made. Checkpoint 0 is the base model file itself and the
// last checkpoint is the output model, so the trace is anchored to both models the manifest names.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { IoError } from "../../lib/errors.ts";
import { hashModel } from "../../lib/oms/hash.ts";
import { sha256File } from "../../lib/oms/range.ts";
import { ensureTraceTrainerBuild } from "../finetune/llama-build.ts";
import { runTraceTrainer, type TraceRunResult, type TraceTrainConfig } from "../finetune/trace-runner.ts";
import type { TraceCommitment } from "./commitment.ts";
import {
  checkpointSteps,
  encodeTrace,
  sameBytes,
  stepLeaf,
  toHex,
  traceRoot,
  type CheckpointRecord,
  type Trace,
} from "./format.ts";
import { checkpointFileName, dataFileName, storeFile, traceFileName } from "./store.ts";

export const TRACE_TRAINER_NAME = "provenant-trace-train";

export interface TracedTrainingOptions {
  base: string;
  data: string;
  /** Where the trained model is written (the output model file). */
  outputModel: string;
  traceDir: string;
  config: TraceTrainConfig;
  /** The trainer binary; built (or found in the cache) when omitted. */
  binary?: string;
  faults?: string[];
  timeoutMs?: number;
  onStep?: (step: number, loss: number) => void;
  log?: (line: string) => void;
}

export interface TracedTrainingResult {
  commitment: TraceCommitment;
  trace: Trace;
  tracePath: string;
  run: TraceRunResult;
  checkpoints: { step: number; digest: string; path: string }[];
}

/** The llama.cpp release node-llama-cpp ships (its llama.cpp.info.json tag), recorded beside the binary digest. */
export async function llamaCppRelease(): Promise<string> {
  const info = fileURLToPath(new URL("../../node_modules/node-llama-cpp/llama/llama.cpp.info.json", import.meta.url));
  try {
    const json = JSON.parse(await readFile(info, "utf8")) as { tag?: unknown; llamaCppGithubRepo?: unknown };
    return `${String(json.llamaCppGithubRepo ?? "llama.cpp")}@${String(json.tag ?? "unknown")}`;
  } catch {
    return "unknown";
  }
}

/** OMS v1.0 root digest of a one-file model: SHA-256 over the file's SHA-256 (lib/oms, DESIGN §3.1). */
export async function checkpointDigest(path: string): Promise<string> {
  return (await hashModel(path, { threads: 1 })).rootDigest;
}

export async function runTracedTraining(options: TracedTrainingOptions): Promise<TracedTrainingResult> {
  const binary =
    options.binary ?? (await ensureTraceTrainerBuild(options.log === undefined ? {} : { log: options.log }));
  await mkdir(options.traceDir, { recursive: true });
  const work = await mkdtemp(join(options.traceDir, ".work-"));
  try {
    const records = join(work, "records.bin");
    const checkpointDir = join(work, "checkpoints");
    await mkdir(checkpointDir);
    const run = await runTraceTrainer({
      binary,
      model: options.base,
      data: options.data,
      out: options.outputModel,
      records,
      checkpointDir,
      config: options.config,
      ...(options.faults === undefined ? {} : { faults: options.faults }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.onStep === undefined ? {} : { onStep: options.onStep }),
    });
    const steps = run.totalSteps;
    if (run.records.length !== steps)
      throw new IoError("JOB_TRAINER_FAILED", `the trainer recorded ${run.records.length} of ${steps} steps`);
    // Two implementations of the leaf (C++ in the runner, TypeScript here) must agree byte for byte.
    run.records.forEach((record, i) => {
      if (record.step !== i || !sameBytes(stepLeaf(record), run.runnerLeaves[i]!))
        throw new IoError("JOB_TRAINER_FAILED", `step ${i}: the runner's leaf differs from the recomputed one`);
    });

    const marks = checkpointSteps(steps, options.config.checkpointEvery);
    const checkpoints: { step: number; digest: string; path: string }[] = [];
    for (const step of marks) {
      const source =
        step === 0 ? options.base : step === steps ? options.outputModel : join(checkpointDir, `ckpt-${step}.gguf`);
      const digest = await checkpointDigest(source).catch((error: unknown) => {
        throw new IoError("JOB_TRAINER_FAILED", `checkpoint at step ${step} is missing (${source})`, { cause: error });
      });
      const stored = await storeFile(
        options.traceDir,
        checkpointFileName(digest),
        source,
        step !== 0 && step !== steps,
      );
      checkpoints.push({ step, digest, path: stored });
    }
    const dataDigest = await sha256File(options.data);
    await storeFile(options.traceDir, dataFileName(dataDigest), options.data);

    const trace: Trace = {
      steps: run.records,
      checkpoints: checkpoints.map((c): CheckpointRecord => ({
        step: c.step,
        digest: new Uint8Array(Buffer.from(c.digest, "hex")),
      })),
    };
    const root = toHex(traceRoot(trace));
    const tracePath = join(options.traceDir, traceFileName(root));
    await writeFile(tracePath, encodeTrace(trace));

    const c = options.config;
    const commitment: TraceCommitment = {
      root,
      steps,
      checkpointEvery: c.checkpointEvery,
      checkpoints: marks.length,
      seed: c.seed,
      threads: c.threads,
      contextSize: c.contextSize,
      epochs: c.epochs,
      optimizer: { name: "sgd", weightDecay: c.weightDecay },
      learningRateSchedule:
        c.schedule === "linear"
          ? { kind: "linear", initial: c.learningRate, final: c.learningRateFinal ?? 0 }
          : { kind: "constant", initial: c.learningRate },
      trainer: { name: TRACE_TRAINER_NAME, digest: await sha256File(binary), llamaCpp: await llamaCppRelease() },
      dataDigest,
    };
    return { commitment, trace, tracePath, run, checkpoints };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The replay configuration a commitment describes. */
export function configOf(c: TraceCommitment): TraceTrainConfig {
  return {
    contextSize: c.contextSize,
    threads: c.threads,
    seed: c.seed,
    epochs: c.epochs,
    learningRate: c.learningRateSchedule.initial,
    schedule: c.learningRateSchedule.kind,
    ...(c.learningRateSchedule.kind === "linear" ? { learningRateFinal: c.learningRateSchedule.final } : {}),
    weightDecay: c.optimizer.weightDecay,
    checkpointEvery: c.checkpointEvery,
  };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
