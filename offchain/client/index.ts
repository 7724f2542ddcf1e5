// The registry client SDK for Node: everything of the browser-safe core, plus `network` names resolved through
// deployments/<network>.json (address, chainId, deployment block) and the known public endpoints.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import type { Provider } from "ethers";

import { IoError, MalformedInputError, UsageError } from "../../lib/errors.ts";
import { connectRegistryClient, DEFAULT_LOG_RANGE, type RegistryClient } from "./core.ts";
import { NETWORKS } from "./networks.ts";

export {
  connectRegistryClient,
  DEFAULT_LOG_RANGE,
  DEFAULT_MAX_SCAN_BLOCKS,
  fromBytes32,
  isHash,
  recordToJson,
  toBytes32,
} from "./core.ts";
export type {
  AnchoredCheckpoint,
  ClientOptions,
  LineageStep,
  LookupResult,
  RecordKind,
  RegistryClient,
  RegistryEvent,
  RegistryRecord,
  RevocationTime,
  WatchOptions,
} from "./core.ts";
// Receipts (DESIGN §12): offchain/client/receipt.ts (Node, runs the verifier's pipeline on the serving bundle) and
// offchain/client/receipt-core.ts (browser-safe checks), imported from there so that a lookup does not load them.
// Usage statements of a serving log: offchain/client/usage.ts (fetchServingUsage; checkUsage, browser-safe).
export { NETWORKS } from "./networks.ts";
export type { NetworkInfo } from "./networks.ts";

export const DEFAULT_DEPLOYMENTS_DIR = fileURLToPath(new URL("../../deployments/", import.meta.url));

export interface Deployment {
  address: string;
  chainId: number;
  block?: number;
  txHash?: string;
}

export interface CreateClientOptions {
  rpcUrl?: string;
  provider?: Provider;
  /** The registry address; or `network`, whose deployments/<network>.json names it. */
  address?: string;
  network?: string;
  deploymentsDir?: string;
  /** Overrides the chain id the deployment file names. */
  chainId?: number;
  fromBlock?: number;
  logRange?: number;
  maxScanBlocks?: number;
  timeoutMs?: number;
}

/** Reads deployments/<network>.json; REGISTRY_NOT_FOUND when there is none or it names no address. */
export async function readDeployment(network: string, deploymentsDir = DEFAULT_DEPLOYMENTS_DIR): Promise<Deployment> {
  if (!/^[A-Za-z0-9_.-]+$/.test(network)) throw new UsageError(`invalid network name '${network}'`);
  const file = path.join(deploymentsDir, `${network}.json`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new IoError("REGISTRY_NOT_FOUND", `no deployment for network '${network}' (${file}); deploy first`, {
      cause: error,
      details: { network, file },
    });
  }
  const d = json as Partial<Deployment>;
  if (typeof d.address !== "string" || typeof d.chainId !== "number") {
    throw new MalformedInputError("REGISTRY_NOT_FOUND", `${file} lacks address or chainId`, { details: { file } });
  }
  return d as Deployment;
}

/**
 * Creates a client from an RPC URL or provider plus an address, or from a network name (address, chain id and
 * deployment block from deployments/<network>.json; RPC from the known public endpoints unless given).
 */
export async function createRegistryClient(options: CreateClientOptions): Promise<RegistryClient> {
  let address = options.address;
  let chainId = options.chainId;
  let fromBlock = options.fromBlock;
  let rpcUrl = options.rpcUrl;
  let logRange = options.logRange;
  if (options.network !== undefined) {
    const known = NETWORKS[options.network];
    if (address === undefined) {
      const deployment = await readDeployment(options.network, options.deploymentsDir);
      address = deployment.address;
      chainId ??= deployment.chainId;
      fromBlock ??= deployment.block;
    }
    chainId ??= known?.chainId;
    logRange ??= known?.logRange;
    if (rpcUrl === undefined && options.provider === undefined) {
      if (known === undefined) throw new UsageError(`unknown network '${options.network}': give --rpc`);
      rpcUrl = known.rpcUrl;
    }
  }
  if (address === undefined) throw new UsageError("a registry address or a network name is needed");
  return connectRegistryClient({
    address,
    logRange: logRange ?? DEFAULT_LOG_RANGE,
    ...(rpcUrl === undefined ? {} : { rpcUrl }),
    ...(options.provider === undefined ? {} : { provider: options.provider }),
    ...(chainId === undefined ? {} : { chainId }),
    ...(fromBlock === undefined ? {} : { fromBlock }),
    ...(options.maxScanBlocks === undefined ? {} : { maxScanBlocks: options.maxScanBlocks }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}
