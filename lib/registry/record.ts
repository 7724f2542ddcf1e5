// The registry's record, declared once for every part: the `Attestation` tuple of IModelRegistry as the verifier
// derives, stores and publishes it (AttestationRecord), and the same record as a reader gets it back from the chain,
// with what the chain adds (RegistryRecord). Browser-safe: no node: modules, no ethers.

/** `Attestation.kind` (contracts/IModelRegistry.sol): 1 fine-tune, 2 audit, 3 serving. The contract refuses others. */
export type AttestationKind = 1 | 2 | 3;

export const KIND_FINETUNE = 1 satisfies AttestationKind;
export const KIND_AUDIT = 2 satisfies AttestationKind;
/**
 * A serving statement binding a serving key to the model (DESIGN §12). Its record carries the key's log id,
 * SHA-256 of the key's DER SubjectPublicKeyInfo, in `parentModelHash` (required), which registers the log for
 * `anchorCheckpoint` (docs/contract.md).
 */
export const KIND_SERVING = 3 satisfies AttestationKind;

/** The name readers show for a kind (`lookup --json` `kind`, the explorer). */
export type RecordKind = "finetune" | "audit" | "serving";

const KIND_NAMES: Readonly<Record<AttestationKind, RecordKind>> = { 1: "finetune", 2: "audit", 3: "serving" };

export function isAttestationKind(value: unknown): value is AttestationKind {
  return value === 1 || value === 2 || value === 3;
}

export function toRecordKind(kind: AttestationKind): RecordKind {
  return KIND_NAMES[kind];
}

/** The fields of `IModelRegistry.Attestation`, in the struct's order (publish() takes tuples in this order). */
export const ATTESTATION_FIELDS = [
  "modelHash",
  "manifestDigest",
  "parentModelHash",
  "measurementHash",
  "policyDigest",
  "reportedTcb",
  "kind",
] as const;

/**
 * One `Attestation` in JSON form, as the verifier's pipeline derives it, its store keeps it and its publisher sends
 * it: every bytes32 as 0x + 64 lower-case hex (parentModelHash all zero for an audit), `reportedTcb` (uint64)
 * as a decimal string because JSON has no bigint.
 */
export interface AttestationRecord {
  modelHash: string;
  manifestDigest: string;
  /** The base model of a fine-tune; the serving key's log id for a serving record (kind 3); 0x00…00 for audits. */
  parentModelHash: string;
  /** SHA-256 of the SNP report's MEASUREMENT. */
  measurementHash: string;
  /** SHA-256 of the RFC 8785 form of the verifier policy that admitted the record. */
  policyDigest: string;
  /** REPORTED_TCB as uint64, decimal string. */
  reportedTcb: string;
  kind: AttestationKind;
}

/**
 * A record as a reader gets it back from the chain (offchain/client): the Attestation's fields from the views
 * (recordOf, manifestsOf) and the AttestationRecorded event, plus what the chain adds (publication time, revocation,
 * block, transaction). Digests are lower-case hex without 0x, like lib/oms root digests; fields that only the event
 * carries are null when the event could not be read.
 */
export interface RegistryRecord {
  modelHash: string;
  manifestDigest: string;
  /** The base model of a fine-tune; the log id for a serving record (kind 3: not lineage); null for audits. */
  parentModelHash: string | null;
  kind: RecordKind;
  kindCode: AttestationKind;
  /** When the registry stored it (recordOf publishedAt, seconds → Date). */
  publishedAt: Date;
  revoked: boolean;
  /** The reason given to revoke(); null when not revoked or not found within maxScanBlocks. */
  revocationReason: string | null;
  revokedInTx: string | null;
  /** From the AttestationRecorded event; null only when the event could not be read. */
  measurementHash: string | null;
  policyDigest: string | null;
  reportedTcb: bigint | null;
  blockNumber: number | null;
  txHash: string | null;
}

// A field added to the Attestation tuple must reach readers too: this fails to compile until RegistryRecord has it.
type MissingFromRegistryRecord = Exclude<(typeof ATTESTATION_FIELDS)[number], keyof RegistryRecord>;
type MissingFromAttestationRecord = Exclude<(typeof ATTESTATION_FIELDS)[number], keyof AttestationRecord>;
const everyFieldRead: [MissingFromRegistryRecord, MissingFromAttestationRecord] extends [never, never] ? true : never =
  true;
void everyFieldRead;
