// SHA-256 of a byte range of a file with node:crypto (SHA-NI where the CPU has it). Reads are 4 MiB and
// double-buffered: the next read runs on libuv's pool while this thread hashes the previous chunk, so hashing is
// not serialised behind I/O. Used on the main thread and inside the worker pool (worker.ts).
import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";

import { IoError } from "../errors.ts";

export const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Hashes bytes [start, end) of `path`; calls `onBytes(n)` as chunks are hashed. Throws IO_ERROR when the file cannot
 * be read or is shorter than `end` (it changed while we hashed it).
 */
export async function hashFileRange(
  path: string,
  start: number,
  end: number,
  onBytes?: (bytes: number) => void,
): Promise<Buffer> {
  const hash = createHash("sha256");
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot open ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
  try {
    const buffers = [Buffer.allocUnsafe(READ_CHUNK_BYTES), Buffer.allocUnsafe(READ_CHUNK_BYTES)];
    let position = start;
    let which = 0;
    const readAt = (buffer: Buffer, at: number) =>
      at >= end
        ? Promise.resolve(0)
        : handle.read(buffer, 0, Math.min(READ_CHUNK_BYTES, end - at), at).then((r) => r.bytesRead);
    let pending = readAt(buffers[0]!, position);
    while (position < end) {
      const bytesRead = await pending;
      if (bytesRead === 0) {
        throw new IoError("IO_ERROR", `${path} ended at byte ${position}, expected ${end}: did it change?`, {
          details: { path, expected: end, actual: position },
        });
      }
      const current = buffers[which]!;
      position += bytesRead;
      which ^= 1;
      pending = readAt(buffers[which]!, position);
      hash.update(current.subarray(0, bytesRead));
      onBytes?.(bytesRead);
    }
    await pending;
    return hash.digest();
  } catch (error) {
    if (error instanceof IoError) throw error;
    throw new IoError("IO_ERROR", `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  } finally {
    await handle.close();
  }
}

/** Hex SHA-256 of a whole file (e.g. a dataset file or a job archive), with the same fast reads. */
export async function sha256File(path: string): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
  return (await hashFileRange(path, 0, size)).toString("hex");
}
