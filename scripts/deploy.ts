// Deploys ModelRegistry to the network Hardhat was started with:
//   npx hardhat run scripts/deploy.ts --network <name>
// Environment (all optional):
//   PROVENANT_PUBLISHER / PROVENANT_REVOKER   accounts that get PUBLISHER_ROLE / REVOKER_ROLE. Default: the deployer
//                                            on a development chain (id 31337), nobody elsewhere.
//   PROVENANT_ALLOW_DEPLOYER_ROLES=1          outside development chains, let the deployer (the admin) also be
//                                            publisher/revoker (and make it the default); without it that is refused.
//   PROVENANT_ADMIN_DELAY=<seconds>           defaultAdminDelay(): admin transfers and ROFL app id replacements wait
//                                            this long. Default 0 on development chains, 172800 (2 days) elsewhere.
//   PROVENANT_ROFL_APP_ID=rofl1…              switch ROFL mode on (one-way: it can later be replaced, never cleared).
//   PROVENANT_DEPLOYMENTS_DIR                 where <network>.json goes (default deployments/).
// Remote networks take the deployer key from PROVENANT_DEPLOYER_KEY (hardhat.config.ts). Code that deploys by itself
// imports deployRegistry from lib/registry/deploy.ts (this file runs when imported).
import path from "node:path";
import { fileURLToPath } from "node:url";

import { network } from "hardhat";

import { isProvenantError, UsageError } from "../lib/errors.ts";
import { deployRegistry, type DeployOptions } from "../lib/registry/deploy.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Reads a yes/no variable strictly: a typo must not silently mean "no". */
function flag(name: string, value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new UsageError(`${name} must be 1/true or 0/false: ${value}`);
}

/** Reads a whole number of seconds; deployRegistry checks the range. */
function seconds(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^[0-9]{1,15}$/.test(value)) throw new UsageError(`${name} must be a whole number of seconds: ${value}`);
  return Number(value);
}

/** The deploy options from the environment. */
function optionsFromEnv(env: NodeJS.ProcessEnv): Omit<DeployOptions, "signer" | "network"> {
  const adminDelaySeconds = seconds("PROVENANT_ADMIN_DELAY", env.PROVENANT_ADMIN_DELAY);
  return {
    deploymentsDir: path.resolve(ROOT, env.PROVENANT_DEPLOYMENTS_DIR || "deployments"),
    allowDeployerRoles: flag("PROVENANT_ALLOW_DEPLOYER_ROLES", env.PROVENANT_ALLOW_DEPLOYER_ROLES),
    ...(adminDelaySeconds === undefined ? {} : { adminDelaySeconds }),
    ...(env.PROVENANT_PUBLISHER ? { publisher: env.PROVENANT_PUBLISHER } : {}),
    ...(env.PROVENANT_REVOKER ? { revoker: env.PROVENANT_REVOKER } : {}),
    ...(env.PROVENANT_ROFL_APP_ID ? { roflAppId: env.PROVENANT_ROFL_APP_ID } : {}),
  };
}

const connection = await network.getOrCreate();
try {
  const options = optionsFromEnv(process.env);
  const [signer] = await connection.ethers.getSigners();
  if (signer === undefined) throw new UsageError(`network ${connection.networkName} has no account to deploy from`);
  const deployment = await deployRegistry({
    signer,
    // Without --network Hardhat 3 calls the in-process network "default"; its file is the git-ignored hardhat.json.
    network: connection.networkName === "default" ? "hardhat" : connection.networkName,
    ...options,
  });
  const kind = deployment.development ? "development chain" : "chain";
  console.log(
    `ModelRegistry deployed on ${deployment.network} (${kind} ${deployment.chainId}) at ${deployment.address}`,
  );
  console.log(`  tx ${deployment.txHash} in block ${deployment.block}`);
  console.log(`  admin ${deployment.deployer}, admin delay ${deployment.adminDelaySeconds} s`);
  console.log(`  publisher ${deployment.publisher ?? "none"}, revoker ${deployment.revoker ?? "none"}`);
  if (deployment.roflAppId !== undefined) console.log(`  ROFL mode: only app ${deployment.roflAppId} publishes`);
  if (deployment.publisher === null && deployment.roflAppId === undefined) {
    console.log("  nobody can publish yet: grantRole(PUBLISHER_ROLE, <verifier>) or setRoflAppId(<app id>) as admin");
  }
} catch (error) {
  if (!isProvenantError(error)) throw error;
  console.error(`deploy: ${error.code}: ${error.message}`);
  process.exitCode = error.code === "USAGE" ? 2 : 1;
} finally {
  await connection.close();
}
