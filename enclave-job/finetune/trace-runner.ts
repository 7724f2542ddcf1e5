// Running the recording trainer (native/trace-train.cpp, built by llama-build.ts): a whole traced fine-tune, an
// untraced one (the benchmark's baseline), or the replay of one stretch from a checkpoint. It reads the runner's
// JSON progress lines and its raw step records; the caller decides what the records are worth.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

import { IoError } from "../../lib/errors.ts";
import { parseRunnerRecords, type StepRecord } from "../trace/format.ts";

/** Everything that determines the training arithmetic; recorded in the training-trace annotations. */
export interface TraceTrainConfig {
  contextSize: number;
  threads: number;
  seed: number;
  epochs: number;
  /** Initial learning rate; with schedule "linear", it falls to learningRateFinal at the last step. */
  learningRate: number;
  schedule: "constant" | "linear";
  learningRateFinal?: number;
  weightDecay: number;
  checkpointEvery: number;
}

export interface TraceRunOptions {
  binary: string;
  model: string;
  data: string;
  /** Where the model after the last step is saved. */
  out: string;
  config: TraceTrainConfig;
  /** Raw step records (80 bytes each); required unless `trace` is false. */
  records?: string;
  /** Where ckpt-<step>.gguf files go (training only). */
  checkpointDir?: string;
  /** Replay steps [from, to) starting from `model` as the state after `from` steps. */
  from?: number;
  to?: number;
  /** false: train without hashing or checkpoints (the benchmark's baseline). Default true. */
  trace?: boolean;
  /** Dishonest-trainer models for tests: skip:<t>, lr:<t>:<x>, data:<t>:<i>, checkpoint:<step>. */
  faults?: string[];
  timeoutMs?: number;
  onStep?: (step: number, loss: number) => void;
}

export interface TraceRunResult {
  /** Datapoints per epoch and total steps of the whole run, as the runner computed them from the data. */
  ndata: number;
  totalSteps: number;
  stride: number;
  tokens: number;
  records: StepRecord[];
  /** The leaves the runner computed (80-byte records' tails), to cross-check this side's computation. */
  runnerLeaves: Uint8Array[];
  /** Microseconds of each step's training (forward, backward, optimizer; not the checkpoint saves). */
  stepMicros: number[];
  /** Microseconds of the whole training loop, checkpoint saves included. */
  trainMicros: number;
  /** CPU microseconds of each step, and of the whole process (start, load, training, saves) at its end. */
  stepCpuMicros: number[];
  cpuMicros: number;
  /** CPU microseconds the runner spent recording (leaves, records, checkpoint saves). */
  traceCpuMicros: number;
  losses: number[];
  log: string;
  wallMs: number;
}

export function runnerArgs(options: TraceRunOptions): string[] {
  const c = options.config;
  const args = [
    "--model",
    options.model,
    "--data",
    options.data,
    "--out",
    options.out,
    "--ctx",
    String(c.contextSize),
    "--threads",
    String(c.threads),
    "--seed",
    String(c.seed),
    "--epochs",
    String(c.epochs),
    "--lr",
    String(c.learningRate),
    "--schedule",
    c.schedule,
    "--weight-decay",
    String(c.weightDecay),
  ];
  if (c.schedule === "linear") args.push("--lr-min", String(c.learningRateFinal ?? 0));
  if (options.trace === false) args.push("--no-trace");
  else {
    if (options.records === undefined) throw new IoError("JOB_TRAINER_FAILED", "a traced run needs a records path");
    args.push("--records", options.records);
  }
  if (options.checkpointDir !== undefined && options.trace !== false)
    args.push("--checkpoint-every", String(c.checkpointEvery), "--checkpoint-dir", options.checkpointDir);
  if (options.from !== undefined) args.push("--from", String(options.from));
  if (options.to !== undefined) args.push("--to", String(options.to));
  for (const fault of options.faults ?? []) args.push("--fault", fault);
  return args;
}

interface RunnerEvent {
  event?: string;
  t?: number;
  loss?: number;
  us?: number;
  cpuUs?: number;
  traceCpuUs?: number;
  ndata?: number;
  steps?: number;
  stride?: number;
  tokens?: number;
  trainUs?: number;
}

/** Runs the recording trainer; a non-zero exit or a missing summary is JOB_TRAINER_FAILED with the log attached. */
export async function runTraceTrainer(options: TraceRunOptions): Promise<TraceRunResult> {
  const started = performance.now();
  const args = runnerArgs(options);
  const result: TraceRunResult = {
    ndata: 0,
    totalSteps: 0,
    stride: 0,
    tokens: 0,
    records: [],
    runnerLeaves: [],
    stepMicros: [],
    trainMicros: 0,
    stepCpuMicros: [],
    cpuMicros: 0,
    traceCpuMicros: 0,
    losses: [],
    log: "",
    wallMs: 0,
  };
  let done = false;
  const logChunks: string[] = [];
  let logSize = 0;
  const keep = (text: string): void => {
    // At most 4 MiB of log, as for any trainer (trainer.ts).
    if (logSize < 4 << 20) logChunks.push(text);
    logSize += text.length;
  };
  const onEvent = (line: string): void => {
    keep(`${line}\n`);
    let event: RunnerEvent;
    try {
      event = JSON.parse(line) as RunnerEvent;
    } catch {
      return;
    }
    if (event.event === "start") {
      result.ndata = event.ndata ?? 0;
      result.totalSteps = event.steps ?? 0;
      result.stride = event.stride ?? 0;
      result.tokens = event.tokens ?? 0;
    } else if (event.event === "step" && typeof event.t === "number") {
      result.stepMicros.push(event.us ?? 0);
      result.stepCpuMicros.push(event.cpuUs ?? 0);
      result.losses.push(event.loss ?? NaN);
      options.onStep?.(event.t, event.loss ?? NaN);
    } else if (event.event === "done") {
      result.trainMicros = event.trainUs ?? 0;
      result.cpuMicros = event.cpuUs ?? 0;
      result.traceCpuMicros = event.traceCpuUs ?? 0;
      done = true;
    }
  };
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(options.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        onEvent(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf("\n");
      }
      // A line is at most a few hundred bytes; anything longer is not the runner's.
      if (pending.length > 1 << 16) pending = "";
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => keep(chunk));
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new IoError("JOB_TRAINER_FAILED", `cannot start ${options.binary}: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
  result.log = logChunks.join("");
  result.wallMs = performance.now() - started;
  if (exitCode !== 0 || !done) {
    throw new IoError("JOB_TRAINER_FAILED", `the recording trainer exited with ${exitCode}: ${lastLines(result.log)}`, {
      details: { exitCode },
    });
  }
  if (options.trace !== false && options.records !== undefined) {
    const parsed = parseRunnerRecords(new Uint8Array(await readFile(options.records)));
    result.records = parsed.records;
    result.runnerLeaves = parsed.leaves;
  }
  return result;
}

function lastLines(log: string): string {
  return log.trim().split("\n").slice(-3).join(" | ").slice(0, 500);
}
