// Deploys ModelRegistry from the bytecode in ./abi.ts (no Hardhat artifacts needed), grants PUBLISHER_ROLE and
// REVOKER_ROLE, and writes deployments/<network>.json. scripts/deploy.ts wraps it for `hardhat run`; the demo calls it.
// On Sapphire chain ids the signer is wrapped with sapphire-ethers-v6 (DESIGN §6); elsewhere it is used as is.
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

/** What deployments/<network>.json holds. */
export interface Deployment {
  network: string;
  address: string;
  chainId: number;
  block: number;
  txHash: string;
  deployer: string;
  publisher: string;
  revoker: string;
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
  /** Gets PUBLISHER_ROLE; default: the deployer. */
  publisher?: string;
  /** Gets REVOKER_ROLE; default: the deployer. */
  revoker?: string;
  /** When given (`rofl1…` or bytes21 hex), ROFL mode is switched on: only that app's instances may publish. */
  roflAppId?: string;
  /** Where to write `<network>.json`; undefined: write nothing. */
  deploymentsDir?: string;
}

/** Deploys a registry and returns (and, with `deploymentsDir`, writes) its deployment record. */
export async function deployRegistry(options: DeployOptions): Promise<Deployment> {
  const provider = options.signer.provider;
  if (provider === null) throw new UsageError("the deployer signer has no provider");
  const chainId = (await provider.getNetwork()).chainId;
  const signer = SAPPHIRE_CHAIN_IDS.has(chainId) ? wrapEthersSigner(options.signer) : options.signer;
  const deployer = getAddress(await signer.getAddress());
  const publisher = toAddress(options.publisher ?? deployer, "publisher");
  const revoker = toAddress(options.revoker ?? deployer, "revoker");
  const roflAppId = options.roflAppId === undefined ? undefined : toRoflAppIdBytes(options.roflAppId);

  const factory = new ContractFactory(MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, signer);
  const contract = await factory.deploy(deployer);
  const deployTx = contract.deploymentTransaction();
  const receipt = deployTx === null ? null : await deployTx.wait();
  if (receipt === null || receipt.status !== 1) {
    throw new ProvenantError("io", "PUBLISH_FAILED", "the registry deployment transaction failed");
  }
  const address = getAddress(await contract.getAddress());
  const registry = new Contract(address, MODEL_REGISTRY_ABI, signer);
  for (const [role, account] of [
    ["PUBLISHER_ROLE", publisher],
    ["REVOKER_ROLE", revoker],
  ] as const) {
    const roleId = (await registry.getFunction(role)()) as string;
    const grant = await registry.getFunction("grantRole")(roleId, account);
    await grant.wait();
  }
  if (roflAppId !== undefined) await (await registry.getFunction("setRoflAppId")(roflAppId)).wait();

  const deployment: Deployment = {
    network: options.network,
    address,
    chainId: Number(chainId),
    block: receipt.blockNumber,
    txHash: receipt.hash,
    deployer,
    publisher,
    revoker,
    compiler: `solc ${MODEL_REGISTRY_COMPILER.version} (evm ${MODEL_REGISTRY_COMPILER.evmVersion}, optimizer runs ${MODEL_REGISTRY_COMPILER.optimizer.runs})`,
    deployedAt: new Date().toISOString(),
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
