// Text generation for `provenant serve` on node-llama-cpp: one loaded model, one context sequence, a bounded FIFO queue
// with a wait limit, a time limit per generation and cancellation when the caller goes away. Text comes out as deltas
// whose concatenation is, by construction, the completion text (the receipt's response bytes), streamed or not.
import {
  resolveChatWrapper,
  type ChatHistoryItem,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";

import { IoError, MalformedInputError } from "../lib/errors.ts";
import { loadModel, type LoadedModel } from "../enclave-job/llama.ts";

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant";
  content: string;
}

export type GenerationInput =
  { operation: "chat"; messages: ChatMessage[] } | { operation: "text_completion"; prompt: string };

export interface SamplingOptions {
  maxTokens: number;
  /** 0 = greedy (the default: deterministic). */
  temperature: number;
  topP?: number;
  /** Sampling seed when temperature > 0. */
  seed?: number;
  /** Up to 4 stop strings: generation ends before the first one, which is not returned. */
  stop: string[];
}

export interface GenerationResult {
  /** The completion text: exactly the concatenation of every delta handed to onDelta. */
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: "stop" | "length";
  /** Milliseconds spent generating (after the queue). */
  generationMs: number;
}

export interface Prepared {
  input: GenerationInput;
  tokens: Token[];
  /** Stop strings the chat template adds (e.g. "</s>"), on top of the caller's. */
  templateStops: string[];
}

export interface EngineOptions {
  threads: number;
  gpu: boolean;
  /** Context size in tokens (prompt + completion); default min(2048, the model's training context). */
  contextSize?: number;
  /** Requests waiting beyond the one running; more are refused (SERVE_BUSY). Default 16. */
  maxQueue?: number;
  /** Longest wait in the queue before SERVE_BUSY; default 60 s. */
  queueTimeoutMs?: number;
  /** Longest generation before SERVE_TIMEOUT; default 120 s. */
  generationTimeoutMs?: number;
  /** Model load time limit; default 120 s. */
  loadTimeoutMs?: number;
}

interface Job {
  prepared: Prepared;
  sampling: SamplingOptions;
  signal: AbortSignal;
  onDelta: ((text: string) => void) | undefined;
  resolve: (result: GenerationResult) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

/** The "\uFFFD" node-llama-cpp emits for a token that ends inside a UTF-8 sequence: wait for the next token. */
const REPLACEMENT = "\uFFFD";

export class Engine {
  readonly model: LlamaModel;
  readonly contextSize: number;
  readonly threads: number;
  readonly #loaded: LoadedModel;
  readonly #context: LlamaContext;
  readonly #sequence: LlamaContextSequence;
  readonly #queue: Job[] = [];
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  readonly #generationTimeoutMs: number;
  #running = false;
  #closed = false;
  #wrapper: ReturnType<typeof resolveChatWrapper> | undefined;
  /** Generations finished, and the time they took (for /metrics). */
  completed = 0;
  generationSeconds = 0;

  private constructor(loaded: LoadedModel, context: LlamaContext, options: EngineOptions) {
    this.#loaded = loaded;
    this.model = loaded.model;
    this.threads = loaded.threads;
    this.#context = context;
    this.contextSize = context.contextSize;
    this.#sequence = context.getSequence();
    this.#maxQueue = options.maxQueue ?? 16;
    this.#queueTimeoutMs = options.queueTimeoutMs ?? 60_000;
    this.#generationTimeoutMs = options.generationTimeoutMs ?? 120_000;
  }

  /** Loads the model (JOB_MODEL_UNREADABLE / JOB_MODEL_LOAD_FAILED) and makes its one context. */
  static async load(modelPath: string, options: EngineOptions): Promise<Engine> {
    const loaded = await loadModel(modelPath, {
      threads: options.threads,
      gpu: options.gpu,
      ...(options.loadTimeoutMs === undefined ? {} : { loadTimeoutMs: options.loadTimeoutMs }),
    });
    try {
      const contextSize = options.contextSize ?? Math.min(2048, loaded.model.trainContextSize);
      const context = await loaded.createContext({ contextSize });
      return new Engine(loaded, context, options);
    } catch (error) {
      await loaded.dispose();
      throw error;
    }
  }

  get queued(): number {
    return this.#queue.length;
  }

