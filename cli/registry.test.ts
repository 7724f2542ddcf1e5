// `provenant registry revoke` before it reaches a chain: the reason and the revoker key are checked first (exit 2,
// USAGE), the key read as `verifier run` and `serve` read theirs (offchain/daemon readLocalSignerKey). The revocation
// itself, on a real chain with a server that stops serving, is serve/serve.test.ts ("the off-switch").
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import type { CliIo } from "../lib/cli/index.ts";
import { commands } from "./registry.ts";

const work = mkdtempSync(join(tmpdir(), "registry-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

const DIGEST = "ab".repeat(32);
// No chain is reached in these cases: every one is refused before a connection is made.
const TARGET = ["--rpc", "http://127.0.0.1:9", "--registry", `0x${"11".repeat(20)}`, "--json"];

async function revoke(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; errors: string[] }> {
  let out = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: () => undefined, isTty: false, env, cwd: work };
  const code = await commands[0]!.run([...argv, ...TARGET], io);
  const json = JSON.parse(out) as { errors: { code: string }[] };
  return { code, errors: json.errors.map((e) => e.code) };
}

describe("provenant registry revoke (before the chain)", () => {
  it("when no revoker key is given (no PROVENANT_PRIVATE_KEY, no --key-file), it is USAGE", async () => {
    assert.deepEqual(await revoke([DIGEST, "--reason", "leaked"]), { code: 2, errors: ["USAGE"] });
  });

  it("when --key-file holds no key, or is missing, it is refused with exit 2 before any transaction", async () => {
    const empty = join(work, "empty.key");
    writeFileSync(empty, "");
    assert.deepEqual(await revoke([DIGEST, "--reason", "leaked", "--key-file", empty]), {
      code: 2,
      errors: ["USAGE"],
    });
    const missing = await revoke([DIGEST, "--reason", "leaked", "--key-file", join(work, "nope.key")]);
    assert.equal(missing.code, 2);
  });

  it("when the reason is empty, too long or holds control characters, it is USAGE", async () => {
    const env = { PROVENANT_PRIVATE_KEY: `0x${"01".repeat(32)}` };
    for (const reason of [" ", "x".repeat(1025), "a\u0000b"])
      assert.deepEqual(await revoke([DIGEST, "--reason", reason], env), { code: 2, errors: ["USAGE"] });
  });
});
