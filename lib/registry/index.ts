// The registry as TypeScript sees it: the ABI and bytecode (generated from the contract), the record type (record.ts,
// declared once for the verifier, its store and the client), ROFL app ids and the deploy helper.
export { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, MODEL_REGISTRY_COMPILER } from "./abi.ts";
export {
  DEFAULT_ADMIN_DELAY_SECONDS,
  DEVELOPMENT_CHAIN_IDS,
  SAPPHIRE_CHAIN_IDS,
  deployRegistry,
  isDevelopmentChain,
  writeDeployment,
} from "./deploy.ts";
export type { DeployOptions, Deployment } from "./deploy.ts";
export { decodeBech32, encodeBech32, toRoflAppIdBech32, toRoflAppIdBytes } from "./rofl.ts";
export {
  ATTESTATION_FIELDS,
  isAttestationKind,
  KIND_AUDIT,
  KIND_FINETUNE,
  KIND_SERVING,
  toRecordKind,
} from "./record.ts";
export type { AttestationKind, AttestationRecord, RecordKind, RegistryRecord } from "./record.ts";
