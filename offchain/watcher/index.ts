// Watches git repositories for provenance bundles. `git` itself fetches (a path or any URL it understands) into a
// private bare mirror, and the watcher reads trees and blobs with plumbing commands only: no checkout, no hooks,
// no filters, no submodules, nothing from the repository is ever executed. Entries that are not plain files under
// `bundles/` with a sane UTF-8 name, or that exceed the size limit, are refused with a code instead of read.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";

import { IoError, type ErrorCode } from "../../lib/errors.ts";
import { redactUrl } from "../chain/index.ts";

export const BUNDLE_SUFFIX = ".provenance.json";
export const BUNDLE_DIR = "bundles/";

/** A bundle file found at a commit: its bytes are read only when it passed every entry check. */
export interface FoundBundle {
  path: string;
  blob: string;
  size: number;
}

export interface RefusedEntry {
  /** The path as printable text (invalid UTF-8 bytes shown as \xNN). */
  path: string;
  code: ErrorCode;
  reason: string;
}

export interface ScanResult {
  commit: string;
  /** "diff" when the new head descends from the last processed commit, "full" after a force-push or on first run. */
  mode: "diff" | "full" | "unchanged";
  bundles: FoundBundle[];
  refused: RefusedEntry[];
}

export interface GitRepoOptions {
  /** A local path or any URL `git fetch` accepts. */
  source: string;
  /** Where the private bare mirror lives. */
  mirrorDir: string;
  /** Branch to follow; default: the source's HEAD. */
  branch?: string;
  maxBundleBytes: number;
  /** Per git command; a hung fetch is killed. */
  timeoutMs?: number;
}

/** Flags that keep git from running anything a repository could configure. */
const SAFE_CONFIG = [
  "-c",
  "core.hooksPath=/dev/null",
  "-c",
  "protocol.ext.allow=never",
  "-c",
  "protocol.file.allow=always",
  "-c",
  "core.fsmonitor=false",
  "-c",
  "submodule.recurse=false",
  "-c",
  "fetch.recurseSubmodules=false",
];

export class GitRepo {
  readonly source: string;
  readonly mirrorDir: string;
  readonly branch: string | undefined;
  readonly maxBundleBytes: number;
  readonly #timeoutMs: number;

  constructor(options: GitRepoOptions) {
    this.source = options.source;
    this.mirrorDir = options.mirrorDir;
    this.branch = options.branch;
    this.maxBundleBytes = options.maxBundleBytes;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** A stable directory name for a source, so that two sources never share a mirror. */
  static mirrorName(source: string): string {
    return createHash("sha256").update(source).digest("hex").slice(0, 16);
  }

  async git(args: string[], options: { maxBuffer?: number; cwd?: string } = {}): Promise<Buffer> {
    return await new Promise((resolve, reject) => {
      execFile(
        "git",
        [...SAFE_CONFIG, ...args],
        {
          cwd: options.cwd ?? this.mirrorDir,
          encoding: "buffer",
          maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
          timeout: this.#timeoutMs,
          env: {
            PATH: process.env.PATH ?? "/usr/bin:/bin",
            HOME: process.env.HOME ?? "/tmp",
            GIT_TERMINAL_PROMPT: "0",
            GIT_CONFIG_NOSYSTEM: "1",
            GIT_ASKPASS: "/bin/false",
            LC_ALL: "C",
          },
        },
        (error, stdout, stderr) => {
          if (error !== null) {
            // git prints the URL it was given, tokens in its path or query included: never pass those on
            // (the message reaches the logs and /healthz).
            const raw = Buffer.from(stderr).toString("utf8").trim() || error.message;
            const message = `git ${args[0] ?? ""} failed: ${this.#redact(raw)}`;
            reject(new IoError("REPO_UNREADABLE", message, { details: { source: redactUrl(this.source) } }));
          } else resolve(Buffer.from(stdout));
        },
      );
    });
  }

  /** Replaces the source URL (as given, and without its user info) in git's output by its redacted form. */
  #redact(text: string): string {
    const redacted = redactUrl(this.source);
    let out = text.split(this.source).join(redacted);
    try {
      const bare = new URL(this.source);
      bare.username = "";
      bare.password = "";
      out = out.split(bare.toString()).join(redacted).split(bare.toString().replace(/\/$/, "")).join(redacted);
    } catch {
      // a local path: nothing secret in it
    }
    return out;
  }

