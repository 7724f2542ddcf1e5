// Watches git repositories for provenance bundles. `git` itself fetches (a path or any URL it understands) into a
// private bare mirror, and the watcher reads trees and blobs with plumbing commands only: no checkout, no hooks,
// no filters, no submodules, nothing from the repository is ever executed. Only `bundles/` is listed, git's output
// is parsed as it streams (no buffer ceiling), and each scan looks at a bounded number of entries and bytes: entries
// that are not plain files with a sane UTF-8 name, that exceed a limit, or that come after the per-scan bound are
// refused or skipped with a code instead of read.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";

import { IoError, type ErrorCode } from "../../lib/errors.ts";
import { redactUrl } from "../chain/index.ts";
import { spawner } from "./spawner.ts";

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
  /**
   * Refused entries, at most `maxRefusals` one by one, then one summary entry; entries past a per-scan bound are
   * summarised as REPO_LIMIT_EXCEEDED (path "bundles/").
   */
  refused: RefusedEntry[];
  /** Entries under bundles/ that were looked at. */
  entries: number;
}

/** Per-scan bounds: a commit (or the commits since the last poll) can make the watcher do only this much. */
export interface WatchLimits {
  /** Entries under bundles/ looked at (files of any kind); the rest are skipped (REPO_LIMIT_EXCEEDED). */
  maxEntries: number;
  /** Bundle files read; the rest are skipped (REPO_LIMIT_EXCEEDED). */
  maxBundles: number;
  /** Bytes of bundle files read; the bundles past it are skipped (REPO_LIMIT_EXCEEDED). */
  maxBytes: number;
  /** Longest path of a bundle entry, in bytes (REPO_ENTRY_REFUSED name-too-long). */
  maxPathBytes: number;
  /** Refused entries reported one by one; the rest are counted in one summary entry. */
  maxRefusals: number;
}

export const DEFAULT_WATCH_LIMITS: Readonly<WatchLimits> = {
  maxEntries: 50_000,
  maxBundles: 20_000,
  maxBytes: 2 * 1024 * 1024 * 1024,
  maxPathBytes: 1024,
  maxRefusals: 1000,
};

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
  /** Per-scan bounds (DEFAULT_WATCH_LIMITS for what is left out). */
  limits?: Partial<WatchLimits>;
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

/** The longest record kept while it streams in (a tree entry line); anything longer is skipped as name-too-long. */
const MAX_RECORD_BYTES = 64 * 1024;
/** Every listing is limited to this path (no glob characters in it, so git matches it literally). */
const PATHSPEC = [BUNDLE_DIR] as const;

/** Splits a byte stream into records ended by `separator`, holding at most MAX_RECORD_BYTES of a partial record. */
export class RecordSplitter {
  readonly #separator: number;
  readonly #onRecord: (record: Buffer | undefined) => void;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #overflow = false;

  /** `onRecord(undefined)` stands for a record that was too long to keep. */
  constructor(separator: number, onRecord: (record: Buffer | undefined) => void) {
    this.#separator = separator;
    this.#onRecord = onRecord;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(this.#separator, start);
      if (end === -1) break;
      this.#emit(chunk.subarray(start, end));
      start = end + 1;
    }
    if (start < chunk.length) this.#hold(chunk.subarray(start));
  }

  /** The stream ended: a last record without a separator is still a record. */
  end(): void {
    if (this.#pendingBytes > 0 || this.#overflow) this.#emit(Buffer.alloc(0));
  }

  #hold(part: Buffer): void {
    if (this.#overflow) return;
    if (this.#pendingBytes + part.length > MAX_RECORD_BYTES) {
      this.#overflow = true;
      this.#pending = [];
      this.#pendingBytes = 0;
      return;
    }
    this.#pending.push(Buffer.from(part)); // a copy: the chunk's memory is reused by the stream
    this.#pendingBytes += part.length;
  }

  #emit(tail: Buffer): void {
    if (this.#overflow || this.#pendingBytes + tail.length > MAX_RECORD_BYTES) {
      this.#overflow = false;
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#onRecord(undefined);
      return;
    }
    const record = this.#pending.length === 0 ? tail : Buffer.concat([...this.#pending, tail]);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#onRecord(record);
  }
}

