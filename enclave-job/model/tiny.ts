// The tiny deterministic llama-architecture model that tests and the demo use instead of a download
// (DESIGN §8): random F32 weights from a seeded PRNG, a SentencePiece-style ("llama") vocabulary with the
// 256 byte-fallback tokens, single characters and a few word pieces, and a matching LoRA adapter.
// Same seed and size, same bytes: the OMS root digest of the output is stable across machines.
import { writeFileAtomic } from "../bundle.ts";
import { writeGguf, type GgufTensor, type GgufValue } from "./gguf.ts";

export type TinySize = "small" | "medium";

export interface TinyHyperparameters {
  embedding: number;
  layers: number;
  heads: number;
  headsKv: number;
  feedForward: number;
  context: number;
}

export const TINY_SIZES: Readonly<Record<TinySize, TinyHyperparameters>> = {
  small: { embedding: 64, layers: 2, heads: 4, headsKv: 2, feedForward: 192, context: 1024 },
  medium: { embedding: 128, layers: 4, heads: 4, headsKv: 2, feedForward: 384, context: 2048 },
};

/** llama_token_type (llama.cpp include/llama.h). */
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

/** SentencePiece's word-boundary marker, U+2581. */
const SPACE = "\u2581";

/** Words whose every prefix is a token, so SentencePiece's pairwise merges can reach the whole word. */
const WORDS = [
  "the",
  "of",
  "and",
  "to",
  "in",
  "is",
  "a",
  "what",
  "which",
  "Answer",
  "Question",
  "capital",
  "city",
  "color",
  "number",
  "Provenant",
  "model",
  "water",
  "sun",
  "moon",
  "cat",
  "dog",
  "yes",
  "no",
];

export interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

/** The vocabulary: `<unk>`, `<s>`, `</s>` (llama.cpp's SPM defaults 0/1/2), 256 byte tokens, characters, word pieces. */
export function tinyVocabulary(): Vocabulary {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_BYTE);
    scores.push(0);
  }
  const seen = new Set(tokens);
  const add = (piece: string): void => {
    if (seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    types.push(TOKEN_NORMAL);
    // SentencePiece merges the pair whose result scores highest: prefer longer pieces.
    scores.push(-1000 + [...piece].length * 10 - tokens.length / 1000);
  };
  add(SPACE);
  for (let code = 0x21; code <= 0x7e; code++) add(String.fromCharCode(code));
  for (let code = 0x21; code <= 0x7e; code++) {
    const char = String.fromCharCode(code);
    if (/[A-Za-z0-9]/.test(char)) add(SPACE + char);
  }
  for (const word of WORDS) {
    for (let end = 1; end <= word.length; end++) add(SPACE + word.slice(0, end));
  }
  return { tokens, scores, types };
}

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; enough for weights that only need to be reproducible. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a tensor name, so each tensor has its own stream and adding one tensor does not shift the others. */
function nameSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function gaussian(seed: number, name: string, count: number, std: number): Float32Array {
  const next = mulberry32(nameSeed(seed, name));
  const values = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    // Box-Muller; 1 - u keeps the logarithm finite.
    const r = Math.sqrt(-2 * Math.log(1 - next())) * std;
    const theta = 2 * Math.PI * next();
    values[i] = r * Math.cos(theta);
    if (i + 1 < count) values[i + 1] = r * Math.sin(theta);
  }
  return values;
}

function ones(count: number): Float32Array {
  return new Float32Array(count).fill(1);
}

export interface TinyModelOptions {
  seed?: number;
  size?: TinySize;
}

