// Publishing a bundle: commit it under bundles/ in a clone of the watched repository and push, rebasing and
// retrying when someone else pushed first. Git itself does the work; only the file we add is ever committed.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { IoError } from "../lib/errors.ts";
import { writeFileAtomic } from "./bundle.ts";
import { git, redactUrls } from "./git.ts";

export { redactUrls };

export interface PushOptions {
  /** Attempts before giving up; default 5. */
  attempts?: number;
  /** Branch to push to; default the remote's HEAD branch. */
  branch?: string;
  message?: string;
  /** Where the bundle already lies on disk; every PUSH_FAILED names it in `details.bundlePath`. */
  bundlePath?: string;
  /** Called between the commit and the push (tests use it to push concurrently). */
  beforePush?: (attempt: number) => Promise<void>;
}

export interface PushResult {
  path: string;
  commit: string;
  attempts: number;
}

/**
 * Commits `bytes` as `bundles/<fileName>` in a fresh clone of `repo` and pushes it. Any failure (clone, checkout,
 * commit, rebase, push) is IoError PUSH_FAILED with `details.bundlePath`, its message free of URL credentials.
 */
export async function pushBundle(
  repo: string,
  fileName: string,
  bytes: Uint8Array,
  options: PushOptions = {},
): Promise<PushResult> {
  try {
    return await pushOnce(repo, fileName, bytes, options);
  } catch (error) {
    const where = options.bundlePath === undefined ? "" : `; the bundle is kept at ${options.bundlePath}`;
    const message =
      error instanceof IoError && error.code === "PUSH_FAILED" ? error.message : `push failed: ${String(error)}`;
    throw new IoError("PUSH_FAILED", redactUrls(`${message}${where}`), {
      cause: error,
      details: {
        ...(options.bundlePath === undefined ? {} : { bundlePath: options.bundlePath }),
        repo: redactUrls(repo),
      },
    });
  }
}

async function pushOnce(repo: string, fileName: string, bytes: Uint8Array, options: PushOptions): Promise<PushResult> {
  const attempts = options.attempts ?? 5;
  const dir = await mkdtemp(join(tmpdir(), "provenant-push-"));
  const relative = `bundles/${fileName}`;
  try {
    try {
      await git(dir, ["clone", "--quiet", repo, "repo"]);
    } catch (error) {
      throw new IoError("PUSH_FAILED", `cannot clone ${repo}: ${String(error)}`, { cause: error });
    }
    const work = join(dir, "repo");
    let branch = options.branch;
    if (branch === undefined) {
      branch = await git(work, ["symbolic-ref", "--short", "HEAD"]).catch(() => "main");
    }
    try {
      await git(work, ["checkout", "--quiet", "-B", branch]);
      await writeFileAtomic(join(work, relative), bytes);
      await git(work, ["add", "--", relative]);
      await git(work, [
        "commit",
        "--quiet",
        "-m",
        options.message ?? `Add provenance bundle ${fileName}`,
        "--",
        relative,
      ]);
    } catch (error) {
      throw new IoError("PUSH_FAILED", `cannot commit ${relative} in a clone of ${repo}: ${String(error)}`, {
        cause: error,
      });
    }
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await options.beforePush?.(attempt);
      try {
        await git(work, ["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
        return { path: relative, commit: await git(work, ["rev-parse", "HEAD"]), attempts: attempt };
      } catch (error) {
        lastError = error;
        // Someone pushed first: replay our one commit on top of theirs and try again.
        try {
          await git(work, ["pull", "--quiet", "--rebase", "origin", branch]);
        } catch (rebaseError) {
          await git(work, ["rebase", "--abort"]).catch(() => undefined);
          throw new IoError("PUSH_FAILED", `cannot rebase onto ${repo} ${branch}: ${String(rebaseError)}`, {
            cause: rebaseError,
          });
        }
      }
    }
    throw new IoError("PUSH_FAILED", `push to ${repo} failed after ${attempts} attempts: ${String(lastError)}`, {
      cause: lastError,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
