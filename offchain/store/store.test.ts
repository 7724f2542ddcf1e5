import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import type { AttestationRecord } from "../../lib/registry/record.ts";
import { isForward, Store } from "./index.ts";

const record: AttestationRecord = {
  modelHash: `0x${"11".repeat(32)}`,
  manifestDigest: `0x${"22".repeat(32)}`,
  parentModelHash: `0x${"00".repeat(32)}`,
  measurementHash: `0x${"33".repeat(32)}`,
  policyDigest: `0x${"44".repeat(32)}`,
  reportedTcb: "123",
  kind: 1,
};

describe("store", () => {
  it("when opened on a directory, it uses WAL and applies every migration once", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "store-"));
    try {
      const a = new Store({ dataDir: dir });
      const version = a.schemaVersion;
      assert.ok(version >= 1);
      assert.equal((a.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
      a.recordSighting("r", "c", "bundles/a.provenance.json", "d1");
      a.close();
      const b = new Store({ dataDir: dir });
      assert.equal(b.schemaVersion, version);
      assert.equal(b.getBundle("d1")?.status, "seen");
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when a bundle is seen twice, it is stored once with both sightings", () => {
    const store = new Store({ dataDir: ":memory:" });
    assert.equal(store.recordSighting("r", "c1", "bundles/a.provenance.json", "d1"), true);
    assert.equal(store.recordSighting("r", "c2", "bundles/b.provenance.json", "d1"), false);
    assert.equal(store.sightingsOf("d1").length, 2);
    assert.equal(store.countByStatus().seen, 1);
  });

  it("when state moves, it only moves forward", () => {
    const store = new Store({ dataDir: ":memory:" });
    store.recordSighting("r", "c", "p", "d1");
    assert.equal(store.setVerdict("d1", { ok: true, errors: [], manifestDigest: "m1", record }), true);
    // a second verdict (replayed poll) changes nothing
    assert.equal(store.setVerdict("d1", { ok: false, errors: [{ code: "BUNDLE_MALFORMED", message: "x" }] }), false);
    assert.equal(store.getBundle("d1")?.status, "accepted");
    assert.equal(store.markPublished(["m1"], "0xabc", 7), 1);
    assert.equal(store.markPublished(["m1"], "0xdef", 8), 0);
    assert.equal(store.markFailed(["m1"], { code: "PUBLISH_REVERTED", message: "no" }), 0);
    const row = store.getBundle("d1");
    assert.equal(row?.status, "published");
    assert.equal(row?.txHash, "0xabc");
    assert.equal(row?.block, 7);
    assert.equal(isForward("published", "accepted"), false);
    assert.equal(isForward("seen", "rejected"), true);
  });

  it("when two bundles carry the same manifest, it queues one record and publishes both rows", () => {
    const store = new Store({ dataDir: ":memory:" });
    for (const d of ["d1", "d2"]) {
      store.recordSighting("r", "c", `bundles/${d}.provenance.json`, d);
      store.setVerdict(d, { ok: true, errors: [], manifestDigest: "m1", record });
    }
    assert.equal(store.pendingRecords(10).length, 1);
    assert.equal(store.pendingCount(), 1);
    assert.equal(store.markPublished(["m1"], "0x1", 1), 2);
    assert.equal(store.pendingCount(), 0);
  });

  it("when bundles are rejected or entries refused, it counts them by code", () => {
    const store = new Store({ dataDir: ":memory:" });
    store.recordSighting("r", "c", "p", "d1");
    store.setVerdict("d1", {
      ok: false,
      errors: [
        { code: "POLICY_DEBUG", message: "" },
        { code: "POLICY_VMPL", message: "" },
      ],
    });
    assert.equal(store.recordRefusal("r", "c", "bundles/x", "REPO_ENTRY_REFUSED", "symlink"), true);
    assert.equal(store.recordRefusal("r", "c2", "bundles/x", "REPO_ENTRY_REFUSED", "symlink"), false);
    assert.deepEqual(store.rejectionsByCode(), { POLICY_DEBUG: 1, POLICY_VMPL: 1, REPO_ENTRY_REFUSED: 1 });
    assert.equal(store.listBundles({ status: "rejected" }).length, 1);
  });
});
