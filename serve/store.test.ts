// The serving store's rows read back as written: every field of a log, a leaf, a checkpoint and a usage row comes
// back from its column (the one column-to-field mapping, rowReader), nulls and flags included.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";

import { ServeStore, type CheckpointRow, type LeafRow } from "./store.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function openStore(): Promise<ServeStore> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "serve-store-"));
  dirs.push(dir);
  return ServeStore.open(dir);
}

const H = (c: string): string => c.repeat(64);

describe("ServeStore rows", () => {
  it("when a log, a leaf, a checkpoint and a usage row are written, it reads every field back", async () => {
    const store = await openStore();
    try {
      const log = store.transaction(() =>
        store.insertLog({
          logId: H("a"),
          publicKey: new Uint8Array([1, 2, 3]),
          servingManifest: H("b"),
          modelRoot: H("c"),
          modelName: "tiny",
          startedAt: "2026-02-02T10:00:00.000Z",
          bundle: new Uint8Array([4, 5]),
        }),
      );
      store.transaction(() => store.closeLog(H("a"), H("f"), "2026-02-02T11:00:00.000Z"));
      assert.deepEqual(store.log(H("a")), { ...log, closedAt: "2026-02-02T11:00:00.000Z", successor: H("f") });
      assert.deepEqual(store.logs(), [store.log(H("a"))]);

      const receipt: LeafRow = {
        logId: H("a"),
        leafIndex: 0,
        kind: "receipt",
        digest: H("d"),
        leafHash: new Uint8Array(32).fill(9),
        envelope: "{}",
        seq: 7,
        issuedAt: "2026-02-02T10:00:01.000Z",
        promptTokens: 12,
        completionTokens: 3,
        clientKeyId: "anonymous",
      };
      const usage: LeafRow = {
        ...receipt,
        leafIndex: 1,
        kind: "usage",
        digest: H("e"),
        seq: null,
        promptTokens: null,
        completionTokens: null,
        clientKeyId: null,
      };
      store.transaction(() => {
        store.insertLeaf(receipt);
        store.insertLeaf(usage);
      });
      assert.deepEqual(store.leafByDigest(H("d")), receipt);
      assert.deepEqual(store.leafAt(H("a"), 1), usage);

      const checkpoint: CheckpointRow = {
        logId: H("a"),
        treeSize: 2,
        rootHash: H("1"),
        note: "note",
        signerLogId: H("f"),
        createdAt: "2026-02-02T10:01:00.000Z",
        recovery: true,
        anchorTx: null,
        anchorBlock: null,
        anchorGas: null,
        anchoredAt: null,
        anchoredAfterRestart: false,
      };
      store.transaction(() => store.insertCheckpoint(checkpoint));
      assert.deepEqual(store.checkpoint(H("a"), 2), checkpoint);
      const anchor = { txHash: H("2"), block: 5, gasUsed: 51_000, at: "2026-02-02T10:01:05.000Z", afterRestart: true };
      store.markAnchored(H("a"), 2, anchor);
      assert.deepEqual(store.latestAnchored(H("a")), {
        ...checkpoint,
        anchorTx: anchor.txHash,
        anchorBlock: 5,
        anchorGas: 51_000,
        anchoredAt: anchor.at,
        anchoredAfterRestart: true,
      });

      const row = store.transaction(() =>
        store.insertUsage({
          digest: H("e"),
          meteredLogId: H("a"),
          leafLogId: H("a"),
          leafIndex: 1,
          fromSize: 0,
          treeSize: 1,
          periodEnd: "2026-02-02T10:01:00.000Z",
          createdAt: "2026-02-02T10:01:00.000Z",
        }),
      );
      assert.deepEqual(store.usage(H("e")), row);
      assert.deepEqual(store.lastUsageOf(H("a")), row);
    } finally {
      await store.close();
    }
  });
});
