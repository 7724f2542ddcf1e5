import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { pushBundle, redactUrls } from "./push.ts";

const exec = promisify(execFile);
const env = {
  ...process.env,
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@t",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@t",
};
const git = async (cwd: string, ...args: string[]): Promise<string> =>
  (await exec("git", args, { cwd, env })).stdout.trim();

describe("push", () => {
  let dir = "";
  let bare = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-push-test-"));
    bare = join(dir, "watched.git");
    await git(dir, "init", "--quiet", "--bare", "-b", "main", bare);
    await git(dir, "clone", "--quiet", bare, "seed");
    await writeFile(join(dir, "seed", "README"), "watched\n");
    await git(join(dir, "seed"), "add", "README");
    await git(join(dir, "seed"), "commit", "--quiet", "-m", "seed");
    await git(join(dir, "seed"), "push", "--quiet", "origin", "HEAD:main");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when someone else pushes first, it rebases and pushes, keeping both commits", async () => {
    let raced = false;
    const result = await pushBundle(
      bare,
      "2026-11-22-0123456789abcdef.provenance.json",
      new TextEncoder().encode("{}\n"),
      {
        beforePush: async (attempt) => {
          if (attempt !== 1) return;
          raced = true;
          await writeFile(join(dir, "seed", "other.txt"), "someone else\n");
          await git(join(dir, "seed"), "add", "other.txt");
          await git(join(dir, "seed"), "commit", "--quiet", "-m", "concurrent");
          await git(join(dir, "seed"), "push", "--quiet", "origin", "HEAD:main");
        },
      },
    );
    assert.ok(raced);
    assert.equal(result.attempts, 2);
    assert.equal(result.path, "bundles/2026-11-22-0123456789abcdef.provenance.json");
    const files = await git(dir, "--git-dir", bare, "ls-tree", "-r", "--name-only", "main");
    assert.deepEqual(files.split("\n").sort(), [
      "README",
      "bundles/2026-11-22-0123456789abcdef.provenance.json",
      "other.txt",
    ]);
    assert.equal(await git(dir, "--git-dir", bare, "rev-parse", "main"), result.commit);
  });

  it("when the repository cannot be cloned, it is PUSH_FAILED", async () => {
    await assert.rejects(pushBundle(join(dir, "nope.git"), "x.provenance.json", new Uint8Array()), {
      code: "PUSH_FAILED",
    });
  });

  it("when the clone fails, it is PUSH_FAILED naming the bundle path, with no URL credentials in the message", async () => {
    const repo = "http://alice:s3cret@127.0.0.1:9/nope.git";
    const error = await pushBundle(repo, "x.provenance.json", new Uint8Array(), {
      bundlePath: "/tmp/kept.provenance.json",
    }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; details: Record<string, unknown> },
    );
    assert.equal(error?.code, "PUSH_FAILED");
    assert.equal(error?.details.bundlePath, "/tmp/kept.provenance.json");
    assert.doesNotMatch(error?.message ?? "", /s3cret|alice/);
    assert.doesNotMatch(JSON.stringify(error?.details), /s3cret|alice/);
    assert.match(error?.message ?? "", /kept\.provenance\.json/);
  });

  it("when the bundle cannot be committed in the clone, it is PUSH_FAILED with details.bundlePath", async () => {
    // A file name that is not a valid path below bundles/ makes the write into the clone fail.
    const error = await pushBundle(bare, "sub/\0bad", new Uint8Array([1]), { bundlePath: "/tmp/b.json" }).then(
      () => undefined,
      (e: unknown) => e as { code: string; details: Record<string, unknown> },
    );
    assert.equal(error?.code, "PUSH_FAILED");
    assert.equal(error?.details.bundlePath, "/tmp/b.json");
  });

  it("when a URL carries user:password@, redactUrls strips it", () => {
    assert.equal(
      redactUrls("cannot clone https://bob:pw@example.com/r.git and ssh://git@host/x"),
      "cannot clone https://example.com/r.git and ssh://host/x",
    );
  });
});
