// OMS v1.0 model hashing (DESIGN §3.1, sigstore/model-transparency `model_signing`): every regular file, or every
// fixed-size shard of it, hashed with SHA-256; resources sorted as the reference sorts them (path by path component,
// then shard start and end); the root digest is SHA-256 over the concatenated raw digests in that order. Several
// files or shards are hashed at once on a worker_threads pool; the result never depends on the thread count. The
// order, the split into resources and the root's input come from digest.ts, which the explorer page shares.
import { createHash } from "node:crypto";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { Worker } from "node:worker_threads";

import {
  ERROR_CODES,
  IoError,
  MalformedInputError,
  ProvenantError,
  VerificationError,
  type ErrorCode,
} from "../errors.ts";
import {
  DEFAULT_IGNORE_PATHS,
  DEFAULT_SHARD_SIZE,
  comparePaths,
  isIgnored,
  planTasks,
  rootDigestInput,
  shardSummaryInputs,
} from "./digest.ts";
import { hashFileRange } from "./range.ts";
import type { HashedFile, ModelHash, OmsResource, SerializationMethod } from "./types.ts";
import type { HashTask, WorkerReply } from "./worker.ts";

export {
  DEFAULT_IGNORE_PATHS,
  DEFAULT_SHARD_SIZE,
  compareCodePoints,
  comparePaths,
  compareResourceNames,
  isIgnored,
  parseShardName,
} from "./digest.ts";

/** Below this many bytes in total, hashing stays on the calling thread: starting workers would cost more. */
const WORKER_THRESHOLD_BYTES = 16 * 1024 * 1024;

export interface HashOptions {
  method?: SerializationMethod;
  /** Shard size in bytes for method "shards" (default 1,000,000,000). */
  shardSize?: number;
  /** Extra paths to ignore, relative to the model root (or absolute inside it). A directory ignores its subtree. */
  ignorePaths?: string[];
  /** Whether the OMS git defaults are ignored (default true). */
  ignoreGitPaths?: boolean;
  /** Follow symbolic links (inside the model only). Default false: a symlink fails with OMS_SYMLINK. */
  allowSymlinks?: boolean;
  /** Worker threads; 1 hashes on the calling thread. Default: the CPUs available, for models above 16 MiB. */
  threads?: number;
  /** Bytes hashed so far and in total. */
  onProgress?: (done: number, total: number) => void;
}

interface FoundFile {
  name: string;
  path: string;
  size: number;
}

/** Turns user ignore paths into normalised POSIX paths relative to the model root; paths outside it are dropped. */
export function normaliseIgnorePaths(modelRoot: string, paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of paths) {
    let p = isAbsolute(raw) ? relative(resolve(modelRoot), raw) : raw;
    p = p.split(sep).join("/").replace(/\/+$/, "");
    while (p.startsWith("./")) p = p.slice(2);
    if (p === "" || p === "." || p === ".." || p.startsWith("../")) continue;
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

function symlinkError(path: string): never {
  throw new MalformedInputError("OMS_SYMLINK", `${path} is a symbolic link; pass allowSymlinks to follow it`, {
    details: { path },
  });
}

async function lstatOrFail(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
}

/** Lists the model's regular files (relative POSIX names), refusing symlinks unless allowed and special files always. */
async function listFiles(root: string, ignorePaths: readonly string[], allowSymlinks: boolean): Promise<FoundFile[]> {
  const rootInfo = await lstatOrFail(root);
  if (rootInfo.isSymbolicLink() && !allowSymlinks) symlinkError(root);
  const rootStat = rootInfo.isSymbolicLink() ? await stat(root) : rootInfo;
  // A single-file model: the reference names its one resource "." (the path relative to itself); no ignore paths.
  if (rootStat.isFile()) return [{ name: ".", path: root, size: rootStat.size }];
  if (!rootStat.isDirectory()) notRegular(root);
  const realRoot = await realpath(root);
  const files: FoundFile[] = [];
  const visited = new Set<string>([realRoot]);
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      throw new IoError("IO_ERROR", `cannot list ${dir}: ${(error as Error).message}`, {
        cause: error,
        details: { path: dir },
      });
    }
    for (const entry of entries) {
      const name = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      if (isIgnored(name, ignorePaths)) continue;
      const path = join(dir, entry.name);
      let info = entry.isSymbolicLink() ? undefined : await lstatOrFail(path);
      if (info === undefined) {
        if (!allowSymlinks) symlinkError(path);
        const target = await realpath(path).catch(() => notRegular(path));
        if (target !== realRoot && !target.startsWith(realRoot + sep)) {
          throw new MalformedInputError("OMS_SYMLINK", `${path} points outside the model (${target})`, {
            details: { path, target },
          });
        }
        info = await stat(path);
        if (info.isDirectory()) {
          if (visited.has(target)) continue;
          visited.add(target);
        }
      }
      if (info.isDirectory()) await walk(path, name);
      else if (info.isFile()) files.push({ name, path, size: info.size });
      else notRegular(path);
    }
  };
  await walk(root, "");
  return files;
}

function notRegular(path: string): never {
  throw new IoError("IO_ERROR", `${path} is neither a regular file nor a directory`, { details: { path } });
}

interface Task {
  file: FoundFile;
  start: number;
  end: number;
  name: string;
}

