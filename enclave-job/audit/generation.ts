// Generation suites: each prompt is completed greedily (temperature 0) from a fresh sequence state, then scored.
import type { LlamaContextSequence, Token } from "node-llama-cpp";

import type { Scorer } from "./scorers.ts";
import type { GenSuite } from "./suites.ts";

export interface GenResult {
  items: number;
  hits: number;
  rate: number;
  evaluatedTokens: number;
  generatedTokens: number;
  completions: { prompt: string; completion: string; hit: boolean }[];
}

export async function runGeneration(
  sequence: LlamaContextSequence,
  suite: GenSuite,
  scorer: Scorer,
  onProgress?: (done: number, total: number) => void,
): Promise<GenResult> {
  const model = sequence.model;
  const eos = model.tokens.eos;
  const bos = model.tokens.bos;
  let hits = 0;
  let evaluatedTokens = 0;
  let generatedTokens = 0;
  const completions: GenResult["completions"] = [];
  for (const [index, item] of suite.items.entries()) {
    await sequence.clearHistory();
    const prompt = model.tokenize(item.prompt);
    const tokens = bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...prompt] : prompt;
    const out: Token[] = [];
    const budget = Math.min(suite.maxTokens, sequence.contextSize - tokens.length - 1);
    if (budget > 0) {
      for await (const token of sequence.evaluate(tokens, { temperature: 0 })) {
        if (token === eos) break;
        out.push(token);
        if (out.length >= budget) break;
      }
    }
    evaluatedTokens += tokens.length + out.length;
    generatedTokens += out.length;
    const completion = model.detokenize(out);
    const hit = await scorer.score(item, completion);
    if (hit) hits++;
    completions.push({ prompt: item.prompt, completion, hit });
    onProgress?.(index + 1, suite.items.length);
  }
  return {
    items: suite.items.length,
    hits,
    rate: hits / suite.items.length,
    evaluatedTokens,
    generatedTokens,
    completions,
  };
}
