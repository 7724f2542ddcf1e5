// The services' shared edges: the logger redacts key material and RPC URLs, and a service runs until a signal stops it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createServiceLogger, runUntilSignal } from "./daemon.ts";

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
});
