import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import type { CliIo, Command } from "../../lib/cli/index.ts";
import { commands as jobCommands } from "../cli.ts";
import { commands } from "./cli.ts";

function captureIo(cwd: string): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTty: false, env: {}, cwd, out, err };
}

const find = (list: readonly Command[], path: string): Command => list.find((c) => c.path.join(" ") === path)!;

/** Runs a command with --json and returns its exit code and the codes of its errors. */
async function run(command: Command, argv: string[], cwd: string): Promise<{ exit: number; codes: string[] }> {
  const io = captureIo(cwd);
  const exit = await command.run([...argv, "--json"], io);
  const printed = JSON.parse(io.out.join("")) as { errors: { code: string }[] };
  return { exit, codes: printed.errors.map((e) => e.code) };
}

describe("trace commands (usage and refusals, no trainer needed)", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-trace-cli-"));
    await writeFile(join(dir, "data.txt"), "some text\n");
    await writeFile(join(dir, "base.gguf"), "GGUF");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when job finetune gets trace flags without --trace, or --trace with another trainer or context, it is USAGE", async () => {
    const finetune = find(jobCommands, "job finetune");
    const base = ["--base", "base.gguf", "--data", "data.txt"];
    const cases = [
      [...base, "--trainer", "llama", "--checkpoint-every", "4"],
      [...base, "--trainer", "llama", "--trace-store", "store"],
      [...base, "--trainer", "train {out}", "--trace"],
      [...base, "--trainer", "llama", "--trace", "--context", "64"],
      [...base, "--trainer", "llama", "--trace", "--checkpoint-every", "0"],
      [...base, "--trainer", "llama", "--trace", "--seed", "4294967296"],
    ];
    for (const argv of cases)
      assert.deepEqual(await run(finetune, argv, dir), { exit: 2, codes: ["USAGE"] }, argv.join(" "));
  });

  it("when audit spot-check is called badly, it is USAGE; an unverifiable bundle is refused with the pipeline's code", async () => {
    const spot = find(commands, "audit spot-check");
    await writeFile(join(dir, "bundle.json"), "{}");
    for (const argv of [
      ["bundle.json"],
      ["bundle.json", "--trace-dir", dir, "--rpc", "http://127.0.0.1:1"],
      ["bundle.json", "--trace-dir", dir, "--seed", "xyz"],
      ["bundle.json", "--trace-dir", dir, "--samples", "0"],
      ["bundle.json", "--trace-dir", dir, "--registry", "0x12", "--rpc", "http://127.0.0.1:1"],
      ["bundle.json", "--trace-dir", dir, "--seed", "00", "extra"],
    ])
      assert.deepEqual(await run(spot, argv, dir), { exit: 2, codes: ["USAGE"] }, argv.join(" "));
    assert.deepEqual(await run(spot, ["missing.json", "--trace-dir", dir], dir), { exit: 2, codes: ["IO_ERROR"] });
    const refused = await run(spot, ["bundle.json", "--trace-dir", dir, "--seed", "00"], dir);
    assert.equal(refused.exit, 1);
    assert.deepEqual(refused.codes, ["BUNDLE_MALFORMED"]);
  });

  it("when trace push has nothing to publish, it says TRACE_MISSING", async () => {
    const push = find(commands, "trace push");
    assert.deepEqual(await run(push, ["--store", "s"], dir), { exit: 2, codes: ["USAGE"] });
    const empty = await mkdtemp(join(dir, "empty-"));
    assert.deepEqual(await run(push, ["--trace-dir", empty, "--store", join(dir, "store")], dir), {
      exit: 2,
      codes: ["TRACE_MISSING"],
    });
  });
});
