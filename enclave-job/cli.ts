// The enclave job's commands: `provenant model tiny`, `provenant job audit`, `provenant job finetune`,
// `provenant job code-digest`.
// Thin shells: parse flags, call the job, print a summary or `--json`; errors follow DESIGN §9 exit codes.
import { resolve } from "node:path";

import {
  defineCommand,
  integerOption,
  numberOption,
  progressBar,
  readInputFile,
  requiredOption,
  type CliIo,
  type Command,
} from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import { gpuProviderByName } from "./attest/gpu.ts";
import { providerByName } from "./attest/providers.ts";
import { runFinetuneJob } from "./finetune/job.ts";
import { runAuditJob, type CommonJobOptions, type JobReporter } from "./job.ts";
import { writeTinyModel, type TinySize } from "./model/tiny.ts";

const TINY_USAGE = "provenant model tiny <out.gguf> [--seed <n>] [--size small|medium] [--json]";
const AUDIT_USAGE =
  "provenant job audit --model <gguf> [--adapter <gguf>] --suite <builtin:mc|builtin:gen|path> [--few-shot <file>] " +
  "[--scorer profanity|regex|judge|toxicity] [--judge <gguf>] [--threshold <x>] " +
  "[--provider sim|tsm|sev-guest] [--nonce <hex>] " +
  "[--out <bundle.json>] [--push <repo>] [--threads <n>] [--gpu] [--tsm-root <dir>] [--snpguest <path>] " +
  "[--gpu-evidence nvml|sim|none] [--gpu-rims service|none|<dir>] [--nvml-library <path>] [--gpu-devtools] [--json]";
const FINETUNE_USAGE =
  "provenant job finetune --base <gguf> --data <file|dir> --trainer llama|<command with {base} {data} {out}> " +
  "[--output <dir>] [--probe <prompt>]… [--epochs <n>] [--learning-rate <x>] [--context <n>] " +
  "[--provider sim|tsm|sev-guest] [--nonce <hex>] [--out <bundle.json>] [--push <repo>] [--threads <n>] [--gpu] " +
  "[--tsm-root <dir>] [--snpguest <path>] [--gpu-evidence nvml|sim|none] [--gpu-rims service|none|<dir>] [--nvml-library <path>] [--gpu-devtools] " +
  "[--trace [--checkpoint-every <k>] [--trace-dir <dir>] [--seed <n>] [--trace-store <dir|repo>]] [--json]";

const COMMON_OPTIONS = {
  provider: { type: "string" },
  nonce: { type: "string" },
  out: { type: "string" },
  push: { type: "string" },
  threads: { type: "string" },
  gpu: { type: "boolean" },
  "tsm-root": { type: "string" },
  snpguest: { type: "string" },
  "gpu-evidence": { type: "string" },
  "gpu-rims": { type: "string" },
  "nvml-library": { type: "string" },
  "gpu-devtools": { type: "boolean" },
} as const;

function reporterFor(io: CliIo, json: boolean): JobReporter {
  return {
    step: (message) => {
      if (!json && io.isTty) io.stderr(`${message}\n`);
    },
    progress: (label) => progressBar(io, label),
  };
}

function commonOptions(
  values: {
    provider?: string | undefined;
    nonce?: string | undefined;
    out?: string | undefined;
    push?: string | undefined;
    threads?: string | undefined;
    gpu?: boolean | undefined;
    "tsm-root"?: string | undefined;
    snpguest?: string | undefined;
    "gpu-evidence"?: string | undefined;
    "gpu-rims"?: string | undefined;
    "nvml-library"?: string | undefined;
    "gpu-devtools"?: boolean | undefined;
  },
  io: CliIo,
  json: boolean,
): CommonJobOptions {
  const options: CommonJobOptions = {
    provider: providerByName(values.provider ?? "sim", {
      ...(values["tsm-root"] === undefined ? {} : { tsmRoot: values["tsm-root"] }),
      ...(values.snpguest === undefined ? {} : { snpguest: values.snpguest }),
    }),
    cwd: io.cwd,
    threads: integerOption(values.threads, "threads", { min: 1, max: 256 }) ?? 2,
    gpu: values.gpu ?? false,
    reporter: reporterFor(io, json),
  };
  if (values.nonce !== undefined) options.nonce = values.nonce;
  if (values.out !== undefined) options.out = values.out;
  // GPU evidence (docs/gpu.md): nvml in the confidential VM, sim for development; its flags go with it.
  const gpuEvidence = values["gpu-evidence"] ?? "none";
  if (gpuEvidence === "none" && (values["gpu-rims"] ?? values["nvml-library"] ?? values["gpu-devtools"]) !== undefined)
    throw new UsageError("--gpu-rims, --nvml-library and --gpu-devtools go with --gpu-evidence nvml|sim");
  const rims = values["gpu-rims"];
  const nvmlLibrary = values["nvml-library"] === undefined ? undefined : resolve(io.cwd, values["nvml-library"]);
  options.gpuEvidence = gpuProviderByName(gpuEvidence, {
    ...(rims === undefined ? {} : { rims: rims === "service" || rims === "none" ? rims : resolve(io.cwd, rims) }),
    ...(nvmlLibrary === undefined ? {} : { nvmlLibrary }),
    allowDevTools: values["gpu-devtools"] ?? false,
    env: io.env,
  });
  if (nvmlLibrary !== undefined) options.nvmlLibrary = nvmlLibrary;
  if (values.push !== undefined) options.push = values.push;
  return options;
}

