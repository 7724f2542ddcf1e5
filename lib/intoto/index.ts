// in-toto Statement v1 (in-toto/attestation spec/v1) builders and validators for the three statements Provenant
// signs (DESIGN §3.2): the OMS model signature, SLSA provenance v1 for fine-tunes, and the eval predicate for audits.
// The serving statement of `provenant serve` (DESIGN §12) is read too, through lib/receipt's validator, its one reader.
// Validators trust nothing: they check every field, collect every violation, and throw STATEMENT_INVALID with paths.
// Browser-safe (no node:* module): the explorer reads statements with the same validators as the verifier.
import { INTOTO_PAYLOAD_TYPE } from "../dsse/core.ts";
import { fromBase64, fromHex, toHex } from "../encoding/index.ts";
import { MalformedInputError } from "../errors.ts";
import { createSha256, sha256 } from "../hash/index.ts";
import { parseStrictJsonBytes } from "../json/index.ts";
import type { ModelHash } from "../oms/types.ts";
import { PREDICATE_SERVING, validateServingStatement } from "../receipt/core.ts";

export { PREDICATE_SERVING };

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_OMS = "https://model_signing/signature/v1.0";
export const PREDICATE_SLSA = "https://slsa.dev/provenance/v1";
export const PREDICATE_EVAL = "https://provenant.dev/eval/v1";
export const BUILD_TYPE_FINETUNE = "https://provenant.dev/finetune/v1";
export const BUILDER_ID = "https://provenant.dev/enclave-job/v1";
/** The byproduct that commits a fine-tune to its training trace (DESIGN §13, docs/training-trace.md). */
export const TRAINING_TRACE_BYPRODUCT = "training-trace";

export type DigestSet = Record<string, string>;

export interface ResourceDescriptor {
  name: string;
  digest: DigestSet;
  annotations?: Record<string, unknown>;
}

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

export type StatementKind = "oms" | "finetune" | "eval" | "serving";

export interface ValidatedStatement {
  kind: StatementKind;
  statement: Statement;
  /** The sha256 digests (hex) of every subject, in order. */
  subjectDigests: string[];
  /**
   * The record's parentModelHash: a fine-tune's base model root digest (resolvedDependencies "base-model"); a serving
   * statement's log id (SHA-256 of the serving key's DER SPKI), which its kind 3 record registers (docs/contract.md).
   */
  parentModelHash?: string;
}

export interface NamedDigest {
  name: string;
  /** Hex SHA-256 (64 hex), or a git commit (40 hex) for job code. */
  digest: string;
}

export interface NamedModel {
  name: string;
  rootDigest: string;
}

export interface Metric {
  name: string;
  value: number;
  sampleSize: number;
  comparator?: ">=" | "<=" | ">" | "<" | "==";
  threshold?: number;
  passed?: boolean;
}

/**
 * Where the job ran (docs/gpu.md "What the statements record"): the node-llama-cpp backend, the GPUs it used, the
 * driver, and the confidential-computing state the GPU evidence was collected in. Signed with the statement, so a
 * verifier can hold a `cuda` run to verified GPU evidence and refuse devtools mode. Eval: `predicate.runtime`;
 * fine-tune: `buildDefinition.internalParameters.runtime`.
 */
export interface RuntimeInfo {
  backend: "cpu" | "cuda";
  /** GPU names as the backend (or NVML) reports them; empty on the CPU. */
  devices: string[];
  /** The NVIDIA driver version, or null when there is no NVIDIA driver. */
  driverVersion: string | null;
  /**
   * How GPU evidence was collected for the bundle, or null when none was. `evidence` lists the hex SHA-256 of each
   * GPU's SPDM transcript in bundle order, so K's signature covers exactly the GPU evidence the bundle carries.
   */
  gpuEvidence: {
    provider: "nvml" | "sim";
    environment: "prod" | "sim" | "unavailable";
    devToolsMode: boolean;
    evidence: string[];
  } | null;
}

/** Bounds of a runtime record: a statement stays small whatever a driver reports. */
const MAX_RUNTIME_DEVICES = 16;
const MAX_RUNTIME_TEXT = 256;

