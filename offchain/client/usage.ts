// A serving record's latest usage statement, the I/O edge of usage-core.ts: reads `provenant serve`'s read-only
// endpoints (usage, the serving bundle of the leaf's log, the leaf's proof) with a timeout and a size bound each, and
// the chain's anchored root; checks the bundle against its onchain serving record before its key is used.
// Browser-safe (fetch only; the server answers these GETs with CORS): the explorer's usage panel and Node use it.
import { MAX_BUNDLE_BYTES } from "../../lib/bundle/core.ts";
import { IoError, ProvenantError, VerificationError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import type { AnchoredCheckpoint, RegistryRecord } from "./core.ts";
import { checkRecordBundle, type RecordFacts } from "./details-core.ts";
import {
  unverifiedUsage,
  MAX_USAGE_ANSWER_BYTES,
  MAX_USAGE_PROOF_BYTES,
  checkUsage,
  readUsageAnswer,
  readUsageProofAnswer,
  type UsageProofAnswer,
  type UsageVerification,
} from "./usage-core.ts";

export * from "./usage-core.ts";

/** Default time for each request to the serving endpoint. */
export const DEFAULT_SERVING_TIMEOUT_MS = 10_000;

export interface ServingUrlOptions {
  /** The server's HTTP API, e.g. http://127.0.0.1:8790 (a trailing slash is fine; a path prefix is kept). */
  servingUrl: string;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  subtle?: SubtleCrypto;
}

/** What the chain is asked: the anchored root at a size, and the serving record of a successor's log. */
export interface UsageChain {
  checkpointOf(logId: string, treeSize: number): Promise<AnchoredCheckpoint>;
  servingRecordOf(logId: string): Promise<RegistryRecord | null>;
}

/**
 * usage-core's verdict, or: `none` (the server has no usage statement for the log yet: 404), `unavailable` (the
 * server or the chain could not be read: IO_ERROR, RPC_UNAVAILABLE, …; no check failed). Served bytes that do not
 * hold are `failed` with their code.
 */
export interface ServingUsage extends Omit<UsageVerification, "status"> {
  status: UsageVerification["status"] | "none" | "unavailable";
}

function io(message: string, status?: number, cause?: unknown): IoError {
  return new IoError("IO_ERROR", message, {
    ...(status === undefined ? {} : { details: { status } }),
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * GET `path` under the serving URL: `accept`ed statuses with their body, read chunk by chunk and abandoned past
 * `maxBytes`; IO_ERROR otherwise (unreachable, timeout, a redirect, another status, too large).
 */
export async function servingGet(
  options: ServingUrlOptions,
  path: string,
  maxBytes: number,
  accept: readonly number[] = [200],
): Promise<{ status: number; body: Uint8Array }> {
  let url: string;
  try {
    const base = options.servingUrl.endsWith("/") ? options.servingUrl : `${options.servingUrl}/`;
    url = new URL(path, new URL(base, globalThis.location?.href)).href;
  } catch (error) {
    throw io(`the serving URL ${JSON.stringify(options.servingUrl)} is not a URL`, undefined, error);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? DEFAULT_SERVING_TIMEOUT_MS);
  try {
    let response: Response;
    try {
      response = await (options.fetch ?? globalThis.fetch)(url, {
        signal: controller.signal,
        redirect: "error",
        headers: { accept: "application/json" },
      });
    } catch (error) {
      throw io(`GET ${url} failed: ${(error as Error).message}`, undefined, error);
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (!accept.includes(response.status) || (Number.isFinite(declared) && declared > maxBytes)) {
      await response.body?.cancel().catch(() => undefined);
      throw accept.includes(response.status)
        ? io(`GET ${url}: the answer is ${declared} bytes, more than ${maxBytes}`)
        : io(`GET ${url} answered HTTP ${response.status}`, response.status);
    }
    const reader = response.body?.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      if (reader === undefined) break;
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (error) {
        throw io(`reading GET ${url} failed: ${(error as Error).message}`, undefined, error);
      }
      if (step.done) break;
      total += step.value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw io(`GET ${url}: the answer is more than ${maxBytes} bytes`);
      }
      chunks.push(step.value);
    }
    const body = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

function outcome(status: ServingUsage["status"], error: { code: ErrorCode; message: string }): ServingUsage {
  return unverifiedUsage(status, error);
}

/** Coded errors of reading (I/O, the chain) are `unavailable`; everything else said no to served bytes: `failed`. */
function fromError(error: unknown): ServingUsage {
  const [first] = toErrorList(error);
  const e = first ?? { code: "INTERNAL" as const, message: String(error) };
  const unavailable = error instanceof ProvenantError && error.kind === "io";
  return outcome(unavailable ? "unavailable" : "failed", e);
}

/**
 * The latest usage statement of a serving record's log, checked (usage-core checkUsage): `GET
 * v1/usage/latest?log=<logId>`, the serving bundle of the log holding its leaf (`GET v1/attestation?logId=`) checked
 * against that log's onchain serving record (checkRecordBundle: the record's manifest, signed by S, REPORT_DATA binds
 * S), the leaf's proof (`GET v1/receipts/<digest>/proof`), and `checkpointRoot(log, treeSize)` onchain. Never throws.
 */
export async function fetchServingUsage(
  options: ServingUrlOptions,
  record: RecordFacts,
  chain: UsageChain,
): Promise<ServingUsage> {
  const logId = record.parentModelHash?.toLowerCase().replace(/^0x/, "") ?? null;
  if (record.kind !== "serving" || logId === null || !/^[0-9a-f]{64}$/.test(logId))
    return outcome("failed", { code: "USAGE", message: "only a serving record (kind 3) with its log id has usage" });
  try {
    const usage = await servingGet(options, `v1/usage/latest?log=${logId}`, MAX_USAGE_ANSWER_BYTES, [200, 404]);
    if (usage.status === 404)
      return outcome("none", { code: "NOT_FOUND", message: `the server has no usage statement for log ${logId} yet` });
    const answer = readUsageAnswer(usage.body);
    // The leaf's log: this record's, or (a recovery statement) the successor's, whose own record must be onchain.
    let signerRecord: RecordFacts = record;
    if (answer.logId !== logId) {
      const successor = await chain.servingRecordOf(answer.logId);
      if (successor === null)
        throw new VerificationError(
          "SERVING_NOT_RECORDED",
          `the statement is a leaf of log ${answer.logId}, which no serving record registered`,
        );
      if (successor.modelHash.toLowerCase().replace(/^0x/, "") !== record.modelHash.toLowerCase().replace(/^0x/, ""))
        throw new VerificationError(
          "RECEIPT_SERVING_MISMATCH",
          `the statement's log ${answer.logId} serves another model`,
        );
      signerRecord = successor;
    }
    const bundle = await servingGet(options, `v1/attestation?logId=${answer.logId}`, MAX_BUNDLE_BYTES);
    const attested = await checkRecordBundle(signerRecord, bundle.body);
    const proofAnswer = await servingGet(
      options,
      `v1/receipts/${answer.digest}/proof`,
      MAX_USAGE_PROOF_BYTES,
      [200, 202, 404],
    );
    const proof: UsageProofAnswer | null =
      proofAnswer.status === 404 ? null : readUsageProofAnswer(proofAnswer.status, proofAnswer.body);
    let anchor: { logId: string; treeSize: number; rootHash: string | null } | null = null;
    if (proof?.proof != null) {
      const onchain = await chain.checkpointOf(proof.proof.logId, proof.proof.treeSize);
      anchor = { logId: proof.proof.logId, treeSize: proof.proof.treeSize, rootHash: onchain.rootHash };
    }
    return await checkUsage({
      answer,
      record: {
        logId,
        modelHash: record.modelHash.toLowerCase().replace(/^0x/, ""),
        manifestDigest: record.manifestDigest.toLowerCase().replace(/^0x/, ""),
      },
      signer: { logId: answer.logId, spki: attested.signer },
      proof,
      anchor,
      ...(options.subtle === undefined ? {} : { subtle: options.subtle }),
    });
  } catch (error) {
    return fromError(error);
  }
}