  /** Creates the mirror on first use and fetches; returns the commit at the followed branch. */
  async fetch(): Promise<string> {
    if (!existsSync(path.join(this.mirrorDir, "HEAD"))) {
      mkdirSync(this.mirrorDir, { recursive: true });
      await this.git(["init", "--bare", "--quiet", this.mirrorDir], { cwd: path.dirname(this.mirrorDir) });
    }
    // Forced refspec: a force-pushed branch replaces ours. Tags and other refs are not needed.
    await this.git([
      "fetch",
      "--quiet",
      "--no-tags",
      "--prune",
      "--force",
      "--no-recurse-submodules",
      "--",
      this.source,
      this.branch === undefined ? "+HEAD:refs/provenant/head" : `+refs/heads/${this.branch}:refs/provenant/head`,
    ]);
    return (await this.git(["rev-parse", "--verify", "refs/provenant/head^{commit}"])).toString("utf8").trim();
  }

  async isAncestor(older: string, newer: string): Promise<boolean> {
    try {
      await this.git(["merge-base", "--is-ancestor", older, newer]);
      return true;
    } catch {
      return false; // not an ancestor, or `older` no longer exists after a rewrite
    }
  }

  /**
   * Lists the bundle entries new at `commit` since `lastCommit`. When history was rewritten (lastCommit is not an
   * ancestor) the whole tree is scanned: bundles are keyed by content digest, so nothing is repeated or lost.
   */
  async scan(commit: string, lastCommit: string | undefined): Promise<ScanResult> {
    if (lastCommit === commit) return { commit, mode: "unchanged", bundles: [], refused: [] };
    const incremental = lastCommit !== undefined && (await this.isAncestor(lastCommit, commit));
    const entries = incremental ? await this.#diffEntries(lastCommit, commit) : await this.#treeEntries(commit);
    const result: ScanResult = { commit, mode: incremental ? "diff" : "full", bundles: [], refused: [] };
    for (const entry of entries) classifyEntry(entry, this.maxBundleBytes, result);
    return result;
  }

  /** Reads one blob, bounded: a blob larger than the limit is never loaded whole. */
  async readBlob(blob: string): Promise<Uint8Array> {
    return await this.git(["cat-file", "blob", blob], { maxBuffer: this.maxBundleBytes + 1 });
  }

  /**
   * Reads several blobs with one `git cat-file --batch` process (one process per bundle costs more than verifying
   * it). Callers keep the total size bounded; every blob was size-checked by the scan.
   */
  async readBlobs(blobs: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (blobs.length === 0) return out;
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn("git", [...SAFE_CONFIG, "cat-file", "--batch"], {
        cwd: this.mirrorDir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", GIT_CONFIG_NOSYSTEM: "1" },
        stdio: ["pipe", "pipe", "pipe"],
        timeout: this.#timeoutMs,
      });
      const chunks: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => chunks.push(c));
      child.on("error", (e) => reject(new IoError("REPO_UNREADABLE", `git cat-file: ${e.message}`, { cause: e })));
      child.on("close", (code) =>
        code === 0
          ? resolve(Buffer.concat(chunks))
          : reject(new IoError("REPO_UNREADABLE", `git cat-file --batch exited with ${code}`)),
      );
      // git may exit before reading all of stdin (a broken mirror): its EPIPE is reported by `close`, not thrown.
      child.stdin.on("error", () => undefined);
      child.stdin.end(`${blobs.join("\n")}\n`);
    });
    let offset = 0;
    while (offset < raw.length) {
      const eol = raw.indexOf(10, offset);
      if (eol === -1) break;
      const [sha = "", type = "", size = "0"] = raw.subarray(offset, eol).toString("latin1").split(" ");
      offset = eol + 1;
      if (type !== "blob") continue; // "<sha> missing": left out, the caller reports it
      const length = Number(size);
      out.set(sha, raw.subarray(offset, offset + length));
      offset += length + 1;
    }
    return out;
  }

  async #treeEntries(commit: string): Promise<RawEntry[]> {
    const out = await this.git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit]);
    return parseLsTree(out);
  }

  async #diffEntries(from: string, to: string): Promise<RawEntry[]> {
    // Added, modified, or type-changed entries; renames off so that a moved bundle is looked at again (its digest
    // makes it a known bundle anyway).
    const out = await this.git(["diff-tree", "-r", "-z", "--no-renames", "--diff-filter=AMT", from, to]);
    const changed = parseDiffTree(out);
    if (changed.length === 0) return [];
    // Sizes come from ls-tree, one call for the whole tree (cheaper than one cat-file per entry).
    const byPath = new Map(
      (await this.#treeEntries(to)).map((e) => [Buffer.from(e.pathBytes).toString("latin1"), e] as const),
    );
    return changed
      .map((c) => byPath.get(Buffer.from(c).toString("latin1")))
      .filter((e): e is RawEntry => e !== undefined);
  }
}

