// `provenant audit spot-check` (replay sampled stretches of a traced fine-tune) and `provenant trace push` (publish a
// trace directory to a trace store). The loader picks the longest command path, so `audit spot-check` lives here
// beside offchain/client's `provenant audit`.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { resolve } from "node:path";

import {
  dateOption,
  defineCommand,
  integerOption,
  readInputFile,
  requiredOption,
  type Command,
} from "../../lib/cli/index.ts";
import { UsageError } from "../../lib/errors.ts";
import type { SpotCheckResult } from "./spot-check.ts";

const SPOT_USAGE =
  "provenant audit spot-check <bundle.json> --trace-dir <dir|url> [--samples <m>] [--seed <hex>] " +
  "[--rpc <url> --registry <address>] [--policy <json>] [--data <file>] [--trainer <binary>] [--now <iso>] " +
  "[--max-bytes <n>] [--timeout <seconds>] [--json]";

const spotCheckCommand = defineCommand({
  path: ["audit", "spot-check"],
  summary: "replay sampled stretches of a traced fine-tune and compare them bit for bit with its committed trace",
  usage: SPOT_USAGE,
  options: {
    "trace-dir": { type: "string" },
    samples: { type: "string", default: "4" },
    seed: { type: "string" },
    rpc: { type: "string" },
    registry: { type: "string" },
    policy: { type: "string" },
    data: { type: "string" },
    trainer: { type: "string" },
    now: { type: "string" },
    "max-bytes": { type: "string", default: String(8 * 1024 ** 3) },
    timeout: { type: "string", default: "600" },
  },
  positionals: ["bundle.json"],
  async run({ values, positionals, io }) {
    const traceDir = requiredOption(values["trace-dir"], "trace-dir", SPOT_USAGE);
    const samples = integerOption(values.samples, "samples", { min: 1, max: 100_000 })!;
    const maxBytes = integerOption(values["max-bytes"], "max-bytes", { min: 1 })!;
    const timeoutSeconds = integerOption(values.timeout, "timeout", { min: 1, max: 86_400 })!;
    if ((values.rpc === undefined) !== (values.registry === undefined))
      throw new UsageError(`--rpc and --registry go together\nusage: ${SPOT_USAGE}`);
    if (values.rpc !== undefined && values.seed !== undefined)
      throw new UsageError("--seed is for checks without a chain: with --rpc the block hash is the randomness");
    if (values.registry !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.registry))
      throw new UsageError(`--registry must be a 0x address\nusage: ${SPOT_USAGE}`);
    if (values.seed !== undefined && !/^([0-9a-fA-F]{2}){1,64}$/.test(values.seed))
      throw new UsageError("--seed must be 1 to 64 bytes of hex");

    const { defaultVerifierPolicy, parseVerifierPolicyBytes } = await import("../../offchain/pipeline/index.ts");
    const policy =
      values.policy === undefined
        ? defaultVerifierPolicy()
        : parseVerifierPolicyBytes(await readInputFile(io, values.policy, "policy"));
    const now = dateOption(values.now, "now");
    const bytes = await readInputFile(io, positionals[0]!, "bundle");
    const { openTracedBundle, spotCheck } = await import("./spot-check.ts");
    const opened = await openTracedBundle(bytes, policy, now);
    if (!opened.ok) {
      return {
        ok: false,
        fields: { manifestDigest: opened.manifestDigest ?? null, stretches: [] },
        errors: opened.errors,
        text: "spot-check: the bundle does not verify or has no training trace\n",
      };
    }
    const { openTraceSource } = await import("./store.ts");
    const entropy =
      values.rpc !== undefined
        ? await (await import("./chain.ts")).recordingBlock(values.rpc, values.registry!, opened.bundle.manifestDigest)
        : { source: "caller" as const, seed: (values.seed ?? randomBytes(32).toString("hex")).toLowerCase() };
    let binary = values.trainer === undefined ? undefined : resolve(io.cwd, values.trainer);
    if (binary === undefined) {
      const { ensureTraceTrainerBuild } = await import("../finetune/llama-build.ts");
      binary = await ensureTraceTrainerBuild({ log: (line) => io.stderr(`${line}\n`) });
    }
    const source = openTraceSource(/^https?:\/\//i.test(traceDir) ? traceDir : resolve(io.cwd, traceDir), {
      timeoutMs: timeoutSeconds * 1000,
    });
    const result = await spotCheck({
      bundle: opened.bundle,
      source,
      samples,
      entropy,
      binary,
      ...(values.data === undefined ? {} : { dataPath: resolve(io.cwd, values.data) }),
      maxFileBytes: maxBytes,
      workDir: tmpdir(),
      replayTimeoutMs: timeoutSeconds * 1000,
      onStretch: (s, i, n) => {
        if (io.isTty) io.stderr(`replaying stretch ${s.index} (steps ${s.from}..${s.to}), ${i + 1} of ${n}\n`);
      },
    });
    const { errors, ...fields } = result;
    return { ok: result.ok, fields, errors, text: spotCheckText(result) };
  },
});

