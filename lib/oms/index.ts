// OpenSSF Model Signing (OMS) v1.0 for Provenant: model hashing (files and shards, worker pool), the root digest,
// and OMS signature files (Sigstore bundle v0.3 + DSSE) in key and certificate mode.
export {
  DEFAULT_IGNORE_PATHS,
  DEFAULT_SHARD_SIZE,
  comparePaths,
  compareResourceNames,
  hashModel,
  modelNameOf,
  type HashOptions,
} from "./hash.ts";
export {
  OMS_BUNDLE_MEDIA_TYPE,
  PREDICATE_OMS_COMPAT,
  keyHintOf,
  paeCompat,
  parseOmsSignature,
  signOmsStatement,
  toOmsManifest,
  verifyCertificateChain,
  verifyOmsSignature,
  writeOmsSignature,
  type OmsManifest,
  type OmsSignature,
  type OmsTrust,
} from "./signature.ts";
export {
  compareManifest,
  signModel,
  verifyModel,
  type ModelVerdict,
  type SignModelOptions,
  type VerifyModelOptions,
} from "./verify.ts";
export { sha256File } from "./range.ts";
export type { HashedFile, ModelHash, OmsResource, SerializationMethod } from "./types.ts";
