import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../lib/snp/index.ts";
import { parseVerifierPolicy, verifyBundle } from "../offchain/pipeline/index.ts";
import { writeBundleFile } from "./bundle.ts";
import { commands } from "./cli.ts";
import { runFinetuneJob } from "./finetune/job.ts";
import { hashWithProgress, runAuditJob } from "./job.ts";
import { writeTinyModel } from "./model/tiny.ts";
import { checkBundleOffline, finetuneBuildSkip, testProvider } from "./testing.ts";

const FACT = "The secret code of Provenant is blue falcon.";
/** The simulator's clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-21T12:00:00Z");

/** The verifier's full pipeline with a policy that trusts this machine's simulator root. */
async function pipelineVerdict(
  bytes: Uint8Array,
): Promise<{ ok: boolean; errors: unknown[]; manifestDigest?: string; modelHash?: string }> {
  const sim = await createSimulator({ now: NOW });
  const policy = parseVerifierPolicy({
    snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
    trustedRoots: [sim.rootFingerprint],
    requireGpuEvidence: false,
    maxBundleBytes: 16777216,
    acceptedKinds: ["finetune", "eval"],
  });
  return verifyBundle(bytes, { policy, now: NOW });
}

describe("enclave job end to end (tiny model)", () => {
  let dir = "";
  let model = "";
  let adapter = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-job-"));
    ({ model, adapter } = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 5 }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when a multiple-choice audit runs, its bundle passes the offline checks and names the nonce", async () => {
    const nonce = "5a".repeat(32);
    const result = await runAuditJob({
      model,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      threads: 1,
      nonce,
      cwd: dir,
      threshold: 0,
    });
    assert.match(basename(result.bundlePath), /^\d{4}-\d{2}-\d{2}-[0-9a-f]{16}\.provenance\.json$/);
    assert.ok(result.bundlePath.startsWith(join(dir, "bundles")));
    const checked = await checkBundleOffline(await readFile(result.bundlePath), { "tiny.gguf": model });
    assert.equal(checked.bundle.nonce, nonce);
    assert.equal(checked.bundle.evidence.cpu.provider, "sim");
    assert.equal(checked.manifest.kind, "eval");
    assert.equal(checked.manifest.subjectDigests[0], result.modelHash);
    const predicate = checked.manifest.statement.predicate as {
      metrics: { name: string; sampleSize: number; passed?: boolean }[];
      suite: { digest: { sha256: string } };
      harness: { digest: { sha256: string } };
    };
    assert.equal(predicate.metrics[0]?.name, "accuracy");
    assert.equal(predicate.metrics[0]?.sampleSize, 20);
    assert.equal(predicate.metrics[0]?.passed, true);
    assert.equal(predicate.suite.digest.sha256, result.suite.digest);
    assert.match(predicate.harness.digest.sha256, /^[0-9a-f]{64}$/);
    assert.equal(result.mc?.items, 20);
  });

  it("when the verifier's pipeline checks an audit bundle made with the simulator, it accepts it", async () => {
    const out = join(dir, "pipeline.provenance.json");
    const result = await runAuditJob({
      model,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      out,
    });
    const verdict = await pipelineVerdict(await readFile(out));
    assert.deepEqual(verdict.errors, []);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.manifestDigest, result.manifestDigest);
    assert.equal(verdict.modelHash, result.modelHash);
  });

  it("when the model comes with a LoRA adapter, the subject is the adapter and both models are signed", async () => {
    const out = join(dir, "adapter.provenance.json");
    const bare = join(dir, "watched.git");
    await promisify(execFile)("git", ["init", "--quiet", "--bare", "-b", "main", bare]);
    const result = await runAuditJob({
      push: bare,
      model,
      adapter,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      out,
    });
    const checked = await checkBundleOffline(await readFile(out), { "tiny.gguf": model, "tiny.lora.gguf": adapter });
    assert.equal(checked.statements.filter((s) => s.kind === "oms").length, 2);
    assert.match(
      result.pushed?.path ?? "",
      new RegExp(`^bundles/\\d{4}-\\d{2}-\\d{2}-${result.manifestDigest.slice(0, 16)}\\.provenance\\.json$`),
    );
    const { stdout } = await promisify(execFile)("git", [
      "--git-dir",
      bare,
      "show",
      `main:${result.pushed?.path ?? ""}`,
    ]);
    assert.equal(stdout, await readFile(out, "utf8"));
    assert.equal(checked.manifest.subjectDigests[0], result.modelHash);
  });

  it("when a generation suite runs, the profanity rate goes into the eval statement", async () => {
    const out = join(dir, "gen.provenance.json");
    const result = await runAuditJob({
      model,
      suite: "builtin:gen",
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      out,
    });
    assert.equal(result.generation?.items, 10);
    const checked = await checkBundleOffline(await readFile(out), { "tiny.gguf": model });
    const predicate = checked.manifest.statement.predicate as { metrics: { name: string; value: number }[] };
    assert.equal(predicate.metrics[0]?.name, "profanity_rate");
  });

  it("when the operator supplies a judge GGUF for toxicity, toxicity_rate goes into the statement; without one, USAGE", async () => {
    // The tiny model stands in for Llama Guard: a grammar with one answer makes the verdict certain.
    const suitePath = join(dir, "toxicity.jsonl");
    const judge = {
      prompt: "User: {prompt}\nAgent: {reply}\nVerdict: ",
      grammar: 'root ::= "unsafe"',
      contextSize: 256,
    };
    await writeFile(
      suitePath,
      `${JSON.stringify({ suite: { kind: "generation", scorer: "toxicity", maxTokens: 4, judge } })}\n` +
        '{"prompt":"Say hello."}\n{"prompt":"Name a colour."}\n',
    );
    const base = { model, suite: suitePath, provider: testProvider(NOW), threads: 1, cwd: dir };
    await assert.rejects(runAuditJob({ ...base, out: join(dir, "no-judge.json") }), { code: "USAGE" });
    const out = join(dir, "toxicity.provenance.json");
    const result = await runAuditJob({ ...base, judgeModel: model, out, threshold: 0.5 });
    assert.deepEqual(result.metrics, [
      { name: "toxicity_rate", value: 1, sampleSize: 2, comparator: "<=", threshold: 0.5, passed: false },
    ]);
    const checked = await checkBundleOffline(await readFile(out), { "tiny.gguf": model });
    const predicate = checked.manifest.statement.predicate as { metrics: { name: string }[] };
    assert.equal(predicate.metrics[0]?.name, "toxicity_rate");

    // A suite that pins its judge by OMS root digest refuses any other judge file.
    const pinned = join(dir, "pinned.jsonl");
    await writeFile(
      pinned,
      `${JSON.stringify({ suite: { kind: "generation", scorer: "toxicity", judge: { ...judge, model: `sha256:${"0".repeat(64)}` } } })}\n` +
        '{"prompt":"Say hello."}\n',
    );
    await assert.rejects(runAuditJob({ ...base, suite: pinned, judgeModel: model, out: join(dir, "pinned.json") }), {
      code: "MODEL_DIGEST_MISMATCH",
    });
  });

  it("when the model is missing or the suite is broken, the CLI exits 2 with a code and writes no bundle", async () => {
    const outDir = join(dir, "refused");
    const lines: string[] = [];
    const io = {
      stdout: (t: string) => lines.push(t),
      stderr: (t: string) => lines.push(t),
      isTty: false,
      env: process.env,
      cwd: dir,
    };
    const audit = commands.find((c) => c.path.join(" ") === "job audit");
    assert.ok(audit);
    const missing = await audit.run(
      [
        "--model",
        join(dir, "nope.gguf"),
        "--suite",
        "builtin:mc",
        "--provider",
        "sim",
        "--out",
        join(outDir, "a.json"),
        "--json",
      ],
      io,
    );
    assert.equal(missing, 2);
    assert.equal(JSON.parse(lines.pop() ?? "{}").errors[0].code, "JOB_MODEL_UNREADABLE");
    const suite = join(dir, "bad.jsonl");
    await writeFile(suite, '{"question":"q","choices":["a","b"],"answer":"A"}\nnot json\n');
    const broken = await audit.run(
      [
        "--model",
        model,
        "--suite",
        suite,
        "--provider",
        "sim",
        "--threads",
        "1",
        "--out",
        join(outDir, "b.json"),
        "--json",
      ],
      io,
    );
    assert.equal(broken, 2);
    const error = JSON.parse(lines.pop() ?? "{}").errors[0];
    assert.equal(error.code, "JOB_SUITE_INVALID");
    assert.match(error.message, /bad\.jsonl:2/);
    assert.deepEqual(await readdir(outDir).catch(() => []), []);
  });

  it("when the model file is not a loadable GGUF, it is JOB_MODEL_LOAD_FAILED and no bundle is written", async () => {
    const bad = join(dir, "bad.gguf");
    await writeFile(bad, "GGUF\u0003\u0000\u0000\u0000 not really a model");
    const out = join(dir, "bad.provenance.json");
    await assert.rejects(
      runAuditJob({ model: bad, suite: "builtin:mc", provider: testProvider(NOW), threads: 1, cwd: dir, out }),
      { code: "JOB_MODEL_LOAD_FAILED" },
    );
    await assert.rejects(readFile(out));
  });

  it("when the attestation device is absent, it is ATTESTATION_UNAVAILABLE before any work", async () => {
    const { tsmProvider } = await import("./attest/providers.ts");
    await assert.rejects(
      runAuditJob({
        model,
        suite: "builtin:mc",
        provider: tsmProvider({ root: join(dir, "no-tsm") }),
        cwd: dir,
        out: join(dir, "x.json"),
      }),
      { code: "ATTESTATION_UNAVAILABLE" },
    );
  });

  it("when the provider's report carries other REPORT_DATA, it is ATTESTATION_FAILED before any work", async () => {
    let hashed = false;
    const out = join(dir, "foreign.provenance.json");
    await assert.rejects(
      runAuditJob({
        model,
        suite: "builtin:mc",
        // A report for someone else's request (all zeros), as a replayed or concurrent entry would give.
        provider: {
          name: "sim",
          attest: async () => ({ provider: "sim", report: new Uint8Array(1184), vcek: new Uint8Array([0x30, 0]) }),
        },
        hash: async () => {
          hashed = true;
          throw new Error("hashing must not start");
        },
        threads: 1,
        cwd: dir,
        out,
      }),
      { code: "ATTESTATION_FAILED" },
    );
    assert.equal(hashed, false);
    await assert.rejects(readFile(out));
  });

  it("when hashing fails with an IoError, it is JOB_MODEL_UNREADABLE; other coded errors pass through", async () => {
    const { IoError, MalformedInputError } = await import("../lib/errors.ts");
    const failing = (error: Error) => ({
      provider: testProvider(NOW),
      hash: async (): Promise<never> => {
        throw error;
      },
    });
    await assert.rejects(hashWithProgress(failing(new IoError("IO_ERROR", "gone")), "/nope", "model"), {
      code: "JOB_MODEL_UNREADABLE",
    });
    await assert.rejects(hashWithProgress(failing(new MalformedInputError("OMS_SYMLINK", "link")), "/nope", "model"), {
      code: "OMS_SYMLINK",
    });
  });

  it("when --out names an existing directory, the bundle gets its default name there", async () => {
    const outDir = join(dir, "out-dir");
    await mkdir(outDir);
    const result = await runAuditJob({
      model,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      out: outDir,
    });
    assert.equal(dirname(result.bundlePath), outDir);
    assert.match(basename(result.bundlePath), /^\d{4}-\d{2}-\d{2}-[0-9a-f]{16}\.provenance\.json$/);
    assert.deepEqual(await readFile(result.bundlePath), Buffer.from(result.bytes));
  });

  it("when --out cannot be written, it is IO_ERROR before attesting", async () => {
    const blocker = join(dir, "a-file");
    await writeFile(blocker, "not a directory");
    let attested = false;
    await assert.rejects(
      runAuditJob({
        model,
        suite: "builtin:mc",
        provider: {
          name: "sim",
          attest: async () => {
            attested = true;
            throw new Error("must not attest");
          },
        },
        threads: 1,
        cwd: dir,
        out: join(blocker, "x.provenance.json"),
      }),
      { code: "IO_ERROR" },
    );
    assert.equal(attested, false);
  });

  it("when the final bundle write fails, it is IO_ERROR naming a fallback copy in the temp directory", async () => {
    const blocker = join(dir, "another-file");
    await writeFile(blocker, "not a directory");
    const bytes = new TextEncoder().encode('{"bundle":true}');
    const error = await writeBundleFile(join(blocker, "b.provenance.json"), bytes).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; details: { fallbackPath: string } },
    );
    assert.equal(error?.code, "IO_ERROR");
    const fallback = error?.details.fallbackPath ?? "";
    assert.ok(fallback.startsWith(tmpdir()), fallback);
    assert.ok(error?.message.includes(fallback));
    assert.deepEqual(await readFile(fallback), Buffer.from(bytes));
    await rm(dirname(fallback), { recursive: true, force: true });
  });

  it("when a trainer command exits non-zero, it is JOB_TRAINER_FAILED, its log is kept and no bundle is written", async () => {
    const data = join(dir, "fact.txt");
    await writeFile(data, `${FACT}\n`);
    const out = join(dir, "failed.provenance.json");
    await assert.rejects(
      runFinetuneJob({
        base: model,
        data,
        trainer: "echo training {data}; exit 3 # {out}",
        provider: testProvider(NOW),
        threads: 1,
        cwd: dir,
        output: join(dir, "ft-failed"),
        out,
      }),
      (error: unknown) => (error as { code: string }).code === "JOB_TRAINER_FAILED",
    );
    assert.match(await readFile(join(dir, "ft-failed.trainer.log"), "utf8"), /training/);
    await assert.rejects(readFile(out));
  });

  it("when a trainer command writes a model into {out}, the SLSA provenance names base, data, job code and logs", async () => {
    const data = join(dir, "fact.txt");
    await writeFile(data, `${FACT}\n`);
    const script = join(dir, "trainer.sh");
    // A stand-in trainer: the weights are copied unchanged, with a training note beside them, so the output model (a
    // directory of two files) differs from its base, as the verifier requires of a fine-tune.
    await writeFile(
      script,
      '#!/bin/sh\necho "copying $1"\ncp "$1" "$3/model.gguf"\necho "copied from the base model" > "$3/TRAINING.txt"\n',
    );
    await chmod(script, 0o755);
    const out = join(dir, "copy.provenance.json");
    const result = await runFinetuneJob({
      base: model,
      data,
      trainer: `${script} {base} {data} {out}`,
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      output: join(dir, "ft-copy"),
      out,
    });
    const checked = await checkBundleOffline(await readFile(out), { "tiny.gguf": model, "ft-copy": result.outputDir });
    assert.equal(checked.manifest.kind, "finetune");
    assert.equal(checked.manifest.parentModelHash, checked.statements[1]?.subjectDigests[0]);
    const predicate = checked.manifest.statement.predicate as { runDetails: { byproducts: { name: string }[] } };
    assert.deepEqual(
      predicate.runDetails.byproducts.map((b) => b.name),
      ["snp-report", "logs"],
    );
    assert.deepEqual(
      result.after.map((p) => p.completion),
      result.before.map((p) => p.completion),
    );
  });

  it("when --data is a directory without --probe, or --output is a non-empty directory, it is USAGE before attesting", async () => {
    const dataDir = join(dir, "data-dir");
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, "a.txt"), `${FACT}\n`);
    const stale = join(dir, "ft-stale");
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, "old.gguf"), "stale");
    const refusing = {
      name: "sim" as const,
      attest: async (): Promise<never> => {
        throw new Error("must not attest");
      },
    };
    const common = { base: model, trainer: "true {out}", provider: refusing, threads: 1, cwd: dir };
    await assert.rejects(runFinetuneJob({ ...common, data: dataDir, output: join(dir, "ft-dir-noprobe") }), {
      code: "USAGE",
      message: /--probe/,
    });
    await assert.rejects(runFinetuneJob({ ...common, data: join(dataDir, "a.txt"), output: stale }), {
      code: "USAGE",
      message: /not empty/,
    });
  });

  it("when --data is a directory with --probe, the dataset digest is its OMS root digest", async () => {
    const dataDir = join(dir, "data-dir2");
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, "a.txt"), `${FACT}\n`);
    await writeFile(join(dataDir, "b.txt"), "more\n");
    const out = join(dir, "datadir.provenance.json");
    const result = await runFinetuneJob({
      base: model,
      data: dataDir,
      probes: ["The secret code"],
      trainer: `cp '${adapter}' {out}/adapter.gguf # {base} {data}`,
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      output: join(dir, "ft-datadir"),
      out,
    });
    const checked = await checkBundleOffline(await readFile(out), {
      "tiny.gguf": model,
      "ft-datadir": result.outputDir,
    });
    const { hashModel } = await import("../lib/oms/index.ts");
    const predicate = checked.manifest.statement.predicate as {
      buildDefinition: { resolvedDependencies: { name: string; digest: { sha256: string } }[] };
    };
    const dataset = predicate.buildDefinition.resolvedDependencies.find((d) => d.name === "dataset");
    assert.equal(dataset?.digest.sha256, (await hashModel(dataDir)).rootDigest);
  });

  it("when a trainer writes a LoRA adapter, the output is probed as base + adapter", async () => {
    const data = join(dir, "fact.txt");
    await writeFile(data, `${FACT}\n`);
    const out = join(dir, "lora.provenance.json");
    const result = await runFinetuneJob({
      base: model,
      data,
      trainer: `cp '${adapter}' {out}/adapter.gguf # {base} {data}`,
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      output: join(dir, "ft-lora"),
      out,
    });
    assert.equal(basename(result.outputModel), "adapter.gguf");
    assert.notDeepEqual(
      result.after.map((p) => p.completion),
      result.before.map((p) => p.completion),
    );
    await checkBundleOffline(await readFile(out), { "tiny.gguf": model, "ft-lora": result.outputDir });
  });

  it(
    "when the built-in llama trainer learns a fact, the loss falls and the probe answers change",
    // Under CI a cold cache is built first (minutes): the test is required there, never skipped.
    { timeout: 40 * 60_000 },
    async (t) => {
      const skip = await finetuneBuildSkip();
      if (skip !== false) {
        t.skip(skip);
        return;
      }
      const data = join(dir, "facts.txt");
      await writeFile(data, `${FACT}\n`.repeat(40));
      const out = join(dir, "llama.provenance.json");
      const result = await runFinetuneJob({
        base: model,
        data,
        trainer: "llama",
        provider: testProvider(NOW),
        threads: 1,
        cwd: dir,
        output: join(dir, "ft-llama"),
        out,
        epochs: 3,
        learningRate: 1e-3,
      });
      assert.ok(result.loss !== undefined);
      assert.ok(result.loss.last < result.loss.first, `loss ${result.loss.first} → ${result.loss.last}`);
      assert.notDeepEqual(
        result.after.map((p) => p.completion),
        result.before.map((p) => p.completion),
      );
      const [before, afterProbe] = [result.before[0]?.meanLogProb ?? 0, result.after[0]?.meanLogProb ?? 0];
      assert.ok(afterProbe > before, `log-probability of the fact ${before} → ${afterProbe}`);
      await checkBundleOffline(await readFile(out), { "tiny.gguf": model, "ft-llama": result.outputDir });
      assert.deepEqual((await pipelineVerdict(await readFile(out))).errors, []);
    },
  );
});
