// Running a trainer: any command with {base}, {data} and {out} placeholders (a PyTorch/PEFT script in a real VM),
// or the built-in llama.cpp fine-tune tool. Its output is kept as the `logs` byproduct; a non-zero exit is
// JOB_TRAINER_FAILED with the log attached, and no bundle is written.
import { spawn } from "node:child_process";

import { IoError } from "../../lib/errors.ts";

export interface TrainerRun {
  exitCode: number;
  log: string;
  durationMs: number;
}

/** Single-quotes a value for /bin/sh. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function expandTrainerCommand(template: string, values: { base: string; data: string; out: string }): string {
  return template.replace(/\{(base|data|out)\}/g, (_, key: "base" | "data" | "out") => shellQuote(values[key]));
}

/** Runs argv (no shell) or a shell command line, capturing stdout and stderr together. */
export function runTrainerProcess(
  command: string | readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<TrainerRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child =
      typeof command === "string"
        ? spawn("/bin/sh", ["-c", command], { cwd: options.cwd, env: options.env ?? process.env })
        : spawn(command[0] ?? "", command.slice(1), { cwd: options.cwd, env: options.env ?? process.env });
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (chunk: Buffer): void => {
      // Keep at most 4 MiB of log: the bundle has a size limit and the digest covers what is kept.
      if (size < 4 << 20) chunks.push(chunk);
      size += chunk.length;
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new IoError("JOB_TRAINER_FAILED", `trainer could not start: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        exitCode: code ?? (signal === null ? 1 : 128),
        log: Buffer.concat(chunks).toString("utf8"),
        durationMs: performance.now() - started,
      });
    });
  });
}

export interface LossCurve {
  /** Loss at the first reported training step (the untrained model). */
  first: number;
  /** Mean training loss at the end of each epoch. */
  epochs: number[];
  last: number;
}

/** Reads llama-finetune's progress lines (`train: … data=i/n loss=x±e …`, split by carriage returns). */
export function parseLlamaLoss(log: string): LossCurve | undefined {
  const train = [...log.matchAll(/train:[^\r\n]*?data=0*(\d+)\/0*(\d+) loss=([0-9.eE+-]+)/g)];
  if (train.length === 0) return undefined;
  const first = Number(train[0]?.[3]);
  const epochs = train.filter((m) => m[1] === m[2]).map((m) => Number(m[3]));
  const last = epochs[epochs.length - 1] ?? Number(train[train.length - 1]?.[3]);
  return { first, epochs, last };
}
