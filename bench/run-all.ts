// `npm run bench`: runs every benchmark one after another (never two at once: they measure the same two cores),
// then prints the table that the README carries, built from bench/results/*.json.
// `npm run bench -- --table` only prints the table from the results already there.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// receipt after serve: both merge their keys into serve.json.
const BENCHES = [
  "gas",
  "snp",
  "hash",
  "measure",
  "gpu",
  "verifier",
  "audit",
  "lookup",
  "trace",
  "serve",
  "receipt",
] as const;

/** The figures each issue names, with the target it sets (a function of the result), in README order. */
interface Figure {
  bench: string;
  key: string;
  label: string;
  unit: string;
  target?: (r: Record<string, number>) => { text: string; met: boolean };
}

const FIGURES: readonly Figure[] = [
  {
    bench: "gas",
    key: "publishSingle",
    label: "publish, 1 record (whole tx)",
    unit: "gas",
    target: (r) => le(r.publishSingle!, 125_000),
  },
  { bench: "gas", key: "perRecordBatch10", label: "publish, batch of 10, per record", unit: "gas" },
  {
    bench: "gas",
    key: "perRecordBatch100",
    label: "publish, batch of 100, per record",
    unit: "gas",
    target: (r) => le(r.perRecordBatch100!, 100_000),
  },
  {
    bench: "gas",
    key: "perRecordExistingModel",
    label: "second manifest for a known model, per record",
    unit: "gas",
    target: (r) => le(r.perRecordExistingModel!, 80_000),
  },
  { bench: "gas", key: "revoke", label: "revoke", unit: "gas" },
  {
    bench: "gas",
    key: "anchorGas",
    label: "anchorCheckpoint, worst of first/later/2^40 leaves (whole tx)",
    unit: "gas",
    target: (r) => le(r.anchorGas!, 60_000),
  },
  { bench: "gas", key: "publishServing", label: "publish a serving record (registers its log)", unit: "gas" },
  { bench: "snp", key: "rawP384VerifyPerSec", label: "raw node:crypto P-384 verify", unit: "/s" },
  { bench: "snp", key: "fullChainPerSec", label: "report verification, full chain each time", unit: "/s" },
  {
    bench: "snp",
    key: "cachedChainPerSec",
    label: "report verification, chain cached per VCEK",
    unit: "/s",
    target: (r) => ge(r.cachedChainPerSec!, 0.8 * r.rawP384VerifyPerSec!, "0.8 × raw"),
  },
  { bench: "hash", key: "opensslMBps", label: "openssl dgst -sha256, 2 GiB file", unit: "MB/s" },
  { bench: "hash", key: "sha256sumMBps", label: "sha256sum, 2 GiB file", unit: "MB/s" },
  {
    bench: "hash",
    key: "singleFileMBps",
    label: "provenant hash, one 2 GiB file",
    unit: "MB/s",
    target: (r) => ge(r.singleFileMBps!, 0.9 * r.opensslMBps!, "0.9 × openssl"),
  },
  {
    bench: "hash",
    key: "multiFileMBps",
    label: "provenant hash, eight 256 MiB files",
    unit: "MB/s",
    target: (r) => ge(r.multiFileMBps!, 1.7 * r.singleFileMBps!, "1.7 × single file"),
  },
  {
    bench: "measure",
    key: "hashOnlyMs",
    label: "openssl dgst -sha256 of OVMF 4 MiB + kernel 12 MiB + initrd 64 MiB",
    unit: "ms",
  },
  {
    bench: "measure",
    key: "measureMs",
    label: "provenant measure, same files, 16 vCPUs",
    unit: "ms",
    target: (r) => le(r.measureMs!, 1.5 * r.hashOnlyMs!, "1.5 × openssl"),
  },
  { bench: "gpu", key: "rawP384VerifyPerSec", label: "raw node:crypto P-384 verify (CPU time)", unit: "/s" },
  {
    bench: "gpu",
    key: "gpuVerifyPerSec",
    label: "GPU evidence verification, chain cached (CPU time)",
    unit: "/s",
    target: (r) => ge(r.gpuVerifyPerSec!, 0.8 * r.rawP384VerifyPerSec!, "0.8 × raw"),
  },
  { bench: "verifier", key: "p384VerifiesPerSec", label: "raw node:crypto P-384 verify, one thread", unit: "/s" },
  { bench: "verifier", key: "bundlesPerSec", label: "offline bundle verification, worker pool, all cores", unit: "/s" },
  {
    bench: "verifier",
    key: "bundlesVsCeiling",
    label: "bundles/s over P-384 verifies/s × cores / 4",
    unit: "",
    target: (r) => ge(r.bundlesVsCeiling!, 0.8),
  },
  {
    bench: "verifier",
    key: "healthzP99MsUnderAttack",
    label: "/healthz p99 during a 16,000-signature bundle + 100 sound ones",
    unit: "ms",
    target: (r) => le(r.healthzP99MsUnderAttack!, 100),
  },
  { bench: "verifier", key: "pushToRecordP50Ms", label: "git push → record readable, p50", unit: "ms" },
  {
    bench: "verifier",
    key: "pushToRecordP95Ms",
    label: "git push → record readable, p95",
    unit: "ms",
    target: (r) => le(r.pushToRecordP95Ms!, 2_000),
  },
  { bench: "verifier", key: "backlog5000Sec", label: "backlog of 5,000 bundles published", unit: "s" },
  { bench: "audit", key: "rawTokensPerSec", label: "node-llama-cpp prompt evaluation, tiny model", unit: "tok/s" },
  { bench: "audit", key: "tokensPerItem", label: "tokens evaluated per multiple-choice item", unit: "tok" },
  {
    bench: "audit",
    key: "itemsPerSec",
    label: "multiple-choice items",
    unit: "/s",
    target: (r) => ge(r.itemsPerSec!, (0.8 * r.rawTokensPerSec!) / r.tokensPerItem!, "0.8 × raw / tokens"),
  },
  {
    bench: "audit",
    key: "jobOverheadPct",
    label: "whole-job overhead over the bare audit (1,000 items)",
    unit: "%",
    target: (r) => le(r.jobOverheadPct!, 5),
  },
  { bench: "lookup", key: "bareCallMs", label: "bare eth_call of the same views", unit: "ms" },
  {
    bench: "lookup",
    key: "lookupMs",
    label: "SDK lookup(modelHash)",
    unit: "ms",
    target: (r) => le(r.lookupMs!, 1.2 * r.bareCallMs!, "1.2 × bare"),
  },
  { bench: "lookup", key: "nodeHashMBps", label: "Node hashing, 256 MiB file", unit: "MB/s" },
  {
    bench: "lookup",
    key: "browserHashMBps",
    label: "in-browser hashing (Web Workers, WebCrypto / hash-wasm), 256 MiB file",
    unit: "MB/s",
  },
  {
    bench: "lookup",
    key: "browserVsNode",
    label: "in-browser over Node hashing, same file, same run",
    unit: "",
    target: (r) => ge(r.browserVsNode!, 0.5),
  },
  {
    bench: "trace",
    key: "traceOverheadPct",
    label: "traced over untraced training, tiny model (CPU time)",
    unit: "%",
    target: (r) => le(r.traceOverheadPct!, 10),
  },
  {
    bench: "trace",
    key: "replayRatio",
    label: "spot-check replay over original training, per stretch",
    unit: "×",
    target: (r) => le(r.replayRatio!, 1.5),
  },
  { bench: "serve", key: "generationMsPerCompletion", label: "bare 64-token completion, tiny model", unit: "ms" },
  {
    bench: "serve",
    key: "receiptOverheadPct",
    label: "receipt + log work over bare generation",
    unit: "%",
    target: (r) => le(r.receiptOverheadPct!, 2),
  },
  {
    bench: "receipt",
    key: "receiptVerifyPerSec",
    label: "receipt verification (signature + inclusion, chain data cached)",
    unit: "/s",
    target: (r) => ge(r.receiptVerifyPerSec!, 0.8 * r.rawP384VerifyPerSec!, "0.8 × raw P-384"),
  },
  {
    bench: "reliability",
    key: "fuzzInputs",
    label: "fuzzed inputs, no uncoded error",
    unit: "",
    target: (r) => ge(r.fuzzInputs!, 100_000, "100,000"),
  },
  { bench: "reliability", key: "restarts", label: "soak: verifier killed and restarted", unit: "times" },
  {
    bench: "reliability",
    key: "bundlesLost",
    label: "soak: bundles lost",
    unit: "",
    target: (r) => le(r.bundlesLost!, 0),
  },
  {
    bench: "reliability",
    key: "duplicates",
    label: "soak: records published twice",
    unit: "",
    target: (r) => le(r.duplicates!, 0),
  },
  { bench: "reliability", key: "invalidRefused", label: "soak: invalid bundles refused with their code", unit: "" },
];

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : String(Number(n.toFixed(2)));
}
function le(value: number, limit: number, text = fmt(limit)): { text: string; met: boolean } {
  return { text: `≤ ${text}`, met: value <= limit };
}
function ge(value: number, limit: number, text = fmt(limit)): { text: string; met: boolean } {
  return { text: `≥ ${text}${text === fmt(limit) ? "" : ` (${fmt(limit)})`}`, met: value >= limit };
}

