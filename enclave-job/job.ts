// The enclave job (DESIGN §1 steps 1-6): key K and the attestation report first (so a missing device fails
// before any work), then hashing of inputs, the audit or fine-tune, hashing of outputs, signed statements, and the
// bundle written atomically and optionally pushed. Every dependency on the outside world is an option, for tests.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import type { Llama } from "node-llama-cpp";

import {
  buildEvalStatement,
  buildOmsStatement,
  type Metric,
  type RuntimeInfo,
  type Statement,
} from "../lib/intoto/index.ts";
import type { ModelHash } from "../lib/oms/types.ts";
import { IoError, UsageError, VerificationError } from "../lib/errors.ts";
import { attestKey, type AttestedKey } from "./attest/attest.ts";
import { jobCodeDigest as computeJobCodeDigest } from "./code-digest.ts";
import type { GpuCollection, GpuEvidenceProvider } from "./attest/gpu.ts";
import type { AttestationProvider } from "./attest/providers.ts";
import { runGeneration, type GenResult } from "./audit/generation.ts";
import { mcContextSize, runMultipleChoice, type McResult } from "./audit/mc.ts";
import { judgeScorer, profanityScorer, regexScorer, resolveJudgeSpec, type Scorer } from "./audit/scorers.ts";
import { loadSuite, type Suite } from "./audit/suites.ts";
import {
  assembleBundle,
  bundleFileName,
  bundleTargetPath,
  prepareBundleTarget,
  writeBundleFile,
  type BundleTarget,
} from "./bundle.ts";
import { loadModel, assertReadable, llamaRuntime, sharedLlama, type LoadedModel } from "./llama.ts";
import { pushBundle, redactUrls, type PushResult } from "./push.ts";

export type HashFn = (path: string, onProgress?: (done: number, total: number) => void) => Promise<ModelHash>;

export const defaultHash: HashFn = async (path, onProgress) => {
  const { hashModel } = await import("../lib/oms/index.ts");
  return hashModel(path, onProgress === undefined ? {} : { onProgress });
};

export interface JobReporter {
  step(message: string): void;
  progress(label: string): { update(done: number, total: number): void; done(): void };
}

export const silentReporter: JobReporter = { step() {}, progress: () => ({ update() {}, done() {} }) };

export interface CommonJobOptions {
  provider: AttestationProvider;
  /** 64 hex; random when absent. */
  nonce?: string;
  /**
   * Where the bundle goes: a file, or an existing directory (which gets the default name); default
   * `bundles/<name>` under cwd. Checked before attesting.
   */
  out?: string;
  cwd?: string;
  push?: string;
  threads?: number;
  /** Run node-llama-cpp on CUDA (`--gpu`), or fail with CUDA_UNAVAILABLE before attesting. */
  gpu?: boolean;
  /**
   * Collects GPU evidence right after the CPU report, for gpuNonceFor(REPORT_DATA) (`--gpu-evidence nvml|sim`); the
   * bundle carries it in `evidence.gpu`. Absent or null: no GPU evidence.
   */
  gpuEvidence?: GpuEvidenceProvider | null;
  /** The NVML library for the runtime record's driver version on a `--gpu` run; default libnvidia-ml.so.1. */
  nvmlLibrary?: string;
  hash?: HashFn;
  reporter?: JobReporter;
  now?: () => Date;
}

export interface JobResult {
  bundlePath: string;
  manifestDigest: string;
  modelHash: string;
  bytes: Uint8Array;
  pushed?: PushResult;
}

const ENCLAVE_JOB_DIR = fileURLToPath(new URL(".", import.meta.url));

let codeDigestOnce: Promise<string> | undefined;

/**
 * The job code (DESIGN §11, ./code-digest.ts): the OMS root digest of this installed provenant package, node_modules
 * included, computed once per process when the first job starts. It is the value a measured image names on its
 * kernel command line (`provenant.job=sha256:<hex>`); the fine-tune's `job-code` dependency and the audit's
 * `harness.digest` both carry it, so a verifier pins one list (`jobCodeDigests`) for either kind of statement.
 */
