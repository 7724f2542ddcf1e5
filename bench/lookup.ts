// Lookup benchmark: SDK lookup latency beside bare JSON-RPC for the same reads against a local node, and the
// explorer's in-browser OMS hashing (Chromium, @noble/hashes) beside Node's hashModel (what `provenant hash` runs)
// on the same 256 MiB file. Writes bench/results/lookup.json. Run: node bench/lookup.ts (BENCH_ITERATIONS, default 300).
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import path from "node:path";

import { Interface } from "ethers";
import { chromium } from "playwright-core";
import { build } from "vite";

import { hashModel } from "../lib/oms/index.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import { createRegistryClient } from "../offchain/client/index.ts";
import { serveExplorer } from "../offchain/client/serve.ts";
import { startLookupFixture } from "../test/lookup-fixture.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 300);
const FILE_MIB = 256;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));

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
for (let i = 0; i < 20; i++) {
  await client.lookup(f.fineTunedModel);
  await bareLookup();
}
for (let i = 0; i < ITERATIONS; i++) {
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

// Hashing: one 256 MiB file, Node first (also warms the page cache), then the page in Chromium.
const work = mkdtempSync(path.join(tmpdir(), "provenant-bench-lookup-"));
const file = path.join(work, "model.bin");
writeFileSync(file, randomBytes(FILE_MIB * 1024 * 1024));
const bytes = FILE_MIB * 1024 * 1024;
let nodeSeconds = Infinity;
let nodeDigest = "";
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  nodeDigest = (await hashModel(file)).rootDigest;
  nodeSeconds = Math.min(nodeSeconds, (performance.now() - t) / 1000);
}

if (!existsSync("/usr/bin/chromium")) throw new Error("/usr/bin/chromium is missing (apt-get install -y chromium)");
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
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.goto(server.url);
await page.waitForSelector("body[data-state=ready]");
let browserSeconds = Infinity;
let browserDigest = "";
for (let i = 0; i < 3; i++) {
  await page.evaluate(() => (location.hash = ""));
  await page.setInputFiles("#pick-files", file);
  await page.waitForFunction(() => /hashed 1 file/.test(document.querySelector("#progress-text")?.textContent ?? ""), {
    timeout: 300_000,
  });
  const text = (await page.textContent("#progress-text"))!;
  browserSeconds = Math.min(browserSeconds, Number(/in ([\d.]+) s/.exec(text)![1]));
  browserDigest = decodeURIComponent(await page.evaluate(() => location.hash)).replace("#/model/", "");
}
await browser.close();
await server.close();
await f.close();
rmSync(work, { recursive: true, force: true });
if (browserDigest !== nodeDigest) throw new Error(`browser digest ${browserDigest} != node digest ${nodeDigest}`);

const lookupMs = median(sdk);
const bareCallMs = median(bare);
const nodeHashMBps = bytes / 1e6 / nodeSeconds;
const browserHashMBps = bytes / 1e6 / browserSeconds;
const result = {
  lookupMs: round(lookupMs),
  bareCallMs: round(bareCallMs),
  lookupVsBare: round(lookupMs / bareCallMs),
  isRecordedMs: round(median(sdkView)),
  bareIsRecordedMs: round(median(bareView)),
  isRecordedVsBare: round(median(sdkView) / median(bareView)),
  browserHashMBps: round(browserHashMBps, 1),
  nodeHashMBps: round(nodeHashMBps, 1),
  browserVsNode: round(browserHashMBps / nodeHashMBps),
  workload: {
    lookup:
      `median of ${ITERATIONS} interleaved runs, local in-process Hardhat EDR chain over HTTP on 127.0.0.1; ` +
      "lookup of a model with 2 records (manifestsOf, recordOf x2, eth_getLogs); bare = the same JSON-RPC " +
      "requests in the same round trips by fetch, calldata and results coded by hand (no ethers); isRecorded = one eth_call each way",
    hash:
      `one ${FILE_MIB} MiB random file from the page cache, best of 3; browser = the explorer page in headless ` +
      "Chromium (@noble/hashes SHA-256, 8 MiB File.slice reads), node = lib/oms hashModel in-process (what " +
      "`provenant hash` runs, node:crypto); both digests equal",
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
writeFileSync(path.join(ROOT, "bench/results/lookup.json"), `${JSON.stringify(result, null, 2)}\n`);
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