export interface FinetuneInput {
  output: NamedModel;
  baseModel: NamedModel;
  dataset: NamedDigest;
  jobCode: NamedDigest;
  trainerConfig: Record<string, unknown>;
  invocationId: string;
  startedOn: Date;
  finishedOn: Date;
  /** Digests of the SNP report, of the GPU evidence, of logs; the training trace's root with its annotations. */
  byproducts: (NamedDigest & { annotations?: Record<string, unknown> })[];
  /** Where the fine-tune ran: `buildDefinition.internalParameters.runtime`. */
  runtime?: RuntimeInfo;
}

export interface EvalInput {
  model: NamedModel;
  suite: NamedDigest;
  harness: { name: string; version: string; digest: string };
  metrics: Metric[];
  startedOn: Date;
  finishedOn: Date;
  /** Where the audit ran: `predicate.runtime`. */
  runtime?: RuntimeInfo;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const GIT_COMMIT_HEX = /^[0-9a-f]{40}$/;
const COMPARATORS = [">=", "<=", ">", "<", "=="];

function digestSet(digest: string, what: string): DigestSet {
  if (SHA256_HEX.test(digest)) return { sha256: digest };
  if (GIT_COMMIT_HEX.test(digest)) return { gitCommit: digest };
  throw new MalformedInputError("STATEMENT_INVALID", `${what}: expected 64 hex (sha256) or 40 hex (git commit)`, {
    details: { path: what, actual: digest },
  });
}

function sha256Set(digest: string, what: string): DigestSet {
  if (!SHA256_HEX.test(digest)) {
    throw new MalformedInputError("STATEMENT_INVALID", `${what}: expected 64 lowercase hex`, {
      details: { path: what, actual: digest },
    });
  }
  return { sha256: digest };
}

/** The OMS v1.0 statement for a hashed model: subject = model name + root digest, predicate = resources + serialization. */
export function buildOmsStatement(modelName: string, hash: ModelHash): Statement {
  const serialization: Record<string, unknown> = {
    method: hash.method,
    hash_type: "sha256",
    allow_symlinks: hash.allowSymlinks,
    ignore_paths: [...hash.ignorePaths],
  };
  if (hash.method === "shards") serialization.shard_size = hash.shardSize;
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: modelName, digest: sha256Set(hash.rootDigest, "subject[0].digest.sha256") }],
    predicateType: PREDICATE_OMS,
    predicate: {
      resources: hash.resources.map((r) => ({ algorithm: r.algorithm, name: r.name, digest: r.digest })),
      serialization,
    },
  };
}

/** SLSA provenance v1 for a fine-tune run (DESIGN §3.2). */
export function buildFinetuneStatement(input: FinetuneInput): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: input.output.name, digest: sha256Set(input.output.rootDigest, "output.rootDigest") }],
    predicateType: PREDICATE_SLSA,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE_FINETUNE,
        externalParameters: { trainerConfig: input.trainerConfig },
        ...(input.runtime === undefined ? {} : { internalParameters: { runtime: runtimeToJson(input.runtime) } }),
        resolvedDependencies: [
          {
            name: "base-model",
            digest: sha256Set(input.baseModel.rootDigest, "baseModel.rootDigest"),
            annotations: { name: input.baseModel.name },
          },
          {
            name: "dataset",
            digest: sha256Set(input.dataset.digest, "dataset.digest"),
            annotations: { name: input.dataset.name },
          },
          {
            name: "job-code",
            digest: digestSet(input.jobCode.digest, "jobCode.digest"),
            annotations: { name: input.jobCode.name },
          },
        ],
      },
      runDetails: {
        builder: { id: BUILDER_ID },
        metadata: {
          invocationId: input.invocationId,
          startedOn: input.startedOn.toISOString(),
          finishedOn: input.finishedOn.toISOString(),
        },
        byproducts: input.byproducts.map((b, i) => ({
          name: b.name,
          digest: sha256Set(b.digest, `byproducts[${i}].digest`),
          ...(b.annotations === undefined ? {} : { annotations: b.annotations }),
        })),
      },
    },
  };
}

