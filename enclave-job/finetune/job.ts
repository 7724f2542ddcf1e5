// `provenant job finetune`: attest, hash the base model, data and job code, probe the base, run the trainer,
// hash the output, probe it again (the model must load and answer), and sign SLSA provenance for it.
import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, readdir, stat, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";

import { readGgufFileInfo, type LlamaContextSequence, type Token } from "node-llama-cpp";

import { buildFinetuneStatement, buildOmsStatement } from "../../lib/intoto/index.ts";
import { IoError, UsageError } from "../../lib/errors.ts";
import { sha256File } from "../../lib/oms/range.ts";
import {
  attest,
  finishBundle,
  hashWithProgress,
  jobCodeDigest,
  jobRuntime,
  silentReporter,
  type CommonJobOptions,
  type JobResult,
} from "../job.ts";
import { prepareBundleTarget } from "../bundle.ts";
import { assertPlausibleGguf, assertReadable, loadModel, sharedLlama } from "../llama.ts";
import { ensureFinetuneBuild } from "./llama-build.ts";
import { expandTrainerCommand, parseLlamaLoss, runTrainerProcess, type LossCurve } from "./trainer.ts";
import type { TracedTrainingResult } from "../trace/record.ts";

export interface FinetuneOptions extends CommonJobOptions {
  base: string;
  data: string;
  /** "llama" for the built-in llama.cpp trainer, or a command line with {base}, {data}, {out}. */
  trainer: string;
  /** The output model directory; default `finetune-<id>` under cwd. */
  output?: string;
  probes?: string[];
  epochs?: number;
  learningRate?: number;
  contextSize?: number;
  trainerTimeoutMs?: number;
  /** Record a training trace with the recording trainer (docs/training-trace.md); needs trainer "llama". */
  trace?: FinetuneTraceOptions;
}

export interface FinetuneTraceOptions {
  /** Steps between checkpoints (default 8). */
  checkpointEvery?: number;
  /** Where the content-addressed trace files go (default `<output>.trace` beside the output directory). */
  traceDir?: string;
  /** Seed of the datapoint order (default 0). */
  seed?: number;
  /** A trace store (directory or git repository) to publish the trace files to after the bundle is written. */
  store?: string;
  /** Dishonest-trainer models, for tests only (see trace-train.cpp). */
  faults?: string[];
}

export interface FinetuneTraceResult {
  root: string;
  dir: string;
  steps: number;
  checkpointEvery: number;
  checkpoints: number;
  /** Microseconds of the trainer's loop, and per step. */
  trainMicros: number;
  stepMicros: number[];
  pushed?: { store: string; added: number; present: number; commit?: string };
}

export interface Probe {
  prompt: string;
  completion: string;
  /** Mean natural-log probability per token of the prompt's expected continuation (from the data), when known. */
  meanLogProb?: number;
}

export interface FinetuneResult extends JobResult {
  outputDir: string;
  outputModel: string;
  loss?: LossCurve;
  before: Probe[];
  after: Probe[];
  logPath: string;
  trace?: FinetuneTraceResult;
}

async function greedy(sequence: LlamaContextSequence, prompt: string, maxTokens: number): Promise<string> {
  const model = sequence.model;
  await sequence.clearHistory();
  const bos = model.tokens.bos;
  const tokens =
    bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...model.tokenize(prompt)] : model.tokenize(prompt);
  const out: Token[] = [];
  for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
    if (token === model.tokens.eos) break;
    out.push(token);
    if (out.length >= maxTokens) break;
  }
  return model.detokenize(out);
}

