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

  it("when a verdict carries details (GPUs, runtime), the row keeps them; a verdict without has null", () => {
    const store = new Store({ dataDir: ":memory:" });
    store.recordSighting("r", "c", "p1", "d1");
    store.recordSighting("r", "c", "p2", "d2");
    const details = { gpus: [{ index: 0, arch: "hopper", verified: true }], runtime: { backend: "cuda" } };
    store.setVerdict("d1", { ok: true, errors: [], manifestDigest: "m1", record, details });
    store.setVerdict("d2", { ok: false, errors: [{ code: "GPU_NONCE_MISMATCH", message: "x" }] });
    assert.deepEqual(store.getBundle("d1")?.details, details);
    assert.equal(store.getBundle("d2")?.details, null);
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

  it("when verdicts are revised, fail or repeat a code, the kept counts equal a recount of every refused row", () => {
    const store = new Store({ dataDir: ":memory:" });
    const recount = () => {
      const counts: Record<string, number> = {};
      for (const status of ["rejected", "failed"] as const)
        for (const row of store.listBundles({ status, limit: 1000 }))
          for (const e of row.errors) counts[e.code] = (counts[e.code] ?? 0) + 1;
      return counts;
    };
    const unavailable = { code: "SNP_CERT_UNAVAILABLE" as const, message: "" };
    for (const d of ["a", "b", "c"]) store.recordSighting("r", "c", `bundles/${d}`, d);
    store.setVerdict("a", { ok: false, errors: [unavailable] });
    store.setVerdict("b", { ok: false, errors: [unavailable, { code: "POLICY_DEBUG", message: "" }, unavailable] });
    store.setVerdict("c", { ok: true, errors: [], manifestDigest: "m", record });
    assert.deepEqual(store.rejectionsByCode(), { SNP_CERT_UNAVAILABLE: 3, POLICY_DEBUG: 1 });
    // A recheck that accepts one and refuses the other for another reason; a publication that fails for good.
    assert.equal(store.requestRecheck("a"), "queued");
    assert.equal(store.requestRecheck("b"), "queued");
    assert.equal(store.reviseVerdict("a", { ok: true, errors: [], manifestDigest: "m2", record }), true);
    assert.equal(store.reviseVerdict("b", { ok: false, errors: [{ code: "POLICY_VMPL", message: "" }] }), true);
    store.markFailed(["m"], { code: "PUBLISH_FAILED", message: "reverted" });
    assert.deepEqual(store.rejectionsByCode(), recount());
    assert.deepEqual(store.rejectionsByCode(), { POLICY_VMPL: 1, PUBLISH_FAILED: 1 });
    store.close();
  });

  it("when a database from before the kept counts is opened, the counts are filled from its refused rows", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "store-"));
    try {
      const a = new Store({ dataDir: dir });
      a.recordSighting("r", "c", "bundles/a", "a");
      a.setVerdict("a", { ok: false, errors: [{ code: "POLICY_DEBUG", message: "" }] });
      a.recordRefusal("r", "c", "bundles/l", "REPO_ENTRY_REFUSED", "symlink");
      const version = a.schemaVersion;
      // Back to the schema before the counts (version 5): no table, no triggers.
      a.db.exec(`DROP TRIGGER bundles_codes_out; DROP TRIGGER bundles_codes_in; DROP TRIGGER refusals_codes;
                 DROP TABLE rejection_counts; DROP INDEX refusals_seen; PRAGMA user_version = ${version - 1}`);
      a.close();
      const b = new Store({ dataDir: dir });
      assert.equal(b.schemaVersion, version);
      assert.deepEqual(b.rejectionsByCode(), { POLICY_DEBUG: 1, REPO_ENTRY_REFUSED: 1 });
      b.recordRefusal("r", "c", "bundles/m", "REPO_ENTRY_REFUSED", "symlink");
      assert.deepEqual(b.rejectionsByCode(), { POLICY_DEBUG: 1, REPO_ENTRY_REFUSED: 2 });
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("store: certificate waits and rechecks", () => {
  it("when a bundle waits for its certificates, it stays seen with a retry time, counted attempts and a due list", () => {
    const store = new Store({ dataDir: ":memory:", now: () => new Date("2026-11-21T12:00:00Z") });
    try {
      store.recordSighting("r", "c", "bundles/w.provenance.json", "w1");
      assert.equal(store.noteCertificateWait("w1", new Date("2026-11-21T12:05:00Z"), "KDS down"), 1);
      assert.equal(store.noteCertificateWait("w1", new Date("2026-11-21T12:10:00Z"), "KDS down"), 2);
      const row = store.getBundle("w1")!;
      assert.deepEqual([row.status, row.certAttempts, row.retryAt], ["seen", 2, "2026-11-21T12:10:00.000Z"]);
      assert.equal(store.waitingCount(), 1);
      assert.deepEqual(store.dueForRetry(new Date("2026-11-21T12:09:00Z"), 10), []);
      assert.deepEqual(
        store.dueForRetry(new Date("2026-11-21T12:10:00Z"), 10).map((r) => r.digest),
        ["w1"],
      );
      store.setVerdict("w1", { ok: false, errors: [{ code: "SNP_CERT_UNAVAILABLE", message: "gave up" }] });
      assert.equal(store.getBundle("w1")!.retryAt, null);
      assert.equal(store.waitingCount(), 0);
      assert.equal(
        store.noteCertificateWait("w1", new Date("2026-11-21T12:15:00Z"), "late"),
        0,
        "a judged bundle does not wait",
      );
    } finally {
      store.close();
    }
  });

  it("when a recheck is asked, only an SNP_CERT_UNAVAILABLE refusal is revised, once, and never back to seen", () => {
    const store = new Store({ dataDir: ":memory:" });
    try {
      store.recordSighting("r", "c", "bundles/u.provenance.json", "u1");
      store.setVerdict("u1", { ok: false, errors: [{ code: "SNP_CERT_UNAVAILABLE", message: "gave up" }] });
      store.recordSighting("r", "c", "bundles/d.provenance.json", "d1");
      store.setVerdict("d1", { ok: false, errors: [{ code: "POLICY_DEBUG", message: "debug" }] });
      assert.equal(store.requestRecheck("nope"), "not-found");
      assert.equal(store.requestRecheck("d1"), "not-recheckable");
      assert.equal(
        store.reviseVerdict("u1", { ok: true, errors: [], manifestDigest: "m", record }),
        false,
        "not asked",
      );
      assert.equal(store.requestRecheck("u1"), "queued");
      assert.deepEqual(
        store.dueRechecks(10).map((r) => r.digest),
        ["u1"],
      );
      assert.equal(store.reviseVerdict("u1", { ok: true, errors: [], manifestDigest: "m", record }), true);
      const row = store.getBundle("u1")!;
      assert.deepEqual([row.status, row.recheckAt, row.errors], ["accepted", null, []]);
      assert.equal(store.reviseVerdict("u1", { ok: false, errors: [] }), false, "an accepted bundle stays accepted");
      assert.equal(store.requestRecheck("u1"), "not-recheckable");
      assert.deepEqual(store.dueRechecks(10), []);
    } finally {
      store.close();
    }
  });
});