const modelTiny = defineCommand({
  path: ["model", "tiny"],
  summary: "write the small deterministic llama GGUF (and its LoRA adapter) used by tests and the demo",
  usage: TINY_USAGE,
  options: { seed: { type: "string" }, size: { type: "string" } },
  positionals: ["out.gguf"],
  async run({ values, positionals, io }) {
    const out = resolve(io.cwd, positionals[0]!);
    const size = values.size ?? "small";
    if (size !== "small" && size !== "medium")
      throw new UsageError(`--size must be small or medium\nusage: ${TINY_USAGE}`);
    const seed = integerOption(values.seed, "seed") ?? 1;
    const paths = await writeTinyModel(out, { seed, size: size as TinySize });
    return {
      ok: true,
      fields: { model: paths.model, adapter: paths.adapter, seed, size },
      text: `wrote ${paths.model}\nwrote ${paths.adapter} (LoRA adapter)\n`,
    };
  },
});

const jobAudit = defineCommand({
  path: ["job", "audit"],
  summary: "audit a model inside the confidential VM and write an attested eval bundle",
  usage: AUDIT_USAGE,
  options: {
    ...COMMON_OPTIONS,
    model: { type: "string" },
    adapter: { type: "string" },
    suite: { type: "string" },
    "few-shot": { type: "string" },
    scorer: { type: "string" },
    judge: { type: "string" },
    threshold: { type: "string" },
  },
  async run({ values, io, json }) {
    const at = (path: string): string => resolve(io.cwd, path);
    const threshold = numberOption(values.threshold, "threshold");
    const suite = requiredOption(values.suite, "suite", AUDIT_USAGE);
    const result = await runAuditJob({
      ...commonOptions(values, io, json),
      model: at(requiredOption(values.model, "model", AUDIT_USAGE)),
      suite: suite.startsWith("builtin:") ? suite : at(suite),
      ...(values.adapter === undefined ? {} : { adapter: at(values.adapter) }),
      ...(values["few-shot"] === undefined ? {} : { fewShot: at(values["few-shot"]) }),
      ...(values.scorer === undefined ? {} : { scorer: values.scorer }),
      ...(values.judge === undefined ? {} : { judgeModel: at(values.judge) }),
      ...(threshold === undefined ? {} : { threshold }),
    });
    const fields = {
      bundle: result.bundlePath,
      manifestDigest: result.manifestDigest,
      modelHash: result.modelHash,
      suite: { name: result.suite.name, digest: result.suite.digest, kind: result.suite.kind },
      metrics: result.metrics,
      ...(result.pushed === undefined ? {} : { pushed: result.pushed }),
    };
    const text =
      result.metrics.map((m) => `${m.name} = ${m.value} (n=${m.sampleSize})\n`).join("") +
      `bundle ${result.bundlePath}\nmanifest ${result.manifestDigest}\nmodel ${result.modelHash}\n` +
      (result.pushed === undefined ? "" : `pushed ${result.pushed.path} (${result.pushed.commit})\n`);
    return { ok: true, fields, text };
  },
});

