// Lookup benchmark: SDK lookup latency beside bare JSON-RPC for the same reads against a local node, and the
// explorer's in-browser OMS hashing (Chromium: Web Workers, WebCrypto up to 256 MiB per range, hash-wasm beyond)
// beside Node's hashModel (what `provenant hash` runs) on the same 256 MiB file, interleaved in one run. Writes
// bench/results/lookup.json. Run: node bench/lookup.ts (BENCH_ITERATIONS, default 300; BENCH_HASH_RUNS, default 5;
// BENCH_PART=hash measures only the hashing and keeps the file's lookup figures; BENCH_PAGE_QUERY is appended to
// the page's URL).
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import path from "node:path";

import { Interface } from "ethers";
import { build } from "vite";

import { hashModel } from "../lib/oms/index.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import { createRegistryClient } from "../offchain/client/index.ts";
import { serveExplorer } from "../offchain/client/serve.ts";
import { CHROMIUM, INSTALL_HINT, launchChromium } from "../test/chromium.ts";
import { startLookupFixture } from "../test/lookup-fixture.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULT = path.join(ROOT, "bench/results/lookup.json");
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 300);
const HASH_RUNS = Number(process.env.BENCH_HASH_RUNS ?? 5);
const HASH_ONLY = process.env.BENCH_PART === "hash";
const FILE_MIB = 256;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));