export function jobCodeDigest(): Promise<string> {
  codeDigestOnce ??= computeJobCodeDigest().then(
    (result) => result.rootDigest,
    (error: unknown) => {
      codeDigestOnce = undefined;
      throw error;
    },
  );
  return codeDigestOnce;
}

/** The audit harness is the job code: the runner, its suites, node-llama-cpp and everything else the job loads. */
export function harnessDigest(): Promise<string> {
  return jobCodeDigest();
}

export async function harnessVersion(): Promise<string> {
  const read = async (path: string): Promise<string> =>
    (JSON.parse(await readFile(path, "utf8")) as { version: string }).version;
  const root = resolve(ENCLAVE_JOB_DIR, "..");
  const llamaVersion = await read(join(root, "node_modules/node-llama-cpp/package.json")).catch(() => "unknown");
  return `${await read(join(root, "package.json"))}+node-llama-cpp.${llamaVersion}`;
}

/**
 * Key K (P-384), the CPU report over REPORT_DATA = SHA-256(SPKI(K)) ‖ nonce, and (with a GPU provider) every GPU's
 * report over gpuNonceFor(REPORT_DATA), so the GPU evidence is bound to this key and bundle (DESIGN §10). Before any
 * work: attest/attest.ts attestKey, which `provenant serve` uses for its serving key too.
 */
export function attest(
  provider: AttestationProvider,
  nonceHex: string | undefined,
  gpuProvider?: GpuEvidenceProvider | null,
  reporter: JobReporter = silentReporter,
): Promise<AttestedKey> {
  return attestKey(provider, {
    nonce: nonceHex,
    gpu: gpuProvider,
    onGpu: (name) => reporter.step(`collecting GPU evidence with ${name}`),
  });
}

/**
 * The statements' runtime record (lib/intoto RuntimeInfo): node-llama-cpp's backend and its GPUs, the NVIDIA driver
 * (from the GPU evidence collection, else NVML on a CUDA run), and how the GPU evidence was collected.
 */
export async function jobRuntime(
  llama: Llama,
  gpu: GpuCollection | undefined,
  options: Pick<CommonJobOptions, "nvmlLibrary"> = {},
): Promise<RuntimeInfo> {
  const { backend, devices } = await llamaRuntime(llama);
  let driverVersion = gpu?.driverVersion ?? null;
  if (driverVersion === null && backend === "cuda") {
    const { nvmlRuntimeInfo } = await import("./attest/gpu-nvml.ts");
    driverVersion = (await nvmlRuntimeInfo(options.nvmlLibrary))?.driverVersion ?? null;
  }
  return {
    backend,
    devices,
    driverVersion,
    gpuEvidence:
      gpu === undefined
        ? null
        : {
            provider: gpu.provider,
            environment: gpu.environment,
            devToolsMode: gpu.devToolsMode,
            evidence: gpu.gpus.map((g) => createHash("sha256").update(g.evidence).digest("hex")),
          },
  };
}

export async function finishBundle(
  options: CommonJobOptions,
  attested: AttestedKey,
  manifest: Statement,
  models: Statement[],
  modelHash: string,
  target?: BundleTarget,
): Promise<JobResult> {
  const now = (options.now ?? (() => new Date()))();
  const { bytes, manifestDigest } = assembleBundle({
    manifest,
    models,
    privateKey: attested.key.privateKey,
    spki: attested.key.spki,
    nonce: attested.nonce,
    evidence: attested.evidence,
    ...(attested.gpu === undefined ? {} : { gpu: attested.gpu.gpus }),
  });
  const name = bundleFileName(manifestDigest, now);
  const bundlePath = bundleTargetPath(
    target ?? (await prepareBundleTarget(options.out, options.cwd ?? process.cwd())),
    name,
  );
  await writeBundleFile(bundlePath, bytes);
  const result: JobResult = { bundlePath, manifestDigest, modelHash, bytes };
  if (options.push !== undefined) {
    options.reporter?.step(`pushing ${name} to ${redactUrls(options.push)}`);
    result.pushed = await pushBundle(options.push, name, bytes, { bundlePath });
  }
  return result;
}

