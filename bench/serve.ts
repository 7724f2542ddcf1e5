// Benchmark of `provenant serve` on the tiny model (provenant model tiny, small, seed 1), 64-token completions:
// - receiptOverheadPct: what the receipt path adds to a request (salted digests, receipt statement, ECDSA P-256
//   signature with S on the event loop, SQLite commit with synchronous=NORMAL, Merkle append, and once every 1,024
//   receipts the durable seq reservation) over bare generation on the same engine, one client waiting for each
//   answer, in the same run: the median over interleaved rounds of the per-round ratio. Target ≤ 2 %.
// - receiptCpuOverheadPct: the same in process CPU time (all threads), less sensitive to the machine's other load.
// - receiptInlineOverheadPct: the receipt path's own time, timed inside each request of the same rounds (median),
//   over the median bare generation: far less noisy than the round ratios on a shared machine.
// - receiptMs and its parts (statement, signature, commit, Merkle append, the reservation's fsync'd commit);
//   rawP256SignPerSec and rawP384SignPerSec for scale.
// - anchorGas: gasUsed of real anchorCheckpoint transactions (Hardhat, the registry, the log registered by its
//   serving record) for epochs of 1, 64 and all receipts of the run: the worst. Target ≤ 60,000.
// - receiptVerifyPerSec is bench/receipt.ts's: both benches read-modify-write bench/results/serve.json, each setting
//   only its own keys, so either order keeps the other's.
// Usage: node bench/serve.ts   (BENCH_ROUNDS=24, BENCH_THREADS=1, BENCH_BATCH=8, BENCH_SIZE=small|medium)
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";

import { Wallet } from "ethers";

import { MerkleTree } from "../lib/merkle/index.ts";
import {
  buildReceiptStatement,
  clientKeyIdOf,
  encodeStatement,
  generateServingKey,
  leafHashOfPayload,
  logIdOf,
  sha256Hex,
  signStatementPayload,
} from "../lib/receipt/index.ts";
import { writeTinyModel } from "../enclave-job/model/tiny.ts";
import { createLocalSender, createProvider } from "../offchain/chain/index.ts";
import { deployRegistry, DEV_PRIVATE_KEYS, startDevChain } from "../offchain/testing/chain.ts";
import { Anchorer } from "../serve/anchor.ts";
import { Engine, type Prepared, type SamplingOptions } from "../serve/engine.ts";
import { SERVING_KEY_CURVE } from "../lib/receipt/core.ts";
import { ReceiptLog, SEQ_RESERVATION } from "../serve/log.ts";
import { RegistryReader } from "../serve/registry.ts";
import { ServeStore } from "../serve/store.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 24);
const threads = Number(process.env.BENCH_THREADS ?? 1);
const batch = Number(process.env.BENCH_BATCH ?? 8);
const size = process.env.BENCH_SIZE === "medium" ? "medium" : "small";
const TOKENS = 64;
const loadBefore = loadavg()[0] ?? 0;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const round2 = (x: number): number => Math.round(x * 100) / 100;
/** The keys bench/receipt.ts writes into serve.json: kept when this bench rewrites the file. */
const RECEIPT_BENCH_KEYS = [
  "receiptVerifyPerSec",
  "rawP384VerifyPerSec",
  "rawP256VerifyPerSec",
  "receiptVerifyRatio",
  "receiptVerifyRatioP256",
  "receiptVerifyMeasuredBy",
];