  get running(): boolean {
    return this.#running;
  }

  /**
   * Renders and tokenizes a request: a chat through the model's chat template (node-llama-cpp's resolveChatWrapper,
   * ending with an open assistant turn), a completion prompt as text after BOS. Synchronous, so that a request too
   * long for the context is refused before it waits in the queue.
   */
  prepare(input: GenerationInput): Prepared {
    const model = this.model;
    if (input.operation === "text_completion") {
      const bos = model.tokens.bos;
      const prompt = model.tokenize(input.prompt);
      const tokens = bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...prompt] : prompt;
      return { input, tokens, templateStops: [] };
    }
    this.#wrapper ??= resolveChatWrapper(model);
    const wrapper = this.#wrapper;
    const history: ChatHistoryItem[] = input.messages.map((m) =>
      m.role === "assistant"
        ? { type: "model", response: [m.content] }
        : m.role === "user"
          ? { type: "user", text: m.content }
          : { type: "system", text: m.content },
    );
    history.push({ type: "model", response: [] });
    const state = wrapper.generateContextState({ chatHistory: history });
    const tokens = state.contextText.tokenize(model.tokenizer);
    // Plain-text triggers become stop strings; special-token triggers are end-of-generation tokens, which stop anyway.
    const templateStops = state.stopGenerationTriggers
      .filter((t) => t.values.length > 0 && t.values.every((v) => typeof v === "string"))
      .map((t) => t.values.join(""))
      .filter((s) => s !== "");
    return { input, tokens, templateStops };
  }

