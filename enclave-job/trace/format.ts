// Training traces (DESIGN §13, docs/training-trace.md): the byte formats of step and checkpoint records, their leaves,
// the RFC 6962 tree over them, the trace file, stretch sampling and the detection probability. Pure and synchronous:
// it trusts no input, bounds every count before allocating, and throws coded errors.
import { createHash, timingSafeEqual } from "node:crypto";

import { MalformedInputError } from "../../lib/errors.ts";
import { leafHash, MerkleTree, type Hash } from "../../lib/merkle/index.ts";

/** Domain of a step leaf: leaf = SHA-256("provenant/trace/v1" ‖ step record). */
export const STEP_LEAF_DOMAIN = "provenant/trace/v1";
/** Domain of a checkpoint leaf: leaf = SHA-256("provenant/trace/checkpoint/v1" ‖ checkpoint record). */
export const CHECKPOINT_LEAF_DOMAIN = "provenant/trace/checkpoint/v1";
/** Domain of the spot-check randomness. */
export const SPOT_CHECK_DOMAIN = "provenant/spot-check/v1";
/** First 8 bytes of a trace file. */
export const TRACE_MAGIC = "PVTRACE1";

/** t (u64 BE) ‖ SHA-256(batch tokens as i32 LE) ‖ loss (f32 bits, BE) ‖ learning rate (f32 bits, BE). */
export const STEP_RECORD_BYTES = 48;
/** step (u64 BE) ‖ OMS root digest of the checkpoint (32 bytes). */
export const CHECKPOINT_RECORD_BYTES = 40;
/** magic (8) ‖ step count (u64 BE) ‖ checkpoint count (u32 BE). */
export const TRACE_HEADER_BYTES = 20;
/** The runner's raw record: a step record followed by the leaf it computed (80 bytes). */
export const RUNNER_RECORD_BYTES = STEP_RECORD_BYTES + 32;

/**
 * At most 2^20 steps (a 48 MiB trace file): far more than a fine-tune with this trainer takes (a day and more at 0.1 s
 * a step). The bound is the auditor's memory: parsing a trace and building its tree cost about 1 GiB of heap and 13 s
 * at 2^20 steps (measured on the 2-core development VM), so a hostile commitment to 2^22 would exhaust Node's heap.
 */
export const MAX_TRACE_STEPS = 1 << 20;

export interface StepRecord {
  step: number;
  /** SHA-256 of the step's n_ctx + 1 token ids, each as i32 little-endian. */
  batchDigest: Uint8Array;
  /** The f32 loss the trainer computed for the step, as its IEEE-754 bit pattern. */
  lossBits: number;
  /** The f32 learning rate given to the optimizer for the step, as its bit pattern. */
  lrBits: number;
}

export interface CheckpointRecord {
  /** The number of steps done when the state was saved: 0 (the base model), k, 2k, …, and the last step count. */
  step: number;
  /** OMS v1.0 root digest of the checkpoint file (a one-file model: SHA-256 of the file's SHA-256). */
  digest: Uint8Array;
}

export interface Trace {
  steps: StepRecord[];
  checkpoints: CheckpointRecord[];
}

/** A stretch: the steps [from, to) between two consecutive checkpoints. */
export interface Stretch {
  index: number;
  from: number;
  to: number;
}

function malformed(message: string, details?: Record<string, unknown>): MalformedInputError {
  return new MalformedInputError("TRACE_INCLUSION", message, details === undefined ? undefined : { details });
}

function sha256(...parts: (Uint8Array | string)[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export function fromHex(hex: string, what: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw malformed(`${what} must be 64 lowercase hex`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The f32 bit pattern of a number (as the runner converts it: round to nearest float). */
export function f32Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  return view.getUint32(0);
}

export function f32FromBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits);
  return view.getFloat32(0);
}

/** SHA-256 of token ids as i32 little-endian: the batch digest of a step. */
export function batchDigest(tokens: readonly number[]): Uint8Array {
  const bytes = Buffer.alloc(tokens.length * 4);
  tokens.forEach((token, i) => bytes.writeInt32LE(token, i * 4));
  return sha256(bytes);
}

export function encodeStepRecord(record: StepRecord): Uint8Array {
  const out = Buffer.alloc(STEP_RECORD_BYTES);
  out.writeBigUInt64BE(BigInt(record.step), 0);
  out.set(record.batchDigest, 8);
  out.writeUInt32BE(record.lossBits >>> 0, 40);
  out.writeUInt32BE(record.lrBits >>> 0, 44);
  return out;
}

export function encodeCheckpointRecord(record: CheckpointRecord): Uint8Array {
  const out = Buffer.alloc(CHECKPOINT_RECORD_BYTES);
  out.writeBigUInt64BE(BigInt(record.step), 0);
  out.set(record.digest, 8);
  return out;
}

function decodeStepRecord(bytes: Uint8Array, offset: number): StepRecord {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + offset, STEP_RECORD_BYTES);
  const step = view.readBigUInt64BE(0);
  if (step > BigInt(MAX_TRACE_STEPS)) throw malformed(`step number ${step} is out of range`);
  return {
    step: Number(step),
    batchDigest: new Uint8Array(view.subarray(8, 40)),
    lossBits: view.readUInt32BE(40),
    lrBits: view.readUInt32BE(44),
  };
}