/** The audit result statement (DESIGN §3.2). */
export function buildEvalStatement(input: EvalInput): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: input.model.name, digest: sha256Set(input.model.rootDigest, "model.rootDigest") }],
    predicateType: PREDICATE_EVAL,
    predicate: {
      suite: { name: input.suite.name, digest: sha256Set(input.suite.digest, "suite.digest") },
      harness: {
        name: input.harness.name,
        version: input.harness.version,
        digest: sha256Set(input.harness.digest, "harness.digest"),
      },
      metrics: input.metrics.map((m) => {
        const metric: Record<string, unknown> = { name: m.name, value: m.value, sampleSize: m.sampleSize };
        if (m.comparator !== undefined) metric.comparator = m.comparator;
        if (m.threshold !== undefined) metric.threshold = m.threshold;
        if (m.passed !== undefined) metric.passed = m.passed;
        return metric;
      }),
      startedOn: input.startedOn.toISOString(),
      finishedOn: input.finishedOn.toISOString(),
      ...(input.runtime === undefined ? {} : { runtime: runtimeToJson(input.runtime) }),
    },
  };
}

/** A runtime record in its fixed key order. */
function runtimeToJson(runtime: RuntimeInfo): Record<string, unknown> {
  return {
    backend: runtime.backend,
    devices: [...runtime.devices],
    driverVersion: runtime.driverVersion,
    gpuEvidence:
      runtime.gpuEvidence === null
        ? null
        : {
            provider: runtime.gpuEvidence.provider,
            environment: runtime.gpuEvidence.environment,
            devToolsMode: runtime.gpuEvidence.devToolsMode,
            evidence: [...runtime.gpuEvidence.evidence],
          },
  };
}

/** Collects shape violations as (path, message) and throws them together. */
class Checker {
  readonly violations: { path: string; message: string }[] = [];

  fail(path: string, message: string): void {
    this.violations.push({ path, message });
  }

  object(value: unknown, path: string): Record<string, unknown> | undefined {
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    this.fail(path, "expected an object");
    return undefined;
  }

  array(value: unknown, path: string, min = 0): unknown[] | undefined {
    if (!Array.isArray(value)) {
      this.fail(path, "expected an array");
      return undefined;
    }
    if (value.length < min) this.fail(path, `expected at least ${min} entries`);
    return value;
  }

  string(value: unknown, path: string, allowEmpty = false): string | undefined {
    if (typeof value !== "string" || (!allowEmpty && value === "")) {
      this.fail(path, "expected a non-empty string");
      return undefined;
    }
    return value;
  }

  number(value: unknown, path: string): number | undefined {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      this.fail(path, "expected a finite number");
      return undefined;
    }
    return value;
  }

  timestamp(value: unknown, path: string): void {
    const text = this.string(value, path);
    if (text !== undefined && (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(text) || isNaN(Date.parse(text)))) {
      this.fail(path, "expected an RFC 3339 UTC timestamp");
    }
  }

  /** Two valid timestamps where the second is not before the first (startedOn ≤ finishedOn). */
  inOrder(start: unknown, end: unknown, path: string): void {
    if (typeof start !== "string" || typeof end !== "string") return;
    const a = Date.parse(start);
    const b = Date.parse(end);
    if (Number.isFinite(a) && Number.isFinite(b) && b < a) this.fail(path, `is before startedOn (${start})`);
  }

  only(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) if (!allowed.includes(key)) this.fail(`${path}.${key}`, "unknown field");
  }

  /** A DigestSet with a sha256 entry (or, where allowed, a gitCommit); returns the sha256 hex if present. */
  digest(value: unknown, path: string, allowGit = false): string | undefined {
    const set = this.object(value, path);
    if (set === undefined) return undefined;
    if (Object.keys(set).length === 0) this.fail(path, "expected at least one digest");
    for (const [alg, hex] of Object.entries(set)) {
      if (typeof hex !== "string" || !/^[0-9a-f]+$/.test(hex)) this.fail(`${path}.${alg}`, "expected lowercase hex");
    }
    if (typeof set.sha256 === "string") {
      if (!SHA256_HEX.test(set.sha256)) this.fail(`${path}.sha256`, "expected 64 lowercase hex");
      return set.sha256;
    }
    if (allowGit && typeof set.gitCommit === "string") {
      if (!GIT_COMMIT_HEX.test(set.gitCommit)) this.fail(`${path}.gitCommit`, "expected 40 lowercase hex");
      return undefined;
    }
    this.fail(path, allowGit ? "expected a sha256 or gitCommit digest" : "expected a sha256 digest");
    return undefined;
  }

  throwIfAny(): void {
    const first = this.violations[0];
    if (first === undefined) return;
    const text = this.violations.map((v) => `${v.path}: ${v.message}`).join("; ");
    throw new MalformedInputError("STATEMENT_INVALID", `invalid statement: ${text}`, {
      details: { path: first.path, violations: this.violations },
    });
  }
}