export class GitRepo {
  readonly source: string;
  readonly mirrorDir: string;
  readonly branch: string | undefined;
  readonly maxBundleBytes: number;
  readonly limits: Readonly<WatchLimits>;
  readonly #timeoutMs: number;

  constructor(options: GitRepoOptions) {
    this.source = options.source;
    this.mirrorDir = options.mirrorDir;
    this.branch = options.branch;
    this.maxBundleBytes = options.maxBundleBytes;
    this.limits = { ...DEFAULT_WATCH_LIMITS, ...options.limits };
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** A stable directory name for a source, so that two sources never share a mirror. */
  static mirrorName(source: string): string {
    return createHash("sha256").update(source).digest("hex").slice(0, 16);
  }

  /**
   * Runs git and hands its stdout to `onData` as it streams; `onData` returning "stop" ends the command early (a
   * bound was reached: not an error). Standard input, when given, is written and closed. REPO_UNREADABLE on a
   * non-zero exit or after the time limit, with git's error text redacted.
   */
  async stream(
    args: readonly string[],
    onData: (chunk: Buffer) => void | "stop",
    options: { cwd?: string; input?: string } = {},
  ): Promise<void> {
    // Started from the spawner thread: forking a large process blocks the forking thread for tens of milliseconds,
    // which must never be the thread that answers /healthz.
    let thrown: unknown;
    const guarded = (chunk: Buffer): void | "stop" => {
      try {
        return onData(chunk);
      } catch (error) {
        thrown = error;
        return "stop";
      }
    };
    const result = await spawner.run(
      "git",
      [...SAFE_CONFIG, ...args],
      {
        cwd: options.cwd ?? this.mirrorDir,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: process.env.HOME ?? "/tmp",
          GIT_TERMINAL_PROMPT: "0",
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_ASKPASS: "/bin/false",
          LC_ALL: "C",
        },
        ...(options.input === undefined ? {} : { input: options.input }),
        timeoutMs: this.#timeoutMs,
      },
      guarded,
    );
    if (thrown !== undefined)
      throw new IoError(
        "REPO_UNREADABLE",
        `git ${args[0] ?? ""}: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
        {
          details: { source: redactUrl(this.source) },
        },
      );
    if (result.stopped && result.error === undefined) return;
    if (result.code === 0 && !result.timedOut && result.error === undefined) return;
    const reason = result.timedOut
      ? `timed out after ${this.#timeoutMs} ms`
      : (result.error ?? (result.stderr.trim() || `exit code ${String(result.code)}`));
    // git prints the URL it was given, tokens in its path or query included: never pass those on
    // (the message reaches the logs and /healthz).
    throw new IoError("REPO_UNREADABLE", `git ${args[0] ?? ""} failed: ${this.#redact(reason)}`, {
      details: { source: redactUrl(this.source) },
    });
  }

  /** Runs git and returns its (small) output; more than `maxBytes` is REPO_UNREADABLE. */
  async git(args: readonly string[], options: { cwd?: string; maxBytes?: number } = {}): Promise<Buffer> {
    const max = options.maxBytes ?? 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    await this.stream(
      args,
      (chunk) => {
        size += chunk.length;
        if (size > max) throw new Error(`more than ${max} bytes of output`);
        chunks.push(chunk);
      },
      options.cwd === undefined ? {} : { cwd: options.cwd },
    );
    return Buffer.concat(chunks);
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
    return (
      this.#headFromDisk() ??
      (await this.git(["rev-parse", "--verify", "refs/provenant/head^{commit}"])).toString("utf8").trim()
    );
  }

  /**
   * The fetched head read from the mirror's ref files (loose, then packed-refs): one git process less per poll.
   * Undefined when neither holds it (rev-parse then answers).
   */
  #headFromDisk(): string | undefined {
    const ref = "refs/provenant/head";
    try {
      const loose = readFileSync(path.join(this.mirrorDir, ref), "latin1").trim();
      if (/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(loose)) return loose;
    } catch {
      // not a loose ref
    }
    try {
      for (const line of readFileSync(path.join(this.mirrorDir, "packed-refs"), "latin1").split("\n")) {
        const [object = "", name] = line.split(" ");
        if (name === ref && /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(object)) return object;
      }
    } catch {
      // no packed refs
    }
    return undefined;
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
   * Only `bundles/` is listed, and at most `limits.maxEntries` entries of it are looked at.
   */
  async scan(commit: string, lastCommit: string | undefined): Promise<ScanResult> {
    if (lastCommit === commit) return { commit, mode: "unchanged", bundles: [], refused: [], entries: 0 };
    const incremental = lastCommit !== undefined && (await this.isAncestor(lastCommit, commit));
    const result: ScanResult = { commit, mode: incremental ? "diff" : "full", bundles: [], refused: [], entries: 0 };
    const bound = new ScanBound(this.limits, this.maxBundleBytes, result);
    if (incremental) await this.#diffEntries(lastCommit, commit, bound);
    else await this.#treeEntries(commit, bound);
    bound.finish();
    return result;
  }

  async #treeEntries(commit: string, bound: ScanBound): Promise<void> {
    let full = false;
    const splitter = new RecordSplitter(0, (record) => {
      if (full) return;
      if (record === undefined) bound.tooLong();
      else {
        const entry = parseLsTreeRecord(record);
        if (entry !== undefined) full = !bound.add(entry);
      }
    });
    await this.stream(["ls-tree", "-r", "-l", "-z", "--full-tree", commit, "--", ...PATHSPEC], (chunk) => {
      splitter.push(chunk);
      return full ? "stop" : undefined;
    });
    if (!full) splitter.end();
  }

  async #diffEntries(from: string, to: string, bound: ScanBound): Promise<void> {
    // Added, modified, or type-changed entries; renames off so that a moved bundle is looked at again (its digest
    // makes it a known bundle anyway). The raw format gives the new mode and object; sizes come from one
    // `cat-file --batch-check` for the blobs that may be bundles.
    const changed: RawEntry[] = [];
    let header: { mode: string; object: string } | undefined;
    let full = false;
    const splitter = new RecordSplitter(0, (record) => {
      if (full) return;
      if (header === undefined) {
        // ":<old mode> <new mode> <old object> <new object> <status>"
        const fields = record?.toString("latin1").slice(1).split(" ");
        if (record !== undefined && record[0] === 0x3a && fields !== undefined && fields.length >= 5)
          header = { mode: fields[1]!, object: fields[3]! };
        return;
      }
      const h = header;
      header = undefined;
      if (record === undefined) return void bound.tooLong();
      if (changed.length >= bound.limits.maxEntries) {
        bound.overflow();
        full = true;
        return;
      }
      changed.push({ mode: h.mode, type: typeOfMode(h.mode), object: h.object, size: undefined, pathBytes: record });
    });
    await this.stream(
      ["diff-tree", "-r", "-z", "--no-renames", "--diff-filter=AMT", from, to, "--", ...PATHSPEC],
      (chunk) => {
        splitter.push(chunk);
        return full ? "stop" : undefined;
      },
    );
    if (!full) splitter.end();
    const blobs = changed.filter((e) => e.type === "blob" && looksLikeBundle(e.pathBytes));
    const sizes = await this.#objectSizes(blobs.map((e) => e.object));
    for (const entry of changed) {
      const known = sizes.get(entry.object);
      if (!bound.add({ ...entry, size: known?.type === "blob" ? known.size : undefined })) break;
    }
  }