const jobFinetune = defineCommand({
  path: ["job", "finetune"],
  summary: "fine-tune a model inside the confidential VM and write an attested SLSA provenance bundle",
  usage: FINETUNE_USAGE,
  options: {
    ...COMMON_OPTIONS,
    base: { type: "string" },
    data: { type: "string" },
    trainer: { type: "string" },
    output: { type: "string" },
    probe: { type: "string", multiple: true },
    epochs: { type: "string" },
    "learning-rate": { type: "string" },
    context: { type: "string" },
    trace: { type: "boolean" },
    "checkpoint-every": { type: "string" },
    "trace-dir": { type: "string" },
    seed: { type: "string" },
    "trace-store": { type: "string" },
  },
  async run({ values, io, json }) {
    const at = (path: string): string => resolve(io.cwd, path);
    const learningRate = numberOption(values["learning-rate"], "learning-rate", { min: 0 });
    const traceFlags = ["checkpoint-every", "trace-dir", "seed", "trace-store"] as const;
    if (values.trace !== true && traceFlags.some((flag) => values[flag] !== undefined))
      throw new UsageError(`--${traceFlags.join(", --")} go with --trace\nusage: ${FINETUNE_USAGE}`);
    const store = values["trace-store"];
    const trace =
      values.trace !== true
        ? undefined
        : {
            checkpointEvery: integerOption(values["checkpoint-every"], "checkpoint-every", { min: 1 }) ?? 8,
            seed: integerOption(values.seed, "seed", { max: 0xffffffff }) ?? 0,
            ...(values["trace-dir"] === undefined ? {} : { traceDir: at(values["trace-dir"]) }),
            ...(store === undefined ? {} : { store: /^[a-z][a-z0-9+.-]*:\/\//i.test(store) ? store : at(store) }),
          };
    const result = await runFinetuneJob({
      ...commonOptions(values, io, json),
      base: at(requiredOption(values.base, "base", FINETUNE_USAGE)),
      data: at(requiredOption(values.data, "data", FINETUNE_USAGE)),
      trainer: requiredOption(values.trainer, "trainer", FINETUNE_USAGE),
      ...(values.output === undefined ? {} : { output: at(values.output) }),
      ...(values.probe === undefined ? {} : { probes: values.probe }),
      ...(values.epochs === undefined ? {} : { epochs: integerOption(values.epochs, "epochs", { min: 1 }) ?? 3 }),
      ...(learningRate === undefined ? {} : { learningRate }),
      ...(values.context === undefined
        ? {}
        : { contextSize: integerOption(values.context, "context", { min: 8 }) ?? 64 }),
      ...(trace === undefined ? {} : { trace }),
    });
    const fields = {
      bundle: result.bundlePath,
      manifestDigest: result.manifestDigest,
      modelHash: result.modelHash,
      output: result.outputDir,
      loss: result.loss,
      probes: result.before.map((b, i) => ({ prompt: b.prompt, before: b, after: result.after[i] })),
      log: result.logPath,
      ...(result.pushed === undefined ? {} : { pushed: result.pushed }),
      ...(result.trace === undefined ? {} : { trace: result.trace }),
    };
    const text =
      (result.loss === undefined ? "" : `loss ${result.loss.first} → ${result.loss.last}\n`) +
      result.before
        .map(
          (b, i) =>
            `probe ${JSON.stringify(b.prompt)}\n  before ${JSON.stringify(b.completion)}\n` +
            `  after  ${JSON.stringify(result.after[i]?.completion ?? "")}\n`,
        )
        .join("") +
      `output ${result.outputDir}\nbundle ${result.bundlePath}\nmanifest ${result.manifestDigest}\n` +
      (result.pushed === undefined ? "" : `pushed ${result.pushed.path} (${result.pushed.commit})\n`) +
      (result.trace === undefined
        ? ""
        : `trace ${result.trace.root} (${result.trace.steps} steps, a checkpoint every ${result.trace.checkpointEvery}) in ${result.trace.dir}\n`);
    return { ok: true, fields, text };
  },
});

const CODE_DIGEST_USAGE = "provenant job code-digest [--root <package dir>] [--check-cmdline <file>] [--json]";

const jobCodeDigestCommand = defineCommand({
  path: ["job", "code-digest"],
  summary: "print the job-code digest (OMS root of the installed package) that provenant.job= names; check it",
  usage: CODE_DIGEST_USAGE,
  options: { root: { type: "string" }, "check-cmdline": { type: "string" } },
  async run({ values, io }) {
    const { jobCodeDigest, jobDigestFromCmdline, PACKAGE_ROOT } = await import("./code-digest.ts");
    const result = await jobCodeDigest(values.root === undefined ? PACKAGE_ROOT : resolve(io.cwd, values.root));
    const fields: Record<string, unknown> = { ...result };
    if (values["check-cmdline"] === undefined) return { ok: true, fields, text: result.digest };
    // The measured image's init: the command line (part of the launch measurement) must name exactly these files.
    const cmdline = (await readInputFile(io, values["check-cmdline"], "command line")).toString("utf8");
    const expected = jobDigestFromCmdline(cmdline);
    fields.expected = expected ?? null;
    if (expected === result.digest) return { ok: true, fields, text: `ok: ${result.digest}` };
    const message =
      expected === undefined
        ? "the command line names no provenant.job=sha256:<64 hex> (or names it more than once)"
        : `the command line names ${expected}, the job code under ${result.root} is ${result.digest}`;
    return { ok: false, fields, errors: [{ code: "JOB_CODE_MISMATCH", message }], text: "refused: job code differs" };
  },
});

export const commands: readonly Command[] = [modelTiny, jobAudit, jobFinetune, jobCodeDigestCommand];