function decodeCheckpointRecord(bytes: Uint8Array, offset: number): CheckpointRecord {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + offset, CHECKPOINT_RECORD_BYTES);
  const step = view.readBigUInt64BE(0);
  if (step > BigInt(MAX_TRACE_STEPS)) throw malformed(`checkpoint step ${step} is out of range`);
  return { step: Number(step), digest: new Uint8Array(view.subarray(8, 40)) };
}

/** A step leaf: SHA-256("provenant/trace/v1" ‖ t ‖ batch digest ‖ loss bits ‖ lr bits). */
export function stepLeaf(record: StepRecord): Uint8Array {
  return sha256(STEP_LEAF_DOMAIN, encodeStepRecord(record));
}

/** A checkpoint leaf: SHA-256("provenant/trace/checkpoint/v1" ‖ step ‖ OMS root digest). */
export function checkpointLeaf(record: CheckpointRecord): Uint8Array {
  return sha256(CHECKPOINT_LEAF_DOMAIN, encodeCheckpointRecord(record));
}

/**
 * The leaves in tree order: the N step leaves (step t at index t), then the checkpoint leaves in step order
 * (checkpoint i at index N + i). Each is an RFC 6962 leaf entry: the tree hashes it again as SHA-256(0x00 ‖ leaf).
 */
export function traceLeaves(trace: Trace): Uint8Array[] {
  return [...trace.steps.map(stepLeaf), ...trace.checkpoints.map(checkpointLeaf)];
}

export function traceTree(trace: Trace): MerkleTree {
  return new MerkleTree(traceLeaves(trace).map((leaf) => leafHash(leaf)));
}

export function traceRoot(trace: Trace): Hash {
  return traceTree(trace).root();
}

/** The tree index of step t's leaf and of checkpoint i's leaf. */
export function stepLeafIndex(t: number): number {
  return t;
}

export function checkpointLeafIndex(stepCount: number, i: number): number {
  return stepCount + i;
}

/** Checkpoint steps for N steps saved every k: 0, k, 2k, … below N, then N (k ≥ N: just 0 and N). */
export function checkpointSteps(steps: number, every: number): number[] {
  checkShape(steps, every);
  const out: number[] = [];
  for (let s = 0; s < steps; s += every) out.push(s);
  out.push(steps);
  return out;
}

export function stretchesOf(steps: number, every: number): Stretch[] {
  const marks = checkpointSteps(steps, every);
  return marks.slice(0, -1).map((from, index) => ({ index, from, to: marks[index + 1]! }));
}

function checkShape(steps: number, every: number): void {
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > MAX_TRACE_STEPS)
    throw malformed(`a trace has 1 to ${MAX_TRACE_STEPS} steps, got ${steps}`);
  if (!Number.isSafeInteger(every) || every < 1 || every > MAX_TRACE_STEPS)
    throw malformed(`checkpoint interval must be 1 to ${MAX_TRACE_STEPS}, got ${every}`);
}

export function encodeTrace(trace: Trace): Uint8Array {
  const out = Buffer.alloc(
    TRACE_HEADER_BYTES + trace.steps.length * STEP_RECORD_BYTES + trace.checkpoints.length * CHECKPOINT_RECORD_BYTES,
  );
  out.write(TRACE_MAGIC, 0, "ascii");
  out.writeBigUInt64BE(BigInt(trace.steps.length), 8);
  out.writeUInt32BE(trace.checkpoints.length, 16);
  let offset = TRACE_HEADER_BYTES;
  for (const record of trace.steps) {
    out.set(encodeStepRecord(record), offset);
    offset += STEP_RECORD_BYTES;
  }
  for (const record of trace.checkpoints) {
    out.set(encodeCheckpointRecord(record), offset);
    offset += CHECKPOINT_RECORD_BYTES;
  }
  return out;
}

/**
 * Parses a trace file: the header's counts are bounded and must account for every byte; steps are numbered 0..N-1;
 * checkpoint steps strictly increase from 0 to N. Anything else is TRACE_INCLUSION: the file cannot be the
 * committed leaf list.
 */
