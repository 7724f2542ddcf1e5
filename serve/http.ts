// The HTTP API of `provenant serve` (node:http, 127.0.0.1 by default): OpenAI-compatible completions with a receipt
// for every answer, the serving bundle, inclusion and consistency proofs, checkpoints, usage, /healthz and /metrics.
// The verifier's hardening is reused (raw-target parsing, header/body/time/connection/concurrency bounds); every
// request is answered inside a guard, with OpenAI's error body and a stable code, never a stack trace.
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { IoError, MalformedInputError, ProvenantError, type ErrorCode } from "../lib/errors.ts";
import { clientKeyIdOf, encodeReceiptHeader, type ReceiptObject } from "../lib/receipt/index.ts";
import { DEFAULT_HTTP_LIMITS, parseTarget, type HttpLimits } from "../offchain/http/index.ts";
import { startGuardedServer, type GuardedServer } from "../offchain/http/server.ts";
import type { Anchorer } from "./anchor.ts";
import type { Engine, GenerationResult } from "./engine.ts";
import type { LogState, ReceiptLog } from "./log.ts";
import type { ServeMetrics } from "./metrics.ts";
import {
  chatCompletionBody,
  deltaChunk,
  errorBody,
  errorOf,
  parseChatRequest,
  parseCompletionRequest,
  receiptChunk,
  statusOf,
  textCompletionBody,
  type CompletionRequest,
  type RequestLimits,
  type ResponseContext,
} from "./openai.ts";
import type { RegistryMonitor } from "./registry.ts";
import type { CheckpointRow, ServeStore } from "./store.ts";

/** The verifier's HTTP bounds, with room for completion bodies and for answers that take as long as generation. */
export const DEFAULT_SERVE_HTTP_LIMITS: Readonly<HttpLimits> = {
  ...DEFAULT_HTTP_LIMITS,
  maxConcurrent: 128,
  maxBodyBytes: 1024 * 1024,
  requestTimeoutMs: 30_000,
  // A non-streamed answer is silent while it waits and generates (queue 60 s + generation 120 s).
  socketTimeoutMs: 210_000,
};

export interface ServeApp {
  modelId: string;
  modelRoot: string;
  engine: Engine;
  log: ReceiptLog;
  store: ServeStore;
  monitor: RegistryMonitor;
  anchorer: Anchorer;
  metrics: ServeMetrics;
  registry: { address: string; chainId: number };
  requestLimits: RequestLimits;
  startedAt: Date;
  now: () => Date;
  health: () => { ok: boolean; [key: string]: unknown };
  metricsText: () => string;
  /** True once shutdown began: completions get SERVE_UNAVAILABLE. */
  stopping: () => boolean;
}

const SECURITY_HEADERS = { "cache-control": "no-store", "x-content-type-options": "nosniff" };
const SHA256_PATH = /^\/v1\/receipts\/(?:sha256:)?([0-9a-fA-F]{64})\/proof$/;
const CHECKPOINT_PATH = /^\/v1\/checkpoints\/(latest|\d{1,16})$/;
const USAGE_PATH = /^\/v1\/usage\/(latest|(?:sha256:)?[0-9a-fA-F]{64})$/;
const MODEL_PATH = /^\/v1\/models\/(.{1,256})$/;

/**
 * The read-only endpoints a page on another origin may read (the explorer's usage panel: the bundle, logs,
 * checkpoints, proofs, consistency, usage): `Access-Control-Allow-Origin: *` (Fetch standard, CORS protocol). Nothing
 * that writes, generates or exports counters (completions, /metrics, /healthz) is opened to other origins.
 */
function isCorsReadable(path: string): boolean {
  return (
    path === "/v1/attestation" ||
    path === "/v1/logs" ||
    path === "/v1/consistency" ||
    SHA256_PATH.test(path) ||
    CHECKPOINT_PATH.test(path) ||
    USAGE_PATH.test(path)
  );
}
const CORS_PREFLIGHT = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET",
  "access-control-max-age": "600",
  "content-length": "0",
  ...SECURITY_HEADERS,
};

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json", ...SECURITY_HEADERS, ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

function sendError(res: ServerResponse, code: ErrorCode, message: string, status = statusOf(code), headers = {}): void {
  sendJson(res, status, errorBody(code, message, status), headers);
}

function fail(app: ServeApp, res: ServerResponse, error: unknown): void {
  const { status, body } = errorOf(error);
  app.metrics.recordError(body.error.code);
  sendJson(res, status, body, status === 429 ? { "retry-after": "1" } : {});
}

