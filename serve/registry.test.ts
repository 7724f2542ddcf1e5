import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { createProvider } from "../offchain/chain/index.ts";
import { RegistryMonitor, RegistryReader } from "./registry.ts";
import { createServeWorld, NOW, type ServeWorld } from "./testing.ts";

let world: ServeWorld;
before(async () => {
  world = await createServeWorld("serve-registry");
});
// world is unset when the fixture failed to come up (it closed what it had started then).
after(async () => (world as ServeWorld | undefined)?.close());

describe("the registry gate", () => {
  it("when the model's records are audits, fine-tunes or serving records, admission follows --require and revocations", async () => {
    const provider = createProvider(world.chain.url);
    try {
      const reader = new RegistryReader(provider, world.registry.address);
      assert.equal((await reader.admission(world.modelRoot, "audit")).status, "not-recorded");
      const audit = await world.publishModelRecord(2);
      await world.publishServing("3e".repeat(32), "4f".repeat(32));
      assert.deepEqual(await reader.admission(world.modelRoot, "audit"), {
        status: "admitted",
        manifestDigest: audit,
        kind: "audit",
        revoked: [],
      });
      // A serving record never admits a model, and a fine-tune is needed for --require finetune.
      assert.equal((await reader.admission(world.modelRoot, "finetune")).status, "not-recorded");
      assert.equal((await reader.admission(world.modelRoot, "any")).manifestDigest, audit);
      const second = await world.publishModelRecord(2);
      await world.revoke(second, "bad run");
      // The newest audit is revoked, the older one still admits the model.
      assert.equal((await reader.admission(world.modelRoot, "audit")).manifestDigest, audit);
      await world.revoke(audit, "bad suite");
      const revoked = await reader.admission(world.modelRoot, "audit");
      assert.equal(revoked.status, "revoked");
      assert.deepEqual(revoked.revoked, [second, audit]);
      assert.equal(await reader.revocationReason(audit), "bad suite");
      assert.equal(await reader.logOf("4f".repeat(32)), "3e".repeat(32));
      assert.equal(await reader.logOf("5f".repeat(32)), null);
    } finally {
      provider.destroy();
    }
  });

  it("when the registry has not been read for longer than allowed, the gate closes (SERVE_REGISTRY_STALE) and a good check reopens it", async () => {
    const finetune = await world.publishModelRecord(1);
    const provider = createProvider(world.chain.url);
    let clock = NOW.getTime();
    const monitor = new RegistryMonitor({
      reader: new RegistryReader(provider, world.registry.address),
      modelRoot: world.modelRoot,
      require: "finetune",
      servingManifest: "6a".repeat(32),
      logId: "7b".repeat(32),
      intervalMs: 1_000,
      staleAfterMs: 30_000,
      now: () => new Date(clock),
    });
    try {
      // Never checked: staleness counts from the start.
      clock += 31_000;
      assert.equal(monitor.gate()?.code, "SERVE_REGISTRY_STALE");
      await monitor.check();
      assert.equal(monitor.gate(), null);
      assert.equal(monitor.admission?.manifestDigest, finetune);
      clock += 29_000;
      assert.equal(monitor.gate(), null);
      clock += 2_000;
      assert.equal(monitor.gate()?.code, "SERVE_REGISTRY_STALE");
      assert.equal(monitor.state.status, "stale");
      await monitor.check();
      assert.equal(monitor.gate(), null);
      // Revocation is final: later good checks do not reopen the gate.
      await world.revoke(finetune, "withdrawn");
      await monitor.check();
      assert.equal(monitor.gate()?.code, "MODEL_REVOKED");
      await monitor.check();
      assert.equal(monitor.state.status, "revoked");
    } finally {
      await monitor.stop();
      provider.destroy();
    }
  });
});