  /** `git cat-file --batch-check` for these objects: their type and size (objects it lacks are left out). */
  async #objectSizes(objects: readonly string[]): Promise<Map<string, { type: string; size: number }>> {
    const out = new Map<string, { type: string; size: number }>();
    if (objects.length === 0) return out;
    const splitter = new RecordSplitter(10, (record) => {
      const [object = "", type = "", size = ""] = record?.toString("latin1").split(" ") ?? [];
      if (type !== "missing" && /^\d{1,15}$/.test(size)) out.set(object, { type, size: Number(size) });
    });
    await this.stream(["cat-file", "--batch-check"], (chunk) => splitter.push(chunk), {
      input: `${objects.join("\n")}\n`,
    });
    splitter.end();
    return out;
  }

  /**
   * The blob at `<commit>:<path>` for each of these files (a bundle waiting for its certificates is read again this
   * way); files gone, or larger than the bundle limit, are left out.
   */
  async readFiles(files: readonly { commit: string; path: string }[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const names = files
      .map((f) => `${f.commit}:${f.path}`)
      .filter((name) => !name.includes("\n") && /^[0-9a-f]{40,64}:/.test(name));
    if (names.length === 0) return out;
    const resolved: { type: string; object: string; size: number }[] = [];
    const splitter = new RecordSplitter(10, (record) => {
      const [object = "", type = "", size = ""] = record?.toString("latin1").split(" ") ?? [];
      resolved.push({ object, type, size: /^\d{1,15}$/.test(size) ? Number(size) : Infinity });
    });
    await this.stream(["cat-file", "--batch-check"], (chunk) => splitter.push(chunk), {
      input: `${names.join("\n")}\n`,
    });
    splitter.end();
    const wanted = new Map<string, string>();
    resolved.forEach((r, i) => {
      if (r.type === "blob" && r.size <= this.maxBundleBytes && i < names.length) wanted.set(r.object, names[i]!);
    });
    const blobs = await this.readBlobs([...wanted.keys()]);
    for (const [object, name] of wanted) {
      const bytes = blobs.get(object);
      if (bytes !== undefined) out.set(name, bytes);
    }
    return out;
  }

  /** Reads one blob, bounded: a blob larger than the limit is never loaded whole. */
  async readBlob(blob: string): Promise<Uint8Array> {
    const bytes = (await this.readBlobs([blob])).get(blob);
    if (bytes === undefined) throw new IoError("REPO_UNREADABLE", `blob ${blob} is missing or too large`);
    return bytes;
  }

  /**
   * Reads several blobs with one `git cat-file --batch` process (one process per bundle costs more than verifying
   * it), parsed as it streams. Callers keep the total size bounded; a blob larger than the bundle limit is skipped
   * without being held.
   */
  async readBlobs(blobs: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (blobs.length === 0) return out;
    const reader = new BatchReader(this.maxBundleBytes, (object, bytes) => out.set(object, bytes));
    await this.stream(["cat-file", "--batch"], (chunk) => reader.push(chunk), { input: `${blobs.join("\n")}\n` });
    return out;
  }
}