function toProvenantError(code: string, message: string): ProvenantError {
  const known = (ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : "INTERNAL";
  if (known === "IO_ERROR") return new IoError("IO_ERROR", message);
  if (known === "INTERNAL") return new ProvenantError("internal", "INTERNAL", message);
  return new VerificationError(known, message);
}

/**
 * Runs the tasks on `threads` threads, largest first: this thread plus `threads - 1` workers, all taking from one
 * queue. This thread starts at once, so the workers' start-up time (about 0.1 s each) is not lost.
 */
async function runTasks(tasks: Task[], threads: number, onBytes: (n: number) => void): Promise<Uint8Array[]> {
  const results: Uint8Array[] = new Array<Uint8Array>(tasks.length);
  const order = tasks
    .map((_, i) => i)
    .sort((a, b) => tasks[b]!.end - tasks[b]!.start - (tasks[a]!.end - tasks[a]!.start));
  let next = 0;
  let failed = false;
  const take = (): number | undefined => (failed ? undefined : order[next++]);
  const runner = async (hash: (task: Task, id: number) => Promise<Uint8Array>): Promise<void> => {
    try {
      for (let i = take(); i !== undefined; i = take()) results[i] = await hash(tasks[i]!, i);
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const workerCount = Math.min(threads, tasks.length) - 1;
  const workers: Worker[] = [];
  try {
    const runners = [runner((t) => hashFileRange(t.file.path, t.start, t.end, onBytes))];
    for (let w = 0; w < workerCount; w++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url));
      workers.push(worker);
      const pending = new Map<number, { resolve: (d: Uint8Array) => void; reject: (e: Error) => void }>();
      worker.on("message", (reply: WorkerReply) => {
        if (reply.type === "progress") return onBytes(reply.bytes);
        const waiter = pending.get(reply.id);
        pending.delete(reply.id);
        if (reply.type === "error") waiter?.reject(toProvenantError(reply.code, reply.message));
        else waiter?.resolve(reply.digest);
      });
      worker.on("error", (error: Error) => {
        const wrapped = new ProvenantError("internal", "INTERNAL", `hash worker failed: ${error.message}`, {
          cause: error,
        });
        for (const waiter of pending.values()) waiter.reject(wrapped);
        pending.clear();
      });
      runners.push(
        runner(
          (t, id) =>
            new Promise<Uint8Array>((resolve, reject) => {
              pending.set(id, { resolve, reject });
              worker.postMessage({ id, path: t.file.path, start: t.start, end: t.end } satisfies HashTask);
            }),
        ),
      );
    }
    await Promise.all(runners);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

/**
 * Hashes a model (a file or a directory) the OMS v1.0 way. Throws OMS_SYMLINK for a symlink when not allowed,
 * IO_ERROR for unreadable or special files, OMS_MALFORMED when nothing is left to hash.
 */
export async function hashModel(path: string, options: HashOptions = {}): Promise<ModelHash> {
  const method = options.method ?? "files";
  if (method !== "files" && method !== "shards") {
    throw new MalformedInputError("OMS_MALFORMED", `unknown serialization method ${String(method)}`);
  }
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isSafeInteger(shardSize) || shardSize <= 0) {
    throw new MalformedInputError("OMS_MALFORMED", `shard size must be a positive integer, got ${shardSize}`);
  }
  const allowSymlinks = options.allowSymlinks ?? false;
  const root = resolve(path);
  const ignorePaths = normaliseIgnorePaths(root, [
    ...((options.ignoreGitPaths ?? true) ? DEFAULT_IGNORE_PATHS : []),
    ...(options.ignorePaths ?? []),
  ]);
  const found = await listFiles(root, ignorePaths, allowSymlinks);
  if (found.length === 0) {
    throw new MalformedInputError("OMS_MALFORMED", `${path} contains no regular files after applying ignore paths`, {
      details: { path },
    });
  }
  found.sort((a, b) => comparePaths(a.name, b.name));

  const planned = planTasks(found, method, shardSize);
  const tasks: Task[] = planned.map((t) => ({ ...t, file: found[t.file]! }));
  const totalBytes = found.reduce((sum, f) => sum + f.size, 0);
  const threads =
    options.threads ?? (totalBytes < WORKER_THRESHOLD_BYTES || tasks.length < 2 ? 1 : availableParallelism());
  let done = 0;
  options.onProgress?.(0, totalBytes);
  const digests = await runTasks(tasks, Math.max(1, Math.floor(threads)), (n) => {
    done += n;
    options.onProgress?.(done, totalBytes);
  });

  const resources: OmsResource[] = tasks.map((t, i) => ({
    name: t.name,
    digest: Buffer.from(digests[i]!).toString("hex"),
    algorithm: "sha256",
  }));
  const { order, input } = rootDigestInput(
    method,
    tasks.map((t, i) => ({ name: t.name, digest: digests[i]! })),
  );
  // In shards mode a file's summary is SHA-256 over its shard digests in offset order (digest.ts).
  const summaries = method === "shards" ? shardSummaryInputs(planned, digests, found.length) : [];
  const files: HashedFile[] = found.map((file, i) => ({
    name: file.name,
    digest: method === "files" ? resources[i]!.digest : createHash("sha256").update(summaries[i]!).digest("hex"),
    size: file.size,
  }));

  const hash: ModelHash = {
    rootDigest: createHash("sha256").update(input).digest("hex"),
    method,
    files,
    resources: order.map((i) => resources[i]!),
    modelName: modelNameOf(root),
    ignorePaths,
    allowSymlinks,
    totalBytes,
  };
  if (method === "shards") hash.shardSize = shardSize;
  return hash;
}

/** OMS model name: the last component of the model path (model_signing uses Path.name, resolved when empty). */
export function modelNameOf(path: string): string {
  return basename(resolve(path));
}
