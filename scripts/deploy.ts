// Deploys ModelRegistry to the network Hardhat was started with:
//   npx hardhat run scripts/deploy.ts --network <name>
// PROVENANT_PUBLISHER / PROVENANT_REVOKER name the accounts that get PUBLISHER_ROLE / REVOKER_ROLE (default: the
// deployer); PROVENANT_ROFL_APP_ID (`rofl1…`) switches ROFL mode on; PROVENANT_DEPLOYMENTS_DIR overrides where <network>.json goes (default: deployments/). Remote networks
// take the deployer key from PROVENANT_DEPLOYER_KEY (hardhat.config.ts). Code that wants to deploy by itself
// imports deployRegistry from lib/registry/deploy.ts (this file runs when imported).
import path from "node:path";
import { fileURLToPath } from "node:url";

import { network } from "hardhat";

import { deployRegistry } from "../lib/registry/deploy.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const connection = await network.getOrCreate();
const [signer] = await connection.ethers.getSigners();
if (signer === undefined) throw new Error(`network ${connection.networkName} has no account to deploy from`);
const env = process.env;
const deployment = await deployRegistry({
  signer,
  // Without --network Hardhat 3 calls the in-process network "default"; its file is the git-ignored hardhat.json.
  network: connection.networkName === "default" ? "hardhat" : connection.networkName,
  deploymentsDir: path.resolve(ROOT, env.PROVENANT_DEPLOYMENTS_DIR || "deployments"),
  ...(env.PROVENANT_PUBLISHER ? { publisher: env.PROVENANT_PUBLISHER } : {}),
  ...(env.PROVENANT_REVOKER ? { revoker: env.PROVENANT_REVOKER } : {}),
  ...(env.PROVENANT_ROFL_APP_ID ? { roflAppId: env.PROVENANT_ROFL_APP_ID } : {}),
});
console.log(`ModelRegistry deployed on ${deployment.network} (chain ${deployment.chainId}) at ${deployment.address}`);
console.log(`  tx ${deployment.txHash} in block ${deployment.block}`);
if (deployment.roflAppId !== undefined) console.log(`  ROFL mode: only app ${deployment.roflAppId} publishes`);
console.log(`  publisher ${deployment.publisher}, revoker ${deployment.revoker}, admin ${deployment.deployer}`);
await connection.close();