/** Parses `git cat-file --batch` output as it streams: "<object> <type> <size>" LF <content> LF, or "<name> missing". */
class BatchReader {
  readonly #max: number;
  readonly #onBlob: (object: string, bytes: Uint8Array) => void;
  #header: Buffer[] = [];
  #headerBytes = 0;
  #current: { object: string; bytes: Uint8Array | undefined; filled: number; size: number } | undefined;
  /** Bytes still to skip: the LF after a content. */
  #trailer = 0;

  constructor(maxBytes: number, onBlob: (object: string, bytes: Uint8Array) => void) {
    this.#max = maxBytes;
    this.#onBlob = onBlob;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#trailer > 0) {
        const n = Math.min(this.#trailer, chunk.length - i);
        this.#trailer -= n;
        i += n;
        continue;
      }
      const current = this.#current;
      if (current !== undefined) {
        const n = Math.min(current.size - current.filled, chunk.length - i);
        current.bytes?.set(chunk.subarray(i, i + n), current.filled);
        current.filled += n;
        i += n;
        if (current.filled === current.size) {
          if (current.bytes !== undefined) this.#onBlob(current.object, current.bytes);
          this.#current = undefined;
          this.#trailer = 1;
        }
        continue;
      }
      const eol = chunk.indexOf(10, i);
      if (eol === -1) {
        this.#holdHeader(chunk.subarray(i));
        return;
      }
      this.#holdHeader(chunk.subarray(i, eol));
      i = eol + 1;
      const line = Buffer.concat(this.#header).toString("latin1");
      this.#header = [];
      this.#headerBytes = 0;
      const [object = "", type = "", sizeText = ""] = line.split(" ");
      if (type === "missing" || !/^\d{1,15}$/.test(sizeText)) continue; // "<name> missing": left out
      const size = Number(sizeText);
      // Only blobs within the limit are held; anything else is read past.
      const keep = type === "blob" && size <= this.#max;
      this.#current = { object, bytes: keep ? new Uint8Array(size) : undefined, filled: 0, size };
      if (size === 0) {
        if (keep) this.#onBlob(object, new Uint8Array(0));
        this.#current = undefined;
        this.#trailer = 1;
      }
    }
  }