const dir = mkdtempSync(join(tmpdir(), "provenant-bench-serve-"));
const enc = new TextEncoder();
try {
  const { model } = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 1, size });
  const engine = await Engine.load(model, { threads, gpu: false, contextSize: 512, maxQueue: 64 });
  const store = await ServeStore.open(join(dir, "data"));
  const { privateKey, spki } = generateServingKey();
  const logId = logIdOf(spki);
  const identity = {
    logId,
    privateKey,
    spki,
    servingManifest: "5e".repeat(32),
    modelRoot: "ab".repeat(32),
    modelName: "tiny.gguf",
    bundle: enc.encode("{}"),
    startedAt: new Date(),
  };
  const log = await ReceiptLog.open(store, identity, {
    epoch: { maxReceipts: 1_000_000, maxSeconds: 86_400 },
    now: () => new Date(),
  });

  const prompts: { prepared: Prepared; request: Uint8Array }[] = [];
  for (let i = 0; i < 64; i++) {
    const prompt = `Question ${i}: what is the color of the ${["sun", "moon", "water", "cat"][i % 4]}? Answer:`;
    prompts.push({
      prepared: engine.prepare({ operation: "text_completion", prompt }),
      request: enc.encode(JSON.stringify({ model: "tiny", prompt, max_tokens: TOKENS })),
    });
  }
  const sampling: SamplingOptions = { maxTokens: TOKENS, temperature: 0, stop: [] };
  const signal = new AbortController().signal;
  const completionTokens: number[] = [];
  const receiptMs: number[] = [];

  /** One request through the serving path: generation, then (with receipts) the receipt as serve/http.ts makes it. */
  async function request(i: number, withReceipt: boolean): Promise<void> {
    const { prepared, request: body } = prompts[i % prompts.length]!;
    const result = await engine.generate(prepared, sampling, signal);
    completionTokens.push(result.completionTokens);
    if (!withReceipt) return;
    const t = performance.now();
    await log.issue({
      operation: "text_completion",
      salt: new Uint8Array(randomBytes(32)),
      request: body,
      response: enc.encode(result.text),
      promptTokens: result.promptTokens,
      completionTokens: result.completionTokens,
      clientKeyId: clientKeyIdOf(`sk-bench-${i % 4}`),
    });
    receiptMs.push(performance.now() - t);
  }

  const cpuMs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  async function sequential(withReceipt: boolean): Promise<{ wall: number; cpu: number }> {
    const t = performance.now();
    const c = cpuMs();
    for (let i = 0; i < batch; i++) await request(i, withReceipt);
    return { wall: performance.now() - t, cpu: cpuMs() - c };
  }

  // Warm-up: the first generations and the first fsyncs are slower.
  await sequential(true);
  await sequential(false);
  type Pair = { bare: number; receipts: number };
  const seq: Pair[] = [];
  const seqCpu: Pair[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which mode goes first, so that a drift in the machine's load falls on both.
    const order = round % 2 === 0 ? [false, true] : [true, false];
    const s: Pair = { bare: 0, receipts: 0 };
    const sc: Pair = { bare: 0, receipts: 0 };
    for (const withReceipt of order) {
      const m = await sequential(withReceipt);
      s[withReceipt ? "receipts" : "bare"] = m.wall;
      sc[withReceipt ? "receipts" : "bare"] = m.cpu;
    }
    seq.push(s);
    seqCpu.push(sc);
    process.stderr.write(
      `round ${round + 1}/${rounds}: one client ${(s.bare / batch).toFixed(1)} → ${(s.receipts / batch).toFixed(1)} ms/request, ` +
        `cpu ${(sc.bare / batch).toFixed(1)} → ${(sc.receipts / batch).toFixed(1)} ms/request\n`,
    );
  }
  const overhead = (pairs: Pair[]): number => median(pairs.map((p) => ((p.receipts - p.bare) / p.bare) * 100));
  const receiptOverheadPct = overhead(seq);
  const receiptCpuOverheadPct = overhead(seqCpu);
  const generationMs = median(seq.map((p) => p.bare / batch));
  const generationCpuMs = median(seqCpu.map((p) => p.bare / batch));

  // The parts of one receipt, each timed alone over the same kind of input as the rounds'.
  const partInput = {
    modelRoot: identity.modelRoot,
    servingManifest: identity.servingManifest,
    logId,
    operation: "text_completion" as const,
    salt: new Uint8Array(randomBytes(32)),
    request: prompts[0]!.request,
    response: enc.encode("y".repeat(200)),
    promptTokens: 20,
    completionTokens: 64,
    clientKeyId: clientKeyIdOf("sk-bench-0"),
    seq: 1,
    prevReceipt: "00".repeat(31) + "01",
    issuedAt: new Date(),
  };
  const statementTimes: number[] = [];
  let payload: Uint8Array = new Uint8Array();
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    payload = encodeStatement(buildReceiptStatement(partInput));
    sha256Hex(payload);
    leafHashOfPayload(payload);
    statementTimes.push(performance.now() - t);
  }
  const signTimes: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    signStatementPayload(payload, privateKey, logId);
    signTimes.push(performance.now() - t);
  }
  const envelopeText = JSON.stringify(signStatementPayload(payload, privateKey, logId));
  store.db.exec("CREATE TABLE bench_commit (x INTEGER, envelope TEXT)");
  const insert = store.db.prepare("INSERT INTO bench_commit VALUES (?, ?)");
  const commitTimes: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    store.transaction(() => insert.run(i, envelopeText));
    commitTimes.push(performance.now() - t);
  }
  // The reservation's durable commit (synchronous=FULL: the WAL fsync'd), paid once per SEQ_RESERVATION receipts.
  const reservationTimes: number[] = [];
  const reservedBefore = store.reservedThrough();
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    store.reserveThrough(reservedBefore + i + 1);
    reservationTimes.push(performance.now() - t);
  }
  const tree = new MerkleTree();
  const leaf = new Uint8Array(32);
  const treeStart = performance.now();
  for (let i = 0; i < 100_000; i++) tree.append(leaf);
  const treeAppendUs = ((performance.now() - treeStart) / 100_000) * 1000;
  const signRate = (hash: string, key: typeof privateKey): number => {
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < 1000) {
      sign(hash, payload, { key, dsaEncoding: "der" });
      n += 1;
    }
    return n / ((performance.now() - start) / 1000);
  };
  const rawP256SignPerSec = signRate("sha256", privateKey);
  const rawP384SignPerSec = signRate("sha384", generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey);

  // anchorGas: real anchor transactions of this log's checkpoints, epochs of every size seen here.
  const chain = await startDevChain();
  const registry = await deployRegistry(chain.url);
  const publisher = registry.contract.connect(new Wallet(registry.publisherKey, registry.provider));
  const hex = (h: string): string => `0x${h}`;
  const zero = hex("00".repeat(32));
  await (
    await publisher.getFunction("publish")([
      [hex(identity.modelRoot), hex("a0".repeat(32)), zero, hex("11".repeat(32)), hex("22".repeat(32)), 0n, 2],
      [
        hex(identity.modelRoot),
        hex(identity.servingManifest),
        hex(logId),
        hex("11".repeat(32)),
        hex("22".repeat(32)),
        0n,
        3,
      ],
    ])
  ).wait();
  const provider = createProvider(chain.url);
  const anchorer = new Anchorer({
    log,
    store,
    reader: new RegistryReader(provider, registry.address),
    sender: await createLocalSender(provider, DEV_PRIVATE_KEYS[1]),
    registry: registry.address,
    now: () => new Date(),
  });
  const gas: { epochReceipts: number; treeSize: number; gasUsed: number }[] = [];
  const epoch = async (): Promise<void> => {
    const receipts = log.epochReceipts;
    const checkpoint = (await log.closeEpoch())!;
    await anchorer.trigger();
    gas.push({ epochReceipts: receipts, treeSize: checkpoint.treeSize, gasUsed: anchorer.lastGasUsed ?? NaN });
  };
  await epoch(); // every receipt of the run
  await request(0, true);
  await epoch(); // one receipt
  for (let i = 0; i < 64; i++) await request(i, true);
  await epoch(); // 64 receipts
  await anchorer.stop();
  provider.destroy();
  registry.provider.destroy();
  await chain.close();
  const anchorGas = Math.max(...gas.map((g) => g.gasUsed));

  await engine.close();
  await store.close();

  const meanTokens = completionTokens.reduce((a, b) => a + b, 0) / completionTokens.length;
  const cpu = cpus()[0]?.model ?? "unknown";
  const result = {
    receiptOverheadPct: round2(receiptOverheadPct),
    receiptCpuOverheadPct: round2(receiptCpuOverheadPct),
    receiptInlineOverheadPct: round2((median(receiptMs) / generationMs) * 100),
    anchorGas,
    generationMsPerCompletion: round2(generationMs),
    generationCpuMsPerCompletion: round2(generationCpuMs),
    completionTokensMean: round2(meanTokens),
    receiptMs: round2(median(receiptMs)),
    receiptMsP90: round2(receiptMs.sort((a, b) => a - b)[Math.floor(receiptMs.length * 0.9)] ?? NaN),
    parts: {
      statementUs: round2(median(statementTimes) * 1000),
      signMs: round2(median(signTimes)),
      commitMs: round2(median(commitTimes)),
      treeAppendUs: round2(treeAppendUs),
      reservationMs: round2(median(reservationTimes)),
      reservationPerReceiptUs: round2((median(reservationTimes) * 1000) / SEQ_RESERVATION),
    },
    servingKeyCurve: SERVING_KEY_CURVE,
    rawP256SignPerSec: Math.round(rawP256SignPerSec),
    rawP384SignPerSec: Math.round(rawP384SignPerSec),
    anchors: gas,
    rounds: {
      oneClientMs: seq.map((p) => ({ bare: Math.round(p.bare), receipts: Math.round(p.receipts) })),
      oneClientCpuMs: seqCpu.map((p) => ({ bare: Math.round(p.bare), receipts: Math.round(p.receipts) })),
    },
    targets: { receiptOverheadPct: 2, anchorGas: 60_000 },
    conditions: {
      model:
        size === "small"
          ? "provenant model tiny (small, seed 1): llama, 2 blocks, 64-dim, F32"
          : "provenant model tiny (medium, seed 1): llama, 4 blocks, 128-dim, F32",
      completion: `${TOKENS} tokens, temperature 0 (greedy), text completion`,
      threads,
      gpu: false,
      batch: `${batch} requests per mode and round, one client waiting for each answer`,
      rounds,
      receiptPath:
        "salted digests, receipt statement, DSSE ECDSA P-256/SHA-256 on the event loop, SQLite commit " +
        "(WAL, synchronous=NORMAL: no fsync), Merkle append; every 1,024 receipts a durable seq reservation " +
        "(synchronous=FULL commit)",
      anchor: "Hardhat EDR (shanghai), anchorCheckpoint by the publisher key, log registered by its serving record",
      note: "medians of interleaved rounds; the machine is shared with other jobs, so absolute figures vary with its load",
    },
    machine: {
      cpu: cpu.includes("EPYC") ? "AMD EPYC" : cpu,
      cores: availableParallelism(),
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadAverageBefore: round2(loadBefore),
      loadAverageAfter: round2(loadavg()[0] ?? 0),
    },
    date: new Date().toISOString(),
  };
  mkdirSync("bench/results", { recursive: true });
  // Read-modify-write: bench/receipt.ts merges its receipt verification keys into this file; they are kept.
  const file = `bench/results/${size === "small" ? "serve" : "serve-medium"}.json`;
  const before = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  const kept = Object.fromEntries(Object.entries(before).filter(([key]) => RECEIPT_BENCH_KEYS.includes(key)));
  writeFileSync(file, `${JSON.stringify({ ...result, ...kept }, null, 2)}\n`);
  const rows: [string, string, string][] = [
    ["bare generation, 64 tokens (one client)", `${result.generationMsPerCompletion} ms`, ""],
    ["  in CPU time", `${result.generationCpuMsPerCompletion} ms`, ""],
    ["receipt overhead, one client (wall)", `${result.receiptOverheadPct} %`, "≤ 2 %"],
    ["receipt overhead, one client (CPU time)", `${result.receiptCpuOverheadPct} %`, ""],
    ["receipt path timed inline / bare generation", `${result.receiptInlineOverheadPct} %`, ""],
    ["one receipt: statement + sign + commit + tree", `${result.receiptMs} ms`, ""],
    ["  statement, digests, leaf hash", `${result.parts.statementUs} µs`, ""],
    ["  P-256 signature", `${result.parts.signMs} ms`, ""],
    ["  SQLite commit (synchronous=NORMAL)", `${result.parts.commitMs} ms`, ""],
    ["  Merkle append", `${result.parts.treeAppendUs} µs`, ""],
    ["  seq reservation (fsync'd), per receipt", `${result.parts.reservationPerReceiptUs} µs`, ""],
    ["raw sign P-256 / P-384", `${result.rawP256SignPerSec} / ${result.rawP384SignPerSec} /s`, ""],
    ["anchorCheckpoint gas, worst epoch", `${result.anchorGas}`, "≤ 60,000"],
  ];
  for (const [label, value, target] of rows) console.log(`${label.padEnd(45)} ${value.padStart(12)}  ${target}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