/**
 * Validates an untrusted statement (the decoded JSON payload of an envelope) as one of the three kinds and returns it
 * with its subject digests. Throws STATEMENT_INVALID; details.path names the first bad field, details.violations all.
 */
export function validateStatement(json: unknown): ValidatedStatement {
  if (isServingStatement(json)) return validateServing(json);
  const c = new Checker();
  const root = c.object(json, "$");
  if (root === undefined) c.throwIfAny();
  const statement = root as Record<string, unknown>;
  c.only(statement, "$", ["_type", "subject", "predicateType", "predicate"]);
  if (statement._type !== STATEMENT_TYPE) c.fail("_type", `expected ${STATEMENT_TYPE}`);
  const subjectDigests: string[] = [];
  const subjects = c.array(statement.subject, "subject", 1) ?? [];
  subjects.forEach((entry, i) => {
    const subject = c.object(entry, `subject[${i}]`);
    if (subject === undefined) return;
    c.string(subject.name, `subject[${i}].name`);
    const sha = c.digest(subject.digest, `subject[${i}].digest`);
    if (sha !== undefined) subjectDigests.push(sha);
  });
  const predicate = c.object(statement.predicate, "predicate");
  let kind: StatementKind | undefined;
  let parentModelHash: string | undefined;
  switch (statement.predicateType) {
    case PREDICATE_OMS:
      kind = "oms";
      if (subjects.length !== 1) c.fail("subject", "an OMS statement has exactly one subject");
      if (predicate !== undefined) checkOmsPredicate(c, predicate, subjectDigests[0]);
      break;
    case PREDICATE_SLSA:
      kind = "finetune";
      if (predicate !== undefined) parentModelHash = checkFinetunePredicate(c, predicate);
      // A model cannot be its own parent: a record whose parent is itself would make lineage loop.
      if (parentModelHash !== undefined && subjectDigests.includes(parentModelHash))
        c.fail("predicate.buildDefinition.resolvedDependencies", "the base model is the fine-tune's own output");
      break;
    case PREDICATE_EVAL:
      kind = "eval";
      if (predicate !== undefined) checkEvalPredicate(c, predicate);
      break;
    default:
      c.fail(
        "predicateType",
        `expected one of ${PREDICATE_OMS}, ${PREDICATE_SLSA}, ${PREDICATE_EVAL}, ${PREDICATE_SERVING}`,
      );
  }
  c.throwIfAny();
  const result: ValidatedStatement = { kind: kind!, statement: statement as unknown as Statement, subjectDigests };
  if (parentModelHash !== undefined) result.parentModelHash = parentModelHash;
  return result;
}

function isServingStatement(json: unknown): boolean {
  return (
    typeof json === "object" &&
    json !== null &&
    !Array.isArray(json) &&
    (json as Record<string, unknown>).predicateType === PREDICATE_SERVING
  );
}

/**
 * A serving statement (DESIGN §12), read by lib/receipt validateServingStatement (every field, the P-256 key, the log
 * origin), plus the one binding this browser-safe reader can check without the bundle: keyid = log id = SHA-256 of
 * the key's DER SPKI. That the key signed the statement and is the bundle's signer K is the caller's check (the
 * verifier's pipeline: lib/receipt verifyServingStatement). STATEMENT_INVALID otherwise.
 */
function validateServing(json: unknown): ValidatedStatement {
  const statement = validateServingStatement(json);
  const { servingKey, log } = statement.predicate;
  const spki = fromBase64(servingKey.publicKey);
  const keyDigest = spki === undefined ? undefined : toHex(sha256(spki));
  if (keyDigest !== log.logId)
    throw new MalformedInputError(
      "STATEMENT_INVALID",
      "invalid statement: the serving log id is not SHA-256 of its key",
      {
        details: { path: "predicate.log.logId", expected: keyDigest, actual: log.logId },
      },
    );
  return {
    kind: "serving",
    statement: statement as unknown as Statement,
    subjectDigests: [statement.subject[0].digest.sha256],
    parentModelHash: log.logId,
  };
}

