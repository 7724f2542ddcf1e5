// A hashing worker of the pool in hash.ts: receives {id, path, start, end}, answers with progress and the raw digest.
import { parentPort } from "node:worker_threads";

import { isProvenantError } from "../errors.ts";
import { hashFileRange } from "./range.ts";

export interface HashTask {
  id: number;
  path: string;
  start: number;
  end: number;
}

export type WorkerReply =
  | { id: number; type: "progress"; bytes: number }
  | { id: number; type: "done"; digest: Uint8Array }
  | { id: number; type: "error"; code: string; message: string };

/** Progress is batched so that a 2 GiB file sends tens of messages, not hundreds. */
const PROGRESS_EVERY = 32 * 1024 * 1024;

const port = parentPort;
if (port !== null) {
  port.on("message", (task: HashTask) => {
    let unreported = 0;
    hashFileRange(task.path, task.start, task.end, (bytes) => {
      unreported += bytes;
      if (unreported >= PROGRESS_EVERY) {
        port.postMessage({ id: task.id, type: "progress", bytes: unreported } satisfies WorkerReply);
        unreported = 0;
      }
    }).then(
      (digest) => {
        if (unreported > 0)
          port.postMessage({ id: task.id, type: "progress", bytes: unreported } satisfies WorkerReply);
        port.postMessage({ id: task.id, type: "done", digest: new Uint8Array(digest) } satisfies WorkerReply);
      },
      (error: unknown) => {
        const code = isProvenantError(error) ? error.code : "INTERNAL";
        const message = error instanceof Error ? error.message : String(error);
        port.postMessage({ id: task.id, type: "error", code, message } satisfies WorkerReply);
      },
    );
  });
}