function spotCheckText(r: SpotCheckResult): string {
  const lines = [
    `trace ${r.root}: ${r.steps} steps, a checkpoint every ${r.checkpointEvery}, ${r.stretchCount} stretches`,
    r.randomness.source === "chain"
      ? `randomness: block ${r.randomness.blockNumber} (${r.randomness.blockHash}) that recorded the manifest`
      : `randomness: caller seed ${r.randomness.seed} (chosen by the caller, not by the chain)`,
    `trainer: ${r.trainer.same ? "same binary as committed" : `local binary ${r.trainer.local} differs from the committed ${r.trainer.committed}`}, ${r.trainer.threads} thread(s)`,
    ...r.checks.map((c) => `${c.ok ? "PASS" : "FAIL"}  ${c.name.padEnd(40)} ${c.detail}`),
    ...r.stretches.map(
      (s) =>
        `${s.ok ? "PASS" : "FAIL"}  stretch ${String(s.index).padEnd(5)} steps ${s.fromStep}..${s.toStep}` +
        `${s.replaySeconds === null ? "" : `  replay ${s.replaySeconds.toFixed(2)} s`}` +
        `${s.errors.length === 0 ? "" : `  ${s.errors.map((e) => e.code).join(", ")}`}`,
    ),
    `detection probability: a trainer that faked 1 of the ${r.stretchCount} stretches is caught with probability ` +
      `${r.detectionProbability.probability.toFixed(4)} (${r.samples} sampled; ${r.detectionProbability.formula})`,
    r.ok ? "spot-check: every sampled stretch replays bit for bit" : "spot-check: FAILED",
  ];
  return `${lines.join("\n")}\n`;
}

const PUSH_USAGE = "provenant trace push --trace-dir <dir> --store <dir|git repository> [--json]";

const tracePushCommand = defineCommand({
  path: ["trace", "push"],
  summary: "publish a trace directory's content-addressed files to a trace store (a directory or a git repository)",
  usage: PUSH_USAGE,
  options: { "trace-dir": { type: "string" }, store: { type: "string" } },
  async run({ values, io }) {
    const traceDir = resolve(io.cwd, requiredOption(values["trace-dir"], "trace-dir", PUSH_USAGE));
    const store = requiredOption(values.store, "store", PUSH_USAGE);
    const { pushTrace } = await import("./store.ts");
    const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(store) || /^[^/\s]+@[^:\s]+:/.test(store);
    const result = await pushTrace(traceDir, remote ? store : resolve(io.cwd, store));
    return {
      ok: true,
      fields: { ...result },
      text: `trace push: ${result.added.length} file(s) added, ${result.present.length} already in ${result.store}${result.commit === undefined ? "" : ` (commit ${result.commit})`}\n`,
    };
  },
});

export const commands: readonly Command[] = [spotCheckCommand, tracePushCommand];
