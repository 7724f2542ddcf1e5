// The job's git runner: `git` as a child process with a fixed committer identity and no terminal prompt, for the
// pushes of bundles (push.ts) and trace files (trace/store.ts). Only the files a caller adds are ever committed;
// URLs are redacted before they reach a message. (The watcher runs its own bounded, hardened git: offchain/watcher.)
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Who commits (the job, not whoever runs it), and never a prompt for credentials that would hang the job. */
const GIT_ENV = {
  GIT_AUTHOR_NAME: "provenant-job",
  GIT_AUTHOR_EMAIL: "provenant-job@localhost",
  GIT_COMMITTER_NAME: "provenant-job",
  GIT_COMMITTER_EMAIL: "provenant-job@localhost",
  GIT_TERMINAL_PROMPT: "0",
};

/** Runs `git args` in `cwd` and returns its trimmed stdout (at most 16 MiB); rejects on a non-zero exit. */
export async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await exec("git", args, { cwd, env: { ...process.env, ...GIT_ENV }, maxBuffer: 16 << 20 });
  return stdout.trim();
}

/** Removes `user:password@` (any userinfo) from every URL in `text`, so credentials never reach a message or log. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, "$1");
}
