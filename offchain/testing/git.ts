// Test helpers: a real bare "origin" repository and a working clone that pushes to it, with plumbing helpers to
// commit entries that porcelain would refuse (traversal names, invalid UTF-8, symlinks).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};

export function git(cwd: string, args: string[], input?: Buffer | string): Buffer {
  return execFileSync("git", ["-c", "init.defaultBranch=main", ...args], {
    cwd,
    env: ENV,
    input,
    maxBuffer: 256 * 1024 * 1024,
  });
}

export interface TestRepo {
  root: string;
  /** The bare repository the watcher fetches from. */
  origin: string;
  /** A working clone that commits and pushes. */
  work: string;
  write(relativePath: string, content: string | Uint8Array): void;
  symlink(relativePath: string, target: string): void;
  commitAndPush(message: string, options?: { force?: boolean }): string;
  head(): string;
  cleanup(): void;
}

export function createTestRepo(): TestRepo {
  const root = mkdtempSync(path.join(tmpdir(), "provenant-repo-"));
  const origin = path.join(root, "origin.git");
  const work = path.join(root, "work");
  git(root, ["init", "--bare", "--quiet", origin]);
  git(root, ["init", "--quiet", work]);
  git(work, ["remote", "add", "origin", origin]);
  return {
    root,
    origin,
    work,
    write(relativePath, content) {
      const file = path.join(work, relativePath);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    },
    symlink(relativePath, target) {
      const file = path.join(work, relativePath);
      mkdirSync(path.dirname(file), { recursive: true });
      symlinkSync(target, file);
    },
    commitAndPush(message, options = {}) {
      git(work, ["add", "-A"]);
      git(work, ["commit", "--quiet", "--allow-empty", "-m", message]);
      git(work, ["push", "--quiet", ...(options.force === true ? ["--force"] : []), "origin", "HEAD:refs/heads/main"]);
      return this.head();
    },
    head() {
      return git(work, ["rev-parse", "HEAD"]).toString("utf8").trim();
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Pushes a commit whose tree holds `bundles/<name>` for raw byte names that a checkout could not hold
 * ("..", invalid UTF-8), built with mktree. Returns the new commit.
 */
export function pushRawEntries(repo: TestRepo, entries: { name: Buffer; content: Buffer }[]): string {
  const parent = repo.head();
  const lines: Buffer[] = [];
  for (const e of entries) {
    const blob = git(repo.work, ["hash-object", "-w", "--stdin"], e.content).toString("utf8").trim();
    lines.push(Buffer.concat([Buffer.from(`100644 blob ${blob}\t`), e.name, Buffer.from([0])]));
  }
  const existingBundles = git(repo.work, ["ls-tree", "-z", `${parent}:bundles`]);
  const bundlesTree = git(repo.work, ["mktree", "-z", "--missing"], Buffer.concat([existingBundles, ...lines]))
    .toString("utf8")
    .trim();
  const rootEntries = git(repo.work, ["ls-tree", "-z", parent])
    .toString("latin1")
    .split("\0")
    .filter((l) => l !== "" && !l.endsWith("\tbundles"));
  const rootInput = Buffer.from([...rootEntries, `040000 tree ${bundlesTree}\tbundles`, ""].join("\0"), "latin1");
  const tree = git(repo.work, ["mktree", "-z"], rootInput).toString("utf8").trim();
  const commit = git(repo.work, ["commit-tree", tree, "-p", parent, "-m", "raw entries"]).toString("utf8").trim();
  git(repo.work, ["update-ref", "HEAD", commit]);
  git(repo.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
  return commit;
}