function checkOmsPredicate(c: Checker, predicate: Record<string, unknown>, subjectDigest: string | undefined): void {
  c.only(predicate, "predicate", ["resources", "serialization"]);
  const resources = c.array(predicate.resources, "predicate.resources") ?? [];
  const root = createSha256();
  let rootOk = true;
  resources.forEach((entry, i) => {
    const path = `predicate.resources[${i}]`;
    const resource = c.object(entry, path);
    if (resource === undefined) return void (rootOk = false);
    c.string(resource.name, `${path}.name`);
    const algorithm = c.string(resource.algorithm, `${path}.algorithm`);
    if (algorithm !== undefined && !/^sha256(-sharded-\d+)?$/.test(algorithm)) {
      c.fail(`${path}.algorithm`, "expected sha256");
    }
    const digest = resource.digest;
    if (typeof digest !== "string" || !SHA256_HEX.test(digest)) {
      c.fail(`${path}.digest`, "expected 64 lowercase hex");
      rootOk = false;
    } else root.update(fromHex(digest)!);
  });
  const serialization = c.object(predicate.serialization, "predicate.serialization");
  if (serialization !== undefined) {
    const path = "predicate.serialization";
    c.only(serialization, path, ["method", "hash_type", "allow_symlinks", "ignore_paths", "shard_size"]);
    const method = serialization.method;
    if (method !== "files" && method !== "shards") c.fail(`${path}.method`, "expected files or shards");
    const hashType = c.string(serialization.hash_type, `${path}.hash_type`);
    if (hashType !== undefined && !/^sha256(-sharded-\d+)?$/.test(hashType))
      c.fail(`${path}.hash_type`, "expected sha256");
    if (typeof serialization.allow_symlinks !== "boolean") c.fail(`${path}.allow_symlinks`, "expected a boolean");
    if (serialization.ignore_paths !== undefined) {
      const ignore = c.array(serialization.ignore_paths, `${path}.ignore_paths`) ?? [];
      ignore.forEach((p, i) => c.string(p, `${path}.ignore_paths[${i}]`));
    }
    if (method === "shards") {
      const size = serialization.shard_size;
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size <= 0) {
        c.fail(`${path}.shard_size`, "expected a positive integer");
      }
    } else if (serialization.shard_size !== undefined) c.fail(`${path}.shard_size`, "only for method shards");
  }
  if (rootOk && subjectDigest !== undefined && toHex(root.digest()) !== subjectDigest) {
    c.fail("subject[0].digest.sha256", "does not equal the SHA-256 over the resource digests");
  }
}

function checkFinetunePredicate(c: Checker, predicate: Record<string, unknown>): string | undefined {
  c.only(predicate, "predicate", ["buildDefinition", "runDetails"]);
  let parent: string | undefined;
  const build = c.object(predicate.buildDefinition, "predicate.buildDefinition");
  if (build !== undefined) {
    const path = "predicate.buildDefinition";
    c.only(build, path, ["buildType", "externalParameters", "internalParameters", "resolvedDependencies"]);
    if (build.buildType !== BUILD_TYPE_FINETUNE) c.fail(`${path}.buildType`, `expected ${BUILD_TYPE_FINETUNE}`);
    const external = c.object(build.externalParameters, `${path}.externalParameters`);
    if (external !== undefined) c.object(external.trainerConfig, `${path}.externalParameters.trainerConfig`);
    if (build.internalParameters !== undefined) {
      const internal = c.object(build.internalParameters, `${path}.internalParameters`);
      if (internal?.runtime !== undefined) checkRuntime(c, internal.runtime, `${path}.internalParameters.runtime`);
    }
    const deps = c.array(build.resolvedDependencies, `${path}.resolvedDependencies`) ?? [];
    const seen = new Map<string, number>();
    deps.forEach((entry, i) => {
      const depPath = `${path}.resolvedDependencies[${i}]`;
      const dep = c.object(entry, depPath);
      if (dep === undefined) return;
      const name = c.string(dep.name, `${depPath}.name`);
      const sha = c.digest(dep.digest, `${depPath}.digest`, name === "job-code");
      if (dep.annotations !== undefined) c.object(dep.annotations, `${depPath}.annotations`);
      if (name !== undefined) {
        if (seen.has(name)) c.fail(`${depPath}.name`, `duplicate dependency ${name}`);
        seen.set(name, i);
        if (name === "base-model") parent = sha;
      }
    });
    for (const required of ["base-model", "dataset", "job-code"]) {
      if (!seen.has(required)) c.fail(`${path}.resolvedDependencies`, `missing dependency ${required}`);
    }
  }
  const run = c.object(predicate.runDetails, "predicate.runDetails");
  if (run !== undefined) {
    const path = "predicate.runDetails";
    c.only(run, path, ["builder", "metadata", "byproducts"]);
    const builder = c.object(run.builder, `${path}.builder`);
    if (builder !== undefined) c.string(builder.id, `${path}.builder.id`);
    const metadata = c.object(run.metadata, `${path}.metadata`);
    if (metadata !== undefined) {
      c.string(metadata.invocationId, `${path}.metadata.invocationId`);
      c.timestamp(metadata.startedOn, `${path}.metadata.startedOn`);
      c.timestamp(metadata.finishedOn, `${path}.metadata.finishedOn`);
      c.inOrder(metadata.startedOn, metadata.finishedOn, `${path}.metadata.finishedOn`);
    }
    if (run.byproducts !== undefined) {
      const byproducts = c.array(run.byproducts, `${path}.byproducts`) ?? [];
      byproducts.forEach((entry, i) => {
        const item = c.object(entry, `${path}.byproducts[${i}]`);
        if (item === undefined) return;
        const name = c.string(item.name, `${path}.byproducts[${i}].name`);
        c.digest(item.digest, `${path}.byproducts[${i}].digest`);
        if (item.annotations !== undefined) c.object(item.annotations, `${path}.byproducts[${i}].annotations`);
        if (name === TRAINING_TRACE_BYPRODUCT) checkTrainingTrace(c, item.annotations, `${path}.byproducts[${i}]`);
      });
    }
  }
  return parent;
}

