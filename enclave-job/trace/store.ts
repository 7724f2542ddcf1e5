// Content-addressed trace files (docs/training-trace.md): <root>.trace, <OMS digest>.gguf checkpoints and
// <sha256>.data, in a directory, a git repository, or behind an http(s) base URL. Reading copies each file into the
// auditor's own work directory while hashing it, with a size cap and a time limit, so nothing unverified is used.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

import { IoError, MalformedInputError } from "../../lib/errors.ts";
import { git, redactUrls } from "../git.ts";

/** The three kinds of file a trace store holds, named by their digest. */
export const traceFileName = (rootHex: string): string => `${rootHex}.trace`;
export const checkpointFileName = (omsDigestHex: string): string => `${omsDigestHex}.gguf`;
export const dataFileName = (sha256Hex: string): string => `${sha256Hex}.data`;

const STORE_NAME = /^[0-9a-f]{64}\.(trace|gguf|data)$/;

export interface FetchedFile {
  path: string;
  bytes: number;
  /** Hex SHA-256 of the bytes copied. */
  sha256: string;
}

/** Where a spot-check reads trace files from. */
export interface TraceSource {
  readonly location: string;
  /** Copies `name` to `dest` (hashing it on the way), refusing more than maxBytes; TRACE_MISSING when absent. */
  fetch(name: string, dest: string, maxBytes: number): Promise<FetchedFile>;
}

