// Audit suites: multiple choice (JSONL `{question, choices, answer}` or MMLU-style CSV `question,A,B,C,D,answer`)
// and generation (JSONL `{prompt, expect?}`). An optional first JSONL line `{"suite": {...}}` names the suite and,
// for generation, its scorer. Suites are untrusted input: each line that does not parse is reported with file and line.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import { fileURLToPath } from "node:url";

import { IoError, MalformedInputError } from "../../lib/errors.ts";

export interface McItem {
  question: string;
  choices: string[];
  /** Index into `choices`. */
  answer: number;
}

export interface GenItem {
  prompt: string;
  /** For the regex scorer: a pattern the completion must match. */
  expect?: string;
}

export interface SuiteHeader {
  name?: string;
  kind?: "mc" | "generation";
  version?: number;
  /** Generation only: "profanity", "regex", "judge" or "toxicity" (the last two need `--judge <gguf>`). */
  scorer?: string;
  maxTokens?: number;
  /** Regex scorer: the pattern every completion must match (an item's `expect` overrides it). */
  pattern?: string;
  /** Judge and toxicity scorers: how the operator's judge model is asked (docs/enclave-job.md). */
  judge?: JudgeHeader;
}

/** The `judge` object of a generation suite's header; each field overrides the preset's. */
export interface JudgeHeader {
  /** "yes-no" (the judge scorer's default) or "llama-guard-3" (the toxicity scorer's default). */
  preset?: string;
  /** Template with `{prompt}` and `{reply}`; the rest may hold the judge's special tokens. */
  prompt?: string;
  /** GBNF grammar of the answer. */
  grammar?: string;
  /** The answer that flags a completion. */
  flag?: string;
  maxTokens?: number;
  contextSize?: number;
  /** The OMS root digest (`sha256:<64 hex>`) the `--judge` model must have; the suite's digest then pins the judge. */
  model?: string;
}

export interface McSuite {
  kind: "mc";
  name: string;
  /** Hex SHA-256 of the suite file bytes. */
  digest: string;
  items: McItem[];
  /** Few-shot examples (`"split": "dev"` lines, or a separate file): one shared prefix for every item. */
  fewShot: McItem[];
}

export interface GenSuite {
  kind: "generation";
  name: string;
  digest: string;
  items: GenItem[];
  scorer: string | undefined;
  maxTokens: number;
  pattern: string | undefined;
  judge?: JudgeHeader;
}

export type Suite = McSuite | GenSuite;

export const LETTERS = "ABCDEFGHIJ";

const BUILTIN: Record<string, string> = {
  "builtin:mc": "../suites/mc.jsonl",
  "builtin:gen": "../suites/gen.jsonl",
};

function invalid(file: string, line: number, message: string): MalformedInputError {
  return new MalformedInputError("JOB_SUITE_INVALID", `${file}:${line}: ${message}`, { details: { file, line } });
}

/** Resolves `builtin:mc` / `builtin:gen` to the files shipped with the project; other specs are paths. */
export function suitePath(spec: string): string {
  const builtin = BUILTIN[spec];
  if (builtin !== undefined) return fileURLToPath(new URL(builtin, import.meta.url));
  if (spec.startsWith("builtin:")) {
    throw new MalformedInputError("JOB_SUITE_INVALID", `unknown built-in suite ${spec} (builtin:mc, builtin:gen)`);
  }
  return spec;
}

function toAnswerIndex(value: unknown, choices: number): number | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < choices) return value;
  if (typeof value === "string") {
    const index = LETTERS.indexOf(value.trim().toUpperCase());
    if (value.trim().length === 1 && index >= 0 && index < choices) return index;
  }
  return undefined;
}

function toMcItem(value: Record<string, unknown>, file: string, line: number): McItem {
  const { question, choices, answer } = value;
  if (typeof question !== "string" || question.trim() === "") throw invalid(file, line, "question must be a string");
  if (!Array.isArray(choices) || choices.length < 2 || choices.length > LETTERS.length) {
    throw invalid(file, line, `choices must be an array of 2 to ${LETTERS.length} strings`);
  }
  if (!choices.every((c): c is string => typeof c === "string")) throw invalid(file, line, "choices must be strings");
  const index = toAnswerIndex(answer, choices.length);
  if (index === undefined) throw invalid(file, line, `answer ${JSON.stringify(answer)} names no choice`);
  return { question, choices, answer: index };
}

