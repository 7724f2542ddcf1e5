// OMS v1.0 root digest computed in the browser (DESIGN §3.1) with lib/oms's own rules (lib/oms/digest.ts: ignore
// paths, resource order, files/shards split, root input), so the page and `provenant hash` agree by construction.
// Ranges are hashed on a pool of Web Workers (up to navigator.hardwareConcurrency), largest first, each with
// WebCrypto or streaming hash-wasm (web/src/hash.ts); nothing is uploaded and a multi-GB file never sits in memory.
import { toHex } from "../../lib/encoding/index.ts";
import {
  DEFAULT_IGNORE_PATHS,
  DEFAULT_SHARD_SIZE,
  comparePaths,
  isIgnored,
  planTasks,
  rootDigestInput,
  shardSummaryInputs,
  type OmsTask,
} from "../../lib/oms/digest.ts";
import type { SerializationMethod } from "../../lib/oms/types.ts";
import {
  CALIBRATE_FROM_BYTES,
  HashError,
  WEBCRYPTO_BUDGET_BYTES,
  WEBCRYPTO_MAX_BYTES,
  engineFor,
  fasterWholeEngine,
  hashRange,
  sha256,
  type HashEngine,
} from "./hash.ts";
import type { WorkerReply, WorkerTask } from "./hash-worker.ts";

/** At most this many workers, whatever the machine reports: each may hold a WebCrypto buffer. */
const MAX_WORKERS = 16;

export interface ModelFile {
  /** POSIX path relative to the model root ("." for a single-file model, as lib/oms names it). */
  name: string;
  blob: Blob;
}

export interface BrowserModelHash {
  rootDigest: string;
  method: SerializationMethod;
  /** Files in OMS order; in `shards` mode each digest is SHA-256 over the file's shard digests (as lib/oms). */
  files: { name: string; digest: string; size: number }[];
  /** The OMS resources (files or shards), in OMS order. */
  resources: { name: string; digest: string }[];
  totalBytes: number;
  /** Web Workers used (0: hashed on the page's own thread). */
  workers: number;
  /** Engines that hashed at least one range. */
  engines: HashEngine[];
}

export interface HashModelOptions {
  method?: SerializationMethod;
  /** Shard size for `shards` (default 1,000,000,000 bytes, as OMS). */
  shardSize?: number;
  /** Bytes hashed so far and in total. */
  onProgress?: (done: number, total: number) => void;
  /** Web Workers to use; 0 hashes on this thread. Default: navigator.hardwareConcurrency (at most 16). */
  workers?: number;
  /** Ranges up to this size may use WebCrypto (default 256 MiB); beyond it hash-wasm streams. */
  webCryptoMaxBytes?: number;
  /**
   * The engine for ranges that fit in memory: "auto" (default) measures once per page which is faster here
   * (fasterWholeEngine) when a range is 16 MiB or more; "webcrypto" or "hash-wasm" forces one.
   */
  engine?: "auto" | HashEngine;
}

/**
 * Names dropped files relative to the model root. One file is a single-file model; files from a folder carry
 * `webkitRelativePath` ("folder/a/b.bin"), whose first component is the model directory itself. OMS's default ignore
 * paths (.git, .gitattributes, .github, .gitignore) are dropped, as lib/oms drops them.
 */
export function toModelFiles(files: readonly { file: Blob & { name: string }; relativePath?: string }[]): ModelFile[] {
  if (files.length === 1 && !(files[0]!.relativePath ?? "").includes("/")) return [{ name: ".", blob: files[0]!.file }];
  return files
    .map(({ file, relativePath }) => {
      const rel = relativePath !== undefined && relativePath !== "" ? relativePath : file.name;
      const parts = rel.split("/").filter((p) => p !== "");
      return { name: (parts.length > 1 ? parts.slice(1) : parts).join("/"), blob: file };
    })
    .filter((f) => !isIgnored(f.name, DEFAULT_IGNORE_PATHS));
}

type RangeResult = { digest: Uint8Array; engine: HashEngine };
/** Hashes one range somewhere (a worker, or this thread) and reports bytes as they are read. */
type Runner = (blob: Blob, task: OmsTask, onBytes: (n: number) => void, engine: HashEngine) => Promise<RangeResult>;

interface PooledWorker {
  worker: Worker;
  run: (blob: Blob, task: OmsTask, onBytes: (n: number) => void, engine: HashEngine) => Promise<RangeResult>;
}

const idleWorkers: PooledWorker[] = [];
let nextId = 0;

/** A worker from the page's pool, or a new one. Workers stay alive between models so later drops start at once. */
function acquireWorker(): PooledWorker {
  const idle = idleWorkers.pop();
  if (idle !== undefined) return idle;
  const worker = new Worker(new URL("./hash-worker.ts", import.meta.url), { type: "module" });
  const pending = new Map<
    number,
    { resolve: (r: RangeResult) => void; reject: (e: Error) => void; onBytes: (n: number) => void }
  >();
  worker.onmessage = (event: MessageEvent<WorkerReply>) => {
    const reply = event.data;
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    if (reply.type === "progress") return waiter.onBytes(reply.bytes);
    pending.delete(reply.id);
    if (reply.type === "done") waiter.resolve({ digest: reply.digest, engine: reply.engine });
    else waiter.reject(new HashError(reply.code, reply.message));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    for (const waiter of pending.values())
      waiter.reject(new HashError("INTERNAL", `hash worker failed: ${event.message}`));
    pending.clear();
  };
  return {
    worker,
    run: (blob, task, onBytes, engine) =>
      new Promise<RangeResult>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject, onBytes });
        worker.postMessage({ id, blob, start: task.start, end: task.end, engine } satisfies WorkerTask);
      }),
  };
}

