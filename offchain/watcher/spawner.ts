// Runs commands from a dedicated thread (spawner-worker.ts) and streams their output back: the service's event loop
// never forks. One shared thread, started on first use and unreferenced (it never keeps the process alive); if it
// dies, the commands in flight fail and the next command starts a new one.
import { Worker } from "node:worker_threads";

import type { SpawnerReply, SpawnerRequest } from "./spawner-worker.ts";

export interface SpawnResult {
  code: number | null;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be started, or the spawning thread failed. */
  error?: string;
  /** True when `onData` asked to stop: the command was killed on purpose. */
  stopped: boolean;
}

interface Running {
  onData: (chunk: Buffer) => void | "stop";
  resolve: (result: SpawnResult) => void;
  stopped: boolean;
}

const WORKER_URL = new URL("./spawner-worker.ts", import.meta.url);

class Spawner {
  #worker: Worker | undefined;
  readonly #running = new Map<number, Running>();
  #nextId = 1;

  #thread(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_URL);
    worker.unref();
    worker.on("message", (m: SpawnerReply) => {
      const job = this.#running.get(m.id);
      if (job === undefined) return;
      if (m.type === "data") {
        const chunk = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.length);
        if (!job.stopped) {
          let verdict: void | "stop";
          try {
            verdict = job.onData(chunk);
          } catch {
            verdict = "stop";
          }
          if (verdict === "stop") {
            job.stopped = true;
            worker.postMessage({ type: "stop", id: m.id } satisfies SpawnerRequest);
          }
        }
        worker.postMessage({ type: "ack", id: m.id, bytes: chunk.length } satisfies SpawnerRequest);
        return;
      }
      this.#running.delete(m.id);
      if (this.#running.size === 0) worker.unref();
      job.resolve({
        code: m.code,
        stderr: m.stderr,
        timedOut: m.timedOut,
        stopped: job.stopped,
        ...(m.error === undefined ? {} : { error: m.error }),
      });
    });
    const fail = (reason: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      for (const [id, job] of this.#running) {
        this.#running.delete(id);
        job.resolve({ code: null, stderr: "", timedOut: false, stopped: job.stopped, error: reason });
      }
    };
    worker.on("error", (error: Error) => fail(`spawner thread failed: ${error.message}`));
    worker.on("exit", (code) => fail(`spawner thread exited with ${code}`));
    this.#worker = worker;
    return worker;
  }

  /**
   * Runs `command` and hands its stdout to `onData` as it streams; `onData` returning "stop" (or throwing) kills the
   * command. Resolves when it has exited; never rejects.
   */
  run(
    command: string,
    args: readonly string[],
    options: { cwd: string; env: Record<string, string>; input?: string; timeoutMs: number },
    onData: (chunk: Buffer) => void | "stop",
  ): Promise<SpawnResult> {
    const worker = this.#thread();
    const id = this.#nextId++;
    return new Promise((resolve) => {
      // Referenced while a command runs (the caller awaits it), unreferenced when idle.
      if (this.#running.size === 0) worker.ref();
      this.#running.set(id, { onData, resolve, stopped: false });
      worker.postMessage({
        type: "run",
        id,
        command,
        args: [...args],
        cwd: options.cwd,
        env: options.env,
        input: options.input,
        timeoutMs: options.timeoutMs,
      } satisfies SpawnerRequest);
    });
  }
}

/** The process-wide spawner. */
export const spawner = new Spawner();
