// Hardhat 3 configuration. Solidity compiles offline: solc 0.8.24 comes from the `solc` npm package (wasm)
// through the compiler `path` option, for the Shanghai EVM because Sapphire has no Cancun opcodes (no mcopy).
import { createRequire } from "node:module";
import path from "node:path";

import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import { configVariable, defineConfig, overrideTask } from "hardhat/config";

const require = createRequire(import.meta.url);
const soljson = path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js");

/** Accounts for remote networks come from the environment only; nothing secret is committed. */
const deployerKey = configVariable("PROVENANT_DEPLOYER_KEY");

/** Fuzz runs from PROVENANT_FUZZ_RUNS (a positive integer), 256 when unset. */
function fuzzRuns(): number {
  const value = process.env.PROVENANT_FUZZ_RUNS;
  if (value === undefined || value === "") return 256;
  const runs = Number(value);
  if (!Number.isSafeInteger(runs) || runs < 1)
    throw new Error(`PROVENANT_FUZZ_RUNS must be a positive integer: ${value}`);
  return runs;
}

/**
 * The fuzzer's seed from PROVENANT_FUZZ_SEED (the integer the TypeScript fuzz tests print), as the 256-bit hex Hardhat
 * takes; unset: Hardhat's own fixed default seed, so `npm test` runs the same cases every time.
 */
function fuzzSeed(): { seed: string } | Record<string, never> {
  const value = process.env.PROVENANT_FUZZ_SEED;
  if (value === undefined || value === "") return {};
  const seed = Number(value);
  if (!/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(value) || !Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff)
    throw new Error(`PROVENANT_FUZZ_SEED must be an integer in [0, 2^32): ${value}`);
  return { seed: `0x${seed.toString(16).padStart(64, "0")}` };
}

export default defineConfig({
  plugins: [hardhatEthers],
  solidity: {
    version: "0.8.24",
    path: soljson,
    settings: {
      evmVersion: "shanghai",
      optimizer: { enabled: true, runs: 10_000 },
    },
  },
  paths: {
    sources: "./contracts",
    tests: { solidity: "./contracts/test" },
  },
  // Fuzz runs per Solidity fuzz test: 256 in `npm test`; the reliability suite raises it to 5,000
  // (test/reliability/run.ts sets PROVENANT_FUZZ_RUNS from PROVENANT_CONTRACT_FUZZ_RUNS, default 5000).
  // PROVENANT_FUZZ_SEED replays a run with another seed (docs/testing.md).
  test: { solidity: { fuzz: { runs: fuzzRuns(), ...fuzzSeed() } } },
  tasks: [
    // `hardhat test solidity` prints the fuzz seed in effect first, so that a failing run's output names its seed.
    overrideTask(["test", "solidity"])
      .setInlineAction(async (args, hre, runSuper) => {
        const seeds = [...new Set(Object.values(hre.config.test.solidity.profiles).map((p) => p.fuzz.seed))];
        const env = process.env.PROVENANT_FUZZ_SEED;
        const how = env === undefined || env === "" ? "Hardhat's default" : `PROVENANT_FUZZ_SEED=${env}`;
        console.log(`solidity fuzz seed ${seeds.join(", ")} (${how})`);
        return runSuper(args);
      })
      .build(),
  ],
  networks: {
    hardhat: { type: "edr-simulated", chainType: "l1", hardfork: "shanghai" },
    // PROVENANT_LOCALHOST_URL points `--network localhost` at another local node (the deploy test starts one).
    localhost: { type: "http", url: process.env.PROVENANT_LOCALHOST_URL || "http://127.0.0.1:8545" },
    "sapphire-localnet": { type: "http", url: "http://localhost:8545", chainId: 23293, accounts: [deployerKey] },
    "sapphire-testnet": {
      type: "http",
      url: "https://testnet.sapphire.oasis.io",
      chainId: 23295,
      accounts: [deployerKey],
    },
    sapphire: { type: "http", url: "https://sapphire.oasis.io", chainId: 23294, accounts: [deployerKey] },
  },
});