/**
 * The annotations of a `training-trace` byproduct (docs/training-trace.md): what a spot-check needs to replay a
 * stretch. Shape only; enclave-job/trace reads them into a TraceCommitment.
 */
function checkTrainingTrace(c: Checker, value: unknown, path: string): void {
  const a = c.object(value, `${path}.annotations`);
  if (a === undefined) return;
  const at = `${path}.annotations`;
  const count = (key: string, min: number): void => {
    const n = a[key];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min)
      c.fail(`${at}.${key}`, `expected an integer ≥ ${min}`);
  };
  if (a.format !== "provenant/trace/v1") c.fail(`${at}.format`, "expected provenant/trace/v1");
  for (const key of ["steps", "checkpointEvery", "threads", "contextSize", "epochs"]) count(key, 1);
  count("seed", 0);
  const optimizer = c.object(a.optimizer, `${at}.optimizer`);
  if (optimizer !== undefined) {
    c.string(optimizer.name, `${at}.optimizer.name`);
    c.number(optimizer.weightDecay, `${at}.optimizer.weightDecay`);
  }
  const schedule = c.object(a.learningRateSchedule, `${at}.learningRateSchedule`);
  if (schedule !== undefined) {
    if (schedule.kind !== "constant" && schedule.kind !== "linear")
      c.fail(`${at}.learningRateSchedule.kind`, "expected constant or linear");
    c.number(schedule.initial, `${at}.learningRateSchedule.initial`);
    if (schedule.kind === "linear") c.number(schedule.final, `${at}.learningRateSchedule.final`);
  }
  const trainer = c.object(a.trainer, `${at}.trainer`);
  if (trainer !== undefined) {
    c.string(trainer.name, `${at}.trainer.name`);
    c.digest(trainer.digest, `${at}.trainer.digest`);
  }
  c.digest(a.dataDigest, `${at}.dataDigest`);
}

