// The registry as TypeScript sees it: the ABI and bytecode (generated from the contract) and the deploy helper.
export { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, MODEL_REGISTRY_COMPILER } from "./abi.ts";
export { SAPPHIRE_CHAIN_IDS, deployRegistry, writeDeployment } from "./deploy.ts";
export type { DeployOptions, Deployment } from "./deploy.ts";
export { decodeBech32, encodeBech32, toRoflAppIdBech32, toRoflAppIdBytes } from "./rofl.ts";

/** `Attestation.kind` values (IModelRegistry). */
export const KIND_FINETUNE = 1;
export const KIND_AUDIT = 2;