export async function hashWithProgress(options: CommonJobOptions, path: string, label: string): Promise<ModelHash> {
  const bar = (options.reporter ?? silentReporter).progress(`hashing ${label}`);
  try {
    return await (options.hash ?? defaultHash)(path, (done, total) => bar.update(done, total));
  } catch (error) {
    if (error instanceof IoError) {
      throw new IoError("JOB_MODEL_UNREADABLE", `${label} ${path} cannot be hashed: ${String(error)}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    bar.done();
  }
}

export interface AuditOptions extends CommonJobOptions {
  model: string;
  adapter?: string;
  suite: string;
  fewShot?: string;
  /**
   * Generation suites: "profanity" (obscenity's word list), "regex", "judge" or "toxicity" (both with `judgeModel`,
   * the operator's judge GGUF); default from the suite, else profanity.
   */
  scorer?: string;
  judgeModel?: string;
  /** Optional pass/fail threshold on the headline metric (accuracy ≥ t, or rate ≤ t / ≥ t for regex). */
  threshold?: number;
}

export interface AuditResult extends JobResult {
  suite: Suite;
  metrics: Metric[];
  mc?: McResult;
  generation?: GenResult;
  /** Scoring time (the suite run, context creation included). */
  auditMs: number;
  /** Loading the model with node-llama-cpp. */
  modelLoadMs: number;
}

async function makeScorer(
  name: string,
  suite: Extract<Suite, { kind: "generation" }>,
  options: AuditOptions,
): Promise<{ scorer: Scorer; judge?: LoadedModel }> {
  switch (name) {
    case "profanity":
      return { scorer: profanityScorer() };
    case "regex":
      return { scorer: regexScorer(suite.pattern) };
    case "judge":
    case "toxicity": {
      // "toxicity" names a classifier the operator supplies (e.g. a Llama Guard 3 GGUF), never the word list.
      if (options.judgeModel === undefined)
        throw new UsageError(
          name === "toxicity"
            ? "--scorer toxicity needs --judge <model.gguf>, a toxicity classifier you supply (e.g. Llama Guard 3); " +
                "the word-list scorer is --scorer profanity"
            : "--scorer judge needs --judge <model.gguf>",
        );
      const spec = resolveJudgeSpec(name, suite.judge);
      if (suite.judge?.model !== undefined) {
        // The suite pins its judge: the suite digest in the statement then names the exact judge model too.
        const { rootDigest } = await hashWithProgress(options, options.judgeModel, "judge model");
        if (rootDigest !== suite.judge.model)
          throw new VerificationError(
            "MODEL_DIGEST_MISMATCH",
            `the judge model's OMS root digest is ${rootDigest}, the suite names sha256:${suite.judge.model}`,
            { details: { expected: suite.judge.model, actual: rootDigest } },
          );
      }
      const judge = await loadModel(options.judgeModel, { threads: options.threads ?? 2, gpu: options.gpu ?? false });
      try {
        return { scorer: await judgeScorer(judge, spec, name), judge };
      } catch (error) {
        await judge.dispose();
        throw error;
      }
    }
    default:
      throw new UsageError(`unknown scorer ${name} (profanity, regex, judge, toxicity)`);
  }
}

