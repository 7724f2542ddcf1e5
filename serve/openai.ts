// The OpenAI-compatible surface of `provenant serve`, pure: request bodies read strictly into one internal form
// (unknown or unsupported parameters refused rather than silently ignored, every count and length bounded), and the
// response, stream chunk and error bodies in OpenAI's shapes with `provenant_receipt` added.
import { MalformedInputError, ProvenantError, type ErrorCode } from "../lib/errors.ts";
import { parseStrictJsonBytes } from "../lib/json/index.ts";
import type { ReceiptObject } from "../lib/receipt/index.ts";
import type { ChatMessage, GenerationInput, GenerationResult, SamplingOptions } from "./engine.ts";

export interface RequestLimits {
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Most chat messages. */
  maxMessages: number;
  /** Most characters of prompt text in all (messages or prompt). */
  maxPromptChars: number;
}

export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = {
  maxTokens: 1024,
  maxMessages: 256,
  maxPromptChars: 256 * 1024,
};

export interface CompletionRequest {
  operation: "chat" | "text_completion";
  model: string;
  input: GenerationInput;
  sampling: SamplingOptions;
  stream: boolean;
}

/** Parameters clients send that change nothing here and are accepted as they are. */
const IGNORED = ["user", "metadata", "store"];

function bad(message: string, param: string | null = null): MalformedInputError {
  return new MalformedInputError("SERVE_BAD_REQUEST", message, { details: { param } });
}

/** The parameters both endpoints take: the model, sampling, streaming, and logprobs (taken only to be refused). */
const COMMON_PARAMS = [
  "model",
  "max_tokens",
  "temperature",
  "top_p",
  "seed",
  "n",
  "stop",
  "stream",
  "stream_options",
  "frequency_penalty",
  "presence_penalty",
  "logprobs",
] as const;

function only(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body))
    if (!allowed.includes(key) && !IGNORED.includes(key)) throw bad(`unsupported parameter: ${key}`, key);
}

function integer(value: unknown, param: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max)
    throw bad(`${param} must be an integer from ${min} to ${max}`, param);
  return value;
}

function number(value: unknown, param: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max)
    throw bad(`${param} must be a number from ${min} to ${max}`, param);
  return value;
}

/** The shared sampling parameters; a parameter that could only be honoured approximately is refused. */
function sampling(body: Record<string, unknown>, limits: RequestLimits, defaultMaxTokens: number): SamplingOptions {
  const maxTokensParam = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const rawMax = body.max_completion_tokens ?? body.max_tokens;
  const maxTokens =
    rawMax === undefined || rawMax === null
      ? Math.min(defaultMaxTokens, limits.maxTokens)
      : integer(rawMax, maxTokensParam, 1, limits.maxTokens);
  const temperature =
    body.temperature === undefined || body.temperature === null ? 0 : number(body.temperature, "temperature", 0, 2);
  const out: SamplingOptions = { maxTokens, temperature, stop: [] };
  if (body.top_p !== undefined && body.top_p !== null) out.topP = number(body.top_p, "top_p", 0, 1);
  if (body.seed !== undefined && body.seed !== null) out.seed = integer(body.seed, "seed", 0, 2 ** 31 - 1);
  if (body.n !== undefined && body.n !== null) integer(body.n, "n", 1, 1);
  for (const param of ["frequency_penalty", "presence_penalty"])
    if (body[param] !== undefined && body[param] !== null && body[param] !== 0)
      throw bad(`${param} is not supported`, param);
  const stop = body.stop;
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === "string" ? [stop] : stop;
    if (!Array.isArray(list) || list.length > 4) throw bad("stop must be a string or up to 4 strings", "stop");
    for (const s of list)
      if (typeof s !== "string" || s === "" || s.length > 256)
        throw bad("each stop string is 1 to 256 characters", "stop");
    out.stop = list as string[];
  }
  return out;
}

function stream(body: Record<string, unknown>): boolean {
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean")
    throw bad("stream must be a boolean", "stream");
  if (body.stream_options !== undefined && body.stream_options !== null) {
    const o = body.stream_options;
    if (typeof o !== "object" || Array.isArray(o) || Object.keys(o).some((k) => k !== "include_usage"))
      throw bad("stream_options takes only include_usage", "stream_options");
  }
  return body.stream === true;
}