/** A runtime record (RuntimeInfo): every field present, known values only, bounded. */
function checkRuntime(c: Checker, value: unknown, path: string): void {
  const runtime = c.object(value, path);
  if (runtime === undefined) return;
  c.only(runtime, path, ["backend", "devices", "driverVersion", "gpuEvidence"]);
  if (runtime.backend !== "cpu" && runtime.backend !== "cuda") c.fail(`${path}.backend`, "expected cpu or cuda");
  const devices = c.array(runtime.devices, `${path}.devices`) ?? [];
  if (devices.length > MAX_RUNTIME_DEVICES) c.fail(`${path}.devices`, `at most ${MAX_RUNTIME_DEVICES} devices`);
  else
    devices.forEach((d, i) => {
      const name = c.string(d, `${path}.devices[${i}]`);
      if (name !== undefined && name.length > MAX_RUNTIME_TEXT) c.fail(`${path}.devices[${i}]`, "too long");
    });
  if (runtime.driverVersion !== null) {
    const driver = c.string(runtime.driverVersion, `${path}.driverVersion`);
    if (driver !== undefined && driver.length > MAX_RUNTIME_TEXT) c.fail(`${path}.driverVersion`, "too long");
  }
  if (runtime.gpuEvidence !== null) {
    const at = `${path}.gpuEvidence`;
    const gpu = c.object(runtime.gpuEvidence, at);
    if (gpu === undefined) return;
    c.only(gpu, at, ["provider", "environment", "devToolsMode", "evidence"]);
    if (gpu.provider !== "nvml" && gpu.provider !== "sim") c.fail(`${at}.provider`, "expected nvml or sim");
    if (gpu.environment !== "prod" && gpu.environment !== "sim" && gpu.environment !== "unavailable")
      c.fail(`${at}.environment`, "expected prod, sim or unavailable");
    if (typeof gpu.devToolsMode !== "boolean") c.fail(`${at}.devToolsMode`, "expected a boolean");
    const evidence = c.array(gpu.evidence, `${at}.evidence`, 1) ?? [];
    if (evidence.length > MAX_RUNTIME_DEVICES) c.fail(`${at}.evidence`, `at most ${MAX_RUNTIME_DEVICES} GPUs`);
    else
      evidence.forEach((d, i) => {
        if (typeof d !== "string" || !SHA256_HEX.test(d)) c.fail(`${at}.evidence[${i}]`, "expected 64 lowercase hex");
      });
  }
}

/**
 * The runtime record a manifest carries (eval `predicate.runtime`, fine-tune
 * `buildDefinition.internalParameters.runtime`), or undefined when it has none (a job from before the record, or an
 * OMS statement). Read from a statement validateStatement accepted, so its shape is known.
 */
export function runtimeOf(statement: Statement): RuntimeInfo | undefined {
  if (statement.predicateType === PREDICATE_EVAL) return statement.predicate.runtime as RuntimeInfo | undefined;
  if (statement.predicateType === PREDICATE_SLSA) {
    const build = statement.predicate.buildDefinition as { internalParameters?: { runtime?: RuntimeInfo } } | undefined;
    return build?.internalParameters?.runtime;
  }
  return undefined;
}

function checkEvalPredicate(c: Checker, predicate: Record<string, unknown>): void {
  c.only(predicate, "predicate", ["suite", "harness", "metrics", "startedOn", "finishedOn", "runtime"]);
  if (predicate.runtime !== undefined) checkRuntime(c, predicate.runtime, "predicate.runtime");
  const suite = c.object(predicate.suite, "predicate.suite");
  if (suite !== undefined) {
    c.only(suite, "predicate.suite", ["name", "digest"]);
    c.string(suite.name, "predicate.suite.name");
    c.digest(suite.digest, "predicate.suite.digest");
  }
  const harness = c.object(predicate.harness, "predicate.harness");
  if (harness !== undefined) {
    c.only(harness, "predicate.harness", ["name", "version", "digest"]);
    c.string(harness.name, "predicate.harness.name");
    c.string(harness.version, "predicate.harness.version");
    c.digest(harness.digest, "predicate.harness.digest");
  }
  const metrics = c.array(predicate.metrics, "predicate.metrics") ?? [];
  metrics.forEach((entry, i) => {
    const path = `predicate.metrics[${i}]`;
    const metric = c.object(entry, path);
    if (metric === undefined) return;
    c.only(metric, path, ["name", "value", "sampleSize", "comparator", "threshold", "passed"]);
    c.string(metric.name, `${path}.name`);
    c.number(metric.value, `${path}.value`);
    const n = c.number(metric.sampleSize, `${path}.sampleSize`);
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) c.fail(`${path}.sampleSize`, "expected an integer ≥ 0");
    if (metric.comparator !== undefined && !COMPARATORS.includes(metric.comparator as string)) {
      c.fail(`${path}.comparator`, `expected one of ${COMPARATORS.join(" ")}`);
    }
    if (metric.threshold !== undefined) c.number(metric.threshold, `${path}.threshold`);
    if (metric.passed !== undefined && typeof metric.passed !== "boolean")
      c.fail(`${path}.passed`, "expected a boolean");
    checkMetricConsistency(c, metric, path);
  });
  c.timestamp(predicate.startedOn, "predicate.startedOn");
  c.timestamp(predicate.finishedOn, "predicate.finishedOn");
  c.inOrder(predicate.startedOn, predicate.finishedOn, "predicate.finishedOn");
}

