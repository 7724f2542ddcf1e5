import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import type { CliIo } from "../lib/cli/index.ts";
import { commands } from "./cli.ts";

function capture(cwd: string): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTty: false, env: {}, cwd },
    out,
    err,
  };
}

function command(name: string) {
  const found = commands.find((c) => c.path.join(" ") === name);
  assert.ok(found, name);
  return found;
}

describe("enclave-job commands", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-ej-cli-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when model tiny runs with --json, it writes the model and adapter and prints their paths", async () => {
    const { io, out } = capture(dir);
    const code = await command("model tiny").run(["tiny.gguf", "--seed", "3", "--json"], io);
    assert.equal(code, 0);
    const result = JSON.parse(out.join(""));
    assert.deepEqual(Object.keys(result), ["ok", "model", "adapter", "seed", "size", "errors"]);
    assert.equal(result.seed, 3);
    assert.equal(result.size, "small");
    assert.ok((await stat(result.model)).size > 0);
    assert.ok((await stat(result.adapter)).size > 0);
  });

  it("when a command gets an extra positional argument, it exits 2 with USAGE", async () => {
    for (const [name, argv] of [
      ["model tiny", ["a.gguf", "b.gguf", "--json"]],
      ["job audit", ["stray", "--model", "m.gguf", "--suite", "builtin:mc", "--json"]],
      ["job finetune", ["stray", "--base", "m.gguf", "--data", "d", "--trainer", "llama", "--json"]],
    ] as const) {
      const { io, out } = capture(dir);
      assert.equal(await command(name).run([...argv], io), 2, name);
      assert.equal(JSON.parse(out.join("")).errors[0].code, "USAGE", name);
    }
  });

  it("when a flag is unknown or a value out of range, it exits 2 with USAGE before any work", async () => {
    for (const [name, argv] of [
      ["model tiny", ["a.gguf", "--size", "huge"]],
      ["model tiny", ["a.gguf", "--bogus"]],
      ["job audit", ["--model", "m.gguf", "--suite", "builtin:mc", "--threads", "0"]],
      ["job audit", ["--suite", "builtin:mc"]],
      ["job finetune", ["--base", "m.gguf", "--data", "d"]],
    ] as const) {
      const { io, err } = capture(dir);
      assert.equal(await command(name).run([...argv], io), 2, `${name} ${argv.join(" ")}`);
      assert.match(err.join(""), /^error USAGE: /, `${name} ${argv.join(" ")}`);
    }
  });
});