  /**
   * Queues a generation. SERVE_BUSY when the queue is full or the wait is too long, SERVE_TIMEOUT when generating takes
   * too long, SERVE_UNAVAILABLE once closed; an aborted `signal` stops it (the promise rejects with the signal's reason).
   */
  generate(
    prepared: Prepared,
    sampling: SamplingOptions,
    signal: AbortSignal,
    onDelta?: (text: string) => void,
  ): Promise<GenerationResult> {
    if (this.#closed) return Promise.reject(new IoError("SERVE_UNAVAILABLE", "the server is shutting down"));
    if (prepared.tokens.length + sampling.maxTokens > this.contextSize)
      return Promise.reject(
        new MalformedInputError(
          "SERVE_CONTEXT_EXCEEDED",
          `the prompt (${prepared.tokens.length} tokens) plus max_tokens (${sampling.maxTokens}) exceed the context of ${this.contextSize} tokens`,
          {
            details: {
              promptTokens: prepared.tokens.length,
              maxTokens: sampling.maxTokens,
              contextSize: this.contextSize,
            },
          },
        ),
      );
    if (this.#queue.length >= this.#maxQueue)
      return Promise.reject(
        new IoError("SERVE_BUSY", `${this.#queue.length} requests are waiting already; retry later`, {
          details: { queued: this.#queue.length },
        }),
      );
    return new Promise<GenerationResult>((resolve, reject) => {
      const job: Job = {
        prepared,
        sampling,
        signal,
        onDelta,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#queue.indexOf(job);
          if (i >= 0) {
            this.#queue.splice(i, 1);
            reject(new IoError("SERVE_BUSY", `waited more than ${this.#queueTimeoutMs} ms for the model; retry later`));
          }
        }, this.#queueTimeoutMs),
      };
      this.#queue.push(job);
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
        clearTimeout(job.timer);
        if (job.signal.aborted) {
          job.reject(job.signal.reason);
          continue;
        }
        try {
          job.resolve(await this.#run(job));
        } catch (error) {
          job.reject(error);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #run(job: Job): Promise<GenerationResult> {
    const started = performance.now();
    const deadline = started + this.#generationTimeoutMs;
    const { sampling, prepared } = job;
    const stops = [...sampling.stop, ...prepared.templateStops];
    const emitter = new DeltaEmitter(this.model, stops, job.onDelta);
    await this.#sequence.clearHistory();
    let finishReason: "stop" | "length" = "stop";
    let generated = 0;
    if (sampling.maxTokens > 0) {
      finishReason = "length";
      const options =
        sampling.temperature > 0
          ? {
              temperature: sampling.temperature,
              ...(sampling.topP === undefined ? {} : { topP: sampling.topP }),
              seed: sampling.seed ?? Math.floor(Math.random() * 2 ** 31),
            }
          : { temperature: 0 };
      for await (const token of this.#sequence.evaluate(prepared.tokens, options)) {
        generated += 1;
        if (emitter.push(token)) {
          finishReason = "stop";
          break;
        }
        if (job.signal.aborted) throw job.signal.reason;
        if (performance.now() > deadline)
          throw new IoError("SERVE_TIMEOUT", `generation took more than ${this.#generationTimeoutMs} ms`);
        if (generated >= sampling.maxTokens) break;
      }
      // The generator ends by itself at an end-of-generation token (not yielded): a natural stop.
      if (generated < sampling.maxTokens) finishReason = "stop";
    }
    const text = emitter.finish();
    const generationMs = performance.now() - started;
    this.completed += 1;
    this.generationSeconds += generationMs / 1000;
    return { text, promptTokens: prepared.tokens.length, completionTokens: generated, finishReason, generationMs };
  }

  /** Refuses new work, fails what waits, and frees the model once the running generation ends. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) {
      clearTimeout(job.timer);
      job.reject(new IoError("SERVE_UNAVAILABLE", "the server is shutting down"));
    }
    const deadline = performance.now() + 30_000;
    while (this.#running && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.#context.dispose();
    await this.#loaded.dispose();
  }
}

/**
 * Turns tokens into text deltas: detokenizes what is pending with the previous tokens as context (SentencePiece
 * spacing), holds back an incomplete UTF-8 sequence and anything that could still become a stop string, and cuts at
 * the first stop string. The concatenated deltas are the completion text.
 */
class DeltaEmitter {
  readonly #model: LlamaModel;
  readonly #stops: string[];
  readonly #holdBack: number;
  readonly #onDelta: ((text: string) => void) | undefined;
  readonly #done: Token[] = [];
  #pending: Token[] = [];
  /** Text decoded so far and how much of it went out. */
  #text = "";
  #emitted = 0;
  #stopped = false;

  constructor(model: LlamaModel, stops: string[], onDelta: ((text: string) => void) | undefined) {
    this.#model = model;
    this.#stops = stops;
    this.#holdBack = stops.reduce((max, s) => Math.max(max, s.length - 1), 0);
    this.#onDelta = onDelta;
  }

  /** Adds a token; true when a stop string was reached (generation should end). */
  push(token: Token): boolean {
    this.#pending.push(token);
    const piece = this.#model.detokenize(this.#pending, false, this.#done.slice(-8));
    if (piece.endsWith(REPLACEMENT)) return false;
    this.#done.push(...this.#pending);
    this.#pending = [];
    this.#text += piece;
    const stopAt = this.#firstStop();
    if (stopAt >= 0) {
      this.#text = this.#text.slice(0, stopAt);
      this.#stopped = true;
      this.#emit(this.#text.length);
      return true;
    }
    this.#emit(this.#text.length - this.#holdBack);
    return false;
  }

  #firstStop(): number {
    let at = -1;
    // Only the tail can hold a new match: search from where a stop string could have started.
    const from = Math.max(0, this.#emitted - this.#holdBack);
    for (const stop of this.#stops) {
      const i = this.#text.indexOf(stop, from);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  }

  #emit(upTo: number): void {
    if (upTo <= this.#emitted) return;
    // Never split a UTF-16 surrogate pair between two deltas.
    const code = this.#text.charCodeAt(upTo - 1);
    if (upTo < this.#text.length && code >= 0xd800 && code <= 0xdbff) upTo -= 1;
    if (upTo <= this.#emitted) return;
    const delta = this.#text.slice(this.#emitted, upTo);
    this.#emitted = upTo;
    this.#onDelta?.(delta);
  }

  /** Flushes what is held back (a trailing partial character included) and returns the whole text. */
  finish(): string {
    if (!this.#stopped && this.#pending.length > 0) {
      this.#text += this.#model.detokenize(this.#pending, false, this.#done.slice(-8));
      this.#pending = [];
      const stopAt = this.#firstStop();
      if (stopAt >= 0) this.#text = this.#text.slice(0, stopAt);
    }
    this.#emit(this.#text.length);
    return this.#text.slice(0, this.#emitted);
  }
}
