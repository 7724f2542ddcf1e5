// `provenant audit spot-check`: after the bundle's evidence and signatures verify (offchain/pipeline), read the
// training-trace commitment, check the trace file against the committed root, sample m stretches with randomness the
// trainer could not know, prove each stretch's leaves and checkpoints are in the committed tree (lib/merkle), replay
// it from its first checkpoint with the recorded trainer settings, and compare data, loss, learning rate and the
// resulting checkpoint bit for bit. Every failure is a coded reason on its stretch; nothing here trusts the store.
import { createHash, createPublicKey } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

import { findManifest, manifestDigestOf, readBundle } from "../../lib/bundle/index.ts";
import { verifyEnvelope } from "../../lib/dsse/index.ts";
import { toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { validateStatement, type Statement } from "../../lib/intoto/index.ts";
import { leafHash, verifyInclusion, type MerkleTree } from "../../lib/merkle/index.ts";
import { sha256File } from "../../lib/oms/range.ts";
import type { VerifierPolicy } from "../../offchain/pipeline/index.ts";
import { runTraceTrainer } from "../finetune/trace-runner.ts";
import { readTraceCommitment, type TraceCommitment } from "./commitment.ts";
import {
  checkpointLeaf,
  checkpointLeafIndex,
  checkpointSteps,
  CHECKPOINT_RECORD_BYTES,
  detectionProbability,
  f32FromBits,
  fromHex,
  parseTrace,
  sameBytes,
  sampleStretches,
  spotCheckSeed,
  STEP_RECORD_BYTES,
  stepLeaf,
  stepLeafIndex,
  stretchesOf,
  toHex,
  TRACE_HEADER_BYTES,
  traceTree,
  type Stretch,
  type Trace,
} from "./format.ts";
import { checkpointDigest, configOf } from "./record.ts";
import { checkpointFileName, dataFileName, traceFileName, type FetchedFile, type TraceSource } from "./store.ts";

type Reason = { code: ErrorCode; message: string };

/** Where the sampling randomness came from. */
export type Entropy =
  | { source: "chain"; chainId: number; blockNumber: number; blockHash: string; txHash: string | null }
  | { source: "caller"; seed: string };

/** The verified parts of a traced fine-tune bundle. */
export interface TracedBundle {
  manifestDigest: string;
  statement: Statement;
  commitment: TraceCommitment;
  /** Root digests the manifest names: the base model (checkpoint 0), the output model (last checkpoint), the data. */
  baseModel: string;
  outputModel: string;
  dataset: string;
}

/**
 * Verifies the bundle with the verifier's full pipeline (evidence, binding, every DSSE signature, statements), then
 * reads its manifest's training-trace commitment. Returns the pipeline's reasons when it refuses the bundle.
 */
export async function openTracedBundle(
  bytes: Uint8Array,
  policy: VerifierPolicy,
  now: Date,
): Promise<{ ok: true; bundle: TracedBundle } | { ok: false; errors: Reason[]; manifestDigest?: string }> {
  const { verifyBundle } = await import("../../offchain/pipeline/index.ts");
  const verdict = verifyBundle(bytes, { policy, now });
  if (!verdict.ok) {
    return {
      ok: false,
      errors: verdict.errors,
      ...(verdict.manifestDigest === undefined ? {} : { manifestDigest: verdict.manifestDigest }),
    };
  }
  const bundle = readBundle(bytes, { maxBytes: policy.maxBundleBytes });
  const { envelope } = findManifest(bundle);
  const key = createPublicKey({ key: Buffer.from(bundle.signer.publicKey, "base64"), format: "der", type: "spki" });
  const validated = validateStatement(JSON.parse(Buffer.from(verifyEnvelope(envelope, key)).toString("utf8")));
  const manifestDigest = manifestDigestOf(envelope);
  try {
    if (validated.kind !== "finetune") {
      return {
        ok: false,
        manifestDigest,
        errors: [{ code: "TRACE_MISSING", message: "the manifest is not a fine-tune" }],
      };
    }
    const commitment = readTraceCommitment(validated.statement);
    const deps = (
      validated.statement.predicate as {
        buildDefinition: { resolvedDependencies: { name: string; digest: { sha256?: string } }[] };
      }
    ).buildDefinition.resolvedDependencies;
    const dep = (name: string): string => deps.find((d) => d.name === name)?.digest.sha256 ?? "";
    return {
      ok: true,
      bundle: {
        manifestDigest,
        statement: validated.statement,
        commitment,
        baseModel: dep("base-model"),
        outputModel: validated.subjectDigests[0] ?? "",
        dataset: dep("dataset"),
      },
    };
  } catch (error) {
    return { ok: false, manifestDigest, errors: toErrorList(error) };
  }
}

export interface SpotCheckOptions {
  bundle: TracedBundle;
  source: TraceSource;
  /** Stretches to sample (capped at the number of stretches). */
  samples: number;
  entropy: Entropy;
  /** The local recording trainer binary. */
  binary: string;
  /** A local copy of the data; otherwise <dataDigest>.data from the source. */
  dataPath?: string;
  /** Largest checkpoint or data file read (bytes). */
  maxFileBytes: number;
  /** Scratch space (a fresh directory is made inside and removed). */
  workDir: string;
  replayTimeoutMs?: number;
  onStretch?: (stretch: Stretch, position: number, of: number) => void;
}

export interface StretchResult {
  index: number;
  fromStep: number;
  toStep: number;
  ok: boolean;
  /** The stretch's step leaves and both checkpoint leaves have inclusion proofs to the committed root. */
  inclusion: boolean;
  /** The replayed batches are the ones the data gives for these steps. */
  data: boolean | null;
  /** Replayed losses, learning rates and the resulting checkpoint equal the committed ones, bit for bit. */
  replay: boolean | null;
  /** Replay wall time (the runner: start, load, steps, save) and its own time for the replayed steps (seconds). */
  replaySeconds: number | null;
  trainSeconds: number | null;
  /** Everything this stretch cost the auditor: proofs, fetching and hashing the checkpoint, replay, comparison. */
  seconds: number;
  /** CPU seconds of the same: the replay process's own, plus this process's. */
  cpuSeconds: number;
  errors: Reason[];
}

export interface SpotCheckResult {
  ok: boolean;
  manifestDigest: string;
  root: string;
  steps: number;
  checkpointEvery: number;
  stretchCount: number;
  samples: number;
  randomness: Entropy & { seed: string; note: string };
  trainer: { committed: string; local: string; same: boolean; threads: number };
  checks: { name: string; ok: boolean; detail: string; code?: ErrorCode }[];
  stretches: StretchResult[];
  detectionProbability: { faked: number; probability: number; formula: string };
  errors: Reason[];
}

/** SHA-256 of the caller's seed or the block hash: the entropy mixed with the root. */
function entropyBytes(entropy: Entropy): Uint8Array {
  if (entropy.source === "chain") return new Uint8Array(Buffer.from(entropy.blockHash.replace(/^0x/, ""), "hex"));
  return new Uint8Array(Buffer.from(entropy.seed, "hex"));
}

/** The expected size of a trace file: what the committed counts allow, never more. */
function traceBytes(c: TraceCommitment): number {
  return TRACE_HEADER_BYTES + c.steps * STEP_RECORD_BYTES + c.checkpoints * CHECKPOINT_RECORD_BYTES;
}

function omsOfSha256(sha256Hex: string): string {
  // A one-file model's OMS root digest: SHA-256 over its one resource digest (DESIGN §3.1).
  return createHash("sha256").update(Buffer.from(sha256Hex, "hex")).digest("hex");
}

export async function spotCheck(options: SpotCheckOptions): Promise<SpotCheckResult> {
  const { bundle, source } = options;
  const c = bundle.commitment;
  const root = fromHex(c.root, "trace root");
  const stretches = stretchesOf(c.steps, c.checkpointEvery);
  const seed = spotCheckSeed(root, entropyBytes(options.entropy));
  const chosen = sampleStretches(seed, stretches.length, options.samples).map((i) => stretches[i]!);
  const checks: SpotCheckResult["checks"] = [];
  const check = (name: string, ok: boolean, detail: string, code: ErrorCode): void => {
    checks.push({ name, ok, detail, ...(ok ? {} : { code }) });
  };
  const local = await sha256File(options.binary);
  const result: SpotCheckResult = {
    ok: false,
    manifestDigest: bundle.manifestDigest,
    root: c.root,
    steps: c.steps,
    checkpointEvery: c.checkpointEvery,
    stretchCount: stretches.length,
    samples: chosen.length,
    randomness: {
      ...options.entropy,
      seed: toHex(seed),
      note:
        options.entropy.source === "chain"
          ? "SHA-256 of the trace root and the hash of the block that recorded the manifest: unknown to the trainer when it committed"
          : "SHA-256 of the trace root and a caller seed: whoever chose the seed could have chosen the stretches",
    },
    trainer: { committed: c.trainer.digest, local, same: local === c.trainer.digest, threads: c.threads },
    checks,
    stretches: [],
    detectionProbability: {
      faked: 1,
      probability: detectionProbability(stretches.length, chosen.length, 1),
      formula: "1 - C(N-f, m) / C(N, m)",
    },
    errors: [],
  };

  await mkdir(options.workDir, { recursive: true });
  const work = await mkdtemp(join(options.workDir, "provenant-spot-check-"));
  try {
    // The commitment against the manifest: same data, anchored to the base and output models.
    check(
      "data digest is the manifest's dataset",
      c.dataDigest === bundle.dataset,
      `trace ${c.dataDigest}, dataset ${bundle.dataset}`,
      "TRACE_DATA_MISMATCH",
    );
    // The trace file, found by its root, bounded by the committed counts.
    let trace: Trace | undefined;
    let tree: MerkleTree | undefined;
    try {
      const file = await source.fetch(
        traceFileName(c.root),
        join(work, "trace"),
        Math.min(traceBytes(c), options.maxFileBytes),
      );
      trace = parseTrace(new Uint8Array(await readFile(file.path)));
      tree = traceTree(trace);
    } catch (error) {
      const e = toErrorList(error)[0]!;
      check("trace file", false, e.message, e.code);
    }
    if (trace !== undefined && tree !== undefined) {
      const marks = checkpointSteps(c.steps, c.checkpointEvery);
      const shapeOk =
        trace.steps.length === c.steps &&
        trace.checkpoints.length === marks.length &&
        trace.checkpoints.every((ck, i) => ck.step === marks[i]);
      check(
        "trace shape matches the commitment",
        shapeOk,
        `${trace.steps.length} steps, checkpoints at ${trace.checkpoints.map((k) => k.step).join(",")}`,
        "TRACE_INCLUSION",
      );
      const rebuilt = toHex(tree.root());
      check(
        "leaf list matches the committed root",
        rebuilt === c.root,
        rebuilt === c.root ? c.root : `the leaves give ${rebuilt}, the manifest commits to ${c.root}`,
        "TRACE_INCLUSION",
      );
      const first = toHex(trace.checkpoints[0]!.digest);
      const last = toHex(trace.checkpoints[trace.checkpoints.length - 1]!.digest);
      check("checkpoint 0 is the base model", first === bundle.baseModel, first, "TRACE_INCLUSION");
      check("last checkpoint is the output model", last === bundle.outputModel, last, "TRACE_INCLUSION");
    }
    // A failed check of the whole trace fails every stretch, with that check's own code (a dataset that is not the
    // manifest's is TRACE_DATA_MISMATCH, not an inclusion failure).
    const globalFailure = checks.find((k) => !k.ok);

    let data: FetchedFile | undefined;
    let dataError: Reason | undefined;
    const loadData = async (): Promise<FetchedFile | undefined> => {
      if (data !== undefined || dataError !== undefined) return data;
      try {
        const fetched =
          options.dataPath === undefined
            ? await source.fetch(dataFileName(c.dataDigest), join(work, "data"), options.maxFileBytes)
            : { path: options.dataPath, bytes: 0, sha256: await sha256File(options.dataPath) };
        if (fetched.sha256 !== c.dataDigest) {
          dataError = {
            code: "TRACE_DATA_MISMATCH",
            message: `the data file's SHA-256 is ${fetched.sha256}, the trace was recorded on ${c.dataDigest}`,
          };
          return undefined;
        }
        data = fetched;
      } catch (error) {
        dataError = toErrorList(error)[0]!;
      }
      return data;
    };

    for (const [position, stretch] of chosen.entries()) {
      options.onStretch?.(stretch, position, chosen.length);
      const started = performance.now();
      const cpu = process.cpuUsage();
      const checked = await checkStretch(stretch, {
        ...options,
        work,
        trace,
        tree,
        root,
        globalFailure,
        trainerSame: result.trainer.same,
        loadData,
        dataError: () => dataError,
      });
      checked.seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      checked.cpuSeconds += (used.user + used.system) / 1e6;
      result.stretches.push(checked);
    }
    result.ok = checks.every((k) => k.ok) && result.stretches.every((s) => s.ok);
    const reasons: Reason[] = checks
      .filter((k) => !k.ok)
      .map((k) => ({ code: k.code ?? "INTERNAL", message: `${k.name}: ${k.detail}` }));
    for (const s of result.stretches)
      for (const e of s.errors)
        reasons.push({ code: e.code, message: `stretch ${s.index} (steps ${s.fromStep}..${s.toStep}): ${e.message}` });
    result.errors = reasons;
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface StretchContext extends SpotCheckOptions {
  work: string;
  trace: Trace | undefined;
  tree: MerkleTree | undefined;
  root: Uint8Array;
  globalFailure: SpotCheckResult["checks"][number] | undefined;
  /** The local trainer binary is the committed one (hashed once, at the start). */
  trainerSame: boolean;
  loadData: () => Promise<FetchedFile | undefined>;
  dataError: () => Reason | undefined;
}

async function checkStretch(stretch: Stretch, ctx: StretchContext): Promise<StretchResult> {
  const c = ctx.bundle.commitment;
  const out: StretchResult = {
    index: stretch.index,
    fromStep: stretch.from,
    toStep: stretch.to,
    ok: false,
    inclusion: false,
    data: null,
    replay: null,
    replaySeconds: null,
    trainSeconds: null,
    seconds: 0,
    cpuSeconds: 0,
    errors: [],
  };
  const fail = (code: ErrorCode, message: string): StretchResult => {
    out.errors.push({ code, message });
    return out;
  };
  const { trace, tree } = ctx;
  if (trace === undefined || tree === undefined) return fail("TRACE_MISSING", "the trace file could not be read");
  if (trace.steps.length !== c.steps || trace.checkpoints.length !== c.checkpoints)
    return fail("TRACE_INCLUSION", "the trace file does not have the committed shape");

  // Inclusion: each step leaf and both checkpoint leaves, by an RFC 6962 audit path to the committed root.
  const size = tree.size;
  const prove = (leaf: Uint8Array, index: number): boolean => {
    try {
      verifyInclusion(leafHash(leaf), index, size, tree.inclusionProof(index), ctx.root);
      return true;
    } catch {
      return false;
    }
  };
  let included = true;
  for (let t = stretch.from; t < stretch.to; t++) included &&= prove(stepLeaf(trace.steps[t]!), stepLeafIndex(t));
  const startCheckpoint = trace.checkpoints[stretch.index]!;
  const endCheckpoint = trace.checkpoints[stretch.index + 1]!;
  included &&= prove(checkpointLeaf(startCheckpoint), checkpointLeafIndex(c.steps, stretch.index));
  included &&= prove(checkpointLeaf(endCheckpoint), checkpointLeafIndex(c.steps, stretch.index + 1));
  out.inclusion = included;
  if (!included)
    return fail("TRACE_INCLUSION", "its leaves have no inclusion proof to the committed root (the leaf list differs)");
  if (ctx.globalFailure !== undefined)
    return fail(
      ctx.globalFailure.code ?? "TRACE_INCLUSION",
      `the trace does not match the manifest (${ctx.globalFailure.name})`,
    );

  // The checkpoint to start from, verified against its committed digest before use.
  const startDigest = toHex(startCheckpoint.digest);
  let start: FetchedFile;
  try {
    start = await ctx.source.fetch(
      checkpointFileName(startDigest),
      join(ctx.work, `start-${stretch.index}.gguf`),
      ctx.maxFileBytes,
    );
  } catch (error) {
    const e = toErrorList(error)[0]!;
    return fail(e.code, e.message);
  }
  if (omsOfSha256(start.sha256) !== startDigest)
    return fail(
      "TRACE_INCLUSION",
      `the store's checkpoint ${startDigest} has other contents (OMS ${omsOfSha256(start.sha256)})`,
    );

  const data = await ctx.loadData();
  if (data === undefined) {
    const e = ctx.dataError() ?? { code: "TRACE_MISSING" as const, message: "no data" };
    out.data = e.code === "TRACE_DATA_MISMATCH" ? false : null;
    return fail(e.code, e.message);
  }

  const replayed = join(ctx.work, `replay-${stretch.index}.gguf`);
  const records = join(ctx.work, `replay-${stretch.index}.records`);
  let run;
  try {
    run = await runTraceTrainer({
      binary: ctx.binary,
      model: start.path,
      data: data.path,
      out: replayed,
      records,
      config: configOf(c),
      from: stretch.from,
      to: stretch.to,
      ...(ctx.replayTimeoutMs === undefined ? {} : { timeoutMs: ctx.replayTimeoutMs }),
    });
  } catch (error) {
    const e = toErrorList(error)[0]!;
    return fail("TRACE_REPLAY_MISMATCH", `the replay failed: ${e.message}`);
  }
  out.replaySeconds = run.wallMs / 1000;
  out.cpuSeconds = run.cpuMicros / 1e6;
  out.trainSeconds = run.stepMicros.reduce((a, b) => a + b, 0) / 1e6;
  if (run.totalSteps !== c.steps) {
    out.data = false;
    return fail("TRACE_DATA_MISMATCH", `the data gives ${run.totalSteps} steps, the trace commits to ${c.steps}`);
  }

  // Data first: a step trained on other tokens than the schedule gives is a data mismatch, whatever else differs.
  out.data = true;
  out.replay = true;
  for (let t = stretch.from; t < stretch.to; t++) {
    const committed = trace.steps[t]!;
    const recomputed = run.records[t - stretch.from];
    if (recomputed === undefined) {
      out.replay = false;
      fail("TRACE_REPLAY_MISMATCH", `step ${t} was not replayed`);
      break;
    }
    if (!sameBytes(committed.batchDigest, recomputed.batchDigest)) {
      out.data = false;
      fail(
        "TRACE_DATA_MISMATCH",
        `step ${t}: the committed batch ${toHex(committed.batchDigest).slice(0, 16)}… is not the data's ${toHex(recomputed.batchDigest).slice(0, 16)}…`,
      );
      continue;
    }
    if (committed.lrBits !== recomputed.lrBits) {
      out.replay = false;
      fail(
        "TRACE_REPLAY_MISMATCH",
        `step ${t}: learning rate ${f32FromBits(committed.lrBits)} committed, ${f32FromBits(recomputed.lrBits)} per the schedule`,
      );
    } else if (committed.lossBits !== recomputed.lossBits) {
      out.replay = false;
      fail(
        "TRACE_REPLAY_MISMATCH",
        `step ${t}: loss ${f32FromBits(committed.lossBits)} committed, ${f32FromBits(recomputed.lossBits)} replayed`,
      );
    }
  }
  const endDigest = toHex(endCheckpoint.digest);
  const replayDigest = await checkpointDigest(replayed);
  if (replayDigest !== endDigest) {
    out.replay = false;
    fail(
      "TRACE_REPLAY_MISMATCH",
      `the replayed state after step ${stretch.to} is ${replayDigest}, the committed checkpoint is ${endDigest}` +
        (ctx.trainerSame ? "" : " (the local trainer binary differs from the committed one)"),
    );
  }
  out.ok = out.errors.length === 0;
  return out;
}