/** Reads a request body, refusing more than `max` bytes (413) as soon as it is known. */
function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && (!/^\d{1,12}$/.test(declared) || Number(declared) > max)) {
      reject(
        new MalformedInputError("SERVE_BAD_REQUEST", `the body is larger than ${max} bytes`, {
          details: { status: 413 },
        }),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners("data");
        reject(
          new MalformedInputError("SERVE_BAD_REQUEST", `the body is larger than ${max} bytes`, {
            details: { status: 413 },
          }),
        );
        req.resume();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on("error", (error) => reject(new IoError("SERVE_BAD_REQUEST", `the request failed: ${error.message}`)));
  });
}

/** The bearer API key of a request, if any (its SHA-256 is the client key id; the key itself is never kept). */
function apiKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
  return m?.[1];
}

/** A query value: one 64-hex log id, default the current log. */
function logParam(app: ServeApp, query: URLSearchParams): LogState | string {
  const values = query.getAll("log");
  if (values.length === 0) return app.log.current;
  const id = values[0]!.toLowerCase().replace(/^sha256:/, "");
  if (values.length > 1 || !/^[0-9a-f]{64}$/.test(id)) return "log must be one 64-hex log id";
  return app.log.logState(id) ?? "no such log in this data directory";
}

function sizeParam(query: URLSearchParams, name: string): number | undefined | string {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  if (values.length > 1 || !/^\d{1,15}$/.test(values[0]!)) return `${name} must be one non-negative integer`;
  return Number(values[0]);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

function checkpointView(app: ServeApp, row: CheckpointRow) {
  return {
    logId: row.logId,
    treeSize: row.treeSize,
    rootHash: row.rootHash,
    note: row.note,
    signerLogId: row.signerLogId,
    recovery: row.recovery,
    createdAt: row.createdAt,
    anchor:
      row.anchoredAt === null
        ? null
        : {
            registry: app.registry.address,
            chainId: app.registry.chainId,
            txHash: row.anchorTx,
            block: row.anchorBlock,
            gasUsed: row.anchorGas,
            anchoredAt: row.anchoredAt,
            afterRestart: row.anchoredAfterRestart,
          },
  };
}

/** GET /v1/receipts/:digest/proof: the inclusion proof of a leaf (receipt or usage statement) and its checkpoint. */
function leafProof(app: ServeApp, res: ServerResponse, digest: string, query: URLSearchParams): void {
  const requested = sizeParam(query, "treeSize");
  if (typeof requested === "string") return sendError(res, "SERVE_BAD_REQUEST", requested, 400);
  const leaf = app.store.leafByDigest(digest);
  const state = leaf === undefined ? undefined : app.log.logState(leaf.logId);
  if (leaf === undefined || state === undefined) return sendError(res, "NOT_FOUND", "no leaf with this digest", 404);
  const base = { logId: leaf.logId, leafIndex: leaf.leafIndex, kind: leaf.kind, digest: leaf.digest, seq: leaf.seq };
  const proofAt = (row: CheckpointRow) => ({
    treeSize: row.treeSize,
    rootHash: row.rootHash,
    proof: state.tree.inclusionProof(leaf.leafIndex, row.treeSize).map(hex),
    checkpoint: checkpointView(app, row),
  });
  if (requested !== undefined) {
    const row = app.store.checkpoint(leaf.logId, requested);
    if (row === undefined || row.treeSize <= leaf.leafIndex)
      return sendError(res, "NOT_FOUND", `no checkpoint of size ${requested} covers leaf ${leaf.leafIndex}`, 404);
    return sendJson(res, 200, { ...base, anchored: row.anchoredAt !== null, ...proofAt(row) });
  }
  const anchored = app.store.anchoredCovering(leaf.logId, leaf.leafIndex);
  if (anchored !== undefined) return sendJson(res, 200, { ...base, anchored: true, ...proofAt(anchored) });
  // Not anchored yet: 202 with why, and the proof against the latest signed checkpoint when one covers the leaf.
  const latest = app.store.latestCheckpoint(leaf.logId);
  const anchorState = app.anchorer.states().find((s) => s.logId === leaf.logId);
  const reason =
    latest === undefined || latest.treeSize <= leaf.leafIndex
      ? "epoch-open"
      : anchorState?.registeredBy === null
        ? "log-not-registered"
        : "anchor-pending";
  return sendJson(res, 202, {
    ...base,
    status: "pending",
    reason,
    anchored: false,
    ...(latest === undefined || latest.treeSize <= leaf.leafIndex ? {} : proofAt(latest)),
    lastError: anchorState?.lastError ?? null,
  });
}

function usageView(app: ServeApp, res: ServerResponse, which: string, query: URLSearchParams): void {
  let digest = which.toLowerCase().replace(/^sha256:/, "");
  if (which === "latest") {
    const state = logParam(app, query);
    if (typeof state === "string") return sendError(res, "SERVE_BAD_REQUEST", state, 400);
    const last = app.store.lastUsageOf(state.row.logId);
    if (last === undefined) return sendError(res, "NOT_FOUND", "no usage statement for this log yet", 404);
    digest = last.digest;
  }
  const usage = app.store.usage(digest);
  const leaf = app.store.leafByDigest(digest);
  if (usage === undefined || leaf === undefined) return sendError(res, "NOT_FOUND", "no such usage statement", 404);
  return sendJson(res, 200, {
    digest,
    meteredLogId: usage.meteredLogId,
    logId: leaf.logId,
    leafIndex: leaf.leafIndex,
    envelope: JSON.parse(leaf.envelope) as unknown,
    proof: `/v1/receipts/${digest}/proof`,
  });
}

function checkpoints(app: ServeApp, res: ServerResponse, which: string, query: URLSearchParams): void {
  const state = logParam(app, query);
  if (typeof state === "string") return sendError(res, "SERVE_BAD_REQUEST", state, 400);
  const row =
    which === "latest"
      ? app.store.latestCheckpoint(state.row.logId)
      : app.store.checkpoint(state.row.logId, Number(which));
  if (row === undefined) return sendError(res, "NOT_FOUND", "no such checkpoint", 404);
  return sendJson(res, 200, checkpointView(app, row));
}

function consistency(app: ServeApp, res: ServerResponse, query: URLSearchParams): void {
  const state = logParam(app, query);
  if (typeof state === "string") return sendError(res, "SERVE_BAD_REQUEST", state, 400);
  const from = sizeParam(query, "from");
  const to = sizeParam(query, "to");
  if (typeof from === "string" || from === undefined)
    return sendError(res, "SERVE_BAD_REQUEST", typeof from === "string" ? from : "from is required", 400);
  if (typeof to === "string" || to === undefined)
    return sendError(res, "SERVE_BAD_REQUEST", typeof to === "string" ? to : "to is required", 400);
  if (from > to || to > state.tree.size)
    return sendError(res, "SERVE_BAD_REQUEST", `need from ≤ to ≤ ${state.tree.size} (the log's size)`, 400);
  return sendJson(res, 200, {
    logId: state.row.logId,
    from,
    to,
    fromRoot: hex(state.tree.root(from)),
    toRoot: hex(state.tree.root(to)),
    proof: state.tree.consistencyProof(from, to).map(hex),
  });
}

/**
 * GET /v1/attestation[?logId=<hex>]: the serving bundle of the current log, or of an earlier log of this data
 * directory (its bundle is kept with the log), byte for byte as it was written and pushed. `?log=` is accepted as on
 * the other endpoints. 400 for a malformed id, 404 NOT_FOUND for a log this data directory never had.
 */
function attestation(app: ServeApp, res: ServerResponse, query: URLSearchParams): void {
  const values = [...query.getAll("logId"), ...query.getAll("log")];
  let bundle = app.log.identity.bundle;
  if (values.length > 0) {
    const id = values[0]!.toLowerCase().replace(/^sha256:/, "");
    if (values.length > 1 || !/^[0-9a-f]{64}$/.test(id))
      return sendError(res, "SERVE_BAD_REQUEST", "logId must be one 64-hex log id", 400);
    const state = app.log.logState(id);
    if (state === undefined) return sendError(res, "NOT_FOUND", "no such log in this data directory", 404);
    bundle = state.row.bundle;
  }
  if (res.headersSent) return;
  res.writeHead(200, { "content-type": "application/json", ...SECURITY_HEADERS });
  res.end(Buffer.from(bundle));
}

function logsView(app: ServeApp) {
  const anchors = new Map(app.anchorer.states().map((s) => [s.logId, s]));
  return {
    current: app.log.identity.logId,
    logs: app.log.logs.map(({ row, tree }) => ({
      logId: row.logId,
      servingManifest: row.servingManifest,
      modelRoot: row.modelRoot,
      startedAt: row.startedAt,
      closedAt: row.closedAt,
      successor: row.successor,
      treeSize: tree.size,
      checkpointSize: app.store.latestCheckpoint(row.logId)?.treeSize ?? 0,
      anchoredSize: anchors.get(row.logId)?.anchoredSize ?? 0,
      registeredBy: anchors.get(row.logId)?.registeredBy ?? null,
    })),
  };
}

/** The model a request names must be the served one: its id, or its OMS root digest (hex or sha256:hex). */
function servesModel(app: ServeApp, name: string): boolean {
  const lower = name.toLowerCase().replace(/^sha256:/, "");
  return name === app.modelId || lower === app.modelRoot;
}

async function completion(
  app: ServeApp,
  req: IncomingMessage,
  res: ServerResponse,
  operation: "chat" | "text_completion",
  limits: HttpLimits,
): Promise<void> {
  const refusal = () =>
    app.stopping()
      ? { code: "SERVE_UNAVAILABLE" as const, message: "the server is shutting down" }
      : app.monitor.gate();
  const closed = refusal();
  if (closed !== null) {
    req.resume();
    throw new IoError(closed.code, closed.message);
  }
  let body: Uint8Array;
  try {
    body = await readBody(req, limits.maxBodyBytes);
  } catch (error) {
    if (error instanceof ProvenantError && error.details?.status === 413) {
      app.metrics.recordError("SERVE_BAD_REQUEST");
      return sendError(res, "SERVE_BAD_REQUEST", error.message, 413, { connection: "close" });
    }
    throw error;
  }
  const request: CompletionRequest =
    operation === "chat" ? parseChatRequest(body, app.requestLimits) : parseCompletionRequest(body, app.requestLimits);
  if (!servesModel(app, request.model))
    throw new MalformedInputError("SERVE_MODEL_NOT_FOUND", `this server serves ${app.modelId}, not ${request.model}`, {
      details: { param: "model" },
    });
  const prepared = app.engine.prepare(request.input);
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort(new IoError("SERVE_UNAVAILABLE", "the client went away"));
  });
  const ctx: ResponseContext = {
    id: `${operation === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`,
    created: Math.floor(app.now().getTime() / 1000),
    model: app.modelId,
  };
  const clientKeyId = clientKeyIdOf(apiKeyOf(req));
  const issue = async (result: GenerationResult): Promise<ReceiptObject> => {
    // A revocation seen while this request waited or ran: no receipt for an answer the gate now refuses. (A request
    // taken before shutdown began still gets its receipt: stop() waits for it.)
    const late = app.monitor.gate();
    if (late !== null) throw new IoError(late.code, late.message);
    const receipt = await app.log.issue({
      operation,
      salt: new Uint8Array(randomBytes(32)),
      request: body,
      response: new TextEncoder().encode(result.text),
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      clientKeyId,
    });
    app.metrics.recordUsage(clientKeyId, result.promptTokens, result.completionTokens);
    return receipt;
  };

  if (!request.stream) {
    const result = await app.engine.generate(prepared, request.sampling, abort.signal);
    const receipt = await issue(result);
    const payload =
      operation === "chat" ? chatCompletionBody(ctx, result, receipt) : textCompletionBody(ctx, result, receipt);
    return sendJson(res, 200, payload, {
      "provenant-receipt": encodeReceiptHeader(receipt.envelope),
      "provenant-salt": receipt.salt,
    });
  }

  // Streaming: headers go out with the first text (or at the end), so that a refusal before generation starts is
  // still a plain HTTP error; after that, an error is an SSE event with OpenAI's error body and no [DONE].
  app.metrics.streams += 1;
  const write = (data: unknown): void => {
    if (!res.destroyed) res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
  };
  const start = (): void => {
    if (res.headersSent) return;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      ...SECURITY_HEADERS,
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    if (operation === "chat") write(deltaChunk(operation, ctx, { role: "assistant", content: "" }));
  };
  try {
    const result = await app.engine.generate(prepared, request.sampling, abort.signal, (text) => {
      start();
      write(deltaChunk(operation, ctx, { content: text }));
    });
    start();
    write(deltaChunk(operation, ctx, operation === "chat" ? {} : { content: "" }, result.finishReason));
    const receipt = await issue(result);
    write(receiptChunk(operation, ctx, result, receipt));
    write("[DONE]");
    res.end();
  } catch (error) {
    if (!res.headersSent) throw error;
    const { body: errorPayload } = errorOf(error);
    app.metrics.recordError(errorPayload.error.code);
    write(errorPayload);
    res.end();
  }
}