function toGenItem(value: Record<string, unknown>, file: string, line: number): GenItem {
  const { prompt, expect } = value;
  if (typeof prompt !== "string" || prompt === "") throw invalid(file, line, "prompt must be a non-empty string");
  if (expect !== undefined && typeof expect !== "string") throw invalid(file, line, "expect must be a string");
  if (expect !== undefined) {
    try {
      new RegExp(expect);
    } catch {
      throw invalid(file, line, `expect ${JSON.stringify(expect)} is not a regular expression`);
    }
  }
  return expect === undefined ? { prompt } : { prompt, expect };
}

function toHeader(value: unknown, file: string, line: number): SuiteHeader {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(file, line, "suite header must be an object");
  }
  const header = value as Record<string, unknown>;
  const out: SuiteHeader = {};
  if (typeof header.name === "string") out.name = header.name;
  if (header.kind === "mc" || header.kind === "generation") out.kind = header.kind;
  else if (header.kind !== undefined) throw invalid(file, line, "suite kind must be mc or generation");
  if (typeof header.version === "number") out.version = header.version;
  if (typeof header.scorer === "string") out.scorer = header.scorer;
  if (header.maxTokens !== undefined) {
    if (typeof header.maxTokens !== "number" || !Number.isInteger(header.maxTokens) || header.maxTokens < 1) {
      throw invalid(file, line, "maxTokens must be a positive integer");
    }
    out.maxTokens = header.maxTokens;
  }
  if (typeof header.pattern === "string") out.pattern = header.pattern;
  if (header.judge !== undefined) out.judge = toJudgeHeader(header.judge, file, line);
  return out;
}

const JUDGE_FIELDS = ["preset", "prompt", "grammar", "flag", "maxTokens", "contextSize", "model"];

