// Multiple-choice scoring by log-probabilities: each item is one evaluation of its prompt, and the answer is the
// letter whose next-token log-probability is highest (no sampling). The few-shot examples form one shared prefix,
// evaluated once; after each item only the item's tokens are erased from the sequence, so the prefix's KV cache is reused.
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";

import { MalformedInputError } from "../../lib/errors.ts";
import { LETTERS, type McItem, type McSuite } from "./suites.ts";

export const MC_INSTRUCTION = "The following are multiple choice questions (with answers).\n\n";

export function formatQuestion(item: McItem): string {
  const choices = item.choices.map((choice, index) => `${LETTERS[index]}. ${choice}`).join("\n");
  return `Question: ${item.question}\n${choices}\nAnswer:`;
}

export function formatPrefix(fewShot: readonly McItem[]): string {
  return MC_INSTRUCTION + fewShot.map((shot) => `${formatQuestion(shot)} ${LETTERS[shot.answer]}\n\n`).join("");
}

export interface McItemResult {
  predicted: number;
  answer: number;
  /** Natural-log probability of each answer letter as the next token (over the whole vocabulary). */
  logProbs: number[];
}

export interface McResult {
  items: number;
  correct: number;
  accuracy: number;
  /** Mean log-probability of the correct letter. */
  meanLogProb: number;
  /** Tokens evaluated: the prefix once plus every item's tokens. */
  evaluatedTokens: number;
  prefixTokens: number;
  perItem: McItemResult[];
}

/** The token the model emits for " A", " B", …: the first token that `Answer: X` adds over `Answer:`. */
export function answerLetterTokens(model: LlamaModel, count: number): Token[] {
  const base = model.tokenize("Answer:");
  const tokens: Token[] = [];
  for (let i = 0; i < count; i++) {
    const withLetter = model.tokenize(`Answer: ${LETTERS[i]}`);
    let common = 0;
    while (common < base.length && base[common] === withLetter[common]) common++;
    const token = withLetter[common];
    if (token === undefined)
      throw new MalformedInputError("JOB_SUITE_INVALID", `no token for answer letter ${LETTERS[i]}`);
    tokens.push(token);
  }
  if (new Set(tokens).size !== tokens.length) {
    throw new MalformedInputError("JOB_SUITE_INVALID", "the model's tokenizer does not separate the answer letters");
  }
  return tokens;
}

export function prefixTokensOf(model: LlamaModel, suite: McSuite): Token[] {
  const bos = model.tokens.bos;
  const prefix = model.tokenize(formatPrefix(suite.fewShot));
  return bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...prefix] : prefix;
}

export function itemTokensOf(model: LlamaModel, item: McItem): Token[] {
  return model.tokenize(formatQuestion(item), false, "trimLeadingSpace");
}

/** Context size enough for the prefix plus the longest item. */
export function mcContextSize(model: LlamaModel, suite: McSuite): number {
  const longest = Math.max(...suite.items.map((item) => itemTokensOf(model, item).length));
  return prefixTokensOf(model, suite).length + longest + 8;
}

export async function runMultipleChoice(
  sequence: LlamaContextSequence,
  suite: McSuite,
  onProgress?: (done: number, total: number) => void,
): Promise<McResult> {
  const model = sequence.model;
  const maxChoices = Math.max(...suite.items.map((item) => item.choices.length));
  const letters = answerLetterTokens(model, maxChoices);
  const prefix = prefixTokensOf(model, suite);
  await sequence.clearHistory();
  await sequence.controlledEvaluate(prefix);
  let evaluatedTokens = prefix.length;
  let correct = 0;
  let logProbSum = 0;
  const perItem: McItemResult[] = [];
  for (const [index, item] of suite.items.entries()) {
    if (sequence.nextTokenIndex > prefix.length) {
      await sequence.eraseContextTokenRanges([{ start: prefix.length, end: sequence.nextTokenIndex }]);
    }
    const tokens = itemTokensOf(model, item);
    const last = tokens[tokens.length - 1];
    if (last === undefined) throw new MalformedInputError("JOB_SUITE_INVALID", `item ${index + 1} has no tokens`);
    const itemLetters = letters.slice(0, item.choices.length);
    const output = await sequence.controlledEvaluate([
      ...tokens.slice(0, -1),
      [
        last,
        { generateNext: { logits: { filter: { tokens: itemLetters, includeMax: true } }, totalLogitWeight: true } },
      ],
    ]);
    evaluatedTokens += tokens.length;
    const next = output[tokens.length - 1]?.next;
    const logits = next?.logits;
    const total = next?.totalLogitWeight;
    if (logits === undefined || total === undefined) throw new Error("node-llama-cpp returned no logits");
    // totalLogitWeight = Σ exp(logit − maxLogit); so log p(t) = logit(t) − maxLogit − ln(total).
    const maxLogit = Math.max(...logits.values());
    const logNorm = maxLogit + Math.log(total);
    const logProbs = itemLetters.map((token) => (logits.get(token) ?? Number.NEGATIVE_INFINITY) - logNorm);
    let predicted = 0;
    for (let i = 1; i < logProbs.length; i++)
      if ((logProbs[i] ?? -Infinity) > (logProbs[predicted] ?? -Infinity)) predicted = i;
    if (predicted === item.answer) correct++;
    logProbSum += logProbs[item.answer] ?? 0;
    perItem.push({ predicted, answer: item.answer, logProbs });
    onProgress?.(index + 1, suite.items.length);
  }
  return {
    items: suite.items.length,
    correct,
    accuracy: correct / suite.items.length,
    meanLogProb: logProbSum / suite.items.length,
    evaluatedTokens,
    prefixTokens: prefix.length,
    perItem,
  };
}
