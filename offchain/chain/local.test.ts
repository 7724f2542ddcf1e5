import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createLocalSender, createProvider, isSapphire, parsePrivateKey } from "./index.ts";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"; // Hardhat's public dev key #1

describe("local signer", () => {
  it("when the chain is Sapphire (23293/23294/23295), it wraps the signer; elsewhere it does not", async () => {
    const provider = createProvider("http://127.0.0.1:9", { timeoutMs: 500 });
    try {
      for (const [chainId, wrapped] of [
        [23293n, true],
        [23294n, true],
        [23295n, true],
        [31337n, false],
        [1n, false],
      ] as const) {
        assert.equal(isSapphire(chainId), wrapped);
        const sender = await createLocalSender(provider, KEY, { chainId });
        assert.equal(sender.wrapped, wrapped, `chain ${chainId}`);
        assert.equal(sender.address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
      }
    } finally {
      provider.destroy();
    }
  });

  it("when the key is not 32 bytes of hex, it refuses it with USAGE and does not echo it", () => {
    assert.equal(parsePrivateKey(KEY.slice(2)), KEY);
    assert.throws(
      () => parsePrivateKey("not-a-key-secret"),
      (error: Error & { code: string }) => error.code === "USAGE" && !error.message.includes("secret"),
    );
  });
});
