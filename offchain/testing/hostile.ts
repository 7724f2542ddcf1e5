// Test helpers for hostile input (issue 13): trees too large for a buffered `git ls-tree`, bundles whose
// verification would cost too much (thousands of junk signatures), bundles with huge payloads, and bundles built
// around a report with chosen fields. Everything is real: real git objects, real simulator reports, real signatures.
import { git, type TestRepo } from "./git.ts";

/**
 * Pushes a commit that adds, under `dir`, `files` empty files whose paths are about `pathBytes` long (nested
 * directories of 250-byte names), built with mktree so that it takes seconds. 18,000 files of ~3,800 bytes make
 * `git ls-tree -r -l` print more than 64 MiB while the repository stays a few MB.
 */
export function pushHugeTree(repo: TestRepo, options: { dir: string; files: number; pathBytes: number }): string {
  const parent = repo.head();
  const empty = git(repo.work, ["hash-object", "-w", "--stdin"], "").toString("utf8").trim();
  const segment = "d".repeat(250);
  const depth = Math.max(0, Math.floor((options.pathBytes - options.dir.length - 250) / 251));
  const leafName = (i: number): string => `${String(i).padStart(6, "0")}-${"x".repeat(240)}`;
  const lines: string[] = [];
  for (let i = 0; i < options.files; i++) lines.push(`100644 blob ${empty}\t${leafName(i)}`);
  let tree = git(repo.work, ["mktree", "-z"], `${lines.join("\0")}\0`)
    .toString("utf8")
    .trim();
  for (let d = 0; d < depth; d++)
    tree = git(repo.work, ["mktree", "-z"], `040000 tree ${tree}\t${segment}\0`).toString("utf8").trim();
  const rootEntries = git(repo.work, ["ls-tree", "-z", parent])
    .toString("latin1")
    .split("\0")
    .filter((l) => l !== "" && !l.endsWith(`\t${options.dir}`));
  const root = git(
    repo.work,
    ["mktree", "-z"],
    Buffer.from([...rootEntries, `040000 tree ${tree}\t${options.dir}`, ""].join("\0"), "latin1"),
  )
    .toString("utf8")
    .trim();
  const commit = git(repo.work, ["commit-tree", root, "-p", parent, "-m", `huge tree under ${options.dir}`])
    .toString("utf8")
    .trim();
  git(repo.work, ["update-ref", "HEAD", commit]);
  git(repo.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
  return commit;
}
