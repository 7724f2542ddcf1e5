// The training-trace byproduct of a fine-tune's SLSA provenance (DESIGN §13): the trace's RFC 6962 root as its
// digest, and as annotations everything a spot-check needs to replay a stretch. Built by the job, read back (from a
// statement lib/intoto already validated) by the spot-check; the reader re-checks what it relies on.
import { MalformedInputError } from "../../lib/errors.ts";
import { TRAINING_TRACE_BYPRODUCT, type Statement } from "../../lib/intoto/index.ts";
import { checkpointSteps, MAX_TRACE_STEPS } from "./format.ts";

export const TRACE_FORMAT = "provenant/trace/v1";
/** How the leaves are ordered in the tree; written into the annotations so that a reader need not guess. */
export const LEAF_ORDER = "steps-then-checkpoints";

export interface TraceCommitment {
  /** Hex RFC 6962 root over the step leaves then the checkpoint leaves. */
  root: string;
  steps: number;
  checkpointEvery: number;
  /** Number of checkpoints: 0, k, 2k, … below steps, then steps. */
  checkpoints: number;
  seed: number;
  threads: number;
  contextSize: number;
  epochs: number;
  optimizer: { name: "sgd"; weightDecay: number };
  learningRateSchedule: { kind: "constant"; initial: number } | { kind: "linear"; initial: number; final: number };
  /** The recording trainer binary (SHA-256 of the executable) and the llama.cpp release it was built from. */
  trainer: { name: string; digest: string; llamaCpp: string };
  /** SHA-256 of the data file the steps were drawn from. */
  dataDigest: string;
}

/** The byproduct entry, as lib/intoto's buildFinetuneStatement takes it. */
export function toTraceByproduct(c: TraceCommitment): {
  name: string;
  digest: string;
  annotations: Record<string, unknown>;
} {
  return {
    name: TRAINING_TRACE_BYPRODUCT,
    digest: c.root,
    annotations: {
      format: TRACE_FORMAT,
      leafOrder: LEAF_ORDER,
      steps: c.steps,
      checkpointEvery: c.checkpointEvery,
      checkpoints: c.checkpoints,
      seed: c.seed,
      threads: c.threads,
      contextSize: c.contextSize,
      epochs: c.epochs,
      optimizer: { ...c.optimizer },
      learningRateSchedule: { ...c.learningRateSchedule },
      trainer: { name: c.trainer.name, digest: { sha256: c.trainer.digest }, llamaCpp: c.trainer.llamaCpp },
      dataDigest: { sha256: c.dataDigest },
    },
  };
}

function fail(message: string): never {
  throw new MalformedInputError("TRACE_MISSING", message);
}

function int(a: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = a[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
    fail(`training-trace annotation ${key} must be an integer from ${min} to ${max}`);
  return v;
}

function num(v: unknown, key: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`training-trace annotation ${key} must be ≥ 0`);
  return v;
}

function sha(v: unknown, key: string): string {
  const hex = (v as { sha256?: unknown } | undefined)?.sha256;
  if (typeof hex !== "string" || !/^[0-9a-f]{64}$/.test(hex)) fail(`training-trace annotation ${key} needs a sha256`);
  return hex;
}

/**
 * The training-trace commitment of a fine-tune statement. TRACE_MISSING when the statement has none, or when its
 * annotations lack what a replay needs (a commitment that cannot be checked is no commitment).
 */
export function readTraceCommitment(statement: Statement): TraceCommitment {
  const run = (statement.predicate as { runDetails?: { byproducts?: unknown } }).runDetails;
  const byproducts = Array.isArray(run?.byproducts) ? (run.byproducts as unknown[]) : [];
  const entries = byproducts.filter(
    (b): b is Record<string, unknown> =>
      typeof b === "object" && b !== null && (b as { name?: unknown }).name === TRAINING_TRACE_BYPRODUCT,
  );
  if (entries.length === 0) fail("the manifest has no training-trace byproduct: this fine-tune was not traced");
  if (entries.length > 1) fail("the manifest has more than one training-trace byproduct");
  const entry = entries[0]!;
  const root = sha(entry.digest, "digest");
  const a = entry.annotations;
  if (typeof a !== "object" || a === null || Array.isArray(a)) fail("the training-trace byproduct has no annotations");
  const ann = a as Record<string, unknown>;
  if (ann.format !== TRACE_FORMAT) fail(`unknown trace format ${JSON.stringify(ann.format)}`);
  if (ann.leafOrder !== undefined && ann.leafOrder !== LEAF_ORDER) fail(`unknown leaf order ${String(ann.leafOrder)}`);
  const steps = int(ann, "steps", 1, MAX_TRACE_STEPS);
  const checkpointEvery = int(ann, "checkpointEvery", 1, MAX_TRACE_STEPS);
  const checkpoints = int(ann, "checkpoints", 2, steps + 1);
  if (checkpoints !== checkpointSteps(steps, checkpointEvery).length)
    fail(
      `${steps} steps with a checkpoint every ${checkpointEvery} make ${checkpointSteps(steps, checkpointEvery).length} checkpoints, not ${checkpoints}`,
    );
  const optimizer = ann.optimizer as Record<string, unknown> | undefined;
  if (optimizer?.name !== "sgd") fail("only the sgd optimizer can be replayed (its weights are its whole state)");
  const schedule = ann.learningRateSchedule as Record<string, unknown> | undefined;
  let learningRateSchedule: TraceCommitment["learningRateSchedule"];
  if (schedule?.kind === "constant") learningRateSchedule = { kind: "constant", initial: num(schedule.initial, "lr") };
  else if (schedule?.kind === "linear")
    learningRateSchedule = {
      kind: "linear",
      initial: num(schedule.initial, "lr"),
      final: num(schedule.final, "lr final"),
    };
  else fail("unknown learning-rate schedule");
  const trainer = ann.trainer as Record<string, unknown> | undefined;
  if (typeof trainer?.name !== "string") fail("training-trace annotation trainer.name is missing");
  return {
    root,
    steps,
    checkpointEvery,
    checkpoints,
    seed: int(ann, "seed", 0, 0xffffffff),
    threads: int(ann, "threads", 1, 512),
    contextSize: int(ann, "contextSize", 8, 1 << 16),
    epochs: int(ann, "epochs", 1, 1 << 20),
    optimizer: { name: "sgd", weightDecay: num(optimizer.weightDecay, "optimizer.weightDecay") },
    learningRateSchedule,
    trainer: {
      name: trainer.name,
      digest: sha(trainer.digest, "trainer.digest"),
      llamaCpp: typeof trainer.llamaCpp === "string" ? trainer.llamaCpp : "",
    },
    dataDigest: sha(ann.dataDigest, "dataDigest"),
  };
}
