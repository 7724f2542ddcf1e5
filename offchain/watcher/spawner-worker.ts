// The thread that starts git for the watcher (spawner.ts). Starting a process (fork, then waiting for exec) blocks
// the calling thread for tens of milliseconds in a large, busy process: done here, it never delays the event loop
// that answers /healthz. Output is forwarded in chunks with flow control (paused while the main thread is behind).
import { spawn, type ChildProcess } from "node:child_process";
import { parentPort } from "node:worker_threads";

export type SpawnerRequest =
  | {
      type: "run";
      id: number;
      command: string;
      args: string[];
      cwd: string;
      env: Record<string, string>;
      input: string | undefined;
      timeoutMs: number;
    }
  | { type: "stop"; id: number }
  | { type: "ack"; id: number; bytes: number };

export type SpawnerReply =
  | { type: "data"; id: number; chunk: Uint8Array }
  | { type: "exit"; id: number; code: number | null; stderr: string; timedOut: boolean; error?: string };

/** Output held for the main thread before the child's stdout is paused. */
const MAX_UNACKED = 8 * 1024 * 1024;
const MAX_STDERR = 16 * 1024;

interface Job {
  child: ChildProcess;
  unacked: number;
  paused: boolean;
}

const port = parentPort;
if (port !== null) {
  const jobs = new Map<number, Job>();
  port.on("message", (m: SpawnerRequest) => {
    if (m.type === "stop") {
      jobs.get(m.id)?.child.kill("SIGKILL");
      return;
    }
    if (m.type === "ack") {
      const job = jobs.get(m.id);
      if (job === undefined) return;
      job.unacked -= m.bytes;
      if (job.paused && job.unacked < MAX_UNACKED / 2) {
        job.paused = false;
        job.child.stdout?.resume();
      }
      return;
    }
    let stderr = "";
    let timedOut = false;
    let finished = false;
    // Declared before `finish`, which clears it: a spawn that throws at once (an argument with a NUL byte) finishes
    // before the timer exists, and must not kill this thread (and every command in flight) with a ReferenceError.
    let timer: NodeJS.Timeout | undefined = undefined;
    const finish = (code: number | null, error?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      jobs.delete(m.id);
      port.postMessage({
        type: "exit",
        id: m.id,
        code,
        stderr,
        timedOut,
        ...(error === undefined ? {} : { error }),
      } satisfies SpawnerReply);
    };
    let child: ChildProcess;
    try {
      child = spawn(m.command, m.args, {
        cwd: m.cwd,
        env: m.env,
        stdio: [m.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      });
    } catch (error) {
      finish(null, error instanceof Error ? error.message : String(error));
      return;
    }
    timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, m.timeoutMs);
    const job: Job = { child, unacked: 0, paused: false };
    jobs.set(m.id, job);
    child.stdout!.on("data", (chunk: Buffer) => {
      const copy = new Uint8Array(chunk); // its own buffer, so that it can be transferred
      job.unacked += copy.length;
      port.postMessage({ type: "data", id: m.id, chunk: copy } satisfies SpawnerReply, [copy.buffer]);
      if (job.unacked > MAX_UNACKED && !job.paused) {
        job.paused = true;
        child.stdout!.pause();
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString("utf8").slice(0, MAX_STDERR - stderr.length);
    });
    child.on("error", (error) => finish(null, error.message));
    child.on("close", (code) => finish(code));
    if (child.stdin !== null) {
      // git may exit before reading all of stdin (a broken mirror): its EPIPE is reported by `close`, not thrown.
      child.stdin.on("error", () => undefined);
      child.stdin.end(m.input);
    }
  });
}
