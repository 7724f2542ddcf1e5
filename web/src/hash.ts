// SHA-256 of a byte range of a Blob, as the explorer's hash workers run it (and the page itself where Web Workers are
// missing). WebCrypto's digest() has no streaming form, so a range is read whole into memory and digested natively up
// to WEBCRYPTO_MAX_BYTES; beyond it, or where WebCrypto is missing (a page not served from https or localhost), the
// range streams through hash-wasm's SHA-256 in READ_CHUNK_BYTES slices with the next slice read while this one hashes.

/**
 * The largest range digested with WebCrypto. digest() needs the whole input in one buffer: 256 MiB keeps a worker's
 * peak memory bounded (the page allows WEBCRYPTO_BUDGET_BYTES in flight across workers) while a typical shard or
 * single-file checkpoint piece still takes the native path, which is several times faster than WASM.
 */
export const WEBCRYPTO_MAX_BYTES = 256 * 1024 * 1024;
/** Bytes of whole-range buffers the page keeps in flight at once, across all workers. */
export const WEBCRYPTO_BUDGET_BYTES = 2 * WEBCRYPTO_MAX_BYTES;
/** Slice size of each Blob read: large enough that per-read IPC costs vanish, small enough for smooth progress. */
export const READ_CHUNK_BYTES = 16 * 1024 * 1024;
/** Reads in flight at once when a range is read whole (the browser serves them in parallel). */
const READS_IN_FLIGHT = 4;

export type HashEngine = "webcrypto" | "hash-wasm";

export interface RangeOptions {
  /** Ranges up to this size use WebCrypto (default WEBCRYPTO_MAX_BYTES); tests lower it to exercise hash-wasm. */
  webCryptoMaxBytes?: number;
  /** Called with the bytes read since the last call. */
  onBytes?: (bytes: number) => void;
}

/** A failure with the stable code the page shows (IO_ERROR: the browser could not read the file). */
export class HashError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const subtle = (): SubtleCrypto | undefined => globalThis.crypto?.subtle;

/** Which engine hashes a range of `size` bytes here. */
export function engineFor(size: number, webCryptoMaxBytes = WEBCRYPTO_MAX_BYTES): HashEngine {
  return subtle() !== undefined && size <= webCryptoMaxBytes ? "webcrypto" : "hash-wasm";
}

async function readSlice(blob: Blob, start: number, end: number): Promise<Uint8Array> {
  let buffer: ArrayBuffer;
  try {
    buffer = await blob.slice(start, end).arrayBuffer();
  } catch (error) {
    // A file changed, moved or made unreadable after it was chosen (NotReadableError).
    throw new HashError("IO_ERROR", `cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (buffer.byteLength !== end - start) {
    throw new HashError("IO_ERROR", `read ${buffer.byteLength} bytes at ${start}, expected ${end - start}`);
  }
  return new Uint8Array(buffer);
}

/** Reads [start, end) into one buffer, READS_IN_FLIGHT slices at a time, reporting each slice. */
async function readWhole(blob: Blob, start: number, end: number, onBytes: (n: number) => void): Promise<Uint8Array> {
  const out = new Uint8Array(end - start);
  let next = start;
  const reader = async (): Promise<void> => {
    while (next < end) {
      const from = next;
      const to = Math.min(from + READ_CHUNK_BYTES, end);
      next = to;
      out.set(await readSlice(blob, from, to), from - start);
      onBytes(to - from);
    }
  };
  await Promise.all(Array.from({ length: READS_IN_FLIGHT }, reader));
  return out;
}

/** SHA-256 of bytes already in memory: WebCrypto where there is one, else hash-wasm. */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  const s = subtle();
  if (s !== undefined) return new Uint8Array(await s.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const { createSHA256 } = await import("hash-wasm");
  const h = await createSHA256();
  h.init();
  h.update(bytes);
  return h.digest("binary");
}

/** Streams [start, end) through hash-wasm, reading the next slice while the current one is hashed. */
async function streamWasm(blob: Blob, start: number, end: number, onBytes: (n: number) => void): Promise<Uint8Array> {
  const { createSHA256 } = await import("hash-wasm");
  const h = await createSHA256();
  h.init();
  const read = (from: number) => readSlice(blob, from, Math.min(from + READ_CHUNK_BYTES, end));
  let pending = start < end ? read(start) : undefined;
  for (let offset = start; pending !== undefined;) {
    const chunk = await pending;
    offset += chunk.length;
    pending = offset < end ? read(offset) : undefined;
    h.update(chunk);
    onBytes(chunk.length);
  }
  return h.digest("binary");
}

/** SHA-256 of bytes [start, end) of `blob`: WebCrypto up to the bound, streaming hash-wasm beyond it. */
export async function hashRange(
  blob: Blob,
  start: number,
  end: number,
  options: RangeOptions = {},
): Promise<{ digest: Uint8Array; engine: HashEngine }> {
  const onBytes = options.onBytes ?? (() => {});
  const engine = engineFor(end - start, options.webCryptoMaxBytes);
  if (engine === "webcrypto") {
    const bytes = await readWhole(blob, start, end, onBytes);
    return { digest: await sha256(bytes), engine };
  }
  return { digest: await streamWasm(blob, start, end, onBytes), engine };
}
