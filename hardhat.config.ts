// Hardhat 3 configuration. Solidity compiles offline: solc 0.8.24 comes from the `solc` npm package (wasm)
// through the compiler `path` option, for the Shanghai EVM because Sapphire has no Cancun opcodes (no mcopy).
import { createRequire } from "node:module";
import path from "node:path";

import hardhatEthers from "@nomicfoundation/hardhat-ethers";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);
const soljson = path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js");

/** Accounts for remote networks come from the environment only; nothing secret is committed. */
const deployerKey = configVariable("PROVENANT_DEPLOYER_KEY");

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
  networks: {
    hardhat: { type: "edr-simulated", chainType: "l1", hardfork: "shanghai" },
    localhost: { type: "http", url: "http://127.0.0.1:8545" },
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