function missing(name: string, where: string, why: string, cause?: unknown): IoError {
  return new IoError("TRACE_MISSING", `${name} is not available from ${redactUrls(where)}: ${why}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { file: name },
  });
}

/** Counts and hashes what flows through; aborts the stream past maxBytes. */
function meter(
  maxBytes: number,
  name: string,
  where: string,
): Transform & { bytes: () => number; digest: () => string } {
  const hash = createHash("sha256");
  let bytes = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) return callback(missing(name, where, `larger than the ${maxBytes}-byte limit`));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return Object.assign(transform, { bytes: () => bytes, digest: () => hash.digest("hex") });
}

function checkName(name: string): void {
  // Only content-addressed names: a hostile bundle or caller cannot make us read ../../etc/passwd or a URL path.
  if (!STORE_NAME.test(name)) throw new MalformedInputError("TRACE_MISSING", `not a trace store file name: ${name}`);
}

export function directorySource(dir: string): TraceSource {
  const root = resolve(dir);
  return {
    location: root,
    async fetch(name, dest, maxBytes) {
      checkName(name);
      const path = join(root, name);
      const info = await stat(path).catch((error: unknown) => {
        throw missing(name, root, "no such file", error);
      });
      if (!info.isFile()) throw missing(name, root, "not a regular file");
      if (info.size > maxBytes) throw missing(name, root, `${info.size} bytes is over the ${maxBytes}-byte limit`);
      const m = meter(maxBytes, name, root);
      await pipeline(createReadStream(path), m, createWriteStream(dest));
      return { path: dest, bytes: m.bytes(), sha256: m.digest() };
    },
  };
}

/** An http(s) base URL serving the files by name; each download has a time limit and a size cap. */
export function urlSource(base: string, options: { timeoutMs?: number } = {}): TraceSource {
  const url = new URL(base.endsWith("/") ? base : `${base}/`);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new MalformedInputError("TRACE_MISSING", `--trace-dir URL must be http(s), got ${url.protocol}`);
  const timeoutMs = options.timeoutMs ?? 120_000;
  return {
    location: url.href,
    async fetch(name, dest, maxBytes) {
      checkName(name);
      const target = new URL(name, url);
      let response: Response;
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        response = await fetch(target, { signal, redirect: "follow" });
      } catch (error) {
        throw missing(name, url.href, `request failed (${(error as Error).message})`, error);
      }
      if (response.status !== 200 || response.body === null) {
        await response.body?.cancel().catch(() => undefined);
        throw missing(name, url.href, `HTTP ${response.status}`);
      }
      const declared = Number(response.headers.get("content-length") ?? "NaN");
      if (Number.isFinite(declared) && declared > maxBytes) {
        await response.body.cancel().catch(() => undefined);
        throw missing(name, url.href, `${declared} bytes is over the ${maxBytes}-byte limit`);
      }
      const m = meter(maxBytes, name, url.href);
      try {
        await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), m, createWriteStream(dest));
      } catch (error) {
        if (error instanceof IoError) throw error;
        throw missing(name, url.href, `download failed (${(error as Error).message})`, error);
      }
      return { path: dest, bytes: m.bytes(), sha256: m.digest() };
    },
  };
}

/** A directory path, or an http(s) URL. */
export function openTraceSource(location: string, options: { timeoutMs?: number } = {}): TraceSource {
  return /^https?:\/\//i.test(location) ? urlSource(location, options) : directorySource(location);
}

/** Copies a file into a content-addressed directory under `name`, unless a file of that name is already there. */
export async function storeFile(dir: string, name: string, source: string, move = false): Promise<string> {
  checkName(name);
  const target = join(dir, name);
  const present = await stat(target).catch(() => undefined);
  if (present?.isFile()) {
    if (move) await rm(source, { force: true });
    return target;
  }
  const partial = `${target}.partial-${process.pid}`;
  if (move) await rename(source, partial).catch(() => copyFile(source, partial));
  else await copyFile(source, partial);
  await rename(partial, target);
  return target;
}

async function isGitRepository(path: string): Promise<boolean> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || /^[^/\s]+@[^:\s]+:/.test(path)) return true;
  const bare = await stat(join(path, "HEAD")).catch(() => undefined);
  const objects = await stat(join(path, "objects")).catch(() => undefined);
  const dotGit = await stat(join(path, ".git")).catch(() => undefined);
  return (bare?.isFile() === true && objects?.isDirectory() === true) || dotGit !== undefined;
}

export interface TracePushResult {
  store: string;
  kind: "directory" | "git";
  /** Files copied (names), and those the store already had. */
  added: string[];
  present: string[];
  commit?: string;
}

/**
 * Publishes a trace directory's content-addressed files to a trace store: a directory (created if needed) or a git
 * repository (a URL, or a local repository), where they are committed at the top level and pushed (rebase + retry).
 */
export async function pushTrace(
  traceDir: string,
  store: string,
  options: { attempts?: number; branch?: string } = {},
): Promise<TracePushResult> {
  const names = (
    await readdir(traceDir).catch((error: unknown) => {
      throw new IoError("IO_ERROR", `cannot read the trace directory ${traceDir}`, { cause: error });
    })
  ).filter((n) => STORE_NAME.test(n));
  if (names.length === 0) throw new IoError("TRACE_MISSING", `${traceDir} holds no trace files`);
  if (!(await isGitRepository(store))) {
    await mkdir(store, { recursive: true });
    const result: TracePushResult = { store: resolve(store), kind: "directory", added: [], present: [] };
    for (const name of names.sort()) {
      const there = await stat(join(store, name)).catch(() => undefined);
      if (there?.isFile()) result.present.push(name);
      else {
        await storeFile(store, name, join(traceDir, name));
        result.added.push(name);
      }
    }
    return result;
  }
  const work = await mkdtemp(join(tmpdir(), "provenant-trace-push-"));
  try {
    const clone = join(work, "repo");
    try {
      await git(work, ["clone", "--quiet", "--depth", "1", store, clone]);
    } catch (error) {
      throw new IoError("PUSH_FAILED", redactUrls(`cannot clone the trace store ${store}: ${String(error)}`), {
        cause: error,
      });
    }
    const branch = options.branch ?? (await git(clone, ["symbolic-ref", "--short", "HEAD"]).catch(() => "main"));
    const result: TracePushResult = { store: redactUrls(store), kind: "git", added: [], present: [] };
    for (const name of names.sort()) {
      const there = await stat(join(clone, name)).catch(() => undefined);
      if (there?.isFile()) result.present.push(name);
      else {
        await copyFile(join(traceDir, name), join(clone, name));
        result.added.push(name);
      }
    }
    if (result.added.length === 0) return result;
    try {
      await git(clone, ["checkout", "--quiet", "-B", branch]);
      await git(clone, ["add", "--", ...result.added]);
      await git(clone, ["commit", "--quiet", "-m", `Add training trace files (${result.added.length})`]);
    } catch (error) {
      throw new IoError("PUSH_FAILED", redactUrls(`cannot commit trace files: ${String(error)}`), { cause: error });
    }
    const attempts = options.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        await git(clone, ["push", "--quiet", "origin", `HEAD:refs/heads/${branch}`]);
        result.commit = await git(clone, ["rev-parse", "HEAD"]);
        return result;
      } catch (error) {
        if (attempt >= attempts)
          throw new IoError("PUSH_FAILED", redactUrls(`push to ${store} failed: ${String(error)}`), { cause: error });
        // Content-addressed names never conflict: rebasing onto someone else's additions always applies.
        await git(clone, ["pull", "--quiet", "--rebase", "origin", branch]).catch(async (rebaseError: unknown) => {
          await git(clone, ["rebase", "--abort"]).catch(() => undefined);
          throw new IoError("PUSH_FAILED", redactUrls(`cannot rebase onto ${store}: ${String(rebaseError)}`), {
            cause: rebaseError,
          });
        });
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