/** Mean log-probability per token of `continuation` after `prompt`, by teacher forcing. */
async function continuationLogProb(
  sequence: LlamaContextSequence,
  prompt: string,
  continuation: string,
): Promise<number> {
  const model = sequence.model;
  await sequence.clearHistory();
  const bos = model.tokens.bos;
  const promptTokens = model.tokenize(prompt);
  const all = model.tokenize(prompt + continuation);
  const head = bos !== null && model.tokens.shouldPrependBosToken ? [bos] : [];
  let split = 0;
  while (split < promptTokens.length && promptTokens[split] === all[split]) split++;
  const input = [...head, ...all];
  const start = head.length + Math.max(split, 1);
  if (start >= input.length) return 0;
  const items = input.map((token, index) => {
    const target = input[index + 1];
    if (index + 1 < start || target === undefined) return token;
    return [
      token,
      { generateNext: { logits: { filter: { tokens: [target], includeMax: true } }, totalLogitWeight: true } },
    ] as const;
  });
  const output = await sequence.controlledEvaluate(items as Parameters<LlamaContextSequence["controlledEvaluate"]>[0]);
  let sum = 0;
  let count = 0;
  for (let index = start - 1; index < input.length - 1; index++) {
    const next = output[index]?.next;
    const target = input[index + 1];
    if (next?.logits === undefined || next.totalLogitWeight === undefined || target === undefined) continue;
    const max = Math.max(...next.logits.values());
    sum += (next.logits.get(target) ?? -Infinity) - max - Math.log(next.totalLogitWeight);
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

async function probeModel(
  modelPath: string,
  adapter: string | undefined,
  probes: { prompt: string; expected?: string }[],
  options: FinetuneOptions,
): Promise<Probe[]> {
  const loaded = await loadModel(modelPath, { threads: options.threads ?? 2, gpu: options.gpu ?? false });
  try {
    const context = await loaded.createContext({ contextSize: 512, ...(adapter === undefined ? {} : { adapter }) });
    try {
      const sequence = context.getSequence();
      const out: Probe[] = [];
      for (const probe of probes) {
        const completion = await greedy(sequence, probe.prompt, 16);
        const result: Probe = { prompt: probe.prompt, completion };
        if (probe.expected !== undefined && probe.expected !== "") {
          result.meanLogProb = await continuationLogProb(sequence, probe.prompt, probe.expected);
        }
        out.push(result);
      }
      return out;
    } finally {
      await context.dispose();
    }
  } finally {
    await loaded.dispose();
  }
}

/** Default probes: the first line of the data, cut in half: the prompt is its first half, the expectation the rest. */
function defaultProbes(data: string): { prompt: string; expected?: string }[] {
  const line =
    data
      .split(/\r?\n/)
      .find((l) => l.trim().length > 0)
      ?.trim() ?? "";
  const sentence = line.split(/(?<=[.!?])\s/)[0] ?? line;
  const words = sentence.split(/\s+/);
  const cut = Math.max(1, Math.floor(words.length / 2));
  return [{ prompt: words.slice(0, cut).join(" "), expected: ` ${words.slice(cut).join(" ")}` }];
}

/** The recording trainer's default context: llama.cpp's smallest (it pads contexts to 256 tokens). */
const TRACE_CONTEXT = 256;

/** The first 64 KiB of a data file: enough for the default probe (its first line), whatever the file's size. */
const PROBE_HEAD_BYTES = 64 * 1024;

async function readHead(path: string, bytes: number): Promise<string> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** The data's digest: a file's SHA-256 (streamed), a directory's OMS root digest (DESIGN §3.2). */
async function digestOfData(path: string, isDirectory: boolean, options: FinetuneOptions): Promise<string> {
  if (isDirectory) return (await hashWithProgress(options, path, "data")).rootDigest;
  return sha256File(path).catch((error: unknown) => {
    throw new IoError("JOB_MODEL_UNREADABLE", `data ${path} cannot be hashed: ${String(error)}`, { cause: error });
  });
}

/** An existing non-empty output directory would have stale files signed as this run's output: refuse it. */
async function assertFreshOutput(outputDir: string): Promise<void> {
  const info = await stat(outputDir).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isDirectory()) throw new UsageError(`--output ${outputDir} exists and is not a directory`);
  if ((await readdir(outputDir)).length > 0) {
    throw new UsageError(`--output ${outputDir} is not empty; its files would be signed as this run's output`);
  }
}

/** The output model file to probe: the first .gguf in the output directory (or the output itself). */
async function findOutputGguf(outputDir: string): Promise<string> {
  const entries = (await readdir(outputDir)).filter((name) => name.endsWith(".gguf")).sort();
  const first = entries[0];
  if (first === undefined) throw new IoError("JOB_TRAINER_FAILED", `the trainer wrote no .gguf into ${outputDir}`);
  return join(outputDir, first);
}

export async function runFinetuneJob(options: FinetuneOptions): Promise<FinetuneResult> {
  const reporter = options.reporter ?? silentReporter;
  const now = options.now ?? (() => new Date());
  const cwd = options.cwd ?? process.cwd();
  await assertReadable(options.base, "base model");
  const dataInfo = await stat(options.data).catch((error: unknown) => {
    throw new IoError("JOB_MODEL_UNREADABLE", `data ${options.data} is missing or unreadable`, { cause: error });
  });
  const dataIsDirectory = dataInfo.isDirectory();
  const explicitProbes = options.probes !== undefined && options.probes.length > 0;
  if (dataIsDirectory && !explicitProbes) {
    throw new UsageError(`--data ${options.data} is a directory: give at least one --probe <prompt>`);
  }
  if (dataIsDirectory && options.trainer === "llama") {
    throw new UsageError(`--trainer llama reads one text file; --data ${options.data} is a directory`);
  }
  if (options.trace !== undefined && options.trainer !== "llama") {
    throw new UsageError("--trace records the built-in trainer's steps: use --trainer llama");
  }
  // llama.cpp pads every context to a multiple of 256 tokens; the recording trainer takes only what it really uses.
  if (options.trace !== undefined && (options.contextSize ?? TRACE_CONTEXT) % 256 !== 0) {
    throw new UsageError(`--context must be a multiple of 256 with --trace, got ${options.contextSize}`);
  }
  const probes = explicitProbes
    ? (options.probes ?? []).map((prompt) => ({ prompt }))
    : defaultProbes(
        await readHead(options.data, PROBE_HEAD_BYTES).catch((error: unknown) => {
          throw new IoError("JOB_MODEL_UNREADABLE", `data ${options.data} is unreadable`, { cause: error });
        }),
      );
  const invocationId = randomUUID();
  const outputDir = resolve(cwd, options.output ?? `finetune-${invocationId.slice(0, 8)}`);
  await assertFreshOutput(outputDir);
  const logPath = `${outputDir}.trainer.log`;
  // Beside the output directory, never inside: the output must hold only the model, whose OMS digest is then the
  // trace's last checkpoint.
  const traceDir =
    options.trace === undefined ? undefined : resolve(cwd, options.trace.traceDir ?? `${outputDir}.trace`);
  const epochs = options.epochs ?? 3;
  const learningRate = options.learningRate ?? 1e-3;
  const contextSize = options.contextSize ?? (options.trace === undefined ? 64 : TRACE_CONTEXT);
  const threads = options.threads ?? 2;

  const target = await prepareBundleTarget(options.out, cwd);
  reporter.step(`attesting with ${options.provider.name}`);
  // --gpu: CUDA must be there before the attestation, so a machine without it fails at once (CUDA_UNAVAILABLE).
  if (options.gpu === true) await sharedLlama(true);
  const attested = await attest(options.provider, options.nonce, options.gpuEvidence, reporter);
  const baseHash = await hashWithProgress(options, options.base, "base model");
  const dataDigest = await digestOfData(options.data, dataIsDirectory, options);
  const codeDigest = await jobCodeDigest();

  reporter.step("probing the base model");
  const before = await probeModel(options.base, undefined, probes, options);
  await mkdir(outputDir, { recursive: true });
  const startedOn = now();
  let trainerConfig: Record<string, unknown>;
  let run;
  let traced: TracedTrainingResult | undefined;
  if (options.trace !== undefined && traceDir !== undefined) {
    const { runTracedTraining } = await import("../trace/record.ts");
    const config = {
      contextSize,
      threads,
      seed: options.trace.seed ?? 0,
      epochs,
      learningRate,
      schedule: "constant" as const,
      weightDecay: 0,
      checkpointEvery: options.trace.checkpointEvery ?? 8,
    };
    trainerConfig = {
      trainer: "provenant-trace-train (llama.cpp)",
      epochs,
      learningRate,
      contextSize,
      optimizer: "sgd",
      threads,
      seed: config.seed,
      checkpointEvery: config.checkpointEvery,
    };
    reporter.step("training with the recording trainer");
    const started = performance.now();
    try {
      traced = await runTracedTraining({
        base: options.base,
        data: options.data,
        outputModel: join(outputDir, "model.gguf"),
        traceDir,
        config,
        log: (line) => reporter.step(line),
        ...(options.trace.faults === undefined ? {} : { faults: options.trace.faults }),
        ...(options.trainerTimeoutMs === undefined ? {} : { timeoutMs: options.trainerTimeoutMs }),
      });
      run = { exitCode: 0, log: traced.run.log, durationMs: performance.now() - started };
    } catch (error) {
      const log = error instanceof Error ? error.message : String(error);
      await writeFile(logPath, log);
      throw error;
    }
  } else if (options.trainer === "llama") {
    const binary = await ensureFinetuneBuild({ log: (line) => reporter.step(line) });
    const args = [
      "-m",
      options.base,
      "-f",
      options.data,
      "-o",
      join(outputDir, "model.gguf"),
      "-c",
      String(contextSize),
      "-b",
      String(contextSize),
      "-ub",
      String(contextSize),
      "-t",
      String(threads),
      "--epochs",
      String(epochs),
      "-lr",
      String(learningRate),
      "-ngl",
      "0",
    ];
    trainerConfig = { trainer: "llama.cpp llama-finetune", epochs, learningRate, contextSize, optimizer: "adamw" };
    reporter.step("training with llama-finetune");
    run = await runTrainerProcess([binary, ...args], {
      cwd,
      ...(options.trainerTimeoutMs === undefined ? {} : { timeoutMs: options.trainerTimeoutMs }),
    });
  } else {
    if (!options.trainer.includes("{out}")) throw new UsageError("--trainer command must contain {out}");
    const command = expandTrainerCommand(options.trainer, {
      base: resolve(cwd, options.base),
      data: resolve(cwd, options.data),
      out: outputDir,
    });
    trainerConfig = { trainer: "command", command: options.trainer };
    reporter.step(`training: ${options.trainer}`);
    run = await runTrainerProcess(command, {
      cwd,
      ...(options.trainerTimeoutMs === undefined ? {} : { timeoutMs: options.trainerTimeoutMs }),
    });
  }
  await writeFile(logPath, run.log);
  if (run.exitCode !== 0) {
    throw new IoError("JOB_TRAINER_FAILED", `trainer exited with ${run.exitCode}; its output is in ${logPath}`, {
      details: { exitCode: run.exitCode, log: logPath },
    });
  }
  const finishedOn = now();
  const outputModel = await findOutputGguf(outputDir);
  await assertPlausibleGguf(outputModel);
  const info = await readGgufFileInfo(outputModel, { readTensorInfo: false }).catch((error: unknown) => {
    throw new IoError("JOB_MODEL_LOAD_FAILED", `the trainer's output ${outputModel} is not a GGUF file`, {
      cause: error,
    });
  });
  const isAdapter = (info.metadata as { general?: { type?: string } }).general?.type === "adapter";
  reporter.step("probing the fine-tuned model");
  const after = isAdapter
    ? await probeModel(options.base, outputModel, probes, options)
    : await probeModel(outputModel, undefined, probes, options);
  const outputHash = await hashWithProgress(options, outputDir, "output model");
  const loss =
    traced !== undefined ? lossCurveOf(traced) : options.trainer === "llama" ? parseLlamaLoss(run.log) : undefined;
  if (loss !== undefined) trainerConfig.reportedLoss = { first: loss.first, last: loss.last };
  const logDigest = createHash("sha256").update(run.log).digest("hex");
  const reportDigest = createHash("sha256").update(attested.evidence.report).digest("hex");
  // Where the job ran (node-llama-cpp's backend for the probes, the driver, how GPU evidence was collected); the
  // trainer command's own device use is the trainer's, named by trainerConfig.
  const runtime = await jobRuntime(await sharedLlama(options.gpu ?? false), attested.gpu, options);
  const manifest = buildFinetuneStatement({
    output: { name: basename(outputDir), rootDigest: outputHash.rootDigest },
    baseModel: { name: basename(options.base), rootDigest: baseHash.rootDigest },
    dataset: { name: basename(options.data), digest: dataDigest },
    jobCode: { name: "provenant-enclave-job", digest: codeDigest },
    trainerConfig,
    invocationId,
    startedOn,
    finishedOn,
    runtime,
    byproducts: [
      { name: "snp-report", digest: reportDigest },
      // DESIGN §3.2: the digest of each GPU's evidence (SHA-256 of its SPDM transcript as the bundle carries it).
      ...(attested.gpu?.gpus ?? []).map((g, i) => ({
        name: `gpu-evidence-${i}`,
        digest: createHash("sha256").update(g.evidence).digest("hex"),
      })),
      { name: "logs", digest: logDigest },
      ...(traced === undefined ? [] : [(await import("../trace/commitment.ts")).toTraceByproduct(traced.commitment)]),
    ],
  });
  const models = [
    buildOmsStatement(basename(options.base), baseHash),
    buildOmsStatement(basename(outputDir), outputHash),
  ];
  reporter.step("signing and writing the bundle");
  const result = await finishBundle(options, attested, manifest, models, outputHash.rootDigest, target);
  let trace: FinetuneTraceResult | undefined;
  if (traced !== undefined && traceDir !== undefined) {
    trace = {
      root: traced.commitment.root,
      dir: traceDir,
      steps: traced.commitment.steps,
      checkpointEvery: traced.commitment.checkpointEvery,
      checkpoints: traced.commitment.checkpoints,
      trainMicros: traced.run.trainMicros,
      stepMicros: traced.run.stepMicros,
    };
    if (options.trace?.store !== undefined) {
      reporter.step(`publishing the trace to ${options.trace.store}`);
      const { pushTrace } = await import("../trace/store.ts");
      const pushed = await pushTrace(traceDir, options.trace.store);
      trace.pushed = {
        store: pushed.store,
        added: pushed.added.length,
        present: pushed.present.length,
        ...(pushed.commit === undefined ? {} : { commit: pushed.commit }),
      };
    }
  }
  return {
    ...result,
    outputDir,
    outputModel,
    before,
    after,
    logPath,
    ...(loss === undefined ? {} : { loss }),
    ...(trace === undefined ? {} : { trace }),
  };
}

/** The loss curve of a traced run: the first step's loss, each epoch's mean, the last epoch's mean. */
function lossCurveOf(traced: TracedTrainingResult): LossCurve {
  const losses = traced.run.losses;
  const perEpoch = Math.max(1, traced.run.ndata);
  const epochs: number[] = [];
  for (let i = 0; i < losses.length; i += perEpoch) {
    const slice = losses.slice(i, i + perEpoch);
    epochs.push(slice.reduce((a, b) => a + b, 0) / slice.length);
  }
  return { first: losses[0] ?? NaN, epochs, last: epochs[epochs.length - 1] ?? NaN };
}