  #holdHeader(part: Buffer): void {
    if (this.#headerBytes > 4096) return; // a header line is "<object> <type> <size>": never this long
    this.#header.push(Buffer.from(part));
    this.#headerBytes += part.length;
  }
}

/** Counts what one scan looks at and stops it at the bounds (WatchLimits), with a coded summary of the rest. */
class ScanBound {
  readonly limits: Readonly<WatchLimits>;
  readonly #maxBundleBytes: number;
  readonly #result: ScanResult;
  #bytes = 0;
  #skippedBundles = 0;
  #extraRefusals = 0;
  #overflowed = false;

  constructor(limits: Readonly<WatchLimits>, maxBundleBytes: number, result: ScanResult) {
    this.limits = limits;
    this.#maxBundleBytes = maxBundleBytes;
    this.#result = result;
  }

  /** Looks at one entry; false once the entry bound is reached (the listing can stop). */
  add(entry: RawEntry): boolean {
    if (this.#result.entries >= this.limits.maxEntries) {
      this.overflow();
      return false;
    }
    this.#result.entries += 1;
    const found: ScanResult = { commit: "", mode: "full", bundles: [], refused: [], entries: 0 };
    classifyEntry(entry, this.#maxBundleBytes, found, this.limits.maxPathBytes);
    for (const refused of found.refused) this.#refuse(refused);
    for (const bundle of found.bundles) {
      if (this.#result.bundles.length >= this.limits.maxBundles || this.#bytes + bundle.size > this.limits.maxBytes) {
        this.#skippedBundles += 1;
        continue;
      }
      this.#bytes += bundle.size;
      this.#result.bundles.push(bundle);
    }
    return true;
  }

  /** A record too long to keep while streaming: a name far past any limit. */
  tooLong(): void {
    this.#result.entries += 1;
    this.#refuse({ path: "bundles/…", code: "REPO_ENTRY_REFUSED", reason: "name-too-long" });
  }

  /** The listing holds more entries than the bound: the rest are not looked at. */
  overflow(): void {
    if (this.#overflowed) return;
    this.#overflowed = true;
  }

  #refuse(entry: RefusedEntry): void {
    if (this.#result.refused.length < this.limits.maxRefusals) this.#result.refused.push(entry);
    else this.#extraRefusals += 1;
  }

  finish(): void {
    const l = this.limits;
    if (this.#overflowed)
      this.#result.refused.push({
        path: BUNDLE_DIR,
        code: "REPO_LIMIT_EXCEEDED",
        reason: `more than ${l.maxEntries} entries under ${BUNDLE_DIR} in one scan; the rest were not looked at`,
      });
    if (this.#skippedBundles > 0)
      this.#result.refused.push({
        path: BUNDLE_DIR,
        code: "REPO_LIMIT_EXCEEDED",
        reason:
          `${this.#skippedBundles} bundle(s) past the per-scan bound of ${l.maxBundles} files or ${l.maxBytes} ` +
          "bytes were not read",
      });
    if (this.#extraRefusals > 0)
      this.#result.refused.push({
        path: BUNDLE_DIR,
        code: "REPO_ENTRY_REFUSED",
        reason: `${this.#extraRefusals} more refused entries past the first ${l.maxRefusals}`,
      });
  }
}

