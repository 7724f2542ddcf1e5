// The browser-safe half of OMS v1.0 model hashing (DESIGN §3.1, sigstore/model-transparency `model_signing`): the
// resource order, the ignore rule, the split of files into resources (whole files or fixed-size shards) and the root
// digest's input (the raw resource digests concatenated in OMS order). lib/oms/hash.ts (node:crypto, worker_threads)
// and the explorer page (WebCrypto, hash-wasm, Web Workers) hash bytes their own way and assemble the root with these.
import type { SerializationMethod } from "./types.ts";

/** OMS default shard size: 1,000,000,000 bytes (model_signing hashing.Config.use_shard_serialization). */
export const DEFAULT_SHARD_SIZE = 1_000_000_000;
/** Paths model_signing ignores by default, relative to the model root (hashing.Config, ignore_git_paths). */
export const DEFAULT_IGNORE_PATHS: readonly string[] = [".git", ".gitattributes", ".github", ".gitignore"];

/** Compares two strings by Unicode code point, as Python compares str (JavaScript's < compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return (a.codePointAt(i) ?? x) - (b.codePointAt(i) ?? y);
  }
  return a.length - b.length;
}

/** Orders relative POSIX paths component by component, as pathlib.PurePosixPath does ("a/b" < "a-b"). */
export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = compareCodePoints(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

/** Parses an OMS shard resource name `path:start:end` (path may itself contain ':'; the last two fields are numbers). */
export function parseShardName(name: string): { path: string; start: number; end: number } | undefined {
  const match = /^(.*):(\d+):(\d+)$/s.exec(name);
  if (match === null) return undefined;
  const start = Number(match[2]);
  const end = Number(match[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  return { path: match[1]!, start, end };
}

/** Orders OMS resource names: files by path; shards by (path, start, end) numerically, as the reference does. */
export function compareResourceNames(method: SerializationMethod, a: string, b: string): number {
  if (method === "files") return comparePaths(a, b);
  const sa = parseShardName(a);
  const sb = parseShardName(b);
  if (sa === undefined || sb === undefined) return comparePaths(a, b);
  return comparePaths(sa.path, sb.path) || sa.start - sb.start || sa.end - sb.end;
}

/** True when `name` (relative POSIX path) is one of `ignorePaths` or lies below one of them. */
export function isIgnored(name: string, ignorePaths: readonly string[]): boolean {
  return ignorePaths.some((p) => name === p || name.startsWith(`${p}/`));
}

/** One OMS resource to hash: bytes [start, end) of file number `file` (an index into the caller's list). */
export interface OmsTask {
  file: number;
  start: number;
  end: number;
  /** The resource name: the file's relative path (`files`), or `path:start:end` (`shards`). */
  name: string;
}

/**
 * The resources of a model, in OMS order: files sorted by path; in `shards` mode each file split as model_signing's
 * file_shard serializer splits it ([0, s), [s, 2s), …, the last one ends at the file size; an empty file has none).
 */
export function planTasks(
  files: readonly { name: string; size: number }[],
  method: SerializationMethod,
  shardSize: number = DEFAULT_SHARD_SIZE,
): OmsTask[] {
  if (method === "shards" && (!Number.isSafeInteger(shardSize) || shardSize <= 0)) {
    throw new RangeError(`shard size must be a positive integer, got ${shardSize}`);
  }
  const order = files.map((_, i) => i).sort((a, b) => comparePaths(files[a]!.name, files[b]!.name));
  const tasks: OmsTask[] = [];
  for (const file of order) {
    const { name, size } = files[file]!;
    if (method === "files") tasks.push({ file, start: 0, end: size, name });
    else {
      for (let start = 0; start < size; start += shardSize) {
        const end = Math.min(start + shardSize, size);
        tasks.push({ file, start, end, name: `${name}:${start}:${end}` });
      }
    }
  }
  return tasks;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * The input of the OMS root digest: the raw resource digests concatenated with the resources sorted as OMS sorts
 * them (the root is SHA-256 of it). `order` gives that sorted order as indices into `resources`.
 */
export function rootDigestInput(
  method: SerializationMethod,
  resources: readonly { name: string; digest: Uint8Array }[],
): { order: number[]; input: Uint8Array } {
  const order = resources
    .map((_, i) => i)
    .sort((a, b) => compareResourceNames(method, resources[a]!.name, resources[b]!.name));
  return { order, input: concat(order.map((i) => resources[i]!.digest)) };
}

/**
 * Per-file summaries in `shards` mode: for each file, its shard digests concatenated in offset order (its summary
 * digest is SHA-256 of that; the OMS resources carry the shard digests themselves).
 */
export function shardSummaryInputs(tasks: readonly OmsTask[], digests: readonly Uint8Array[], fileCount: number) {
  const parts: Uint8Array[][] = Array.from({ length: fileCount }, () => []);
  const byOffset = tasks.map((_, i) => i).sort((a, b) => tasks[a]!.start - tasks[b]!.start);
  for (const i of byOffset) parts[tasks[i]!.file]!.push(digests[i]!);
  return parts.map(concat);
}
