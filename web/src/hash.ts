// SHA-256 of a byte range of a Blob, as the explorer's hash workers run it (and the page itself where Web Workers are
// missing). WebCrypto's digest() has no streaming form, so a range is read whole into memory and digested natively up
// to WEBCRYPTO_MAX_BYTES; beyond it, or where WebCrypto is missing (a page not served from https or localhost), or
// where WebCrypto measures slower than WASM here (fasterWholeEngine), the range streams through hash-wasm's SHA-256
// in constant memory. Reads go straight into memory this thread reuses (a BYOB reader on Blob.stream()), because
// first-touching fresh pages can cost more than hashing them.

/**
 * The largest range digested with WebCrypto. digest() needs the whole input in one buffer: 256 MiB keeps a worker's
 * peak memory bounded (the page allows WEBCRYPTO_BUDGET_BYTES in flight across workers) while a typical shard or
 * single-file checkpoint piece still takes the native path (SHA-NI where the CPU has it), which is several times
 * faster than WASM.
 */
export const WEBCRYPTO_MAX_BYTES = 256 * 1024 * 1024;
/** Bytes of whole-range buffers the page keeps in flight at once, across all workers. */
export const WEBCRYPTO_BUDGET_BYTES = 2 * WEBCRYPTO_MAX_BYTES;
/** Slice size of each Blob read where BYOB streams are missing, and the unit of progress reports. */
export const READ_CHUNK_BYTES = 16 * 1024 * 1024;
/** Size of the reused buffer a streamed (hash-wasm) range is read into, one BYOB read at a time. */
const STREAM_BUFFER_BYTES = 4 * 1024 * 1024;
/** A whole-range buffer kept for the next range (the next file of the model, the next drop) is dropped after this. */
const KEEP_BUFFER_MS = 30_000;
/** Ranges from this size up are worth measuring the two engines for; below it WebCrypto is used as it is. */
export const CALIBRATE_FROM_BYTES = 16 * 1024 * 1024;
/** Bytes WebCrypto digests when measured: enough fresh memory that its copy cannot live on pages just freed. */
const CALIBRATION_WEBCRYPTO_BYTES = 64 * 1024 * 1024;
/** Bytes hash-wasm hashes when measured (its speed does not depend on memory). */
const CALIBRATION_WASM_BYTES = 16 * 1024 * 1024;

export type HashEngine = "webcrypto" | "hash-wasm";