/** The outcome a comparator gives, as the audit job computes it (enclave-job/job.ts): `value <cmp> threshold`. */
export function metricPasses(value: number, comparator: NonNullable<Metric["comparator"]>, threshold: number): boolean {
  switch (comparator) {
    case ">=":
      return value >= threshold;
    case "<=":
      return value <= threshold;
    case ">":
      return value > threshold;
    case "<":
      return value < threshold;
    case "==":
      return value === threshold;
  }
}

/**
 * A metric's claims must agree with each other: a comparator and a threshold come together, `passed` needs both,
 * and `passed` is what the comparator says of the value and the threshold (a signed "passed: true" on a failing
 * value would be displayed as a pass).
 */
function checkMetricConsistency(c: Checker, metric: Record<string, unknown>, path: string): void {
  const { value, comparator, threshold, passed } = metric;
  if ((comparator === undefined) !== (threshold === undefined))
    c.fail(`${path}.${comparator === undefined ? "comparator" : "threshold"}`, "comparator and threshold go together");
  if (passed === undefined || typeof passed !== "boolean") return;
  if (comparator === undefined || threshold === undefined) {
    c.fail(`${path}.passed`, "passed needs a comparator and a threshold");
    return;
  }
  if (
    typeof value === "number" &&
    typeof threshold === "number" &&
    COMPARATORS.includes(comparator as string) &&
    metricPasses(value, comparator as NonNullable<Metric["comparator"]>, threshold) !== passed
  )
    c.fail(
      `${path}.passed`,
      `says ${String(passed)}, but ${value} ${String(comparator)} ${threshold} is ${String(!passed)}`,
    );
}

/**
 * Reads a DSSE envelope's payload as a statement, the one way every reader does (the verifier's pipeline, `provenant
 * audit`, the SDK): the payloadType must be in-toto's, the bytes strict JSON (lib/json: UTF-8 without BOM, no
 * duplicate keys at any depth, depth-bounded), then validateStatement. STATEMENT_INVALID otherwise.
 */
export function parseStatementPayload(payloadType: string, payload: Uint8Array, what = "payload"): ValidatedStatement {
  if (payloadType !== INTOTO_PAYLOAD_TYPE)
    throw new MalformedInputError(
      "STATEMENT_INVALID",
      `${what}: payloadType ${JSON.stringify(payloadType)} is not ${INTOTO_PAYLOAD_TYPE}`,
      { details: { path: "payloadType", expected: INTOTO_PAYLOAD_TYPE, actual: payloadType } },
    );
  return validateStatement(parseStrictJsonBytes(payload, { code: "STATEMENT_INVALID", what }));
}

/**
 * The job-code digest a manifest carries (DESIGN §11): the fine-tune's `job-code` dependency or the audit's
 * `harness.digest`, as 64 hex; undefined for an OMS statement, or for job code named only by a git commit. The job
 * writes the OMS root digest of its installed package there (enclave-job/code-digest.ts), the value a measured image
 * names as `provenant.job=sha256:<hex>` and a verifier policy pins as `jobCodeDigests`.
 */
export function jobCodeDigestOf(statement: Statement): string | undefined {
  const sha256Of = (digest: unknown): string | undefined => {
    const value = (digest as { sha256?: unknown } | undefined)?.sha256;
    return typeof value === "string" && SHA256_HEX.test(value) ? value : undefined;
  };
  if (statement.predicateType === PREDICATE_EVAL) {
    return sha256Of((statement.predicate.harness as { digest?: unknown } | undefined)?.digest);
  }
  if (statement.predicateType === PREDICATE_SERVING) {
    return sha256Of((statement.predicate.jobCode as { digest?: unknown } | undefined)?.digest);
  }
  if (statement.predicateType === PREDICATE_SLSA) {
    const build = statement.predicate.buildDefinition as { resolvedDependencies?: unknown } | undefined;
    const deps: unknown[] = Array.isArray(build?.resolvedDependencies) ? build.resolvedDependencies : [];
    const jobCode = deps.find((d) => (d as { name?: unknown } | null)?.name === "job-code") as
      { digest?: unknown } | undefined;
    return sha256Of(jobCode?.digest);
  }
  return undefined;
}
