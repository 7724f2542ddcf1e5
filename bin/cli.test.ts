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

  it("when any command gets an unknown flag or too many arguments, it exits 2 with USAGE before doing anything", async () => {
    // Every command is built by defineCommand, which parses and counts before the body runs: nothing is read,
    // started or written here.
    const err: string[] = [];
    const io = {
      stdout: () => {},
      stderr: (t: string) => void err.push(t),
      isTty: false,
      env: {},
      cwd: "/nonexistent",
    };
    for (const module of COMMAND_MODULES) {
      for (const command of await module.load()) {
        for (const argv of [["--no-such-flag"], ["a1", "a2", "a3", "a4", "a5", "a6"]]) {
          err.length = 0;
          const name = `${command.path.join(" ")} ${argv.join(" ")}`;
          assert.equal(await command.run([...argv], io), 2, name);
          assert.match(err.join(""), /^error USAGE: /, name);
        }
      }
    }
  });

  it("when a command parses a flag, its usage line (what --help prints) names it", async () => {
    for (const module of COMMAND_MODULES) {
      for (const command of await module.load()) {
        assert.ok(command.flags !== undefined, `${command.path.join(" ")} is not built by defineCommand`);
        for (const flag of command.flags) {
          const named = new RegExp(`(^|[\\s\\[(|])--${flag}(?![\\w-])`).test(command.usage);
          assert.ok(named, `provenant ${command.path.join(" ")}: --${flag} is missing from its usage line`);
        }
      }
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
