// A pool of worker_threads that run the pure pipeline (worker.ts), so that the service's event loop only does I/O:
// a 16 MiB bundle or thousands of signatures cost a worker's time, never /healthz's. One worker per core by
// default; jobs wait in a FIFO queue. A job that runs past its time limit, or whose worker dies, is answered with
// a coded verdict and the worker is replaced; `close()` terminates workers mid-job (the service verifies those
// bundles again after a restart, since their repository commit was not marked processed).
// When every worker is busy and jobs wait, each worker is handed one more (PREFETCH), so that it starts it as soon as
// it posts a verdict instead of idling until the main thread answers; certificates and CRLs go to a worker once.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

import { ProvenantError } from "../../lib/errors.ts";
import type { Product } from "../../lib/snp/index.ts";
import { sha256Hex } from "../../lib/x509/index.ts";
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

/** A job posted to a worker. */
interface Posted {
  id: number;
  pending: Pending;
  /** When it became the job the worker runs (the first of its slot); undefined while it waits behind another. */
  started: number | undefined;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Jobs posted to the worker, in its order: the first one runs, the others wait in its port. */
  jobs: Posted[];
  /** The running job's time limit. */
  timer: NodeJS.Timeout | undefined;
  /** The chains and CRLs this worker was sent, by `${signer}-${product}`: an unchanged one is not sent again. */
  sent: Map<string, object>;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);
/**
 * Jobs a worker holds at most: the one it runs and, only while every worker is busy and jobs wait, one more. A slow
 * bundle delays at most the one job behind it on its worker; the others go to whichever worker is free first.
 */
const PREFETCH = 2;

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

  /** Jobs waiting: for a worker, or on a worker behind the job it runs. */
  get queued(): number {
    return this.#slots.reduce((n, s) => n + Math.max(0, s.jobs.length - 1), this.#queue.length);
  }

  /** Jobs running on a worker now. */
  get running(): number {
    return this.#slots.filter((s) => s.jobs.length > 0).length;
  }

  /** Total time workers have spent on jobs, in milliseconds (finished jobs plus the running ones so far). */
  get busyMs(): number {
    const now = performance.now();
    return this.#slots.reduce((ms, s) => ms + (now - (s.jobs[0]?.started ?? now)), this.#busyMs);
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
      clearTimeout(slot.timer);
      for (const posted of slot.jobs.splice(0)) posted.pending.reject(aborted);
      exits.push(slot.worker.terminate());
    }
    await Promise.all(exits);
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL, {
      workerData: { policy: this.#policy.json, niceness: this.#niceness },
      resourceLimits: { maxOldGenerationSizeMb: this.#maxHeapMb },
    });
    const slot: Slot = { worker, ready: false, jobs: [], timer: undefined, sent: new Map() };
    worker.on("message", (m: WorkerMessage) => {
      if (m.type === "ready") {
        slot.ready = true;
        this.#dispatch();
        return;
      }
      // A worker answers its jobs in the order it was given them.
      const done = slot.jobs[0];
      if (done === undefined || done.id !== m.id) return;
      clearTimeout(slot.timer);
      slot.jobs.shift();
      this.#busyMs += m.ms;
      this.#completed += 1;
      done.pending.resolve(m.verdict);
      if (slot.jobs.length > 0) this.#start(slot);
      this.#dispatch();
    });
    // A worker that fails (out of memory on a hostile bundle, a bug) is replaced; the job it ran is tried once more,
    // the ones behind it (never started) go back to the front of the queue.
    const lost = (reason: string) => {
      const index = this.#slots.indexOf(slot);
      if (index === -1 || this.#closed) return;
      clearTimeout(slot.timer);
      const [running, ...waiting] = slot.jobs.splice(0);
      this.#slots[index] = this.#spawn();
      const again = waiting.map((p) => p.pending);
      if (running !== undefined) {
        this.#busyMs += performance.now() - (running.started ?? performance.now());
        running.pending.attempts += 1;
        if (running.pending.attempts >= 2)
          running.pending.resolve(refusal(running.pending.job.bytes, "INTERNAL", `verification failed: ${reason}`));
        else again.unshift(running.pending);
      }
      this.#queue.unshift(...again);
      this.#dispatch();
    };
    worker.on("error", (error: Error) => lost(error.message));
    worker.on("exit", (code) => lost(`worker exited with code ${code}`));
    return slot;
  }

  /** Idle workers first, one job each; then, while jobs still wait, one more for each busy worker (PREFETCH). */
  #dispatch(): void {
    if (this.#closed) return;
    for (let held = 0; held < PREFETCH; held++) {
      for (const slot of this.#slots) {
        if (this.#queue.length === 0) return;
        // A worker still loading takes no job: the time limit counts verification, not start-up.
        if (!slot.ready || slot.jobs.length !== held) continue;
        this.#post(slot, this.#queue.shift()!);
      }
    }
  }

  #post(slot: Slot, pending: Pending): void {
    const id = this.#nextId++;
    slot.jobs.push({ id, pending, started: undefined });
    if (slot.jobs.length === 1) this.#start(slot);
    // Certificates and CRLs the worker already holds (the same objects) are not cloned to it again.
    const fresh = <T extends { product: Product; signer: "vcek" | "vlek" }>(items: T[], value: (t: T) => object) =>
      items.filter((item) => {
        const key = `${item.signer}-${item.product}`;
        if (slot.sent.get(key) === value(item)) return false;
        slot.sent.set(key, value(item));
        return true;
      });
    const { bytes, now, chains, crls } = pending.job;
    slot.worker.postMessage({
      id,
      bytes,
      now,
      chains: fresh(chains, (c) => c.chain),
      crls: fresh(crls, (c) => c.crl),
    } satisfies VerifyJob);
  }

  /** The first job of the slot is the one its worker runs now: its time limit starts. */
  #start(slot: Slot): void {
    const running = slot.jobs[0]!;
    running.started = performance.now();
    slot.timer = setTimeout(() => this.#timeout(slot, running.id), this.#timeoutMs);
  }

  /**
   * A job past its time limit: its worker is terminated and replaced, the bundle refused as too complex; the jobs
   * that waited behind it on that worker go back to the front of the queue.
   */
  #timeout(slot: Slot, id: number): void {
    const running = slot.jobs[0];
    if (running === undefined || running.id !== id || this.#closed) return;
    const waiting = slot.jobs.splice(0).slice(1);
    this.#busyMs += performance.now() - (running.started ?? performance.now());
    const index = this.#slots.indexOf(slot);
    if (index !== -1) this.#slots[index] = this.#spawn();
    slot.worker.removeAllListeners("exit").removeAllListeners("error");
    slot.worker.on("error", () => undefined);
    void slot.worker.terminate();
    this.#queue.unshift(...waiting.map((p) => p.pending));
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
