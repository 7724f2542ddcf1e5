import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { isProvenantError } from "../../lib/errors.ts";
import { withBuildLock } from "./llama-build.ts";

/** A lock as another process leaves it: the directory, a pid file with `pid`, dated long ago. */
async function leaveLock(dir: string, pid: string): Promise<void> {
  const lock = join(dir, ".build.lock");
  await mkdir(lock, { recursive: true });
  await writeFile(join(lock, "pid"), pid);
  const longAgo = new Date("2000-01-01T00:00:00Z");
  await utimes(lock, longAgo, longAgo);
}

describe("the llama.cpp build lock", () => {
  let root = "";
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "provenant-build-lock-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("when no one holds the lock, the body runs and the lock is gone after", async () => {
    const dir = join(root, "free");
    assert.equal(await withBuildLock(dir, {}, async () => "built"), "built");
    assert.deepEqual(await readdir(dir), []);
  });

  it("when the lock's owner has exited, it is taken over", async () => {
    const dir = join(root, "dead-owner");
    // A pid that existed and is gone: a child that has exited and been reaped.
    const child = spawnSync(process.execPath, ["-e", ""]);
    await leaveLock(dir, String(child.pid));
    assert.equal(await withBuildLock(dir, { lockTimeoutMs: -1 }, async () => "built"), "built");
  });

  it("when an old lock's pid file is empty (its owner died before writing it), it is stale, not held by pid 0", async () => {
    const dir = join(root, "empty-pid");
    await leaveLock(dir, "");
    assert.equal(await withBuildLock(dir, { lockTimeoutMs: -1 }, async () => "built"), "built");
  });

  it("when a live process holds the lock, waiting past the limit is JOB_TRAINER_FAILED and the body never runs", async () => {
    const dir = join(root, "held");
    await leaveLock(dir, String(process.pid));
    let ran = false;
    await assert.rejects(
      withBuildLock(dir, { lockTimeoutMs: -1 }, async () => {
        ran = true;
      }),
      (e: unknown) => isProvenantError(e) && e.code === "JOB_TRAINER_FAILED",
    );
    assert.equal(ran, false);
  });
});
