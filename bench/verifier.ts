// Verifier benchmarks (issue 5/7): writes bench/results/verifier.json and prints a table.
// - bundlesPerSec: full offline verification (pipeline steps a–g) of a typical bundle (one SNP report, three DSSE
//   envelopes) on one core (one JS thread), warm certificate cache.
// - pushToRecordP50Ms / P95Ms: `git push` of one bundle → record readable onchain (isRecorded), service polling every
//   1 s, local in-process Hardhat chain (automine), over 50 bundles pushed one after another.
// - backlog5000Sec: 5,000 bundles in one commit → all published, with gas per record in the batches used (128).
// Run: node bench/verifier.ts [--quick]  (--quick: 10 latency samples, a 500-bundle backlog).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import pino from "pino";

import { createLocalSender } from "../offchain/chain/index.ts";
import { reportVerifierFor, verifyBundle } from "../offchain/pipeline/index.ts";
import { startService } from "../offchain/service.ts";
import { createBundleFactory } from "../offchain/testing/bundles.ts";
import { deployRegistry, startDevChain } from "../offchain/testing/chain.ts";
import { createTestRepo } from "../offchain/testing/git.ts";

const quick = process.argv.includes("--quick");
const LATENCY_SAMPLES = quick ? 10 : 50;
const BACKLOG = quick ? 500 : 5000;
const ROOT = path.resolve(new URL("..", import.meta.url).pathname);

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

