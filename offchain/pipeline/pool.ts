// A pool of worker_threads that run the pure pipeline (worker.ts), so that the service's event loop only does I/O:
// a 16 MiB bundle or thousands of signatures cost a worker's time, never /healthz's. One worker per core by
// default; jobs wait in a FIFO queue. A job that runs past its time limit, or whose worker dies, is answered with
// a coded verdict and the worker is replaced; `close()` terminates workers mid-job (the service verifies those
// bundles again after a restart, since their repository commit was not marked processed).
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

import { ProvenantError } from "../../lib/errors.ts";
import { policyDigest, type BundleVerdict, type VerifierPolicy } from "./index.ts";
import type { SuppliedChain, SuppliedCrl, VerifyJob, WorkerMessage } from "./worker.ts";

export type { SuppliedChain, SuppliedCrl } from "./worker.ts";

export interface VerificationPoolOptions {
  policy: VerifierPolicy;
  /** Worker threads (default: the number of cores). */
  size?: number;
  /**
   * A job still running after this long is refused with BUNDLE_TOO_COMPLEX and its worker replaced (5 min). A safety
   * net, not the bound: the policy's envelope and signature limits keep a bundle under a second of CPU, and this is
   * wall-clock time, which a starved (niced) worker on a busy machine can stretch many times over.
   */
  timeoutMs?: number;
  /** Heap ceiling per worker in MiB (default 1024): a bundle that needs more is refused, the service lives on. */
  maxHeapMb?: number;
  /**
   * Scheduling niceness of the worker threads (0 to 19; Linux). The service uses 10 so that its event loop wins the
   * CPU when cores are short; 0 (the default) runs them like any other thread.
   */
  niceness?: number;
}

/** The pool was closed while the job waited or ran: the bundle has no verdict (it is verified again later). */
export class VerificationAbortedError extends Error {
  constructor() {
    super("verification aborted: the pool is closing");
    this.name = "VerificationAbortedError";
  }
}

interface Pending {
  job: Omit<VerifyJob, "id">;
  resolve: (verdict: BundleVerdict) => void;
  reject: (error: Error) => void;
  /** A job whose worker died is tried once more on a fresh worker before it is refused. */
  attempts: number;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  running: { id: number; pending: Pending; started: number; timer: NodeJS.Timeout } | undefined;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);

export class VerificationPool {
  readonly size: number;
  readonly #policy: VerifierPolicy;
  readonly #timeoutMs: number;
  readonly #maxHeapMb: number;
  readonly #niceness: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;
  #busyMs = 0;
  #completed = 0;

  constructor(options: VerificationPoolOptions) {
    this.#policy = options.policy;
    this.size = Math.max(1, options.size ?? availableParallelism());
    this.#timeoutMs = options.timeoutMs ?? 300_000;
    this.#maxHeapMb = options.maxHeapMb ?? 1024;
    this.#niceness = Math.min(19, Math.max(0, Math.trunc(options.niceness ?? 0)));
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
  }

