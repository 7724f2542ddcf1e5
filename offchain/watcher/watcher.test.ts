import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";

import { createTestRepo, git, pushRawEntries } from "../testing/git.ts";
import { pushHugeTree } from "../testing/hostile.ts";
import { GitRepo, parseLsTree, RecordSplitter } from "./index.ts";

const MAX = 64 * 1024;

describe("watcher", () => {
  const repo = createTestRepo();
  after(() => repo.cleanup());
  const watched = new GitRepo({
    source: repo.origin,
    mirrorDir: path.join(repo.root, "mirror.git"),
    maxBundleBytes: MAX,
  });

  it("when the repository has new commits, it lists only the new bundle files", async () => {
    repo.write("README.md", "hello");
    repo.write("bundles/a.provenance.json", '{"a":1}');
    repo.write("bundles/notes.txt", "not a bundle");
    const first = repo.commitAndPush("first");
    const head1 = await watched.fetch();
    assert.equal(head1, first);
    const scan1 = await watched.scan(head1, undefined);
    assert.equal(scan1.mode, "full");
    assert.deepEqual(
      scan1.bundles.map((b) => b.path),
      ["bundles/a.provenance.json"],
    );
    assert.deepEqual(scan1.refused, []);
    assert.equal(Buffer.from(await watched.readBlob(scan1.bundles[0]!.blob)).toString(), '{"a":1}');
    const many = await watched.readBlobs([scan1.bundles[0]!.blob, "0".repeat(40)]);
    assert.equal(Buffer.from(many.get(scan1.bundles[0]!.blob)!).toString(), '{"a":1}');
    assert.equal(many.size, 1, "a missing object is left out");

    repo.write("bundles/team/b.provenance.json", '{"b":2}');
    const second = repo.commitAndPush("second");
    const head2 = await watched.fetch();
    assert.equal(head2, second);
    const scan2 = await watched.scan(head2, head1);
    assert.equal(scan2.mode, "diff");
    assert.deepEqual(
      scan2.bundles.map((b) => b.path),
      ["bundles/team/b.provenance.json"],
    );
    assert.equal((await watched.scan(head2, head2)).mode, "unchanged");
  });

  it("when history is rewritten by a force-push, it scans the whole new tree", async () => {
    const before = repo.head();
    git(repo.work, ["reset", "--quiet", "--hard", "HEAD~1"]);
    repo.write("bundles/c.provenance.json", '{"c":3}');
    const rewritten = repo.commitAndPush("rewritten", { force: true });
    const head = await watched.fetch();
    assert.equal(head, rewritten);
    const scan = await watched.scan(head, before);
    assert.equal(scan.mode, "full");
    assert.deepEqual(scan.bundles.map((b) => b.path).sort(), [
      "bundles/a.provenance.json",
      "bundles/c.provenance.json",
    ]);
  });

  it("when the repository holds junk, it refuses each entry with a code and reads none of them", async () => {
    repo.write("bundles/huge.provenance.json", Buffer.alloc(MAX + 1, 0x41));
    repo.write("bundles/garbage.provenance.json", Buffer.from([0xff, 0x00, 0xfe, 0x01, 0x80]));
    repo.symlink("bundles/link.provenance.json", "/etc/passwd");
    repo.write("elsewhere/d.provenance.json", "{}");
    const base = repo.commitAndPush("junk");
    await watched.fetch();
    const raw = pushRawEntries(repo, [
      { name: Buffer.from("..", "latin1"), content: Buffer.from("{}") },
      { name: Buffer.from([0x62, 0xff, 0xfe, ...Buffer.from(".provenance.json")]), content: Buffer.from("{}") },
      { name: Buffer.from("tab\tname.provenance.json"), content: Buffer.from("{}") },
    ]);
    const head = await watched.fetch();
    assert.equal(head, raw);
    const scan = await watched.scan(head, base);
    const reasons = Object.fromEntries(scan.refused.map((r) => [r.path, `${r.code}:${r.reason}`]));
    assert.equal(reasons["bundles/huge.provenance.json"], undefined, "already seen in the previous diff");
    const full = await watched.scan(head, undefined);
    const all = Object.fromEntries(full.refused.map((r) => [r.path, `${r.code}:${r.reason}`]));
    assert.match(all["bundles/huge.provenance.json"] ?? "", /^BUNDLE_TOO_LARGE:/);
    assert.equal(all["bundles/link.provenance.json"], "REPO_ENTRY_REFUSED:symlink");
    assert.equal(all["elsewhere/d.provenance.json"], undefined, "only bundles/ is looked at");
    assert.equal(all["bundles/.."], "REPO_ENTRY_REFUSED:path-traversal");
    assert.equal(all["bundles/b\\xff\\xfe.provenance.json"], "REPO_ENTRY_REFUSED:name-not-utf8");
    assert.equal(all["bundles/tab\\x09name.provenance.json"], "REPO_ENTRY_REFUSED:control-character-in-name");
    // binary garbage is a plain file of a sane size: it goes to the pipeline, which rejects it as BUNDLE_MALFORMED
    assert.ok(full.bundles.some((b) => b.path === "bundles/garbage.provenance.json"));
    assert.ok(reasons["bundles/.."] !== undefined);
  });

  it("when the source cannot be fetched, it throws REPO_UNREADABLE", async () => {
    const missing = new GitRepo({
      source: path.join(repo.root, "nope.git"),
      mirrorDir: path.join(repo.root, "mirror2.git"),
      maxBundleBytes: MAX,
    });
    await assert.rejects(missing.fetch(), { code: "REPO_UNREADABLE" });
  });
});