function route(app: ServeApp, req: IncomingMessage, res: ServerResponse, limits: HttpLimits): Promise<void> | void {
  const target = parseTarget(req.url, limits.maxUrlBytes);
  if ("status" in target) return sendError(res, "SERVE_BAD_REQUEST", target.error, target.status);
  const { path, query } = target;
  const method = req.method ?? "";
  if (path === "/v1/chat/completions" || path === "/v1/completions") {
    if (method !== "POST") {
      req.resume();
      return sendError(res, "SERVE_BAD_REQUEST", "use POST", 405, { allow: "POST" });
    }
    return completion(app, req, res, path === "/v1/chat/completions" ? "chat" : "text_completion", limits);
  }
  const cors = isCorsReadable(path);
  // A CORS preflight of a read-only endpoint: GET only, no request headers beyond the safelisted ones.
  if (method === "OPTIONS" && cors) {
    req.resume();
    if (res.headersSent) return;
    res.writeHead(204, { ...CORS_PREFLIGHT, allow: "GET, HEAD, OPTIONS" });
    res.end();
    return;
  }
  if (method !== "GET" && method !== "HEAD") {
    req.resume();
    return sendError(res, "SERVE_BAD_REQUEST", "use GET", 405, { allow: "GET, HEAD" });
  }
  // Every answer of a read-only endpoint (its errors too, so that a page can read their codes).
  if (cors) res.setHeader("access-control-allow-origin", "*");
  const declared = req.headers["content-length"];
  if (declared !== undefined && declared !== "0")
    return sendError(res, "SERVE_BAD_REQUEST", "a GET has no body", 413, { connection: "close" });
  if (path === "/healthz") {
    const health = app.health();
    return sendJson(res, health.ok ? 200 : 503, health);
  }
  if (path === "/metrics") {
    if (res.headersSent) return;
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", ...SECURITY_HEADERS });
    res.end(app.metricsText());
    return;
  }
  if (path === "/v1/models") return sendJson(res, 200, { object: "list", data: [modelView(app)] });
  const modelMatch = MODEL_PATH.exec(path);
  if (modelMatch !== null) {
    let name: string;
    try {
      name = decodeURIComponent(modelMatch[1]!);
    } catch {
      return sendError(res, "SERVE_BAD_REQUEST", "a bad percent-escape in the model id", 400);
    }
    return servesModel(app, name)
      ? sendJson(res, 200, modelView(app))
      : sendError(res, "SERVE_MODEL_NOT_FOUND", `this server serves ${app.modelId}`, 404);
  }
  if (path === "/v1/attestation") return attestation(app, res, query);
  if (path === "/v1/logs") return sendJson(res, 200, logsView(app));
  const proofMatch = SHA256_PATH.exec(path);
  if (proofMatch !== null) return leafProof(app, res, proofMatch[1]!.toLowerCase(), query);
  const checkpointMatch = CHECKPOINT_PATH.exec(path);
  if (checkpointMatch !== null) return checkpoints(app, res, checkpointMatch[1]!, query);
  if (path === "/v1/consistency") return consistency(app, res, query);
  const usageMatch = USAGE_PATH.exec(path);
  if (usageMatch !== null) return usageView(app, res, usageMatch[1]!, query);
  return sendError(res, "NOT_FOUND", "no such endpoint", 404);
}