async function main(): Promise<void> {
  const factory = await createBundleFactory();
  const now = new Date();

  // 1. Offline verification throughput, warm cache.
  const samples = Array.from({ length: 200 }, (_, i) => factory.make({ seed: `tp-${i}` }).bytes);
  const verifier = reportVerifierFor(factory.policy);
  for (const b of samples.slice(0, 20)) verifyBundle(b, { policy: factory.policy, now, verifier }); // warm up
  let done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 5_000) {
    const v = verifyBundle(samples[done % samples.length]!, { policy: factory.policy, now, verifier });
    if (!v.ok) throw new Error(`benchmark bundle refused: ${JSON.stringify(v.errors)}`);
    done++;
  }
  const bundlesPerSec = done / ((performance.now() - t0) / 1000);
  console.log(`offline verification: ${bundlesPerSec.toFixed(0)} bundles/s (${done} in 5 s)`);
  // Context: a bundle costs four ECDSA P-384 verifications (report + three envelopes) in OpenSSL; this is their
  // ceiling on this machine right now.
  const { generateKeyPairSync, sign, verify } = await import("node:crypto");
  const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const msg = Buffer.alloc(672);
  const sig = sign("sha384", msg, k.privateKey);
  let verifies = 0;
  const t2 = performance.now();
  while (performance.now() - t2 < 2_000) {
    verify("sha384", msg, k.publicKey, sig);
    verifies++;
  }
  const p384VerifiesPerSec = verifies / ((performance.now() - t2) / 1000);
  console.log(
    `P-384 verifications: ${p384VerifiesPerSec.toFixed(0)}/s (ceiling ${(p384VerifiesPerSec / 4).toFixed(0)} bundles/s)`,
  );

  const chain = await startDevChain();
  const registry = await deployRegistry(chain.url);
  const logger = pino({ level: "silent" });
  const work = mkdtempSync(path.join(os.tmpdir(), "bench-verifier-"));

  // 2. Push → record latency, 1 s poll.
  const repo = createTestRepo();
  const latencies: number[] = [];
  const service = await startService({
    repos: [repo.origin],
    rpcUrl: chain.url,
    registry: registry.address,
    policy: factory.policy,
    createSender: (provider) => createLocalSender(provider, registry.publisherKey),
    dataDir: path.join(work, "latency"),
    intervalMs: 1000,
    maxWaitMs: 0,
    logger,
  });
  const isRecorded = registry.contract.getFunction("isRecorded");
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const made = factory.make({ seed: `lat-${i}` });
    const manifestDigest = verifyBundle(made.bytes, { policy: factory.policy, now, verifier }).manifestDigest!;
    repo.write(`bundles/lat-${i}.provenance.json`, made.bytes);
    const start = performance.now();
    repo.commitAndPush(`bundle ${i}`);
    while (!((await isRecorded(`0x${made.modelHash}`, `0x${manifestDigest}`)) as boolean)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    latencies.push(performance.now() - start);
    // the next push lands at a random phase of the poll interval
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
  }
  await service.stop();
  repo.cleanup();
  const pushToRecordP50Ms = percentile(latencies, 50);
  const pushToRecordP95Ms = percentile(latencies, 95);
  console.log(`push → record: p50 ${pushToRecordP50Ms.toFixed(0)} ms, p95 ${pushToRecordP95Ms.toFixed(0)} ms`);

  // 3. Backlog: BACKLOG bundles in one commit.
  const backlogRepo = createTestRepo();
  for (let i = 0; i < BACKLOG; i++)
    backlogRepo.write(`bundles/b/${i}.provenance.json`, factory.make({ seed: `backlog-${i}` }).bytes);
  backlogRepo.commitAndPush("backlog");
  const blockBefore = await registry.provider.getBlockNumber();
  const t1 = performance.now();
  const backlogService = await startService({
    repos: [backlogRepo.origin],
    rpcUrl: chain.url,
    registry: registry.address,
    policy: factory.policy,
    createSender: (provider) => createLocalSender(provider, registry.publisherKey),
    dataDir: path.join(work, "backlog"),
    intervalMs: 1000,
    maxBatch: 128,
    maxWaitMs: 500,
    logger,
  });
  while (backlogService.store.countByStatus().published < BACKLOG) await new Promise((r) => setTimeout(r, 100));
  const backlogSec = (performance.now() - t1) / 1000;
  await backlogService.stop();
  backlogRepo.cleanup();
  let gas = 0n;
  let txs = 0;
  const blockAfter = await registry.provider.getBlockNumber();
  for (let b = blockBefore + 1; b <= blockAfter; b++) {
    const block = await registry.provider.getBlock(b);
    gas += block?.gasUsed ?? 0n;
    txs += block?.transactions.length ?? 0;
  }
  const gasPerRecord = Number(gas) / BACKLOG;
  console.log(
    `backlog ${BACKLOG}: ${backlogSec.toFixed(1)} s, ${txs} transactions, ${gasPerRecord.toFixed(0)} gas/record`,
  );

  registry.provider.destroy();
  await chain.close();
  rmSync(work, { recursive: true, force: true });

  const cpu = os.cpus()[0]?.model ?? "unknown";
  const result = {
    bundlesPerSec: Math.round(bundlesPerSec),
    p384VerifiesPerSec: Math.round(p384VerifiesPerSec),
    loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
    pushToRecordP50Ms: Math.round(pushToRecordP50Ms),
    pushToRecordP95Ms: Math.round(pushToRecordP95Ms),
    [`backlog${BACKLOG}Sec`]: Math.round(backlogSec * 10) / 10,
    backlogBundles: BACKLOG,
    backlogTransactions: txs,
    backlogBatchSize: 128,
    gasPerRecord: Math.round(gasPerRecord),
    latencySamples: LATENCY_SAMPLES,
    pollIntervalMs: 1000,
    targets: { bundlesPerSec: 500, pushToRecordP95Ms: 2000 },
    conditions:
      "one JS thread for verification, warm certificate cache, typical bundle = 1 SNP report (simulator, Genoa " +
      "chain) + 3 DSSE envelopes (P-384); latency and backlog on the in-process Hardhat chain (automine) over HTTP, " +
      "local bare git repository; machine shared with other jobs",
    machine: `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    date: new Date().toISOString(),
  };
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  if (!quick) writeFileSync(path.join(ROOT, "bench/results/verifier.json"), `${JSON.stringify(result, null, 2)}\n`);
  console.table(result);
}

await main();
