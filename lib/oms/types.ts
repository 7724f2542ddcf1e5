// The result of hashing a model the OMS v1.0 way (DESIGN §3.1). Kept in its own file so that lib/intoto can import
// the type without loading the hashing code.

export type SerializationMethod = "files" | "shards";

/** One OMS resource: a file (`files`) or a byte range `path:start:end` (`shards`). */
export interface OmsResource {
  name: string;
  /** Hex SHA-256 of the file or of the byte range. */
  digest: string;
  /** "sha256" when written by Provenant; older reference versions wrote "sha256-sharded-<size>" for shards. */
  algorithm: string;
}

export interface HashedFile {
  /** Relative POSIX path from the model root ("." style names never appear: a single file model uses its basename). */
  name: string;
  /**
   * Hex digest. `files`: SHA-256 of the file. `shards`: SHA-256 over the file's raw shard digests in offset order
   * (a per-file summary; the OMS resources carry the shard digests themselves).
   */
  digest: string;
  size: number;
}

export interface ModelHash {
  /** OMS root digest: hex SHA-256 over the raw resource digests, resources sorted as OMS sorts them. */
  rootDigest: string;
  method: SerializationMethod;
  files: HashedFile[];
  /** The OMS predicate resources, in OMS order. */
  resources: OmsResource[];
  /** Model name as OMS records it: the last component of the model path. */
  modelName: string;
  /** Set when method is "shards". */
  shardSize?: number;
  /** Ignore paths relative to the model root, as recorded in the OMS serialization. */
  ignorePaths: string[];
  allowSymlinks: boolean;
  totalBytes: number;
}