if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (${INSTALL_HINT})`);
const f = await startLookupFixture();
const client = await createRegistryClient({ rpcUrl: f.chain.url, address: f.address });
const iface = new Interface(MODEL_REGISTRY_ABI as unknown as string[]);
const model = `0x${f.fineTunedModel}`;

// Bare JSON-RPC coded by hand: the same reads the SDK makes for lookup(), in the same two round trips
// (manifestsOf + eth_blockNumber, then recordOf per manifest + one eth_getLogs), without ethers.
let id = 0;
async function rpc(body: unknown): Promise<unknown> {
  const response = await fetch(f.chain.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}
const call = (data: string) => ({
  jsonrpc: "2.0",
  id: ++id,
  method: "eth_call",
  params: [{ to: f.address, data }, "latest"],
});
const manifestsData = iface.encodeFunctionData("manifestsOf", [model, 0, 100]);
const recordOfSelector = iface.getFunction("recordOf")!.selector;
const recordedTopic = iface.getEvent("AttestationRecorded")!.topicHash;
async function bareLookup(): Promise<void> {
  const [listReply, headReply] = (await rpc([
    call(manifestsData),
    { jsonrpc: "2.0", id: ++id, method: "eth_blockNumber", params: [] },
  ])) as { result: string }[];
  // Hand-decoded bytes32[]: offset word, length word, items; recordOf calldata is selector + the digest.
  const body = listReply!.result.slice(2);
  const count = Number(BigInt(`0x${body.slice(64, 128)}`));
  const manifests = Array.from({ length: count }, (_, i) => body.slice(128 + i * 64, 192 + i * 64));
  await rpc([
    ...manifests.map((m) => call(recordOfSelector + m)),
    {
      jsonrpc: "2.0",
      id: ++id,
      method: "eth_getLogs",
      params: [{ address: f.address, fromBlock: "0x0", toBlock: headReply!.result, topics: [recordedTopic, model] }],
    },
  ]);
}
const isRecordedData = iface.encodeFunctionData("isRecorded", [model, `0x${f.items[1]!.manifestDigest}`]);

const sdk: number[] = [];
const bare: number[] = [];
const sdkView: number[] = [];
const bareView: number[] = [];
for (let i = 0; i < (HASH_ONLY ? 0 : 20); i++) {
  await client.lookup(f.fineTunedModel);
  await bareLookup();
}
for (let i = 0; i < (HASH_ONLY ? 0 : ITERATIONS); i++) {
  // Interleaved so that drift on the shared machine hits both sides alike.
  let t = performance.now();
  await client.lookup(f.fineTunedModel);
  sdk.push(performance.now() - t);
  t = performance.now();
  await bareLookup();
  bare.push(performance.now() - t);
  t = performance.now();
  await client.isRecorded(f.fineTunedModel, f.items[1]!.manifestDigest);
  sdkView.push(performance.now() - t);
  t = performance.now();
  await rpc(call(isRecordedData));
  bareView.push(performance.now() - t);
}
client.close();

// Hashing: one 256 MiB file from the page cache, Node and the page taking turns so that the shared machine's load
// hits both alike; each side's best run and every run are recorded.
const work = mkdtempSync(path.join(tmpdir(), "provenant-bench-lookup-"));
const file = path.join(work, "model.bin");
writeFileSync(file, randomBytes(FILE_MIB * 1024 * 1024));
const bytes = FILE_MIB * 1024 * 1024;
const distDir = path.join(work, "dist");
await build({ configFile: path.join(ROOT, "web/vite.config.ts"), logLevel: "error", build: { outDir: distDir } });
const server = await serveExplorer({
  rpcUrl: f.chain.url,
  distDir,
  config: {
    defaultNetwork: "localhost",
    networks: [
      {
        name: "localhost",
        label: "Local",
        rpcUrl: "/rpc",
        chainId: f.chain.chainId,
        address: f.address,
        logRange: 1e4,
      },
    ],
  },
});
const browser = await launchChromium();
const page = await browser.context.newPage();
// BENCH_PAGE_QUERY="?webcryptoMaxBytes=0" measures the streaming hash-wasm path instead of WebCrypto.
await page.goto(`${server.url}${process.env.BENCH_PAGE_QUERY ?? ""}`);
await page.waitForSelector("body[data-state=ready]");

/** CPU seconds (user + system) used so far by the Chromium started on `profile` and all its descendants (Linux). */
function chromiumCpuSeconds(profile: string): number {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const children = (pid: string): string[] =>
    readdirSync(`/proc/${pid}/task`).flatMap((t) => {
      try {
        return readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").split(" ").filter(Boolean);
      } catch {
        return [];
      }
    });
  const roots = readdirSync("/proc").filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      return cmdline.includes(`--user-data-dir=${profile}`) && !cmdline.includes("--type=");
    } catch {
      return false;
    }
  });
  let ticks = 0;
  const seen = new Set<string>();
  const visit = (pid: string): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (proc(5) fields 14 and 15)
      for (const child of children(pid)) visit(child);
    } catch {
      // the process ended meanwhile
    }
  };
  roots.forEach(visit);
  return ticks / ticksPerSecond;
}

async function nodeRun(): Promise<{ seconds: number; cpuSeconds: number; digest: string }> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const digest = (await hashModel(file)).rootDigest;
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - t) / 1000, cpuSeconds: (used.user + used.system) / 1e6, digest };
}

/** One drop of the file on the page; the page's own timing (data-seconds), from the drop to the root digest. */
async function browserRun(): Promise<{ seconds: number; cpuSeconds: number; digest: string; text: string }> {
  const cpuBefore = chromiumCpuSeconds(browser.profile);
  await page.evaluate(() => {
    location.hash = "";
    const progress = document.getElementById("progress")!;
    for (const key of ["seconds", "bytes", "rootDigest"]) delete progress.dataset[key];
  });
  await page.setInputFiles("#pick-files", file);
  await page.waitForFunction(() => document.getElementById("progress")?.dataset.rootDigest !== undefined, null, {
    timeout: 300_000,
  });
  const data = await page.evaluate(() => ({ ...document.getElementById("progress")!.dataset }));
  return {
    seconds: Number(data.seconds),
    cpuSeconds: chromiumCpuSeconds(browser.profile) - cpuBefore,
    digest: data.rootDigest!,
    text: (await page.textContent("#progress-text")) ?? "",
  };
}

await nodeRun(); // warms the page cache and Node's code
await browserRun(); // starts the page's workers and warms the browser's file path
const nodeRuns: number[] = [];
const browserRuns: number[] = [];
const nodeCpu: number[] = [];
const browserCpu: number[] = [];
let browserText = "";
for (let i = 0; i < HASH_RUNS; i++) {
  const n = await nodeRun();
  const b = await browserRun();
  if (b.digest !== n.digest) throw new Error(`browser digest ${b.digest} != node digest ${n.digest}`);
  nodeRuns.push(n.seconds);
  browserRuns.push(b.seconds);
  nodeCpu.push(n.cpuSeconds);
  browserCpu.push(b.cpuSeconds);
  browserText = b.text;
  console.log(
    `hash run ${i + 1}/${HASH_RUNS}: node ${(bytes / 1e6 / n.seconds).toFixed(0)} MB/s, browser ` +
      `${(bytes / 1e6 / b.seconds).toFixed(0)} MB/s (${b.text}); CPU seconds node ${n.cpuSeconds.toFixed(2)}, ` +
      `browser ${b.cpuSeconds.toFixed(2)}; load ${loadavg()[0]!.toFixed(1)}`,
  );
}
await browser.close();
await server.close();
await f.close();
rmSync(work, { recursive: true, force: true });
const nodeSeconds = Math.min(...nodeRuns);
const browserSeconds = Math.min(...browserRuns);

const previous = existsSync(RESULT) ? (JSON.parse(readFileSync(RESULT, "utf8")) as Record<string, unknown>) : {};
const lookupMs = median(sdk);
const bareCallMs = median(bare);
const nodeHashMBps = bytes / 1e6 / nodeSeconds;
const browserHashMBps = bytes / 1e6 / browserSeconds;
const mbps = (seconds: number[]) => seconds.map((x) => round(bytes / 1e6 / x, 1));
const lookupFigures: Record<string, unknown> = HASH_ONLY
  ? Object.fromEntries(
      ["lookupMs", "bareCallMs", "lookupVsBare", "isRecordedMs", "bareIsRecordedMs", "isRecordedVsBare"].map((k) => [
        k,
        previous[k],
      ]),
    )
  : {
      lookupMs: round(lookupMs),
      bareCallMs: round(bareCallMs),
      lookupVsBare: round(lookupMs / bareCallMs),
      isRecordedMs: round(median(sdkView)),
      bareIsRecordedMs: round(median(bareView)),
      isRecordedVsBare: round(median(sdkView) / median(bareView)),
    };
const previousWorkload = (previous.workload ?? {}) as Record<string, string>;
const result: Record<string, unknown> = {
  ...previous,
  ...lookupFigures,
  browserHashMBps: round(browserHashMBps, 1),
  nodeHashMBps: round(nodeHashMBps, 1),
  browserVsNode: round(browserHashMBps / nodeHashMBps),
  browserVsNodeMedian: round(median(nodeRuns) / median(browserRuns)),
  // Load-independent: bytes per CPU-second of every Chromium process against Node's, medians over the runs.
  browserVsNodeCpu: round(median(nodeCpu) / median(browserCpu)),
  hashRuns: {
    nodeMBps: mbps(nodeRuns),
    browserMBps: mbps(browserRuns),
    nodeCpuSeconds: nodeCpu.map((x) => round(x, 2)),
    browserCpuSeconds: browserCpu.map((x) => round(x, 2)),
    browserEngine: browserText.split("; ")[1],
  },
  workload: {
    lookup: HASH_ONLY
      ? previousWorkload.lookup
      : `median of ${ITERATIONS} interleaved runs, local in-process Hardhat EDR chain over HTTP on 127.0.0.1; ` +
        "lookup of a model with 2 records (manifestsOf, recordOf x2, eth_getLogs); bare = the same JSON-RPC " +
        "requests in the same round trips by fetch, calldata and results coded by hand (no ethers); isRecorded = one eth_call each way",
    hash:
      `one ${FILE_MIB} MiB random file from the page cache, ${HASH_RUNS} runs each way taking turns after a warm-up, ` +
      "best of each (browserVsNode) and ratio of medians (browserVsNodeMedian); browser = the explorer page in " +
      "headless Chromium, from the file chosen to the root digest (a Web Worker reads Blob.stream() with a BYOB " +
      "reader into reused memory; a file up to 256 MiB goes to WebCrypto or hash-wasm, whichever the page measured " +
      "faster, a larger one streams through hash-wasm; hashRuns.browserEngine says which), node = lib/oms " +
      "hashModel in-process (what `provenant hash` runs, node:crypto); both digests equal on every run; " +
      "browserVsNodeCpu = Node's CPU " +
      "seconds over all Chromium processes' CPU seconds for the same file (medians), which the machine's load " +
      "does not skew",
  },
  unit: "ms (median); MB/s = 10^6 bytes per second",
  machine: {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage1m: round(loadavg()[0]!, 1),
  },
  node: process.version,
  date: new Date().toISOString(),
};
writeFileSync(RESULT, `${JSON.stringify(result, null, 2)}\n`);
console.table({
  "lookup (2 records)": { sdkMs: result.lookupMs, bareMs: result.bareCallMs, ratio: result.lookupVsBare },
  "isRecorded (1 view)": {
    sdkMs: result.isRecordedMs,
    bareMs: result.bareIsRecordedMs,
    ratio: result.isRecordedVsBare,
  },
});
console.table({
  "256 MiB hash": { browserMBps: result.browserHashMBps, nodeMBps: result.nodeHashMBps, ratio: result.browserVsNode },
});
