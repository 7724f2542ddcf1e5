// `npm run test:reliability`: the long form of the reliability suite. Fuzzing (≥ 100,000 inputs), a soak of 1,000
// bundles with the verifier killed and restarted at random, and the contract's Solidity fuzz tests at a higher run
// count. Writes bench/results/reliability.json and prints a table; exits non-zero when an invariant fails.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { checkSeeds, fuzzSeed, runFuzz } from "./fuzz.ts";
import { runSoak } from "./soak.ts";
import { createFuzzTargets } from "./targets.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

const fuzzInputs = env("PROVENANT_FUZZ_INPUTS", 110_000);
const soakBundles = env("PROVENANT_SOAK_BUNDLES", 1_000);
const contractRuns = env("PROVENANT_CONTRACT_FUZZ_RUNS", 5_000);

const log = (line: string) => process.stdout.write(`${line}\n`);

log(`fuzzing ${fuzzInputs} inputs …`);
const { targets } = await createFuzzTargets();
const seedFailures = checkSeeds(targets);
const seed = fuzzSeed("reliability");
const fuzz = runFuzz(targets, { totalInputs: fuzzInputs, maxSeconds: 900, seed });

log(`soak: ${soakBundles} bundles, kill -9 at random …`);
const soak = await runSoak({
  seed,
  bundles: soakBundles,
  invalidShare: 0.3,
  // Each life is killed within 2.5 s of its first progress, so mid-work; batches of 4 make ~175 transactions.
  killWithinMs: 2_500,
  maxBatch: 4,
  killForMs: 150_000,
  finishWithinMs: 300_000,
});

log(`contract invariants: ${contractRuns} fuzz runs per property …`);
const t0 = performance.now();
const contract = spawnSync("npx", ["hardhat", "test", "solidity"], {
  cwd: ROOT,
  env: { ...process.env, PROVENANT_FUZZ_RUNS: String(contractRuns) },
  encoding: "utf8",
});
const contractSeconds = (performance.now() - t0) / 1000;

const result = {
  seed,
  fuzzInputs: fuzz.inputs,
  fuzzFindings: fuzz.findings.length,
  fuzzSeconds: Number(fuzz.seconds.toFixed(1)),
  fuzzMaxCallMs: Number(fuzz.maxCallMs.toFixed(1)),
  fuzzHeapGrowthMB: Number(fuzz.heapGrowthMB.toFixed(1)),
  fuzzTargets: Object.keys(fuzz.byTarget).length,
  soakBundles: soak.bundles,
  soakValid: soak.valid,
  soakInvalid: soak.invalid,
  restarts: soak.restarts,
  bundlesLost: soak.bundlesLost,
  duplicates: soak.duplicates,
  invalidRefused: soak.invalidRefused,
  soakSeconds: Number(soak.seconds.toFixed(1)),
  contractFuzzRuns: contractRuns,
  contractInvariantsPassed: contract.status === 0,
  contractSeconds: Number(contractSeconds.toFixed(1)),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  date: new Date().toISOString(),
};
mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(path.join(ROOT, "bench", "results", "reliability.json"), `${JSON.stringify(result, null, 2)}\n`);

log("");
log("| figure | value |");
log("|---|---|");
for (const [key, value] of Object.entries(result)) log(`| ${key} | ${String(value)} |`);

const failures = [
  ...seedFailures.map((s) => `seed refused: ${s}`),
  ...fuzz.findings.slice(0, 20).map((f) => `fuzz ${f.kind} in ${f.target}: ${f.message}`),
  ...soak.problems.slice(0, 20),
  ...(contract.status === 0
    ? []
    : [`contract fuzz tests failed:\n${contract.stdout.slice(-4000)}${contract.stderr.slice(-2000)}`]),
];
if (soak.bundlesLost !== 0) failures.push(`${soak.bundlesLost} bundles lost`);
if (soak.duplicates !== 0) failures.push(`${soak.duplicates} duplicates`);
if (failures.length > 0) {
  log("\nFAILED:");
  for (const f of failures) log(`- ${f}`);
  process.exitCode = 1;
} else {
  log("\n1 passed, 0 failed");
}
