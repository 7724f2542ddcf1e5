import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { CliIo } from "../lib/cli/index.ts";
import { commands } from "./cli.ts";

const serve = commands[0]!;
const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const BASE = ["--model", "/nonexistent/tiny.gguf", "--rpc", "http://127.0.0.1:1", "--registry", `0x${"ab".repeat(20)}`];

async function run(argv: string[], env: NodeJS.ProcessEnv = { PROVENANT_PRIVATE_KEY: KEY }) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    isTty: false,
    env,
    cwd: "/tmp",
  };
  const code = await serve.run([...argv, "--json"], io);
  const printed = JSON.parse(out.join("")) as { ok: boolean; errors: { code: string; message: string }[] };
  return { code, printed };
}

describe("provenant serve (command line)", () => {
  it("when a flag is missing or out of range, it exits 2 with USAGE before starting anything", async () => {
    for (const argv of [
      ["--rpc", "http://127.0.0.1:1", "--registry", `0x${"ab".repeat(20)}`],
      [...BASE.slice(0, 4), "--registry", "0x1234"],
      [...BASE, "--require", "serving"],
      [...BASE, "--anchor", "ledger"],
      [...BASE, "--epoch-receipts", "0"],
      [...BASE, "--check-seconds", "1.5"],
      [...BASE, "--listen", "nowhere"],
      [...BASE, "--nonce", "abc"],
      [...BASE, "--gpu-rims", "none"],
    ]) {
      const { code, printed } = await run(argv);
      assert.equal(code, 2, argv.join(" "));
      assert.equal(printed.errors[0]!.code, "USAGE", argv.join(" "));
    }
  });

  it("when anchoring locally without a key, it exits 2 with USAGE naming where the key comes from", async () => {
    const { code, printed } = await run(BASE, {});
    assert.equal(code, 2);
    assert.match(printed.errors[0]!.message, /PROVENANT_PRIVATE_KEY or --key-file/);
  });

  it("when the chain cannot be reached, it exits 2 with RPC_UNAVAILABLE", async () => {
    const { code, printed } = await run(BASE);
    assert.equal(code, 2);
    assert.equal(printed.errors[0]!.code, "RPC_UNAVAILABLE");
  });
});