export interface RawEntry {
  mode: string;
  type: string;
  object: string;
  size: number | undefined;
  pathBytes: Uint8Array;
}

/** `git ls-tree -r -l -z`: "<mode> SP <type> SP <object> SP+ <size> TAB <path> NUL". */
export function parseLsTree(out: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  let start = 0;
  while (start < out.length) {
    const end = out.indexOf(0, start);
    const record = out.subarray(start, end === -1 ? out.length : end);
    start = end === -1 ? out.length : end + 1;
    const tab = record.indexOf(9);
    if (tab === -1) continue;
    const [mode = "", type = "", object = "", size = "-"] = record.subarray(0, tab).toString("latin1").split(/ +/);
    entries.push({
      mode,
      type,
      object,
      size: size === "-" ? undefined : Number(size),
      pathBytes: record.subarray(tab + 1),
    });
  }
  return entries;
}

/** `git diff-tree -r -z`: ":<modes> <objects> <status>" NUL "<path>" NUL, repeated. Returns the paths. */
export function parseDiffTree(out: Buffer): Uint8Array[] {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < out.length) {
    const end = out.indexOf(0, start);
    parts.push(out.subarray(start, end === -1 ? out.length : end));
    start = end === -1 ? out.length : end + 1;
  }
  const paths: Uint8Array[] = [];
  for (let i = 0; i < parts.length; i++) {
    const header = parts[i] as Buffer;
    if (header.length > 0 && header[0] === 0x3a /* ':' */) {
      const next = parts[i + 1];
      if (next !== undefined) paths.push(next);
      i++;
    }
  }
  return paths;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function printable(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) {
    text +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}

/** Sorts one tree entry into a bundle to read, a refusal, or nothing (files that are not bundles). */
export function classifyEntry(entry: RawEntry, maxBundleBytes: number, into: ScanResult): void {
  let name: string;
  try {
    name = utf8.decode(entry.pathBytes);
  } catch {
    if (printable(entry.pathBytes).includes(BUNDLE_DIR) || printable(entry.pathBytes).endsWith(BUNDLE_SUFFIX))
      into.refused.push({ path: printable(entry.pathBytes), code: "REPO_ENTRY_REFUSED", reason: "name-not-utf8" });
    return;
  }
  const underBundles = name.startsWith(BUNDLE_DIR);
  const looksLikeBundle = name.endsWith(BUNDLE_SUFFIX);
  if (!underBundles && !looksLikeBundle) return; // ordinary repository content: not ours to judge
  const shown = printable(entry.pathBytes);
  const refuse = (reason: string, code: ErrorCode = "REPO_ENTRY_REFUSED"): void => {
    into.refused.push({ path: shown, code, reason });
  };
  // Names are checked before the suffix so that "bundles/.." or a name with a newline is reported, not skipped.
  const segments = name.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..") || name.includes("\\")) return refuse("path-traversal");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return refuse("control-character-in-name");
  if (!underBundles) return refuse("outside-bundles-dir");
  if (!looksLikeBundle) return; // notes, READMEs, signatures beside bundles: ignored
  if (entry.mode === "120000") return refuse("symlink");
  if (entry.mode === "160000" || entry.type === "commit") return refuse("submodule");
  if (entry.type !== "blob" || (entry.mode !== "100644" && entry.mode !== "100755")) return refuse("not-a-file");
  if (entry.size === undefined) return refuse("unknown-size");
  if (entry.size > maxBundleBytes) return refuse(`larger than ${maxBundleBytes} bytes`, "BUNDLE_TOO_LARGE");
  into.bundles.push({ path: name, blob: entry.object, size: entry.size });
}