export function parseTrace(bytes: Uint8Array): Trace {
  if (bytes.length < TRACE_HEADER_BYTES) throw malformed(`a trace file is at least ${TRACE_HEADER_BYTES} bytes`);
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, TRACE_HEADER_BYTES);
  if (header.toString("ascii", 0, 8) !== TRACE_MAGIC) throw malformed("not a trace file (bad magic)");
  const stepCount = header.readBigUInt64BE(8);
  const checkpointCount = header.readUInt32BE(16);
  if (stepCount < 1n || stepCount > BigInt(MAX_TRACE_STEPS)) throw malformed(`step count ${stepCount} is out of range`);
  const n = Number(stepCount);
  if (checkpointCount < 2 || checkpointCount > n + 1)
    throw malformed(`checkpoint count ${checkpointCount} is out of range for ${n} steps`);
  const expected = TRACE_HEADER_BYTES + n * STEP_RECORD_BYTES + checkpointCount * CHECKPOINT_RECORD_BYTES;
  if (bytes.length !== expected)
    throw malformed(
      `a trace of ${n} steps and ${checkpointCount} checkpoints is ${expected} bytes, got ${bytes.length}`,
    );
  const steps: StepRecord[] = [];
  let offset = TRACE_HEADER_BYTES;
  for (let i = 0; i < n; i++, offset += STEP_RECORD_BYTES) {
    const record = decodeStepRecord(bytes, offset);
    if (record.step !== i) throw malformed(`step record ${i} is numbered ${record.step}`);
    steps.push(record);
  }
  const checkpoints: CheckpointRecord[] = [];
  for (let i = 0; i < checkpointCount; i++, offset += CHECKPOINT_RECORD_BYTES) {
    const record = decodeCheckpointRecord(bytes, offset);
    const previous = checkpoints[i - 1]?.step ?? -1;
    if (record.step <= previous || record.step > n)
      throw malformed(`checkpoint ${i} at step ${record.step} is out of order`);
    checkpoints.push(record);
  }
  if (checkpoints[0]!.step !== 0 || checkpoints[checkpoints.length - 1]!.step !== n)
    throw malformed("the checkpoints must start at step 0 and end at the last step");
  return { steps, checkpoints };
}

/** Splits the runner's raw records (80 bytes: step record ‖ its leaf) into step records and leaves. */
export function parseRunnerRecords(bytes: Uint8Array): { records: StepRecord[]; leaves: Uint8Array[] } {
  if (bytes.length % RUNNER_RECORD_BYTES !== 0)
    throw malformed(`runner records are ${RUNNER_RECORD_BYTES} bytes each; got ${bytes.length} bytes`);
  const count = bytes.length / RUNNER_RECORD_BYTES;
  if (count > MAX_TRACE_STEPS) throw malformed(`more than ${MAX_TRACE_STEPS} records`);
  const records: StepRecord[] = [];
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * RUNNER_RECORD_BYTES;
    records.push(decodeStepRecord(bytes, offset));
    leaves.push(new Uint8Array(bytes.subarray(offset + STEP_RECORD_BYTES, offset + RUNNER_RECORD_BYTES)));
  }
  return { records, leaves };
}

/**
 * The spot-check seed: SHA-256("provenant/spot-check/v1" ‖ trace root ‖ entropy), where entropy is the hash of the
 * block that recorded the manifest (unknown to the trainer when it committed to the root) or a caller's seed.
 */
export function spotCheckSeed(root: Uint8Array, entropy: Uint8Array): Uint8Array {
  return sha256(SPOT_CHECK_DOMAIN, root, entropy);
}

/**
 * m distinct stretch indices out of `count`, in ascending order: a partial Fisher-Yates shuffle driven by the
 * stream SHA-256(seed ‖ u32 BE counter), each draw a u64 taken uniformly by rejection (no modulo bias).
 */
export function sampleStretches(seed: Uint8Array, count: number, m: number): number[] {
  if (!Number.isSafeInteger(count) || count < 0 || count > 2 ** 32) throw malformed(`bad stretch count ${count}`);
  const take = Math.max(0, Math.min(m, count));
  let counter = 0;
  let pool: bigint[] = [];
  const next = (): bigint => {
    if (pool.length === 0) {
      const block = Buffer.alloc(4);
      block.writeUInt32BE(counter++);
      const digest = Buffer.from(sha256(seed, block));
      pool = [0, 8, 16, 24].map((o) => digest.readBigUInt64BE(o));
    }
    return pool.shift()!;
  };
  const below = (bound: number): number => {
    const b = BigInt(bound);
    const limit = (1n << 64n) - ((1n << 64n) % b);
    for (;;) {
      const x = next();
      if (x < limit) return Number(x % b);
    }
  };
  const swapped = new Map<number, number>();
  const chosen: number[] = [];
  for (let i = 0; i < take; i++) {
    const j = i + below(count - i);
    const at = (k: number): number => swapped.get(k) ?? k;
    const vi = at(i);
    chosen.push(at(j));
    swapped.set(j, vi);
  }
  return chosen.sort((a, b) => a - b);
}

/**
 * The probability that m stretches sampled without replacement out of N catch at least one of f faked ones:
 * 1 − C(N−f, m) / C(N, m) = 1 − ∏_{i<m} (N−f−i)/(N−i).
 */
export function detectionProbability(n: number, m: number, f: number): number {
  if (f <= 0 || m <= 0 || n <= 0) return 0;
  if (m > n - f) return 1;
  if (f === 1) return m / n; // 1 − (N−m)/N, without the rounding of the product
  let miss = 1;
  for (let i = 0; i < m; i++) miss *= (n - f - i) / (n - i);
  return 1 - miss;
}
