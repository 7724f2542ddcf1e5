import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { pushBundle } from "./push.ts";

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
});