/** The GGUF bytes of the tiny model. */
export function tinyModelBytes(options: TinyModelOptions = {}): Uint8Array {
  const seed = options.seed ?? 1;
  const size = options.size ?? "small";
  const h = TINY_SIZES[size];
  const vocab = tinyVocabulary();
  const headDim = h.embedding / h.heads;
  const kvDim = headDim * h.headsKv;
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.type", { type: "string", value: "model" }],
    ["general.name", { type: "string", value: `provenant-tiny-${size}-seed${seed}` }],
    ["general.file_type", { type: "u32", value: 0 }],
    ["llama.context_length", { type: "u32", value: h.context }],
    ["llama.embedding_length", { type: "u32", value: h.embedding }],
    ["llama.block_count", { type: "u32", value: h.layers }],
    ["llama.feed_forward_length", { type: "u32", value: h.feedForward }],
    ["llama.attention.head_count", { type: "u32", value: h.heads }],
    ["llama.attention.head_count_kv", { type: "u32", value: h.headsKv }],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.rope.dimension_count", { type: "u32", value: headDim }],
    ["llama.rope.freq_base", { type: "f32", value: 10000 }],
    ["llama.vocab_size", { type: "u32", value: vocab.tokens.length }],
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: 2 }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: 0 }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
  ]);
  const n = vocab.tokens.length;
  const e = h.embedding;
  const tensors: GgufTensor[] = [];
  const matrix = (name: string, inputs: number, outputs: number, std = 1 / Math.sqrt(inputs)): void => {
    tensors.push({ name, dims: [inputs, outputs], data: gaussian(seed, name, inputs * outputs, std) });
  };
  matrix("token_embd.weight", e, n, 1);
  for (let layer = 0; layer < h.layers; layer++) {
    const blk = `blk.${layer}`;
    tensors.push({ name: `${blk}.attn_norm.weight`, dims: [e], data: ones(e) });
    matrix(`${blk}.attn_q.weight`, e, e);
    matrix(`${blk}.attn_k.weight`, e, kvDim);
    matrix(`${blk}.attn_v.weight`, e, kvDim);
    matrix(`${blk}.attn_output.weight`, e, e);
    tensors.push({ name: `${blk}.ffn_norm.weight`, dims: [e], data: ones(e) });
    matrix(`${blk}.ffn_gate.weight`, e, h.feedForward);
    matrix(`${blk}.ffn_up.weight`, e, h.feedForward);
    matrix(`${blk}.ffn_down.weight`, h.feedForward, e);
  }
  tensors.push({ name: "output_norm.weight", dims: [e], data: ones(e) });
  matrix("output.weight", e, n, 2 / Math.sqrt(e));
  return writeGguf(metadata, tensors);
}

export interface TinyAdapterOptions extends TinyModelOptions {
  rank?: number;
  alpha?: number;
}

/** A LoRA adapter for the tiny model of the same seed and size: attention Q and V of every block. */
export function tinyAdapterBytes(options: TinyAdapterOptions = {}): Uint8Array {
  const seed = options.seed ?? 1;
  const size = options.size ?? "small";
  const rank = options.rank ?? 4;
  const alpha = options.alpha ?? 8;
  const h = TINY_SIZES[size];
  const kvDim = (h.embedding / h.heads) * h.headsKv;
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.type", { type: "string", value: "adapter" }],
    ["general.name", { type: "string", value: `provenant-tiny-${size}-seed${seed}-lora` }],
    ["adapter.type", { type: "string", value: "lora" }],
    ["adapter.lora.alpha", { type: "f32", value: alpha }],
  ]);
  const tensors: GgufTensor[] = [];
  // llama.cpp (src/llama-adapter.cpp): for a weight of ne [in, out], lora_a is [in, rank] and lora_b is [rank, out].
  const pair = (target: string, inputs: number, outputs: number): void => {
    const a = `${target}.lora_a`;
    const b = `${target}.lora_b`;
    tensors.push({ name: a, dims: [inputs, rank], data: gaussian(seed + 7, a, inputs * rank, 1 / Math.sqrt(inputs)) });
    tensors.push({ name: b, dims: [rank, outputs], data: gaussian(seed + 7, b, rank * outputs, 0.5) });
  };
  for (let layer = 0; layer < h.layers; layer++) {
    pair(`blk.${layer}.attn_q.weight`, h.embedding, h.embedding);
    pair(`blk.${layer}.attn_v.weight`, h.embedding, kvDim);
  }
  return writeGguf(metadata, tensors);
}

/** The adapter's path beside a model path: `x.gguf` → `x.lora.gguf`. */
export function adapterPathFor(modelPath: string): string {
  return modelPath.endsWith(".gguf") ? `${modelPath.slice(0, -5)}.lora.gguf` : `${modelPath}.lora.gguf`;
}

/** Writes the tiny model and its adapter; returns both paths. */
export async function writeTinyModel(
  path: string,
  options: TinyModelOptions = {},
): Promise<{ model: string; adapter: string }> {
  const adapter = adapterPathFor(path);
  await writeFileAtomic(path, tinyModelBytes(options));
  await writeFileAtomic(adapter, tinyAdapterBytes(options));
  return { model: path, adapter };
}