/** `provenant job audit`: attest, hash, run the suite, sign the eval statement, write (and push) the bundle. */
export async function runAuditJob(options: AuditOptions): Promise<AuditResult> {
  const reporter = options.reporter ?? silentReporter;
  const now = options.now ?? (() => new Date());
  await assertReadable(options.model);
  if (options.adapter !== undefined) await assertReadable(options.adapter, "adapter");
  const suite = await loadSuite(options.suite, options.fewShot === undefined ? {} : { fewShotPath: options.fewShot });
  const target = await prepareBundleTarget(options.out, options.cwd ?? process.cwd());
  // The job's own code is hashed from here on, alongside the rest of the work, and goes into the statement; not
  // before the arguments are checked, so that a usage error exits at once instead of after the hashing.
  const codeDigest = jobCodeDigest();
  codeDigest.catch(() => {});
  // --gpu: CUDA must be there before the attestation, so a machine without it fails at once (CUDA_UNAVAILABLE).
  if (options.gpu === true) await sharedLlama(true);
  reporter.step(`attesting with ${options.provider.name}`);
  const attested = await attest(options.provider, options.nonce, options.gpuEvidence, reporter);
  const modelHash = await hashWithProgress(options, options.model, "model");
  const adapterHash =
    options.adapter === undefined ? undefined : await hashWithProgress(options, options.adapter, "adapter");
  const [harness, version] = await Promise.all([codeDigest, harnessVersion()]);
  reporter.step(`loading ${options.model}`);
  const loadStarted = performance.now();
  const loaded = await loadModel(options.model, { threads: options.threads ?? 2, gpu: options.gpu ?? false });
  const modelLoadMs = performance.now() - loadStarted;
  const runtime = await jobRuntime(loaded.llama, attested.gpu, options);
  const startedOn = now();
  const started = performance.now();
  let mc: McResult | undefined;
  let generation: GenResult | undefined;
  const metrics: Metric[] = [];
  try {
    if (suite.kind === "mc") {
      const context = await loadedContext(loaded, options.adapter, mcContextSize(loaded.model, suite));
      try {
        const bar = reporter.progress(`auditing ${suite.name}`);
        mc = await runMultipleChoice(context.getSequence(), suite, (d, t) => bar.update(d, t));
        bar.done();
      } finally {
        await context.dispose();
      }
      const accuracy: Metric = { name: "accuracy", value: mc.accuracy, sampleSize: mc.items };
      if (options.threshold !== undefined) {
        accuracy.comparator = ">=";
        accuracy.threshold = options.threshold;
        accuracy.passed = mc.accuracy >= options.threshold;
      }
      metrics.push(accuracy, { name: "mean_answer_logprob", value: round(mc.meanLogProb), sampleSize: mc.items });
    } else {
      const { scorer, judge } = await makeScorer(options.scorer ?? suite.scorer ?? "profanity", suite, options);
      const context = await loadedContext(loaded, options.adapter, 1024);
      try {
        const bar = reporter.progress(`auditing ${suite.name}`);
        generation = await runGeneration(context.getSequence(), suite, scorer, (d, t) => bar.update(d, t));
        bar.done();
      } finally {
        await scorer.dispose?.();
        await judge?.dispose();
        await context.dispose();
      }
      const metric: Metric = { name: scorer.metric, value: generation.rate, sampleSize: generation.items };
      if (options.threshold !== undefined) {
        metric.comparator = scorer.lowerIsBetter ? "<=" : ">=";
        metric.threshold = options.threshold;
        metric.passed = scorer.lowerIsBetter
          ? generation.rate <= options.threshold
          : generation.rate >= options.threshold;
      }
      metrics.push(metric);
    }
  } finally {
    await loaded.dispose();
  }
  const auditMs = performance.now() - started;
  const finishedOn = now();
  // With an adapter, the audited artifact is the adapter on its base: the subject is the adapter, and both
  // models get an OMS statement so a verifier can check either file.
  const subject = adapterHash ?? modelHash;
  const subjectName = basename(options.adapter ?? options.model);
  const manifest = buildEvalStatement({
    model: { name: subjectName, rootDigest: subject.rootDigest },
    suite: { name: suite.name, digest: suite.digest },
    harness: { name: "provenant-audit", version, digest: harness },
    metrics,
    startedOn,
    finishedOn,
    runtime,
  });
  const models = [buildOmsStatement(basename(options.model), modelHash)];
  if (adapterHash !== undefined && options.adapter !== undefined) {
    models.push(buildOmsStatement(basename(options.adapter), adapterHash));
  }
  reporter.step("signing and writing the bundle");
  const result = await finishBundle(options, attested, manifest, models, subject.rootDigest, target);
  return {
    ...result,
    suite,
    metrics,
    auditMs,
    modelLoadMs,
    ...(mc === undefined ? {} : { mc }),
    ...(generation === undefined ? {} : { generation }),
  };
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

async function loadedContext(loaded: LoadedModel, adapter: string | undefined, contextSize: number) {
  return loaded.createContext({ contextSize, ...(adapter === undefined ? {} : { adapter }) });
}