export interface RangeOptions {
  /** The engine for this range (default: engineFor(size), WebCrypto up to the bound). */
  engine?: HashEngine;
  /** Called with the bytes read since the last call (about every READ_CHUNK_BYTES). */
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

/**
 * Which engine hashes a range of `size` bytes: WebCrypto up to `webCryptoMaxBytes` when there is one and `whole` (the
 * engine for ranges that fit in memory) says so; hash-wasm streaming otherwise.
 */
export function engineFor(
  size: number,
  webCryptoMaxBytes = WEBCRYPTO_MAX_BYTES,
  whole: HashEngine = "webcrypto",
): HashEngine {
  return subtle() !== undefined && size <= webCryptoMaxBytes && whole === "webcrypto" ? "webcrypto" : "hash-wasm";
}

let measured: Promise<HashEngine> | undefined;

/**
 * The faster engine for a range that fits in memory, measured once per page. WebCrypto hashes natively
 * (SHA-NI where the CPU has it) but first copies its whole input into newly allocated memory; where touching fresh
 * pages is dear (a VM that hands freed memory back to its host pays several ns a byte) that copy costs more than
 * hash-wasm's SHA-256. So WebCrypto is timed once, on its first call, as every large digest pays that copy afresh (a
 * repeat right away would reuse the pages just freed and flatter it); hash-wasm is timed twice, the second after its
 * code warmed up.
 */
export function fasterWholeEngine(): Promise<HashEngine> {
  measured ??= (async (): Promise<HashEngine> => {
    const s = subtle();
    if (s === undefined) return "hash-wasm";
    const sample = new Uint8Array(CALIBRATION_WEBCRYPTO_BYTES).fill(0x5a);
    let t = performance.now();
    await s.digest("SHA-256", sample);
    const web = (performance.now() - t) / CALIBRATION_WEBCRYPTO_BYTES;
    const part = sample.subarray(0, CALIBRATION_WASM_BYTES);
    const { createSHA256 } = await import("hash-wasm");
    const h = await createSHA256();
    let wasm = Infinity;
    for (let i = 0; i < 2; i++) {
      t = performance.now();
      h.init();
      h.update(part);
      h.digest("binary");
      wasm = Math.min(wasm, (performance.now() - t) / CALIBRATION_WASM_BYTES);
    }
    return web <= wasm ? "webcrypto" : "hash-wasm";
  })();
  return measured;
}

function readError(error: unknown): HashError {
  // A file changed, moved or made unreadable after it was chosen (NotReadableError).
  return new HashError("IO_ERROR", `cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
}

function shortRead(got: number, expected: number): HashError {
  return new HashError("IO_ERROR", `the file gave ${got} bytes, expected ${expected}: did it change?`);
}

/** Batches byte counts into about one report per READ_CHUNK_BYTES (a BYOB read is often well under 1 MiB). */
function batched(onBytes: (n: number) => void): { add: (n: number) => void; flush: () => void } {
  let pending = 0;
  return {
    add(n) {
      pending += n;
      if (pending >= READ_CHUNK_BYTES) this.flush();
    },
    flush() {
      if (pending > 0) onBytes(pending);
      pending = 0;
    },
  };
}

function byobReader(blob: Blob): ReadableStreamBYOBReader | undefined {
  try {
    return blob.stream().getReader({ mode: "byob" });
  } catch {
    return undefined; // Blob.stream() is not a byte stream in this browser
  }
}

/**
 * Reads all of `blob` through `sink`, each read landing in `buffer` (or in what the stream hands back of it: a BYOB
 * read transfers the buffer), and returns the buffer. `wrap` true: every read starts again at offset 0, and `sink`
 * consumes each view before the next read reuses the memory (streaming). `wrap` false: the blob fills the buffer's
 * first blob.size bytes (a whole-range read; the buffer may be larger).
 */
async function readInto(
  blob: Blob,
  buffer: ArrayBuffer,
  wrap: boolean,
  sink: (view: Uint8Array) => void,
): Promise<ArrayBuffer> {
  const reader = byobReader(blob);
  const limit = wrap ? buffer.byteLength : blob.size;
  let total = 0;
  if (reader === undefined) {
    // No byte stream: fresh slices, copied into the buffer.
    for (let offset = 0; offset < blob.size; offset += READ_CHUNK_BYTES) {
      let chunk: Uint8Array;
      try {
        chunk = new Uint8Array(await blob.slice(offset, offset + READ_CHUNK_BYTES).arrayBuffer());
      } catch (error) {
        throw readError(error);
      }
      if (chunk.length === 0) break;
      total += chunk.length;
      if (wrap) sink(chunk);
      else {
        if (total > limit) throw shortRead(total, blob.size);
        new Uint8Array(buffer).set(chunk, total - chunk.length);
        sink(chunk);
      }
    }
    if (total !== blob.size) throw shortRead(total, blob.size);
    return buffer;
  }
  try {
    let offset = 0;
    for (;;) {
      if (offset === limit) {
        if (!wrap) break;
        offset = 0;
      }
      const { done, value } = await reader.read(new Uint8Array(buffer, offset, limit - offset));
      if (value !== undefined) buffer = value.buffer as ArrayBuffer;
      if (done || value === undefined) break;
      sink(value);
      offset += value.byteLength;
      total += value.byteLength;
    }
    if (!wrap && total === blob.size) {
      // The range is in; anything more would mean the file grew.
      const more = await reader.read(new Uint8Array(new ArrayBuffer(1)));
      if (!more.done) throw shortRead(total + (more.value?.byteLength ?? 0), blob.size);
    }
  } catch (error) {
    throw error instanceof HashError ? error : readError(error);
  } finally {
    reader.releaseLock();
  }
  if (total !== blob.size) throw shortRead(total, blob.size);
  return buffer;
}

/** The whole-range buffer this thread keeps between ranges, and the timer that drops it when idle. */
let kept: ArrayBuffer | null = null;
let keptTimer: ReturnType<typeof setTimeout> | undefined;

/** A buffer of at least `size` bytes: the kept one when it is large enough (its memory is already paged in). */
function takeBuffer(size: number): ArrayBuffer {
  const buffer = kept !== null && kept.byteLength >= size ? kept : new ArrayBuffer(size);
  kept = null;
  return buffer;
}

function keepBuffer(buffer: ArrayBuffer): void {
  kept = buffer;
  clearTimeout(keptTimer);
  keptTimer = setTimeout(() => (kept = null), KEEP_BUFFER_MS);
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

/** SHA-256 of bytes [start, end) of `blob` with `options.engine` (default: WebCrypto up to the bound). */
export async function hashRange(
  blob: Blob,
  start: number,
  end: number,
  options: RangeOptions = {},
): Promise<{ digest: Uint8Array; engine: HashEngine }> {
  const progress = batched(options.onBytes ?? (() => {}));
  const range = blob.slice(start, end);
  const engine = subtle() === undefined ? "hash-wasm" : (options.engine ?? engineFor(end - start));
  if (engine === "webcrypto") {
    const size = end - start;
    const buffer = await readInto(range, takeBuffer(size), false, (view) => progress.add(view.length));
    progress.flush();
    const digest = await sha256(new Uint8Array(buffer, 0, size));
    keepBuffer(buffer);
    return { digest, engine };
  }
  const { createSHA256 } = await import("hash-wasm");
  const h = await createSHA256();
  h.init();
  await readInto(range, new ArrayBuffer(STREAM_BUFFER_BYTES), true, (view) => {
    h.update(view);
    progress.add(view.length);
  });
  progress.flush();
  return { digest: h.digest("binary"), engine };
}
