// Deploys ModelRegistry from the bytecode in ./abi.ts (no Hardhat artifacts needed), grants PUBLISHER_ROLE and
// REVOKER_ROLE as asked, and writes deployments/<network>.json. scripts/deploy.ts wraps it for `hardhat run`; the
// demo and the test helpers call it. On Sapphire chain ids the signer is wrapped with sapphire-ethers-v6 (DESIGN §6).
// Outside development chains (id 31337) one key must not hold every power: the deployer, who is the admin, gets
// neither publisher nor revoker unless `allowDeployerRoles` says so, and admin changes wait 2 days by default.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

import { wrapEthersSigner } from "@oasisprotocol/sapphire-ethers-v6";
import { Contract, ContractFactory, getAddress, isAddress } from "ethers";
import type { Signer } from "ethers";

import { IoError, ProvenantError, UsageError } from "../errors.ts";
import { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, MODEL_REGISTRY_COMPILER } from "./abi.ts";
import { toRoflAppIdBytes } from "./rofl.ts";

/** Chain ids of Sapphire mainnet, testnet and localnet, where calls are encrypted. */
export const SAPPHIRE_CHAIN_IDS: ReadonlySet<bigint> = new Set([23294n, 23295n, 23293n]);

/**
 * Development chains: Hardhat's (and anvil's) 31337, whatever the network is called. Only there does the deployer get
 * the publisher and revoker roles by default and the admin delay default to 0. A `localhost` network pointing at a
 * node with another chain id (a Sapphire localnet, a fork) is treated like a real one.
 */
export const DEVELOPMENT_CHAIN_IDS: ReadonlySet<bigint> = new Set([31337n]);

/** Admin delay outside development chains: an admin transfer or a ROFL app id replacement waits this long (2 days). */
export const DEFAULT_ADMIN_DELAY_SECONDS = 2 * 24 * 60 * 60;

/** Largest admin delay the contract takes (uint48 seconds). */
const MAX_ADMIN_DELAY_SECONDS = 2 ** 48 - 1;

/** What deployments/<network>.json holds. */
export interface Deployment {
  network: string;
  address: string;
  chainId: number;
  block: number;
  txHash: string;
  /** The deploying account, which is the admin (DEFAULT_ADMIN_ROLE). */
  deployer: string;
  /** The account granted PUBLISHER_ROLE, null when none was. */
  publisher: string | null;
  /** The account granted REVOKER_ROLE, null when none was. */
  revoker: string | null;
  /** Seconds an admin transfer or a ROFL app id replacement must wait (`defaultAdminDelay()`). */
  adminDelaySeconds: number;
  /** Whether the chain counted as a development chain (DEVELOPMENT_CHAIN_IDS). */
  development: boolean;
  compiler: string;
  deployedAt: string;
  /** The ROFL app id set at deployment (bytes21 hex), when one was given. */
  roflAppId?: string;
}

export interface DeployOptions {
  /** Deploys and becomes the admin (DEFAULT_ADMIN_ROLE). Needs a provider. */
  signer: Signer;
  /** Name used for the file name and in the record, e.g. "sapphire-testnet". */
  network: string;
  /**
   * Gets PUBLISHER_ROLE. Default: the deployer on a development chain (or with `allowDeployerRoles`), else nobody
   * (grant it later, or publish from a ROFL app).
   */
  publisher?: string;
  /** Gets REVOKER_ROLE. Default: as `publisher`. */
  revoker?: string;
  /**
   * Outside development chains, lets the deployer (the admin) also be publisher or revoker, and makes it the default
   * for both. Without it, naming the deployer is refused (USAGE) before anything is sent.
   */
  allowDeployerRoles?: boolean;
  /** `defaultAdminDelay()` in seconds; default 0 on development chains, DEFAULT_ADMIN_DELAY_SECONDS elsewhere. */
  adminDelaySeconds?: number;
  /** When given (`rofl1…` or bytes21 hex), ROFL mode is switched on: only that app's instances may publish. */
  roflAppId?: string;
  /** Where to write `<network>.json`; undefined: write nothing. */
  deploymentsDir?: string;
  /** The time written as `deployedAt`; default the clock. */
  now?: () => Date;
}

/** Whether `chainId` is a development chain (DEVELOPMENT_CHAIN_IDS). */
export function isDevelopmentChain(chainId: bigint): boolean {
  return DEVELOPMENT_CHAIN_IDS.has(chainId);
}

/** Who gets which role and the admin delay, decided before anything is sent. */
interface RolePlan {
  publisher: string | null;
  revoker: string | null;
  adminDelaySeconds: number;
}

