// The services' shared edges: the logger redacts key material and RPC URLs, the local signer's key comes from a file or
// the environment, and a service runs until a signal stops it.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import type { CliIo } from "../lib/cli/index.ts";
import { createServiceLogger, readLocalSignerKey, runUntilSignal } from "./daemon.ts";

describe("service daemon helpers", () => {
  it("when a log line carries a key, a private key, an RPC URL or an authorization header, they are redacted", () => {
    const lines: string[] = [];
    const logger = createServiceLogger("provenant-test", "info", { write: (line: string) => void lines.push(line) });
    logger.info(
      { privateKey: "0xsecret", signer: { key: "k1" }, rpcUrl: "https://x/token", headers: { authorization: "B t" } },
      "hello",
    );
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(line.service, "provenant-test");
    assert.doesNotMatch(lines[0]!, /0xsecret|k1|token|B t/);
    assert.equal(line.privateKey, "[redacted]");
    assert.deepEqual(line.headers, { authorization: "[redacted]" });
  });

  it(
    "when SIGTERM arrives, the service is stopped, its end awaited and the signal listeners removed",
    { timeout: 10_000 },
    async () => {
      const logger = createServiceLogger("provenant-test", "silent");
      const before = { int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") };
      let stop: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (stop = resolve));
      let stopped = 0;
      const running = runUntilSignal({ stop: async () => void (stopped++, stop()), done }, logger);
      assert.equal(process.listenerCount("SIGTERM"), before.term + 1);
      // Emitting the event calls the listeners as a delivered signal would, without signalling the test runner.
      process.emit("SIGTERM", "SIGTERM");
      await running;
      assert.equal(stopped, 1);
      assert.deepEqual({ int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") }, before);
    },
  );

  it("when the local signer's key is in a file or PROVENANT_PRIVATE_KEY, it is read (the file first); neither is USAGE", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "provenant-daemon-"));
    try {
      const fileKey = "ab".repeat(32);
      await writeFile(path.join(dir, "key"), `0x${fileKey}\n`);
      const io = (env: NodeJS.ProcessEnv): CliIo => ({
        stdout: () => undefined,
        stderr: () => undefined,
        isTty: false,
        env,
        cwd: dir,
      });
      const envKey = "cd".repeat(32);
      assert.equal(await readLocalSignerKey(io({ PROVENANT_PRIVATE_KEY: envKey }), "key", "missing"), `0x${fileKey}`);
      assert.equal(
        await readLocalSignerKey(io({ PROVENANT_PRIVATE_KEY: envKey }), undefined, "missing"),
        `0x${envKey}`,
      );
      await assert.rejects(readLocalSignerKey(io({}), undefined, "no key given"), {
        code: "USAGE",
        message: "no key given",
      });
      await assert.rejects(readLocalSignerKey(io({ PROVENANT_PRIVATE_KEY: "12" }), undefined, "missing"), {
        code: "USAGE",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
