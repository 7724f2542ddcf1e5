// The spawner thread (spawner.ts): a command that cannot even be started is answered with its own error, and the
// thread lives on for the commands after it.
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { describe, it } from "node:test";

import { spawner } from "./spawner.ts";

const options = { cwd: tmpdir(), env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, timeoutMs: 30_000 };

describe("spawner", () => {
  it("when spawn throws at once (an argument with a NUL byte), that command gets its reason and the next one runs", async () => {
    const bad = await spawner.run("git", ["--version\0"], options, () => undefined);
    assert.equal(bad.code, null);
    assert.match(bad.error ?? "", /null bytes/);
    assert.doesNotMatch(bad.error ?? "", /spawner thread/);
    const chunks: Buffer[] = [];
    const good = await spawner.run("cat", [], { ...options, input: "still here" }, (chunk) => void chunks.push(chunk));
    assert.equal(good.code, 0);
    assert.equal(Buffer.concat(chunks).toString("utf8"), "still here");
  });
});
