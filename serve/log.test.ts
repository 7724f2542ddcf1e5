import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";

import { parseEnvelope } from "../lib/dsse/index.ts";
import { verifyConsistency } from "../lib/merkle/index.ts";
import {
  ZERO_DIGEST,
  clientKeyIdOf,
  generateServingKey,
  logIdOf,
  verifyReceipt,
  verifyReceiptBytes,
  verifyReceiptInclusion,
  verifyServingCheckpoint,
  verifyUsageStatement,
} from "../lib/receipt/index.ts";
import { isProvenantError } from "../lib/errors.ts";
import { ReceiptLog, SEQ_RESERVATION, type ServingIdentity } from "./log.ts";
import { ServeStore } from "./store.ts";
import { NOW, tickingClock } from "./testing.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "serve-log-"));
  dirs.push(dir);
  return dir;
}

function identity(startedAt: Date): ServingIdentity {
  const { privateKey, spki } = generateServingKey();
  return {
    logId: logIdOf(spki),
    privateKey,
    spki,
    servingManifest: logIdOf(spki).split("").reverse().join(""),
    modelRoot: "ab".repeat(32),
    modelName: "tiny.gguf",
    bundle: new TextEncoder().encode("{}"),
    startedAt,
  };
}

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);

function input(i: number, apiKey?: string) {
  return {
    operation: "text_completion" as const,
    salt: new Uint8Array(32).fill(i),
    request: enc(`{"prompt":"${i}"}`),
    response: enc(`answer ${i}`),
    promptTokens: 10 + i,
    completionTokens: 5,
    clientKeyId: clientKeyIdOf(apiKey),
  };
}

