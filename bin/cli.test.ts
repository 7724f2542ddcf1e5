import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { COMMAND_MODULES } from "./commands.ts";

const run = promisify(execFile);
const PROVENANT = new URL("./provenant", import.meta.url).pathname;

describe("provenant command table", () => {
  it("when a module is loaded, every command it exports starts with one of the words it declares", async () => {
    const seen = new Set<string>();
    for (const module of COMMAND_MODULES) {
      const commands = await module.load();
      assert.ok(commands.length > 0);
      for (const command of commands) {
        assert.ok(module.words.includes(command.path[0]!), `${command.path.join(" ")} not declared`);
        const key = command.path.join(" ");
        assert.ok(!seen.has(key), `${key} defined twice`);
        seen.add(key);
      }
    }
    // DESIGN §9 names these commands; they are interfaces.
    for (const name of [
      "snp verify",
      "hash",
      "oms verify",
      "oms sign",
      "bundle verify",
      "job audit",
      "job finetune",
      "verifier run",
      "lookup",
      "model tiny",
      "sim policy",
      "audit",
    ]) {
      assert.ok(seen.has(name), `missing command ${name}`);
    }
  });

  it("when the command is unknown, it exits 2 with a USAGE code", async () => {
    await assert.rejects(run(PROVENANT, ["no-such-command"]), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? "", /USAGE/);
      return true;
    });
  });

  it("when asked for help, it lists the commands and exits 0", async () => {
    const { stdout } = await run(PROVENANT, ["--help"]);
    assert.match(stdout, /provenant snp verify/);
    assert.match(stdout, /provenant verifier run/);
  });
});