function model(body: Record<string, unknown>): string {
  if (typeof body.model !== "string" || body.model === "" || body.model.length > 256)
    throw bad("model must name the served model (GET /v1/models)", "model");
  return body.model;
}

function messageText(content: unknown, path: string): string {
  if (typeof content === "string") return content;
  // The array form: text parts only (this server has no image or audio input).
  if (Array.isArray(content) && content.length <= 64) {
    let text = "";
    for (const part of content) {
      if (typeof part !== "object" || part === null || (part as { type?: unknown }).type !== "text")
        throw bad(`${path}: only text content parts are supported`, "messages");
      const t = (part as { text?: unknown }).text;
      if (typeof t !== "string") throw bad(`${path}: a text part needs text`, "messages");
      text += t;
    }
    return text;
  }
  throw bad(`${path}: content must be a string or text parts`, "messages");
}

const ROLES = ["system", "developer", "user", "assistant"];

/** A POST /v1/chat/completions body (strict JSON, already bounded in size by the HTTP layer). */
export function parseChatRequest(bytes: Uint8Array, limits: RequestLimits = DEFAULT_REQUEST_LIMITS): CompletionRequest {
  const body = toObject(bytes);
  only(body, [...COMMON_PARAMS, "messages", "max_completion_tokens", "response_format"]);
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false)
    throw bad("logprobs are not supported", "logprobs");
  if (body.response_format !== undefined && body.response_format !== null) {
    const f = body.response_format as { type?: unknown };
    if (typeof f !== "object" || f.type !== "text" || Object.keys(f).length !== 1)
      throw bad("only response_format {type: text} is supported", "response_format");
  }
  const list = body.messages;
  if (!Array.isArray(list) || list.length === 0 || list.length > limits.maxMessages)
    throw bad(`messages must be 1 to ${limits.maxMessages} messages`, "messages");
  let chars = 0;
  const messages: ChatMessage[] = list.map((m, i) => {
    const path = `messages[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad(`${path} must be an object`, "messages");
    const message = m as Record<string, unknown>;
    for (const key of Object.keys(message))
      if (key !== "role" && key !== "content" && key !== "name")
        throw bad(`${path}.${key} is not supported`, "messages");
    if (typeof message.role !== "string" || !ROLES.includes(message.role))
      throw bad(`${path}.role must be one of ${ROLES.join(", ")}`, "messages");
    const content = messageText(message.content, path);
    chars += content.length;
    if (chars > limits.maxPromptChars) throw bad(`the messages exceed ${limits.maxPromptChars} characters`, "messages");
    return { role: message.role as ChatMessage["role"], content };
  });
  return {
    operation: "chat",
    model: model(body),
    input: { operation: "chat", messages },
    sampling: sampling(body, limits, 256),
    stream: stream(body),
  };
}

/** A POST /v1/completions body. */
export function parseCompletionRequest(
  bytes: Uint8Array,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
): CompletionRequest {
  const body = toObject(bytes);
  only(body, [...COMMON_PARAMS, "prompt", "echo", "suffix", "best_of"]);
  if (body.echo !== undefined && body.echo !== null && body.echo !== false) throw bad("echo is not supported", "echo");
  if (body.logprobs !== undefined && body.logprobs !== null) throw bad("logprobs are not supported", "logprobs");
  if (body.suffix !== undefined && body.suffix !== null) throw bad("suffix is not supported", "suffix");
  if (body.best_of !== undefined && body.best_of !== null) integer(body.best_of, "best_of", 1, 1);
  const raw = Array.isArray(body.prompt) && body.prompt.length === 1 ? body.prompt[0] : body.prompt;
  if (typeof raw !== "string") throw bad("prompt must be one string", "prompt");
  if (raw.length > limits.maxPromptChars) throw bad(`the prompt exceeds ${limits.maxPromptChars} characters`, "prompt");
  return {
    operation: "text_completion",
    model: model(body),
    input: { operation: "text_completion", prompt: raw },
    sampling: sampling(body, limits, 16),
    stream: stream(body),
  };
}

function toObject(bytes: Uint8Array): Record<string, unknown> {
  const body = parseStrictJsonBytes(bytes, { code: "SERVE_BAD_REQUEST", what: "request body", maxDepth: 16 });
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("the request body must be an object");
  return body as Record<string, unknown>;
}

// ── responses ──

export interface ResponseContext {
  id: string;
  created: number;
  model: string;
}

const usageOf = (r: GenerationResult) => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens,
});

export function chatCompletionBody(ctx: ResponseContext, result: GenerationResult, receipt: ReceiptObject) {
  return {
    id: ctx.id,
    object: "chat.completion",
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: result.text, refusal: null },
        logprobs: null,
        finish_reason: result.finishReason,
      },
    ],
    usage: usageOf(result),
    provenant_receipt: receipt,
  };
}

export function textCompletionBody(ctx: ResponseContext, result: GenerationResult, receipt: ReceiptObject) {
  return {
    id: ctx.id,
    object: "text_completion",
    created: ctx.created,
    model: ctx.model,
    choices: [{ text: result.text, index: 0, logprobs: null, finish_reason: result.finishReason }],
    usage: usageOf(result),
    provenant_receipt: receipt,
  };
}

/** One stream chunk carrying text (or the role, first), in the operation's chunk format. */
export function deltaChunk(
  operation: "chat" | "text_completion",
  ctx: ResponseContext,
  delta: { role?: "assistant"; content?: string },
  finishReason: "stop" | "length" | null = null,
) {
  if (operation === "chat")
    return {
      id: ctx.id,
      object: "chat.completion.chunk",
      created: ctx.created,
      model: ctx.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
  return {
    id: ctx.id,
    object: "text_completion",
    created: ctx.created,
    model: ctx.model,
    choices: [{ text: delta.content ?? "", index: 0, logprobs: null, finish_reason: finishReason }],
  };
}

/**
 * The stream's last chunk before `[DONE]`: no choices (as OpenAI's usage chunk), the usage, and the receipt. Clients
 * that read `choices[0]` of every chunk must allow an empty list, as they do for `stream_options.include_usage`.
 */
export function receiptChunk(
  operation: "chat" | "text_completion",
  ctx: ResponseContext,
  result: GenerationResult,
  receipt: ReceiptObject,
) {
  return {
    id: ctx.id,
    object: operation === "chat" ? "chat.completion.chunk" : "text_completion",
    created: ctx.created,
    model: ctx.model,
    choices: [],
    usage: usageOf(result),
    provenant_receipt: receipt,
  };
}

/** HTTP status of each code a request can end with. */
export function statusOf(code: ErrorCode): number {
  switch (code) {
    case "SERVE_BAD_REQUEST":
    case "SERVE_CONTEXT_EXCEEDED":
      return 400;
    case "SERVE_MODEL_NOT_FOUND":
    case "NOT_FOUND":
      return 404;
    case "SERVE_BUSY":
      return 429;
    case "MODEL_REVOKED":
    case "MODEL_NOT_RECORDED":
    case "SERVE_REGISTRY_STALE":
    case "SERVE_UNAVAILABLE":
      return 503;
    case "SERVE_TIMEOUT":
      return 504;
    default:
      return 500;
  }
}

/** OpenAI's error body: `{error: {message, type, param, code}}`, with our stable code in `code`. */
export function errorBody(code: ErrorCode, message: string, status = statusOf(code), param: string | null = null) {
  const type =
    status === 429
      ? "rate_limit_error"
      : status === 503
        ? "service_unavailable"
        : status >= 500
          ? "server_error"
          : "invalid_request_error";
  return { error: { message, type, param, code } };
}

/** The error body of anything a request handler throws; internals never leak. */
export function errorOf(error: unknown): { status: number; body: ReturnType<typeof errorBody> } {
  if (error instanceof ProvenantError && error.code !== "INTERNAL") {
    const param = typeof error.details?.param === "string" ? error.details.param : null;
    const status = statusOf(error.code);
    // A message may carry a path or an SQL error for store failures: those are summarised.
    const message = status === 500 ? "the server could not complete the request" : error.message;
    return { status, body: errorBody(error.code, message, status, param) };
  }
  return { status: 500, body: errorBody("INTERNAL", "the server could not complete the request", 500) };
}
