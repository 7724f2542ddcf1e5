import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";

import { createTestRepo, git, pushRawEntries } from "../testing/git.ts";
import { GitRepo } from "./index.ts";

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
    assert.equal(all["elsewhere/d.provenance.json"], "REPO_ENTRY_REFUSED:outside-bundles-dir");
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