/**
 * Runs every task on the runners, largest first. A WebCrypto range holds its whole size in memory, so such ranges
 * start only while the buffers in flight stay within WEBCRYPTO_BUDGET_BYTES (one always may when none is running).
 */
function runAll(
  tasks: readonly OmsTask[],
  blobs: readonly Blob[],
  runners: readonly Runner[],
  engines: readonly HashEngine[],
  onBytes: (n: number) => void,
): Promise<RangeResult[]> {
  const results = new Array<RangeResult>(tasks.length);
  const queue = tasks
    .map((_, i) => i)
    .sort((a, b) => tasks[b]!.end - tasks[b]!.start - (tasks[a]!.end - tasks[a]!.start));
  const costOf = (i: number) => (engines[i] === "webcrypto" ? tasks[i]!.end - tasks[i]!.start : 0);
  return new Promise((resolve, reject) => {
    const idle = [...runners];
    let running = 0;
    let inMemory = 0;
    let failed = false;
    const pump = (): void => {
      while (!failed && idle.length > 0 && queue.length > 0) {
        const k = queue.findIndex((i) => running === 0 || inMemory + costOf(i) <= WEBCRYPTO_BUDGET_BYTES);
        if (k < 0) return;
        const i = queue.splice(k, 1)[0]!;
        const cost = costOf(i);
        const runner = idle.pop()!;
        running++;
        inMemory += cost;
        runner(blobs[tasks[i]!.file]!, tasks[i]!, onBytes, engines[i]!).then(
          (result) => {
            results[i] = result;
            running--;
            inMemory -= cost;
            idle.push(runner);
            if (queue.length === 0 && running === 0) resolve(results);
            else pump();
          },
          (error: unknown) => {
            failed = true;
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      }
    };
    if (tasks.length === 0) resolve(results);
    else pump();
  });
}

/** Hashes a model the OMS v1.0 way in the browser; the same root digest as lib/oms hashModel for the same files. */
export async function hashModelFiles(
  files: readonly ModelFile[],
  options: HashModelOptions = {},
): Promise<BrowserModelHash> {
  const method = options.method ?? "files";
  const webCryptoMaxBytes = options.webCryptoMaxBytes ?? WEBCRYPTO_MAX_BYTES;
  if (files.length === 0) throw new HashError("OMS_MALFORMED", "no files to hash after applying the ignore paths");
  const tasks = planTasks(
    files.map((f) => ({ name: f.name, size: f.blob.size })),
    method,
    options.shardSize ?? DEFAULT_SHARD_SIZE,
  );
  const totalBytes = files.reduce((sum, f) => sum + f.blob.size, 0);
  let done = 0;
  options.onProgress?.(0, totalBytes);
  const sizes = tasks.map((t) => t.end - t.start);
  const measure = sizes.some((n) => n >= CALIBRATE_FROM_BYTES && n <= webCryptoMaxBytes);
  const preference = options.engine ?? "auto";
  const whole = preference !== "auto" ? preference : measure ? await fasterWholeEngine() : "webcrypto";
  const engines = sizes.map((n) => engineFor(n, webCryptoMaxBytes, whole));

  const available = typeof Worker === "undefined" ? 0 : (globalThis.navigator?.hardwareConcurrency ?? 2);
  const wanted = Math.min(options.workers ?? available, MAX_WORKERS, tasks.length);
  const workers = typeof Worker === "undefined" ? 0 : Math.max(0, wanted);
  const pooled = Array.from({ length: workers }, () => acquireWorker());
  const runners: Runner[] =
    workers > 0
      ? pooled.map((p) => p.run)
      : [(blob, task, onBytes, engine) => hashRange(blob, task.start, task.end, { engine, onBytes })];

  let results: RangeResult[];
  try {
    results = await runAll(
      tasks,
      files.map((f) => f.blob),
      runners,
      engines,
      (n) => {
        done += n;
        options.onProgress?.(done, totalBytes);
      },
    );
  } catch (error) {
    // A worker that failed mid-range may still be busy: drop the whole set rather than reuse it.
    for (const p of pooled) p.worker.terminate();
    throw error;
  }
  idleWorkers.push(...pooled);

  const digests = results.map((r) => r.digest);
  const { order, input } = rootDigestInput(
    method,
    tasks.map((t, i) => ({ name: t.name, digest: digests[i]! })),
  );
  const fileOrder = files.map((_, i) => i).sort((a, b) => comparePaths(files[a]!.name, files[b]!.name));
  const summaries =
    method === "shards"
      ? await Promise.all(shardSummaryInputs(tasks, digests, files.length).map(async (s) => toHex(await sha256(s))))
      : tasks.reduce<string[]>((out, t, i) => ((out[t.file] = toHex(digests[i]!)), out), []);
  return {
    rootDigest: toHex(await sha256(input)),
    method,
    files: fileOrder.map((i) => ({ name: files[i]!.name, digest: summaries[i]!, size: files[i]!.blob.size })),
    resources: order.map((i) => ({ name: tasks[i]!.name, digest: toHex(digests[i]!) })),
    totalBytes,
    workers,
    engines: [...new Set(results.map((r) => r.engine))],
  };
}