/** Applies the defaults and refuses what is not allowed on this chain (USAGE), without touching the chain. */
export function planRoles(options: DeployOptions, deployer: string, development: boolean): RolePlan {
  const deployerMayHoldRoles = development || options.allowDeployerRoles === true;
  const fallback = deployerMayHoldRoles ? deployer : null;
  const publisher = options.publisher === undefined ? fallback : toAddress(options.publisher, "publisher");
  const revoker = options.revoker === undefined ? fallback : toAddress(options.revoker, "revoker");
  if (!deployerMayHoldRoles) {
    for (const [role, account] of [
      ["PUBLISHER_ROLE", publisher],
      ["REVOKER_ROLE", revoker],
    ] as const) {
      if (account === deployer) {
        throw new UsageError(
          `refusing to give the deployer ${deployer}, which is the admin, ${role} on a non-development chain: ` +
            `name another account, or allow it explicitly (PROVENANT_ALLOW_DEPLOYER_ROLES=1 / allowDeployerRoles)`,
        );
      }
    }
  }
  const adminDelaySeconds = options.adminDelaySeconds ?? (development ? 0 : DEFAULT_ADMIN_DELAY_SECONDS);
  if (
    !Number.isSafeInteger(adminDelaySeconds) ||
    adminDelaySeconds < 0 ||
    adminDelaySeconds > MAX_ADMIN_DELAY_SECONDS
  ) {
    throw new UsageError(`the admin delay must be a whole number of seconds from 0 to 2^48-1: ${adminDelaySeconds}`);
  }
  return { publisher, revoker, adminDelaySeconds };
}

/** Deploys a registry and returns (and, with `deploymentsDir`, writes) its deployment record. */
export async function deployRegistry(options: DeployOptions): Promise<Deployment> {
  const provider = options.signer.provider;
  if (provider === null) throw new UsageError("the deployer signer has no provider");
  const chainId = (await provider.getNetwork()).chainId;
  const development = isDevelopmentChain(chainId);
  const signer = SAPPHIRE_CHAIN_IDS.has(chainId) ? wrapEthersSigner(options.signer) : options.signer;
  const deployer = getAddress(await signer.getAddress());
  const plan = planRoles(options, deployer, development);
  const roflAppId = options.roflAppId === undefined ? undefined : toRoflAppIdBytes(options.roflAppId);

  const factory = new ContractFactory(MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, signer);
  const contract = await factory.deploy(deployer, plan.adminDelaySeconds);
  const deployTx = contract.deploymentTransaction();
  const receipt = deployTx === null ? null : await deployTx.wait();
  if (receipt === null || receipt.status !== 1) {
    throw new ProvenantError("io", "PUBLISH_FAILED", "the registry deployment transaction failed");
  }
  const address = getAddress(await contract.getAddress());
  const registry = new Contract(address, MODEL_REGISTRY_ABI, signer);
  for (const [role, account] of [
    ["PUBLISHER_ROLE", plan.publisher],
    ["REVOKER_ROLE", plan.revoker],
  ] as const) {
    if (account === null) continue;
    const roleId = (await registry.getFunction(role)()) as string;
    const grant = await registry.getFunction("grantRole")(roleId, account);
    await grant.wait();
  }
  // The first app id takes effect at once (it only narrows who may publish); replacing it later waits the delay.
  if (roflAppId !== undefined) await (await registry.getFunction("setRoflAppId")(roflAppId)).wait();

  const deployment: Deployment = {
    network: options.network,
    address,
    chainId: Number(chainId),
    block: receipt.blockNumber,
    txHash: receipt.hash,
    deployer,
    publisher: plan.publisher,
    revoker: plan.revoker,
    adminDelaySeconds: plan.adminDelaySeconds,
    development,
    compiler: `solc ${MODEL_REGISTRY_COMPILER.version} (evm ${MODEL_REGISTRY_COMPILER.evmVersion}, optimizer runs ${MODEL_REGISTRY_COMPILER.optimizer.runs})`,
    deployedAt: (options.now?.() ?? new Date()).toISOString(),
    ...(roflAppId === undefined ? {} : { roflAppId }),
  };
  if (options.deploymentsDir !== undefined) await writeDeployment(options.deploymentsDir, deployment);
  return deployment;
}

/** Writes `<dir>/<network>.json`. */
export async function writeDeployment(dir: string, deployment: Deployment): Promise<string> {
  const file = path.join(dir, `${deployment.network}.json`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, JSON.stringify(deployment, null, 2) + "\n");
  } catch (cause) {
    throw new IoError("IO_ERROR", `cannot write ${file}`, { cause });
  }
  return file;
}

function toAddress(value: string, what: string): string {
  if (!isAddress(value)) throw new UsageError(`the ${what} address is not an address: ${value}`);
  return getAddress(value);
}
