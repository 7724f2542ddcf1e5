import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";

import { loadSuite, parseCsvSuite, parseJsonlSuite } from "./suites.ts";

describe("suites", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-suites-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when the built-in suites load, they have 20 questions with 3 few-shot examples and 10 prompts", async () => {
    const mc = await loadSuite("builtin:mc");
    assert.equal(mc.kind, "mc");
    assert.equal(mc.items.length, 20);
    if (mc.kind === "mc") assert.equal(mc.fewShot.length, 3);
    const gen = await loadSuite("builtin:gen");
    assert.equal(gen.kind, "generation");
    assert.equal(gen.items.length, 10);
    assert.equal(
      gen.kind === "generation" && gen.scorer,
      "profanity",
      "the word list measures profanity, not toxicity",
    );
    assert.match(mc.digest, /^[0-9a-f]{64}$/);
  });

  it("when the project lives under a path with spaces, the built-in suites still load (no JOB_SUITE_INVALID)", async () => {
    // A minimal copy of the project (suites.ts, its one import, the built-in suites) under "with space %20/".
    const root = join(dir, "with space %20");
    const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
    await mkdir(join(root, "enclave-job", "audit"), { recursive: true });
    await mkdir(join(root, "lib"), { recursive: true });
    await cp(here("./suites.ts"), join(root, "enclave-job", "audit", "suites.ts"));
    await cp(here("../suites"), join(root, "enclave-job", "suites"), { recursive: true });
    await cp(here("../../lib/errors.ts"), join(root, "lib", "errors.ts"));
    const copy = (await import(pathToFileURL(join(root, "enclave-job", "audit", "suites.ts")).href)) as {
      loadSuite: typeof loadSuite;
      suitePath: (spec: string) => string;
    };
    assert.equal(copy.suitePath("builtin:mc"), join(root, "enclave-job", "suites", "mc.jsonl"));
    const mc = await copy.loadSuite("builtin:mc");
    assert.equal(mc.digest, (await loadSuite("builtin:mc")).digest);
  });

  it("when an MMLU-style CSV has quoted fields and a letter answer, it parses", () => {
    const suite = parseCsvSuite(
      '"What is 1,000 + 1?",1001,1000,"say ""hi""",2,A\nSecond?,x,y,z,w,d\n',
      "s.csv",
      "0".repeat(64),
    );
    assert.equal(suite.items.length, 2);
    assert.equal(suite.items[0]?.question, "What is 1,000 + 1?");
    assert.equal(suite.items[0]?.choices[2], 'say "hi"');
    assert.equal(suite.items[1]?.answer, 3);
  });

  it("when a JSONL line does not parse, it is JOB_SUITE_INVALID naming file and line", () => {
    const text = '{"question":"q","choices":["a","b"],"answer":"A"}\n{oops\n';
    assert.throws(
      () => parseJsonlSuite(text, "bad.jsonl", "0".repeat(64)),
      (error: unknown) => {
        const e = error as { code: string; details: { file: string; line: number } };
        return e.code === "JOB_SUITE_INVALID" && e.details.file === "bad.jsonl" && e.details.line === 2;
      },
    );
    assert.throws(() => parseJsonlSuite('{"question":"q","choices":["a","b"],"answer":"C"}', "f", ""), {
      code: "JOB_SUITE_INVALID",
    });
  });

  it("when a CSV row is short or its answer names no choice, it is JOB_SUITE_INVALID", () => {
    assert.throws(() => parseCsvSuite("q,a,b\n", "f.csv", ""), { code: "JOB_SUITE_INVALID" });
    assert.throws(() => parseCsvSuite("q,a,b,c,d,E\n", "f.csv", ""), { code: "JOB_SUITE_INVALID" });
  });

  it("when a suite file is missing or a built-in unknown, it is JOB_SUITE_INVALID", async () => {
    await assert.rejects(loadSuite(join(dir, "missing.jsonl")), { code: "JOB_SUITE_INVALID" });
    await assert.rejects(loadSuite("builtin:nope"), { code: "JOB_SUITE_INVALID" });
  });

  it("when few-shot examples come from a file, the suite digest covers them", async () => {
    const shots = join(dir, "shots.csv");
    await writeFile(shots, "Q?,a,b,c,d,B\n");
    const plain = await loadSuite("builtin:mc");
    const withShots = await loadSuite("builtin:mc", { fewShotPath: shots });
    assert.notEqual(plain.digest, withShots.digest);
    if (withShots.kind === "mc") assert.equal(withShots.fewShot.length, 1);
  });

  it("when a generation suite names its judge, the header is read and bounded; a bad judge is JOB_SUITE_INVALID", () => {
    const digest = "ab".repeat(32);
    const header = (judge: unknown) =>
      `${JSON.stringify({ suite: { kind: "generation", scorer: "toxicity", judge } })}\n{"prompt":"hi"}\n`;
    const suite = parseJsonlSuite(
      header({ preset: "llama-guard-3", flag: "unsafe", maxTokens: 2, model: `sha256:${digest}` }),
      "judge.jsonl",
      "0".repeat(64),
    );
    assert.equal(suite.kind, "generation");
    assert.deepEqual(suite.kind === "generation" && suite.judge, {
      preset: "llama-guard-3",
      flag: "unsafe",
      maxTokens: 2,
      model: digest,
    });
    assert.equal(suite.kind === "generation" && suite.scorer, "toxicity");
    for (const bad of [
      "llama-guard-3",
      { prompt: "no reply placeholder" },
      { grammar: "x".repeat(16_385) },
      { maxTokens: 0 },
      { contextSize: 1 << 20 },
      { model: "sha256:1234" },
      { temperature: 1 },
    ]) {
      assert.throws(() => parseJsonlSuite(header(bad), "judge.jsonl", "0".repeat(64)), { code: "JOB_SUITE_INVALID" });
    }
  });
});