export interface RawEntry {
  mode: string;
  type: string;
  object: string;
  size: number | undefined;
  pathBytes: Uint8Array;
}

function typeOfMode(mode: string): string {
  if (mode === "160000") return "commit";
  if (mode === "040000") return "tree";
  return "blob";
}

const SUFFIX_BYTES = Buffer.from(BUNDLE_SUFFIX);

function looksLikeBundle(pathBytes: Uint8Array): boolean {
  return Buffer.from(pathBytes.buffer, pathBytes.byteOffset, pathBytes.length)
    .subarray(-SUFFIX_BYTES.length)
    .equals(SUFFIX_BYTES);
}

/** One `git ls-tree -r -l -z` record: "<mode> SP <type> SP <object> SP+ <size> TAB <path>". */
export function parseLsTreeRecord(record: Buffer): RawEntry | undefined {
  const tab = record.indexOf(9);
  if (tab === -1) return undefined;
  const [mode = "", type = "", object = "", size = "-"] = record.subarray(0, tab).toString("latin1").split(/ +/);
  return {
    mode,
    type,
    object,
    size: /^\d{1,15}$/.test(size) ? Number(size) : undefined,
    pathBytes: record.subarray(tab + 1),
  };
}

/** `git ls-tree -r -l -z` output, whole (tests): "<mode> SP <type> SP <object> SP+ <size> TAB <path> NUL". */
export function parseLsTree(out: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  const splitter = new RecordSplitter(0, (record) => {
    const entry = record === undefined ? undefined : parseLsTreeRecord(record);
    if (entry !== undefined) entries.push(entry);
  });
  splitter.push(out);
  splitter.end();
  return entries;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function printable(bytes: Uint8Array, max = 512): string {
  let text = "";
  for (const byte of bytes.subarray(0, max)) {
    text +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return bytes.length > max ? `${text}…` : text;
}

/** Sorts one tree entry into a bundle to read, a refusal, or nothing (files that are not bundles). */
export function classifyEntry(
  entry: RawEntry,
  maxBundleBytes: number,
  into: { bundles: FoundBundle[]; refused: RefusedEntry[] },
  maxPathBytes: number = DEFAULT_WATCH_LIMITS.maxPathBytes,
): void {
  const shown = printable(entry.pathBytes);
  const refuse = (reason: string, code: ErrorCode = "REPO_ENTRY_REFUSED"): void => {
    into.refused.push({ path: shown, code, reason });
  };
  let name: string;
  try {
    name = utf8.decode(entry.pathBytes);
  } catch {
    if (shown.startsWith(BUNDLE_DIR)) refuse("name-not-utf8");
    return;
  }
  // Only bundles/ is watched: anything else is ordinary repository content, not ours to judge.
  if (!name.startsWith(BUNDLE_DIR)) return;
  // Names are checked before the suffix so that "bundles/.." or a name with a newline is reported, not skipped.
  const segments = name.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..") || name.includes("\\")) return refuse("path-traversal");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return refuse("control-character-in-name");
  if (!name.endsWith(BUNDLE_SUFFIX)) return; // notes, READMEs, signatures beside bundles: ignored
  if (entry.pathBytes.length > maxPathBytes) return refuse(`name-too-long (more than ${maxPathBytes} bytes)`);
  if (entry.mode === "120000") return refuse("symlink");
  if (entry.mode === "160000" || entry.type === "commit") return refuse("submodule");
  if (entry.type !== "blob" || (entry.mode !== "100644" && entry.mode !== "100755")) return refuse("not-a-file");
  if (entry.size === undefined) return refuse("unknown-size");
  if (entry.size > maxBundleBytes) return refuse(`larger than ${maxBundleBytes} bytes`, "BUNDLE_TOO_LARGE");
  into.bundles.push({ path: name, blob: entry.object, size: entry.size });
}
