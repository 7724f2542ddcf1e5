// The building blocks of the `provenant` command: a command type, argument parsing on node:util's parseArgs,
// the exit-code convention of DESIGN §9 (0 ok, 1 a verification said no, 2 bad usage or unreadable input),
// `--json` output as one object with `ok` and `errors`, and a progress bar that only draws on a terminal.
import { parseArgs, type ParseArgsConfig } from "node:util";

import { IoError, isProvenantError, toErrorList, UsageError, type ErrorCode } from "../errors.ts";

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

/** Where a command writes; injectable so that tests capture output without spawning a process. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stdout is a terminal: progress bars and tables only then. */
  isTty: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface Command {
  /** The words that select it, e.g. ["snp", "verify"]. */
  path: readonly string[];
  summary: string;
  usage: string;
  /** The flags it parses (without the dashes; `json` where it takes --json): its usage line must name each. */
  flags?: readonly string[];
  run(argv: string[], io: CliIo): Promise<number>;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    isTty: Boolean(process.stdout.isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with strict checking; unknown flags become a UsageError (exit 2), not a stack trace. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\nusage: ${usage}`);
  }
}

/** Returns the one required positional argument or throws a UsageError naming it. */
export function requirePositional(positionals: string[], index: number, name: string, usage: string): string {
  const value = positionals[index];
  if (value === undefined || value === "") throw new UsageError(`missing <${name}>\nusage: ${usage}`);
  return value;
}

/** A required `--flag <value>`; its absence is a UsageError that shows the usage line. */
export function requiredOption(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === "") throw new UsageError(`missing --${flag}\nusage: ${usage}`);
  return value;
}

/** An optional integer flag (decimal digits only) within [min, max]; undefined when absent. */
export function integerOption(
  value: string | undefined,
  flag: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = range;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** An optional finite number flag within [min, max]; undefined when absent. */
export function numberOption(
  value: string | undefined,
  flag: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const { min = -Infinity, max = Infinity } = range;
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** Prints the `--json` object: always `ok` and `errors`, then the command's own fields. */
export function printJson(
  io: CliIo,
  ok: boolean,
  fields: Record<string, unknown>,
  errors: { code: ErrorCode; message: string }[] = [],
): void {
  io.stdout(`${JSON.stringify({ ok, ...fields, errors }, bigintReplacer)}\n`);
}

export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * Runs a command body and turns what it throws into the exit-code convention. Usage and I/O errors exit 2,
 * a refused proof or policy exits 1; anything uncoded is reported as INTERNAL with exit 2, never a stack trace.
 */
export async function runGuarded(io: CliIo, json: boolean, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const errors = toErrorList(error);
    const refused = isProvenantError(error) && (error.kind === "proof" || error.kind === "policy");
    if (json) printJson(io, false, {}, errors);
    else for (const e of errors) io.stderr(`error ${e.code}: ${e.message}\n`);
    return refused ? EXIT_REFUSED : EXIT_USAGE;
  }
}

/** A one-line progress bar on stderr for a terminal; a no-op when piped (DESIGN §9). */
export function progressBar(io: CliIo, label: string): { update(done: number, total: number): void; done(): void } {
  if (!io.isTty) return { update() {}, done() {} };
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const width = 30;
      const filled = Math.round(fraction * width);
      io.stderr(
        `\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%`,
      );
    },
    done() {
      io.stderr("\n");
    },
  };
}

/** Reads an input file named on the command line; a failure is IO_ERROR (exit 2) naming what it was. */
export async function readInputFile(io: CliIo, path: string, what: string): Promise<Buffer> {
  const { readFile } = await import("node:fs/promises");
  const { resolve } = await import("node:path");
  try {
    return await readFile(resolve(io.cwd, path));
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot read ${what} ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
}

/** An optional `--now <iso>` style flag as a Date; the caller's clock (`fallback`) when absent. */
export function dateOption(value: string | undefined, flag: string, fallback: () => Date = () => new Date()): Date {
  if (value === undefined) return fallback();
  const date = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime()))
    throw new UsageError(`--${flag} must be an ISO 8601 date, got ${JSON.stringify(value)}`);
  return date;
}

/** What a command's body returns: the verdict, the `--json` fields, and the text a terminal user reads. */
export interface CommandOutcome {
  /** False when a verification said no (exit 1 unless `exitCode` says otherwise). */
  ok: boolean;
  /** The command's own `--json` fields (besides `ok` and `errors`). */
  fields?: Record<string, unknown>;
  /** Coded reasons; printed as `errors` with `--json`, as `error CODE: message` lines on stderr otherwise. */
  errors?: { code: ErrorCode; message: string }[];
  /** What to print on stdout without `--json`. */
  text?: string;
  /** Overrides the exit code derived from `ok` (0 / 1). */
  exitCode?: number;
}

export interface CommandArgs<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O; args: string[]; allowPositionals: true; strict: true }>>["values"];
  /** Positionals, checked against `positionals` / `optionalPositionals` of the spec. */
  positionals: string[];
  json: boolean;
  io: CliIo;
}

export interface CommandSpec<O extends Options> {
  path: readonly string[];
  summary: string;
  usage: string;
  /** The command's flags; `--json` is added when `json` is not false. */
  options: O;
  /** Names of the required positional arguments, in order. */
  positionals?: readonly string[];
  /** Names of optional positional arguments after the required ones; more than these is a USAGE error. */
  optionalPositionals?: readonly string[];
  /** Whether the command takes `--json` (default true). */
  json?: boolean;
  run(args: CommandArgs<O>): Promise<CommandOutcome>;
}

/**
 * The one command skeleton: parse the flags strictly inside the guard, check the positional count, run the body,
 * then print the outcome as one `--json` object or as text, and turn what it throws into the exit-code convention.
 */
export function defineCommand<O extends Options>(spec: CommandSpec<O>): Command {
  const takesJson = spec.json !== false;
  const options = (takesJson ? { ...spec.options, json: { type: "boolean" } } : spec.options) as O;
  const required = spec.positionals ?? [];
  const optional = spec.optionalPositionals ?? [];
  return {
    path: spec.path,
    summary: spec.summary,
    usage: spec.usage,
    flags: Object.keys(options),
    async run(argv, io) {
      const json = takesJson && argv.includes("--json");
      return runGuarded(io, json, async () => {
        const { values, positionals } = parseCommandArgs(argv, options, spec.usage);
        required.forEach((name, i) => requirePositional(positionals, i, name, spec.usage));
        if (positionals.length > required.length + optional.length)
          throw new UsageError(
            `unexpected argument ${JSON.stringify(positionals[required.length + optional.length])}\nusage: ${spec.usage}`,
          );
        const outcome = await spec.run({ values: values as CommandArgs<O>["values"], positionals, json, io });
        const errors = outcome.errors ?? [];
        if (json) printJson(io, outcome.ok, outcome.fields ?? {}, errors);
        else {
          if (outcome.text !== undefined && outcome.text !== "")
            io.stdout(outcome.text.endsWith("\n") ? outcome.text : `${outcome.text}\n`);
          for (const e of errors) io.stderr(`error ${e.code}: ${e.message}\n`);
        }
        return outcome.exitCode ?? (outcome.ok ? EXIT_OK : EXIT_REFUSED);
      });
    },
  };
}