  /** Resolves once every worker has loaded and agrees on the policy digest (a worker that disagrees is a bug). */
  async ready(): Promise<void> {
    const expected = policyDigest(this.#policy);
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve, reject) => {
            if (slot.ready) return resolve();
            const onMessage = (m: WorkerMessage) => {
              if (m.type !== "ready") return;
              slot.worker.off("message", onMessage);
              if (m.policyDigest !== expected)
                reject(new ProvenantError("internal", "INTERNAL", "a verification worker parsed another policy"));
              else resolve();
            };
            slot.worker.on("message", onMessage);
            slot.worker.once("error", reject);
          }),
      ),
    );
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Jobs running on a worker now. */
  get running(): number {
    return this.#slots.filter((s) => s.running !== undefined).length;
  }

  /** Total time workers have spent on jobs, in milliseconds (finished jobs plus the running ones so far). */
  get busyMs(): number {
    const now = performance.now();
    return this.#slots.reduce((ms, s) => ms + (s.running === undefined ? 0 : now - s.running.started), this.#busyMs);
  }

  get completed(): number {
    return this.#completed;
  }

  /**
   * The pipeline's verdict for these bytes at `now`, with the certificates and CRLs the main thread fetched;
   * rejects with VerificationAbortedError when the pool closes.
   */
  verify(
    bytes: Uint8Array,
    options: { now: Date; chains?: readonly SuppliedChain[]; crls?: readonly SuppliedCrl[] },
  ): Promise<BundleVerdict> {
    if (this.#closed) return Promise.reject(new VerificationAbortedError());
    return new Promise((resolve, reject) => {
      this.#queue.push({
        job: {
          bytes,
          now: options.now.getTime(),
          chains: [...(options.chains ?? [])],
          crls: [...(options.crls ?? [])],
        },
        resolve,
        reject,
        attempts: 0,
      });
      this.#dispatch();
    });
  }

  /** Terminates every worker now, without waiting for the jobs they run; those and the queued ones are rejected. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const aborted = new VerificationAbortedError();
    for (const pending of this.#queue.splice(0)) pending.reject(aborted);
    const exits: Promise<number>[] = [];
    for (const slot of this.#slots) {
      if (slot.running !== undefined) {
        clearTimeout(slot.running.timer);
        slot.running.pending.reject(aborted);
        slot.running = undefined;
      }
      exits.push(slot.worker.terminate());
    }
    await Promise.all(exits);
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL, {
      workerData: { policy: this.#policy.json, niceness: this.#niceness },
      resourceLimits: { maxOldGenerationSizeMb: this.#maxHeapMb },
    });
    const slot: Slot = { worker, ready: false, running: undefined };
    worker.on("message", (m: WorkerMessage) => {
      if (m.type === "ready") {
        slot.ready = true;
        this.#dispatch();
        return;
      }
      const running = slot.running;
      if (running === undefined || running.id !== m.id) return;
      clearTimeout(running.timer);
      slot.running = undefined;
      this.#busyMs += m.ms;
      this.#completed += 1;
      running.pending.resolve(m.verdict);
      this.#dispatch();
    });
    // A worker that fails (out of memory on a hostile bundle, a bug) is replaced; its job is tried once more.
    const lost = (reason: string) => {
      const index = this.#slots.indexOf(slot);
      if (index === -1 || this.#closed) return;
      const running = slot.running;
      slot.running = undefined;
      this.#slots[index] = this.#spawn();
      if (running !== undefined) {
        clearTimeout(running.timer);
        this.#busyMs += performance.now() - running.started;
        running.pending.attempts += 1;
        if (running.pending.attempts >= 2)
          running.pending.resolve(refusal(running.pending.job.bytes, "INTERNAL", `verification failed: ${reason}`));
        else this.#queue.unshift(running.pending);
      }
      this.#dispatch();
    };
    worker.on("error", (error: Error) => lost(error.message));
    worker.on("exit", (code) => lost(`worker exited with code ${code}`));
    return slot;
  }

  #dispatch(): void {
    if (this.#closed) return;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      // A worker still loading takes no job: the time limit counts verification, not start-up.
      if (slot.running !== undefined || !slot.ready) continue;
      const pending = this.#queue.shift()!;
      const id = this.#nextId++;
      const timer = setTimeout(() => this.#timeout(slot, id), this.#timeoutMs);
      slot.running = { id, pending, started: performance.now(), timer };
      slot.worker.postMessage({ id, ...pending.job } satisfies VerifyJob);
    }
  }

  /** A job past its time limit: its worker is terminated and replaced, the bundle refused as too complex. */
  #timeout(slot: Slot, id: number): void {
    const running = slot.running;
    if (running === undefined || running.id !== id || this.#closed) return;
    slot.running = undefined;
    this.#busyMs += performance.now() - running.started;
    const index = this.#slots.indexOf(slot);
    if (index !== -1) this.#slots[index] = this.#spawn();
    slot.worker.removeAllListeners("exit").removeAllListeners("error");
    slot.worker.on("error", () => undefined);
    void slot.worker.terminate();
    running.pending.resolve(
      refusal(
        running.pending.job.bytes,
        "BUNDLE_TOO_COMPLEX",
        `verification did not finish within ${this.#timeoutMs} ms`,
      ),
    );
    this.#dispatch();
  }
}

function refusal(bytes: Uint8Array, code: "INTERNAL" | "BUNDLE_TOO_COMPLEX", message: string): BundleVerdict {
  return { ok: false, bundleDigest: sha256Hex(bytes), errors: [{ code, message }] };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