describe("receipt log", () => {
  it("when receipts are issued, seq and prevReceipt chain them and each verifies with S and its salt", async () => {
    const store = await ServeStore.open(dataDir());
    const id = identity(NOW);
    const log = await ReceiptLog.open(store, id, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(NOW),
    });
    const key = createPublicKey(id.privateKey);
    let prev = ZERO_DIGEST;
    for (let i = 0; i < 5; i++) {
      const receipt = await log.issue(input(i));
      const { statement, payload } = verifyReceipt(receipt.envelope, key);
      assert.equal(statement.predicate.seq, i);
      assert.equal(statement.predicate.prevReceipt, prev);
      assert.equal(receipt.leafIndex, i);
      verifyReceiptBytes(statement, input(i).salt, { request: input(i).request, response: input(i).response });
      verifyReceiptInclusion(payload, i, i + 1, log.current.tree.inclusionProof(i), log.current.tree.root());
      prev = receipt.digest;
    }
    await store.close();
  });

  it("when an epoch closes, a usage statement over its receipts is a leaf and S signs the checkpoint over it", async () => {
    const store = await ServeStore.open(dataDir());
    const id = identity(NOW);
    const log = await ReceiptLog.open(store, id, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(NOW),
    });
    const key = createPublicKey(id.privateKey);
    for (let i = 0; i < 3; i++) await log.issue(input(i, i === 0 ? undefined : "sk-client-1"));
    const checkpoint = (await log.closeEpoch())!;
    assert.equal(checkpoint.treeSize, 4);
    const note = verifyServingCheckpoint(checkpoint.note, id.logId, key);
    assert.equal(Buffer.from(note.rootHash).toString("hex"), checkpoint.rootHash);
    const usageLeaf = store.leafAt(id.logId, 3)!;
    assert.equal(usageLeaf.kind, "usage");
    const usage = verifyUsageStatement(parseEnvelope(JSON.parse(usageLeaf.envelope)), key).statement.predicate;
    assert.deepEqual(usage.receipts, {
      fromSize: 0,
      treeSize: 3,
      rootHash: Buffer.from(log.current.tree.root(3)).toString("hex"),
      count: 3,
      firstSeq: 0,
      lastSeq: 2,
    });
    assert.deepEqual(usage.meters, { "gen_ai.usage.input_tokens": 33, "gen_ai.usage.output_tokens": 15, requests: 3 });
    assert.deepEqual(
      usage.clients.map((c) => [c.clientKeyId, c.meters.requests]),
      [
        [clientKeyIdOf("sk-client-1"), 2],
        ["anonymous", 1],
      ].sort(),
    );
    assert.equal(usage.prevUsage, ZERO_DIGEST);
    // An empty epoch closes to nothing; the next one starts after the usage leaf and chains to it.
    assert.equal(await log.closeEpoch(), undefined);
    await log.issue(input(9));
    const second = (await log.closeEpoch())!;
    const usage2 = verifyUsageStatement(parseEnvelope(JSON.parse(store.leafAt(id.logId, 5)!.envelope)), key).statement
      .predicate;
    assert.equal(usage2.receipts.fromSize, 4);
    assert.equal(usage2.prevUsage, usageLeaf.digest);
    verifyConsistency(
      4,
      6,
      log.current.tree.consistencyProof(4, 6),
      Buffer.from(checkpoint.rootHash, "hex"),
      Buffer.from(second.rootHash, "hex"),
    );
    await store.close();
  });

  it("when the epoch's receipt count is reached, the epoch closes by itself", async () => {
    const store = await ServeStore.open(dataDir());
    const log = await ReceiptLog.open(store, identity(NOW), {
      epoch: { maxReceipts: 2, maxSeconds: 3600 },
      now: tickingClock(NOW),
    });
    const seen: number[] = [];
    log.onCheckpoint = (row) => seen.push(row.treeSize);
    await log.issue(input(1));
    await log.issue(input(2));
    await log.settle();
    assert.deepEqual(seen, [3]);
    await store.close();
  });

  it("when a new identity opens the store after a crash, seq goes on from the reserved mark, and the old log's tail is recovered by the new key", async () => {
    const dir = dataDir();
    const first = identity(NOW);
    let store = await ServeStore.open(dir);
    let log = await ReceiptLog.open(store, first, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(NOW),
    });
    await log.issue(input(0));
    await log.issue(input(1));
    await log.closeEpoch();
    const tail = await log.issue(input(2, "sk-x"));
    // The process dies here (no log.close()): receipt 2 is committed, never metered or checkpointed, and the seq
    // numbers reserved after it stay reserved.
    assert.equal(store.reservedThrough(), SEQ_RESERVATION);
    await store.close();

    store = await ServeStore.open(dir);
    assert.deepEqual(ReceiptLog.predecessorOf(store), { logId: first.logId, lastSeq: 2, lastReceipt: tail.digest });
    assert.equal(ReceiptLog.firstSeqOf(store), SEQ_RESERVATION);
    const second = identity(new Date(NOW.getTime() + 60_000));
    log = await ReceiptLog.open(store, second, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(new Date(NOW.getTime() + 60_000)),
    });
    const successorKey = createPublicKey(second.privateKey);
    // The old log: closed, with a checkpoint over all 4 leaves signed by the successor key.
    const oldState = log.logState(first.logId)!;
    assert.equal(oldState.row.successor, second.logId);
    const recovered = store.latestCheckpoint(first.logId)!;
    assert.equal(recovered.treeSize, 4);
    assert.equal(recovered.recovery, true);
    assert.equal(recovered.signerLogId, second.logId);
    verifyServingCheckpoint(recovered.note, first.logId, successorKey);
    // Its unmetered receipt is metered by a recovery usage statement, the new log's first leaf.
    const usage = verifyUsageStatement(parseEnvelope(JSON.parse(store.leafAt(second.logId, 0)!.envelope)), successorKey)
      .statement.predicate;
    assert.equal(usage.recovery, true);
    assert.equal(usage.logId, first.logId);
    assert.deepEqual([usage.receipts.fromSize, usage.receipts.treeSize, usage.receipts.count], [2, 4, 1]);
    assert.equal(usage.clients[0]!.clientKeyId, clientKeyIdOf("sk-x"));
    // The chain goes on across the restart: prevReceipt names the last receipt, the seq jumps to the reserved mark
    // (a visible gap: seq 3 … 1023 may have been returned by the dead life and lost, so they are never issued).
    const next = await log.issue(input(3));
    const { statement } = verifyReceipt(next.envelope, successorKey);
    assert.equal(statement.predicate.seq, SEQ_RESERVATION);
    assert.equal(statement.predicate.prevReceipt, tail.digest);
    assert.equal(next.leafIndex, 1);
    assert.equal(store.reservedThrough(), 2 * SEQ_RESERVATION);
    await store.close();
  });

  it("when the log is closed cleanly, the unused reservation is given back and the next life goes on without a gap", async () => {
    const dir = dataDir();
    let store = await ServeStore.open(dir);
    let log = await ReceiptLog.open(store, identity(NOW), {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(NOW),
    });
    await log.issue(input(0));
    const last = await log.issue(input(1));
    await log.close();
    assert.equal(store.reservedThrough(), 2);
    await assert.rejects(log.issue(input(2)), (error: unknown) => {
      assert.ok(isProvenantError(error));
      assert.equal(error.code, "SERVE_UNAVAILABLE");
      return true;
    });
    await store.close();

    store = await ServeStore.open(dir);
    const second = identity(new Date(NOW.getTime() + 60_000));
    log = await ReceiptLog.open(store, second, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(new Date(NOW.getTime() + 60_000)),
    });
    const next = verifyReceipt((await log.issue(input(2))).envelope, createPublicKey(second.privateKey)).statement;
    assert.equal(next.predicate.seq, 2);
    assert.equal(next.predicate.prevReceipt, last.digest);
    await store.close();
  });

  it("when an OS crash loses the last committed receipts, their seq numbers are still never issued again", async () => {
    const dir = dataDir();
    let store = await ServeStore.open(dir);
    const first = identity(NOW);
    const log = await ReceiptLog.open(store, first, {
      epoch: { maxReceipts: 100, maxSeconds: 60 },
      now: tickingClock(NOW),
      seqReservation: 4,
    });
    const returned = [];
    for (let i = 0; i < 6; i++) returned.push(await log.issue(input(i)));
    // Receipt 4 crossed the mark: 8 was reserved, durably, before it was handed out.
    assert.equal(store.reservedThrough(), 8);
    // What an OS crash can do with synchronous=NORMAL: the commits after the last fsync'd one (the reservation)
    // never reach the disk. Here: receipts 4 and 5, returned to their callers, are gone from the store.
    store.db.exec(`DELETE FROM leaves WHERE log_id = '${first.logId}' AND seq >= 4`);
    await store.close();

    store = await ServeStore.open(dir);
    assert.equal(ReceiptLog.predecessorOf(store)?.lastSeq, 3);
    assert.equal(ReceiptLog.firstSeqOf(store), 8);
    const second = identity(new Date(NOW.getTime() + 60_000));
    const next = await (
      await ReceiptLog.open(store, second, {
        epoch: { maxReceipts: 100, maxSeconds: 60 },
        now: tickingClock(new Date(NOW.getTime() + 60_000)),
        seqReservation: 4,
      })
    ).issue(input(9));
    assert.equal(next.seq, 8);
    assert.ok(!returned.some((r) => r.seq === next.seq));
    assert.equal(
      verifyReceipt(next.envelope, createPublicKey(second.privateKey)).statement.predicate.prevReceipt,
      returned[3]!.digest,
    );
    await store.close();
  });
});
