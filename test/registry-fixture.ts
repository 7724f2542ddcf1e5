// Shared set-up for the registry tests and the gas benchmark: an in-process Hardhat network, a ModelRegistry
// deployed from lib/registry/abi.ts (what every TypeScript part uses), and the SUBCALL mock at the precompile address.
import { randomBytes } from "node:crypto";

import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { BaseContract, ContractTransactionResponse } from "ethers";
import hre from "hardhat";

import { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE } from "../lib/registry/abi.ts";

/** Address of Sapphire's SUBCALL precompile, as in @oasisprotocol/sapphire-contracts' Subcall.sol. */
export const SUBCALL_ADDRESS = "0x0100000000000000000000000000000000000103";
export const KIND_FINETUNE = 1;
export const KIND_AUDIT = 2;
export const KIND_SERVING = 3;

/** The `Attestation` struct as ethers encodes it (tuple order fixed by IModelRegistry). */
export interface AttestationInput {
  modelHash: string;
  manifestDigest: string;
  parentModelHash: string;
  measurementHash: string;
  policyDigest: string;
  reportedTcb: bigint;
  kind: number;
}

/** ModelRegistry's methods as the tests call them; ethers resolves them from the ABI at run time. */
export interface Registry extends BaseContract {
  publish(items: AttestationInput[], overrides?: { gasLimit?: bigint }): Promise<ContractTransactionResponse>;
  revoke(manifestDigest: string, reason: string): Promise<ContractTransactionResponse>;
  anchorCheckpoint(logId: string, treeSize: bigint | number, rootHash: string): Promise<ContractTransactionResponse>;
  checkpointRoot(logId: string, treeSize: bigint | number): Promise<string>;
  latestCheckpoint(logId: string): Promise<[bigint, string, bigint]>;
  logOf(logId: string): Promise<string>;
  setRoflAppId(appId: string): Promise<ContractTransactionResponse>;
  proposeRoflAppId(appId: string): Promise<ContractTransactionResponse>;
  acceptRoflAppId(): Promise<ContractTransactionResponse>;
  cancelRoflAppId(): Promise<ContractTransactionResponse>;
  pendingRoflAppId(): Promise<[string, bigint]>;
  defaultAdmin(): Promise<string>;
  owner(): Promise<string>;
  defaultAdminDelay(): Promise<bigint>;
  pendingDefaultAdmin(): Promise<[string, bigint]>;
  pendingDefaultAdminDelay(): Promise<[bigint, bigint]>;
  defaultAdminDelayIncreaseWait(): Promise<bigint>;
  beginDefaultAdminTransfer(newAdmin: string): Promise<ContractTransactionResponse>;
  cancelDefaultAdminTransfer(): Promise<ContractTransactionResponse>;
  acceptDefaultAdminTransfer(): Promise<ContractTransactionResponse>;
  changeDefaultAdminDelay(newDelay: bigint | number): Promise<ContractTransactionResponse>;
  rollbackDefaultAdminDelay(): Promise<ContractTransactionResponse>;
  grantRole(role: string, account: string): Promise<ContractTransactionResponse>;
  revokeRole(role: string, account: string): Promise<ContractTransactionResponse>;
  renounceRole(role: string, account: string): Promise<ContractTransactionResponse>;
  hasRole(role: string, account: string): Promise<boolean>;
  getRoleAdmin(role: string): Promise<string>;
  roflAppId(): Promise<string>;
  isRecorded(modelHash: string, manifestDigest: string): Promise<boolean>;
  latestManifest(modelHash: string): Promise<string>;
  manifestCount(modelHash: string): Promise<bigint>;
  manifestsOf(modelHash: string, offset: bigint | number, limit: bigint | number): Promise<string[]>;
  recordOf(manifestDigest: string): Promise<[string, bigint, bigint, boolean]>;
  supportsInterface(interfaceId: string): Promise<boolean>;
  PUBLISHER_ROLE(): Promise<string>;
  REVOKER_ROLE(): Promise<string>;
  DEFAULT_ADMIN_ROLE(): Promise<string>;
  MAX_BATCH_SIZE(): Promise<bigint>;
  connect(runner: HardhatEthersSigner): Registry;
}

/** The SUBCALL mock's test-only methods. */
export interface SubcallMock extends BaseContract {
  setAuthorized(appId: string, origin: string, authorized: boolean): Promise<ContractTransactionResponse>;
  isAuthorized(appId: string, origin: string): Promise<boolean>;
}

export type Connection = Awaited<ReturnType<typeof hre.network.create>>;

/** A random non-zero 32-byte hex value. */
export function randomHash(): string {
  return `0x${randomBytes(32).toString("hex")}`;
}

/** A valid attestation with random digests; `overrides` replaces fields. */
export function attestation(overrides: Partial<AttestationInput> = {}): AttestationInput {
  return {
    modelHash: randomHash(),
    manifestDigest: randomHash(),
    parentModelHash: randomHash(),
    measurementHash: randomHash(),
    policyDigest: randomHash(),
    reportedTcb: 0xdb18_0000_0000_0004n,
    kind: KIND_FINETUNE,
    ...overrides,
  };
}

/** Opens a fresh in-process network (each call gets its own chain). */
export async function connect(): Promise<Connection> {
  return hre.network.create();
}

/** Compiles the contracts when the artifacts are missing or stale (a fresh clone has none). */
export async function ensureBuilt(): Promise<void> {
  await hre.tasks.getTask("build").run({ quiet: true, noTests: true });
}

/**
 * Deploys ModelRegistry with `admin` as admin and `adminDelay` seconds of admin delay (default 0), from the bytecode
 * in lib/registry/abi.ts.
 */
export async function deployRegistry(
  connection: Connection,
  admin: HardhatEthersSigner,
  adminDelay: bigint | number = 0,
): Promise<Registry> {
  const factory = await connection.ethers.getContractFactory(
    MODEL_REGISTRY_ABI as unknown as unknown[],
    MODEL_REGISTRY_BYTECODE,
    admin,
  );
  const contract = await factory.deploy(admin.address, adminDelay);
  await contract.waitForDeployment();
  return contract as unknown as Registry;
}

/** Puts the SUBCALL mock's runtime code at the precompile address and returns a handle to it. */
export async function installSubcallMock(connection: Connection): Promise<SubcallMock> {
  await ensureBuilt();
  const artifact = await hre.artifacts.readArtifact("SubcallMock");
  await connection.provider.request({
    method: "hardhat_setCode",
    params: [SUBCALL_ADDRESS, artifact.deployedBytecode],
  });
  return connection.ethers.getContractAt(
    artifact.abi as unknown as unknown[],
    SUBCALL_ADDRESS,
  ) as unknown as Promise<SubcallMock>;
}
