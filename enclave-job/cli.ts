// The enclave job's commands: `provenant model tiny`, `provenant job audit`, `provenant job finetune`.
// Thin shells: parse flags, call the job, print a summary or `--json`; errors follow DESIGN §9 exit codes.
import { resolve } from "node:path";

import {
  parseCommandArgs,
  printJson,
  requirePositional,
  runGuarded,
  type CliIo,
  type Command,
} from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import { writeTinyModel, type TinySize } from "./model/tiny.ts";

const TINY_USAGE = "provenant model tiny <out.gguf> [--seed <n>] [--size small|medium] [--json]";

function parseInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value))
    throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

const modelTiny: Command = {
  path: ["model", "tiny"],
  summary: "write the small deterministic llama GGUF (and its LoRA adapter) used by tests and the demo",
  usage: TINY_USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const json = argv.includes("--json");
    return runGuarded(io, json, async () => {
      const { values, positionals } = parseCommandArgs(
        argv,
        { seed: { type: "string" }, size: { type: "string" }, json: { type: "boolean" } },
        TINY_USAGE,
      );
      const out = resolve(io.cwd, requirePositional(positionals, 0, "out.gguf", TINY_USAGE));
      const size = values.size ?? "small";
      if (size !== "small" && size !== "medium")
        throw new UsageError(`--size must be small or medium\nusage: ${TINY_USAGE}`);
      const seed = parseInteger(values.seed, "seed", 1);
      const paths = await writeTinyModel(out, { seed, size: size as TinySize });
      if (json) printJson(io, true, { model: paths.model, adapter: paths.adapter, seed, size });
      else io.stdout(`wrote ${paths.model}\nwrote ${paths.adapter} (LoRA adapter)\n`);
      return 0;
    });
  },
};

export const commands: readonly Command[] = [modelTiny];