describe("watcher errors", () => {
  it("when a URL with a token cannot be fetched, the error names the source without the token", async () => {
    const mirror = mkdtempSync(path.join(tmpdir(), "watcher-redact-"));
    const source = "http://user:s3cr3t-pass@127.0.0.1:9/org/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/repo.git?token=abc123";
    try {
      const repo = new GitRepo({ source, mirrorDir: path.join(mirror, "m.git"), maxBundleBytes: 1024 });
      await assert.rejects(repo.fetch(), (e: Error & { code?: string }) => {
        assert.equal(e.code, "REPO_UNREADABLE");
        assert.doesNotMatch(e.message, /s3cr3t|abc123|aaaaaaaaaaaaaaaaaaaaaaaa/);
        return true;
      });
    } finally {
      rmSync(mirror, { recursive: true, force: true });
    }
  });
});

describe("watcher bounds", () => {
  it("when git's output arrives in arbitrary chunks, records are split exactly as from the whole buffer", () => {
    const records = ["100644 blob aaaa 12\tbundles/a.provenance.json", "100644 blob bbbb 7\tbundles/é b", "", "x"];
    const whole = Buffer.from(records.map((r) => `${r}\0`).join(""));
    for (const size of [1, 2, 3, 7, 64]) {
      const got: string[] = [];
      const splitter = new RecordSplitter(0, (r) => got.push(r === undefined ? "<too long>" : r.toString()));
      for (let i = 0; i < whole.length; i += size) splitter.push(whole.subarray(i, i + size));
      splitter.end();
      assert.deepEqual(got, records, `chunks of ${size}`);
    }
    assert.equal(parseLsTree(whole)[0]?.size, 12);
    const long: string[] = [];
    const splitter = new RecordSplitter(0, (r) => long.push(r === undefined ? "<too long>" : r.toString()));
    splitter.push(Buffer.alloc(70_000, 0x61));
    splitter.push(Buffer.from("\0ok\0"));
    assert.deepEqual(long, ["<too long>", "ok"], "a record past 64 KiB is dropped, never held whole");
  });

  it("when a commit adds 18,000 files with long names outside bundles/ (ls-tree output over 64 MiB), the scan succeeds and finds the bundle", async () => {
    const repo = createTestRepo();
    try {
      repo.write("bundles/one.provenance.json", "{}");
      repo.commitAndPush("one bundle");
      pushHugeTree(repo, { dir: "docs", files: 18_000, pathBytes: 3800 });
      const watched = new GitRepo({
        source: repo.origin,
        mirrorDir: path.join(repo.root, "m.git"),
        maxBundleBytes: MAX,
      });
      const head = await watched.fetch();
      const scan = await watched.scan(head, undefined);
      assert.deepEqual(
        scan.bundles.map((b) => b.path),
        ["bundles/one.provenance.json"],
      );
      assert.equal(scan.entries, 1, "nothing outside bundles/ is looked at");
    } finally {
      repo.cleanup();
    }
  });

  it("when bundles/ itself holds 18,000 long-named files (streamed, not buffered), the scan succeeds and skips nothing", async () => {
    const repo = createTestRepo();
    try {
      repo.write("bundles/one.provenance.json", "{}");
      const first = repo.commitAndPush("one bundle");
      const watched = new GitRepo({
        source: repo.origin,
        mirrorDir: path.join(repo.root, "m.git"),
        maxBundleBytes: MAX,
      });
      await watched.fetch();
      pushHugeTree(repo, { dir: "bundles", files: 18_000, pathBytes: 3800 });
      const head = await watched.fetch();
      const full = await watched.scan(head, undefined);
      assert.equal(full.entries, 18_000);
      assert.deepEqual(full.bundles, []);
      assert.deepEqual(full.refused, []);
      const diff = await watched.scan(head, first);
      assert.equal(diff.mode, "diff");
      assert.equal(diff.entries, 18_000);
    } finally {
      repo.cleanup();
    }
  });

  it("when a scan passes its bounds, the rest is skipped with REPO_LIMIT_EXCEEDED and the refusals are summarised", async () => {
    const repo = createTestRepo();
    try {
      for (let i = 0; i < 8; i++) repo.write(`bundles/b${i}.provenance.json`, `{"i":${i}}`);
      for (let i = 0; i < 5; i++) repo.symlink(`bundles/l${i}.provenance.json`, "/etc/passwd");
      const head0 = repo.commitAndPush("eight bundles, five symlinks");
      const mirror = (limits: object, name: string) =>
        new GitRepo({ source: repo.origin, mirrorDir: path.join(repo.root, name), maxBundleBytes: MAX, limits });
      const entries = mirror({ maxEntries: 10 }, "m1.git");
      const head = await entries.fetch();
      assert.equal(head, head0);
      const a = await entries.scan(head, undefined);
      assert.equal(a.entries, 10);
      assert.ok(a.refused.some((r) => r.code === "REPO_LIMIT_EXCEEDED"));
      const bundles = mirror({ maxBundles: 3, maxRefusals: 2 }, "m2.git");
      await bundles.fetch();
      const b = await bundles.scan(head, undefined);
      assert.equal(b.bundles.length, 3);
      const reasons = b.refused.map((r) => `${r.code}:${r.reason}`);
      assert.equal(b.refused.filter((r) => r.reason === "symlink").length, 2);
      assert.ok(
        reasons.some((r) => /^REPO_ENTRY_REFUSED:3 more refused entries/.test(r)),
        reasons.join(),
      );
      assert.ok(
        reasons.some((r) => /^REPO_LIMIT_EXCEEDED:5 bundle/.test(r)),
        reasons.join(),
      );
      const bytes = mirror({ maxBytes: 16 }, "m3.git");
      await bytes.fetch();
      assert.equal((await bytes.scan(head, undefined)).bundles.length, 2);
      const files = await bytes.readFiles([
        { commit: head, path: "bundles/b1.provenance.json" },
        { commit: head, path: "bundles/nope.provenance.json" },
      ]);
      assert.deepEqual([...files.keys()], [`${head}:bundles/b1.provenance.json`]);
      assert.equal(Buffer.from(files.get(`${head}:bundles/b1.provenance.json`)!).toString(), '{"i":1}');
    } finally {
      repo.cleanup();
    }
  });
});
