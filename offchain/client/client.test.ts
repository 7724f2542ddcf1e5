import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { id } from "ethers";

import { digestOf, item, startLookupFixture, type LookupFixture } from "../../test/lookup-fixture.ts";
import { decodeRegistryView, encodeRegistryView } from "./core.ts";
import { createRegistryClient, type RegistryClient, type RegistryEvent } from "./index.ts";

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: { code?: string }) => {
    assert.equal(error.code, code);
    return true;
  });
}

describe("registry client", () => {
  let f: LookupFixture;
  let client: RegistryClient;

  before(async () => {
    f = await startLookupFixture();
    client = await createRegistryClient({ rpcUrl: f.chain.url, address: f.address });
  });
  after(async () => {
    client.close();
    await f.close();
  });

  it("when a model has several records, lookup returns them newest first with the event details", async () => {
    const { modelHash, records } = await client.lookup(f.fineTunedModel);
    assert.equal(modelHash, f.fineTunedModel);
    assert.deepEqual(
      records.map((r) => r.manifestDigest),
      [f.items[2]!.manifestDigest, f.items[1]!.manifestDigest],
    );
    const [audit, finetune] = records;
    assert.equal(audit!.kind, "audit");
    assert.equal(audit!.parentModelHash, null);
    assert.equal(finetune!.kind, "finetune");
    assert.equal(finetune!.parentModelHash, f.baseModel);
    assert.equal(finetune!.measurementHash, f.items[1]!.measurementHash);
    assert.equal(finetune!.policyDigest, digestOf("policy"));
    assert.equal(finetune!.reportedTcb, f.items[1]!.reportedTcb);
    assert.ok(finetune!.publishedAt.getTime() > 0);
    assert.match(finetune!.txHash ?? "", /^0x[0-9a-f]{64}$/);
    assert.equal(finetune!.revoked, false);
  });

  it("when a record is revoked, lookup shows the flag and the reason", async () => {
    const { records } = await client.lookup(f.revokedModel);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.revoked, true);
    assert.equal(records[0]!.revocationReason, "evaluation harness was tampered with");
  });

  it("when a hash is unknown, lookup returns no records rather than an error", async () => {
    const result = await client.lookup(`0x${digestOf("never published").toUpperCase()}`);
    assert.deepEqual(result, { modelHash: digestOf("never published"), records: [] });
    assert.equal(await client.record(digestOf("no manifest")), null);
  });

  it("when asked by manifest digest, record and isRecorded answer from the chain", async () => {
    const r = await client.record(f.items[0]!.manifestDigest);
    assert.equal(r?.modelHash, f.baseModel);
    assert.equal(r?.kind, "audit");
    assert.equal(await client.isRecorded(f.baseModel, f.items[0]!.manifestDigest), true);
    assert.equal(await client.isRecorded(f.fineTunedModel, f.items[0]!.manifestDigest), false);
  });

  it("when a model is a fine-tune, lineage follows its parents back to the base model", async () => {
    const steps = await client.lineage(f.fineTunedModel);
    assert.deepEqual(
      steps.map((s) => [s.modelHash, s.parentModelHash]),
      [
        [f.fineTunedModel, f.baseModel],
        [f.baseModel, null],
      ],
    );
  });

  it("when the history is longer than a few log windows, lookup finds the events by block timestamp", async () => {
    await f.provider.send("hardhat_mine", ["0x3e8"]); // 1000 empty blocks
    const late = item(digestOf("late model"), "late audit", null);
    await f.publish([late]);
    await f.provider.send("hardhat_mine", ["0x3e8"]);
    const paged = await createRegistryClient({ rpcUrl: f.chain.url, address: f.address, logRange: 10 });
    try {
      const { records } = await paged.lookup(late.modelHash);
      assert.equal(records[0]?.measurementHash, late.measurementHash);
      const old = await paged.lookup(f.revokedModel);
      assert.equal(old.records[0]?.revocationReason, "evaluation harness was tampered with");
    } finally {
      paged.close();
    }
  });

  it("when watching, it reports new records and revocations", async () => {
    const events: RegistryEvent[] = [];
    const watched = item(digestOf("watched model"), "watched audit", null);
    // Watch from the block after the current head: no wait is needed for the watcher to find its starting point.
    // (eth_blockNumber itself: ethers' getBlockNumber may answer from a cache that is older than the last block.)
    const fromBlock = Number(await f.provider.send("eth_blockNumber", [])) + 1;
    const done = new Promise<void>((resolve) => {
      const watcher = client.watch(
        (event) => {
          events.push(event);
          if (events.length === 2) {
            watcher.stop();
            resolve();
          }
        },
        { intervalMs: 50, fromBlock },
      );
    });
    await f.publish([watched]);
    await f.revoke(watched.manifestDigest, "test");
    await done;
    assert.equal(events[0]?.type, "recorded");
    assert.equal(events[0]?.type === "recorded" && events[0].record.modelHash, watched.modelHash);
    assert.deepEqual(events[1]?.type === "revoked" && [events[1].manifestDigest, events[1].reason], [
      watched.manifestDigest,
      "test",
    ]);
  });

  it("when a serving record (kind 3) is published, lookup names it serving with its log id", async () => {
    const logId = digestOf("serving key SPKI");
    const served = item(digestOf("served model"), "serving statement", null, { kind: 3, parentModelHash: logId });
    await f.publish([served]);
    const { records } = await client.lookup(served.modelHash);
    assert.deepEqual(
      records.map((r) => [r.kind, r.kindCode, r.parentModelHash]),
      [["serving", 3, logId]],
    );
    // Lineage follows fine-tunes only: a serving record's log id is not a parent model.
    assert.deepEqual(
      (await client.lineage(served.modelHash)).map((s) => s.parentModelHash),
      [null],
    );
  });

  it("when the code at the address answers views with nothing, lookup throws REGISTRY_NOT_FOUND", async () => {
    const stub = "0x00000000000000000000000000000000000057a0";
    await f.provider.send("hardhat_setCode", [stub, "0x00"]); // STOP: every call returns empty data
    const wrong = await createRegistryClient({ rpcUrl: f.chain.url, address: stub });
    try {
      await rejectsWithCode(wrong.lookup(f.baseModel), "REGISTRY_NOT_FOUND");
      await rejectsWithCode(wrong.record(f.items[0]!.manifestDigest), "REGISTRY_NOT_FOUND");
    } finally {
      wrong.close();
    }
  });

  it("when a view is encoded, the ABI gives the selector and words, and names and arguments are type-checked", () => {
    const manifest = `0x${digestOf("m")}`;
    const selector = id("recordOf(bytes32)").slice(0, 10);
    assert.equal(encodeRegistryView("recordOf", [manifest]), selector + manifest.slice(2));
    assert.equal(
      encodeRegistryView("manifestsOf", [manifest, 2, 100n]),
      id("manifestsOf(bytes32,uint256,uint256)").slice(0, 10) +
        manifest.slice(2) +
        (2).toString(16).padStart(64, "0") +
        (100).toString(16).padStart(64, "0"),
    );
    const word = (n: number) => n.toString(16).padStart(64, "0");
    const [modelHash, publishedAt, kind, revoked] = decodeRegistryView(
      "recordOf",
      `${manifest}${word(1_700_000_000)}${word(3)}${word(1)}`,
    );
    assert.deepEqual([modelHash, publishedAt, kind, revoked], [manifest, 1_700_000_000n, 3n, true]);
    assert.throws(() => decodeRegistryView("recordOf", `0x${word(1)}`), { code: "BAD_DATA" });
    if (false as boolean) {
      // Compile-time checks only (tsc): a misspelt view, a wrong arity and a wrong type do not compile.
      // @ts-expect-error not a view of ModelRegistry
      encodeRegistryView("recordof", [manifest]);
      // @ts-expect-error recordOf takes one bytes32
      encodeRegistryView("recordOf", [manifest, manifest]);
      // @ts-expect-error offset is a uint256
      encodeRegistryView("manifestsOf", [manifest, "0", 1]);
    }
  });

  it("when a hash is not 32 bytes of hex, it throws HASH_MALFORMED", async () => {
    await rejectsWithCode(client.lookup("abc"), "HASH_MALFORMED");
    await rejectsWithCode(client.record(`${digestOf("x")}00`), "HASH_MALFORMED");
  });

  it("when the deployment names another chain, it throws CHAIN_MISMATCH", async () => {
    await rejectsWithCode(
      createRegistryClient({ rpcUrl: f.chain.url, address: f.address, chainId: 23295 }),
      "CHAIN_MISMATCH",
    );
  });

  it("when no contract lives at the address, it throws REGISTRY_NOT_FOUND", async () => {
    await rejectsWithCode(
      createRegistryClient({ rpcUrl: f.chain.url, address: "0x000000000000000000000000000000000000dEaD" }),
      "REGISTRY_NOT_FOUND",
    );
  });

  it("when the RPC endpoint is unreachable, it throws RPC_UNAVAILABLE", async () => {
    await rejectsWithCode(
      createRegistryClient({ rpcUrl: "http://127.0.0.1:9", address: f.address, timeoutMs: 2000 }),
      "RPC_UNAVAILABLE",
    );
  });

  it("when given a network name, it reads the address from deployments/<network>.json", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "provenant-deployments-"));
    await writeFile(path.join(dir, "testchain.json"), JSON.stringify({ address: f.address, chainId: f.chain.chainId }));
    const byName = await createRegistryClient({ network: "testchain", deploymentsDir: dir, rpcUrl: f.chain.url });
    try {
      assert.equal((await byName.lookup(f.baseModel)).records.length, 1);
    } finally {
      byName.close();
    }
    await rejectsWithCode(
      createRegistryClient({ network: "nowhere", deploymentsDir: dir, rpcUrl: f.chain.url }),
      "REGISTRY_NOT_FOUND",
    );
  });
});