function modelView(app: ServeApp) {
  return {
    id: app.modelId,
    object: "model",
    created: Math.floor(app.startedAt.getTime() / 1000),
    owned_by: "provenant",
    provenant: {
      modelRoot: app.modelRoot,
      servingManifest: app.log.identity.servingManifest,
      logId: app.log.identity.logId,
      attestation: "/v1/attestation",
    },
  };
}

/** Answers one request; never throws. */
export function handleServeRequest(
  app: ServeApp,
  req: IncomingMessage,
  res: ServerResponse,
  limits: HttpLimits = DEFAULT_SERVE_HTTP_LIMITS,
): void {
  try {
    const pending = route(app, req, res, limits);
    if (pending !== undefined) pending.catch((error: unknown) => fail(app, res, error));
  } catch (error) {
    fail(app, res, error);
  }
}

export async function startServeApi(
  app: ServeApp,
  listen: { host: string; port: number },
  overrides: Partial<HttpLimits> = {},
): Promise<GuardedServer> {
  const limits = { ...DEFAULT_SERVE_HTTP_LIMITS, ...overrides };
  return startGuardedServer({
    limits,
    listen,
    handle: (req, res) => handleServeRequest(app, req, res, limits),
    busy: (_req, res) => {
      app.metrics.httpBusy += 1;
      sendError(res, "SERVE_BUSY", "too many requests in flight", 503, { "retry-after": "1", connection: "close" });
    },
    // A completion being streamed when the server stops may finish (and get its receipt) for up to 5 s.
    closeGraceMs: 5_000,
  });
}