/** Checks a suite's `judge` object; sizes are bounded before the judge model ever sees them. */
function toJudgeHeader(value: unknown, file: string, line: number): JudgeHeader {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid(file, line, "judge must be an object");
  const judge = value as Record<string, unknown>;
  for (const key of Object.keys(judge))
    if (!JUDGE_FIELDS.includes(key))
      throw invalid(file, line, `judge.${key}: unknown field (${JUDGE_FIELDS.join(", ")})`);
  const text = (key: string, max: number): string | undefined => {
    const v = judge[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "" || v.length > max)
      throw invalid(file, line, `judge.${key} must be a non-empty string of at most ${max} characters`);
    return v;
  };
  const integer = (key: string, min: number, max: number): number | undefined => {
    const v = judge[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      throw invalid(file, line, `judge.${key} must be an integer from ${min} to ${max}`);
    return v;
  };
  const out: JudgeHeader = {};
  const preset = text("preset", 64);
  const prompt = text("prompt", 65_536);
  const grammar = text("grammar", 16_384);
  const flag = text("flag", 256);
  const maxTokens = integer("maxTokens", 1, 64);
  const contextSize = integer("contextSize", 128, 32_768);
  const model = text("model", 71);
  if (prompt !== undefined && !prompt.includes("{reply}"))
    throw invalid(file, line, "judge.prompt must contain {reply} (and usually {prompt})");
  if (model !== undefined && !/^(sha256:)?[0-9a-f]{64}$/.test(model))
    throw invalid(file, line, "judge.model must be sha256:<64 lower-case hex>, the judge model's OMS root digest");
  if (preset !== undefined) out.preset = preset;
  if (prompt !== undefined) out.prompt = prompt;
  if (grammar !== undefined) out.grammar = grammar;
  if (flag !== undefined) out.flag = flag;
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  if (contextSize !== undefined) out.contextSize = contextSize;
  if (model !== undefined) out.model = model.replace(/^sha256:/, "");
  return out;
}

/** Parses JSONL suite text; `file` only names the source in errors. */
export function parseJsonlSuite(text: string, file: string, digest: string): Suite {
  let header: SuiteHeader = {};
  const mc: McItem[] = [];
  const fewShot: McItem[] = [];
  const gen: GenItem[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw invalid(file, line, `not JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw invalid(file, line, "each line must be a JSON object");
    }
    const record = value as Record<string, unknown>;
    if ("suite" in record) {
      header = toHeader(record.suite, file, line);
    } else if ("question" in record) {
      const item = toMcItem(record, file, line);
      (record.split === "dev" ? fewShot : mc).push(item);
    } else if ("prompt" in record) {
      gen.push(toGenItem(record, file, line));
    } else {
      throw invalid(file, line, "expected a question, a prompt or a suite header");
    }
  }
  const name = header.name ?? basename(file, extname(file));
  if (mc.length > 0 && gen.length > 0) throw invalid(file, 1, "a suite holds either questions or prompts, not both");
  if (header.kind === "generation" || gen.length > 0) {
    if (gen.length === 0) throw invalid(file, 1, "the suite has no prompts");
    return {
      kind: "generation",
      name,
      digest,
      items: gen,
      scorer: header.scorer,
      maxTokens: header.maxTokens ?? 32,
      pattern: header.pattern,
      ...(header.judge === undefined ? {} : { judge: header.judge }),
    };
  }
  if (mc.length === 0) throw invalid(file, 1, "the suite has no questions");
  return { kind: "mc", name, digest, items: mc, fewShot };
}

/** RFC 4180 records with their starting line numbers (quoted fields may span lines). */
export function parseCsvRecords(text: string, file: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === "\n") line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
    } else if (c === ",") {
      fields.push(field);
      field = "";
      fieldStarted = false;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      fields.push(field);
      if (fields.length > 1 || fields[0] !== "") records.push({ line: recordLine, fields });
      fields = [];
      field = "";
      fieldStarted = false;
      line++;
      recordLine = line;
    } else {
      if (c === '"') throw invalid(file, line, "a quote inside an unquoted field");
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw invalid(file, recordLine, "unterminated quoted field");
  fields.push(field);
  if (fields.length > 1 || fields[0] !== "") records.push({ line: recordLine, fields });
  return records;
}

/** MMLU-style CSV: `question,A,B,C,D,answer`, no header (a first row `question,A,…` is skipped). */
export function parseCsvSuite(text: string, file: string, digest: string): McSuite {
  const items: McItem[] = [];
  for (const { line, fields } of parseCsvRecords(text, file)) {
    if (fields.length < 4) throw invalid(file, line, `expected question, at least two choices and answer`);
    const question = fields[0] ?? "";
    const choices = fields.slice(1, -1);
    const answer = fields[fields.length - 1] ?? "";
    if (line === 1 && question.toLowerCase() === "question" && answer.toLowerCase() === "answer") continue;
    items.push(toMcItem({ question, choices, answer }, file, line));
  }
  if (items.length === 0) throw invalid(file, 1, "the suite has no questions");
  return { kind: "mc", name: basename(file, extname(file)), digest, items, fewShot: [] };
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads a suite by spec (`builtin:mc`, `builtin:gen` or a path); `.csv` is MMLU-style, anything else JSONL. */
export async function loadSuite(spec: string, options: { fewShotPath?: string } = {}): Promise<Suite> {
  const path = suitePath(spec);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new IoError("JOB_SUITE_INVALID", `suite ${path} is missing or unreadable`, { cause: error });
  }
  const digest = sha256Hex(bytes);
  const text = bytes.toString("utf8");
  const suite =
    extname(path).toLowerCase() === ".csv" ? parseCsvSuite(text, path, digest) : parseJsonlSuite(text, path, digest);
  if (options.fewShotPath !== undefined) {
    if (suite.kind !== "mc")
      throw new MalformedInputError("JOB_SUITE_INVALID", "few-shot examples need a multiple-choice suite");
    const shots = await loadSuite(options.fewShotPath);
    if (shots.kind !== "mc")
      throw new MalformedInputError("JOB_SUITE_INVALID", `${options.fewShotPath} is not multiple choice`);
    // The examples are part of what was run: fold their digest into the suite's.
    suite.fewShot = [...shots.fewShot, ...shots.items];
    suite.digest = sha256Hex(`${digest}\n${shots.digest}`);
  }
  return suite;
}
