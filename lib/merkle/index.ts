// RFC 6962 / RFC 9162 Merkle trees and C2SP checkpoints for Node: everything of the browser-safe core (lib/merkle/core:
// hashing, the append-only tree, inclusion and consistency proofs and their verification, the note and checkpoint
// text) and the signing and verification of notes with node:crypto keys (lib/merkle/checkpoint).
// Used by inference receipts (one log per serving key) and training traces (one tree per fine-tune).
export {
  EMPTY_ROOT,
  MAX_PROOF_HASHES,
  MerkleTree,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from "./core.ts";
export {
  formatCheckpoint,
  parseCheckpoint,
  parseNote,
  signNote,
  verifyNote,
  noteKeyId,
  type Checkpoint,
  type SignedNote,
} from "./checkpoint.ts";
