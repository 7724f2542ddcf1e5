// A hash worker of the explorer page (web/src/oms.ts): receives {id, blob, start, end}, answers with progress and the
// raw SHA-256 of that byte range with the engine the page chose (web/src/hash.ts). One range at a time per worker.
import { HashError, hashRange, type HashEngine } from "./hash.ts";

export interface WorkerTask {
  id: number;
  blob: Blob;
  start: number;
  end: number;
  engine: HashEngine;
}

export type WorkerReply =
  | { id: number; type: "progress"; bytes: number }
  | { id: number; type: "done"; digest: Uint8Array; engine: HashEngine }
  | { id: number; type: "error"; code: string; message: string };

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<WorkerTask>) => void) | null;
  postMessage: (reply: WorkerReply) => void;
};

scope.onmessage = (event) => {
  const task = event.data;
  hashRange(task.blob, task.start, task.end, {
    engine: task.engine,
    onBytes: (bytes) => scope.postMessage({ id: task.id, type: "progress", bytes }),
  }).then(
    ({ digest, engine }) => scope.postMessage({ id: task.id, type: "done", digest, engine }),
    (error: unknown) =>
      scope.postMessage({
        id: task.id,
        type: "error",
        code: error instanceof HashError ? error.code : "INTERNAL",
        message: error instanceof Error ? error.message : String(error),
      }),
  );
};