function readResult(bench: string): Record<string, number> | undefined {
  const file = path.join(ROOT, "bench", "results", `${bench}.json`);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, number>;
}

export function benchmarkTable(): string {
  const lines = ["| benchmark | figure | measured | target | |", "|---|---|---:|---|---|"];
  for (const f of FIGURES) {
    const result = readResult(f.bench);
    const value = result?.[f.key];
    if (typeof value !== "number") {
      lines.push(`| ${f.bench} | ${f.label} | not measured | | |`);
      continue;
    }
    const target = f.target?.(result!);
    lines.push(
      `| ${f.bench} | ${f.label} | ${fmt(value)} ${f.unit} | ${target?.text ?? ""} | ${target === undefined ? "" : target.met ? "met" : "**not met**"} |`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes("--table")) {
    for (const bench of BENCHES) {
      process.stdout.write(`\n== bench/${bench}.ts ==\n`);
      const run = spawnSync(
        process.execPath,
        ["--disable-warning=ExperimentalWarning", path.join(ROOT, "bench", `${bench}.ts`)],
        {
          cwd: ROOT,
          stdio: "inherit",
        },
      );
      if (run.status !== 0) process.stdout.write(`bench/${bench}.ts exited ${run.status}\n`);
    }
  }
  process.stdout.write(`\n${benchmarkTable()}\n`);
}
