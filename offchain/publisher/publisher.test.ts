import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";

import type { JsonRpcProvider } from "ethers";

import { createLocalSender, createProvider, type TxSender } from "../chain/index.ts";
import {
  DEV_PRIVATE_KEYS,
  deployRegistry,
  startDevChain,
  type DeployedRegistry,
  type DevChain,
} from "../testing/chain.ts";
import type { AttestationRecord } from "../../lib/registry/record.ts";
import { Store } from "../store/index.ts";
import { backoffDelay, Publisher } from "./index.ts";

const h = (s: string): string => `0x${createHash("sha256").update(s).digest("hex")}`;

function record(name: string, overrides: Partial<AttestationRecord> = {}): AttestationRecord {
  return {
    modelHash: h(`model-${name}`),
    manifestDigest: h(`manifest-${name}`),
    parentModelHash: h("base"),
    measurementHash: h("measurement"),
    policyDigest: h("policy"),
    reportedTcb: "1234",
    kind: 1,
    ...overrides,
  };
}

function accept(store: Store, name: string, r: AttestationRecord = record(name)): AttestationRecord {
  store.recordSighting("repo", "c", `bundles/${name}.provenance.json`, `digest-${name}`);
  store.setVerdict(`digest-${name}`, { ok: true, errors: [], manifestDigest: r.manifestDigest, record: r });
  return r;
}

describe("publisher", () => {
  let chain: DevChain;
  let registry: DeployedRegistry;
  let provider: JsonRpcProvider;
  let sender: TxSender;
  before(async () => {
    chain = await startDevChain();
    registry = await deployRegistry(chain.url);
    provider = createProvider(chain.url);
    sender = await createLocalSender(provider, registry.publisherKey);
  });
  after(async () => {
    provider.destroy();
    registry.provider.destroy();
    await chain.close();
  });

  it("when records are accepted, it publishes them in one batch with the right fields", async () => {
    const store = new Store({ dataDir: ":memory:" });
    const a = accept(store, "a");
    const b = accept(store, "b", record("b", { kind: 2, parentModelHash: `0x${"00".repeat(32)}` }));
    const publisher = new Publisher({ store, provider, sender, registry: registry.address, maxBatch: 10 });
    const outcome = await publisher.publishBatch();
    assert.equal(outcome.published, 2);
    assert.equal(outcome.txHashes.length, 1);
    assert.ok(outcome.gasUsed > 0n);
    for (const r of [a, b]) {
      assert.equal(await registry.contract.getFunction("isRecorded")(r.modelHash, r.manifestDigest), true);
    }
    const [modelHash, , kind, revoked] = (await registry.contract.getFunction("recordOf")(b.manifestDigest)) as [
      string,
      bigint,
      bigint,
      boolean,
    ];
    assert.equal(modelHash, b.modelHash);
    assert.equal(Number(kind), 2);
    assert.equal(revoked, false);
    const row = store.getBundle("digest-a");
    assert.equal(row?.status, "published");
    assert.equal(row?.txHash, outcome.txHashes[0]);
    assert.ok((row?.block ?? 0) > 0);
  });

  it("when a record is already onchain (a restart after sending), it marks it published without sending", async () => {
    const first = new Store({ dataDir: ":memory:" });
    const r = accept(first, "c");
    await new Publisher({ store: first, provider, sender, registry: registry.address }).publishBatch();
    // a second store that never heard of the publication (the crash came before it was written)
    const second = new Store({ dataDir: ":memory:" });
    accept(second, "c", r);
    const outcome = await new Publisher({ store: second, provider, sender, registry: registry.address }).publishBatch();
    assert.equal(outcome.published, 0);
    assert.equal(outcome.alreadyRecorded, 1);
    assert.equal(outcome.txHashes.length, 0);
    assert.equal(second.getBundle("digest-c")?.status, "published");
    assert.equal(second.getBundle("digest-c")?.txHash, first.getBundle("digest-c")?.txHash);
    assert.equal(await registry.contract.getFunction("manifestCount")(r.modelHash), 1n);
  });

  it("when one record in a batch reverts, it splits the batch, publishes the others and fails that one", async () => {
    const store = new Store({ dataDir: ":memory:" });
    const good1 = accept(store, "g1");
    const bad = accept(store, "bad", record("bad", { parentModelHash: `0x${"00".repeat(32)}`, kind: 1 }));
    const good2 = accept(store, "g2");
    const outcome = await new Publisher({ store, provider, sender, registry: registry.address }).publishBatch();
    assert.equal(outcome.published, 2);
    assert.equal(outcome.failed, 1);
    const badRow = store.getBundle("digest-bad");
    assert.equal(badRow?.status, "failed");
    assert.equal(badRow?.errors[0]?.code, "PUBLISH_REVERTED");
    for (const r of [good1, good2])
      assert.equal(await registry.contract.getFunction("isRecorded")(r.modelHash, r.manifestDigest), true);
    assert.equal(await registry.contract.getFunction("isRecorded")(bad.modelHash, bad.manifestDigest), false);
  });

  it("when the RPC endpoint is down, it throws RPC_UNAVAILABLE and keeps the records accepted", async () => {
    const store = new Store({ dataDir: ":memory:" });
    accept(store, "down");
    const dead = createProvider("http://127.0.0.1:9", { timeoutMs: 1000 });
    const deadSender = { ...sender, kind: "local" as const, address: sender.address };
    await assert.rejects(
      new Publisher({ store, provider: dead, sender: deadSender, registry: registry.address }).publishBatch(),
      { code: "RPC_UNAVAILABLE" },
    );
    dead.destroy();
    assert.equal(store.getBundle("digest-down")?.status, "accepted");
    // back up: the next attempt publishes it
    const outcome = await new Publisher({ store, provider, sender, registry: registry.address }).publishBatch();
    assert.equal(outcome.published, 1);
  });

  it("when the signer may not publish (no PUBLISHER_ROLE), it keeps every record accepted and throws PUBLISH_FAILED", async () => {
    const store = new Store({ dataDir: ":memory:" });
    const records = ["norole-1", "norole-2", "norole-3"].map((name) => accept(store, name));
    const outsider = await createLocalSender(provider, DEV_PRIVATE_KEYS[3]);
    await assert.rejects(
      new Publisher({ store, provider, sender: outsider, registry: registry.address }).publishBatch(),
      (e: { code?: string; message?: string }) =>
        e.code === "PUBLISH_FAILED" && /ModelRegistryUnauthorizedPublisher/.test(e.message ?? ""),
    );
    for (const name of ["norole-1", "norole-2", "norole-3"]) {
      const row = store.getBundle(`digest-${name}`);
      assert.equal(row?.status, "accepted");
      assert.equal(row?.attempts, 1);
    }
    // once a signer with the role takes over, nothing was lost
    const outcome = await new Publisher({ store, provider, sender, registry: registry.address }).publishBatch();
    assert.equal(outcome.published, 3);
    for (const r of records)
      assert.equal(await registry.contract.getFunction("isRecorded")(r.modelHash, r.manifestDigest), true);
  });

  it("when retrying, it backs off exponentially with jitter and a cap", () => {
    assert.equal(
      backoffDelay(0, 100, 1000, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(0, 100, 1000, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(3, 100, 1000, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(10, 100, 1000, () => 1),
      1000,
    );
    assert.ok(backoffDelay(5, 100, 1000) >= 500);
  });
});
