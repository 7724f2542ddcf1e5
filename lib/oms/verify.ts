// Signing and verifying a model directory with an OMS signature file, the way `model_signing sign|verify key|
// certificate` do: hash with the serialization the signature records, then require every signed file present and
// unchanged, no unsigned file outside the ignore paths, and the root digest equal to the signed subject.
import { createHash, type KeyObject, type X509Certificate } from "node:crypto";
import { resolve } from "node:path";

import { PolicyViolationError, ProvenantError, VerificationError } from "../errors.ts";
import { buildOmsStatement } from "../intoto/index.ts";
import { hashModel, modelNameOf, parseShardName, type HashOptions } from "./hash.ts";
import {
  parseOmsSignature,
  signOmsStatement,
  toOmsManifest,
  verifyOmsSignature,
  writeOmsSignature,
  type OmsManifest,
  type OmsSignature,
} from "./signature.ts";
import type { ModelHash } from "./types.ts";

export interface SignModelOptions extends Omit<HashOptions, "onProgress"> {
  privateKey: KeyObject;
  /** Where the signature will be written; ignored when hashing if it lies inside the model (OMS default). */
  signaturePath?: string;
  /** Certificate mode: DER certificates, the signing certificate first. */
  certificates?: readonly Uint8Array[];
  onProgress?: (done: number, total: number) => void;
}

/** Hashes and signs a model; returns the signature, its bytes (as model_signing writes them) and the hash. */
export async function signModel(
  modelPath: string,
  options: SignModelOptions,
): Promise<{ signature: OmsSignature; bytes: Uint8Array; hash: ModelHash }> {
  const { privateKey, signaturePath, certificates, ...hashOptions } = options;
  const ignorePaths = [...(hashOptions.ignorePaths ?? [])];
  if (signaturePath !== undefined) ignorePaths.push(resolve(signaturePath));
  const hash = await hashModel(modelPath, { ...hashOptions, ignorePaths });
  const statement = buildOmsStatement(modelNameOf(modelPath), hash);
  const signature = signOmsStatement(statement, privateKey, certificates === undefined ? {} : { certificates });
  return { signature, bytes: writeOmsSignature(signature), hash };
}

export interface VerifyModelOptions {
  publicKey?: KeyObject;
  trustedCertificates?: readonly X509Certificate[];
  /** Extra ignore paths (relative to the model root, or absolute). */
  ignorePaths?: string[];
  /** The signature file's path; ignored when it lies inside the model. */
  signaturePath?: string;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ModelVerdict {
  rootDigest: string;
  modelName: string;
  method: "files" | "shards";
  resources: number;
  hash: ModelHash;
}

const EMPTY_SHA256 = createHash("sha256").digest("hex");

/**
 * Verifies a model against an OMS signature file. Signature problems throw OMS_MALFORMED, OMS_BAD_SIGNATURE or
 * OMS_CHAIN_INVALID; content problems throw a PolicyViolationError collecting OMS_FILE_MISSING, OMS_FILE_CHANGED,
 * OMS_FILE_UNSIGNED and MODEL_DIGEST_MISMATCH (its code is the first one's).
 */
export async function verifyModel(
  modelPath: string,
  signatureBytes: Uint8Array,
  options: VerifyModelOptions,
): Promise<ModelVerdict> {
  const signature = parseOmsSignature(signatureBytes);
  const trust: { publicKey?: KeyObject; trustedCertificates?: readonly X509Certificate[] } = {};
  if (options.publicKey !== undefined) trust.publicKey = options.publicKey;
  if (options.trustedCertificates !== undefined) trust.trustedCertificates = options.trustedCertificates;
  const payload = verifyOmsSignature(signature, trust);
  const manifest = toOmsManifest(payload);

  const ignorePaths = [...manifest.ignorePaths, ...(options.ignorePaths ?? [])];
  if (options.signaturePath !== undefined) ignorePaths.push(resolve(options.signaturePath));
  const hashOptions: HashOptions = { method: manifest.method, allowSymlinks: manifest.allowSymlinks, ignorePaths };
  if (manifest.shardSize !== undefined) hashOptions.shardSize = manifest.shardSize;
  if (options.threads !== undefined) hashOptions.threads = options.threads;
  if (options.onProgress !== undefined) hashOptions.onProgress = options.onProgress;
  let hash: ModelHash;
  try {
    hash = await hashModel(modelPath, hashOptions);
  } catch (error) {
    // Every file gone: report what is missing rather than "nothing to hash".
    if (error instanceof ProvenantError && error.code === "OMS_MALFORMED" && manifest.resources.size > 0) {
      throw new PolicyViolationError([...manifest.resources.keys()].map((name) => missing(name)));
    }
    throw error;
  }
  compareManifest(manifest, hash);
  return {
    rootDigest: manifest.compat ? hash.rootDigest : manifest.rootDigest,
    modelName: manifest.modelName,
    method: manifest.method,
    resources: manifest.resources.size,
    hash,
  };
}

function missing(name: string): VerificationError {
  return new VerificationError("OMS_FILE_MISSING", `${name} is signed but missing`, { details: { name } });
}

/**
 * Collects every difference between the signed manifest and the model on disk. The manifest's root digest needs no
 * check here: toOmsManifest already refuses resources that do not hash to it, so equal resources mean an equal root.
 */
export function compareManifest(manifest: OmsManifest, hash: ModelHash): void {
  const actual = new Map(hash.resources.map((r) => [r.name, r.digest]));
  const files = new Map(hash.files.map((f) => [f.name, f]));
  if (manifest.method === "shards") {
    // Some reference versions record an empty file as one empty shard "path:0:0"; others record nothing.
    for (const f of hash.files) {
      if (f.size === 0 && manifest.resources.has(`${f.name}:0:0`)) actual.set(`${f.name}:0:0`, EMPTY_SHA256);
    }
  }
  const violations: VerificationError[] = [];
  const fileOf = (name: string) => (manifest.method === "shards" ? (parseShardName(name)?.path ?? name) : name);
  const reported = new Set<string>();
  for (const [name, digest] of manifest.resources) {
    const got = actual.get(name);
    const file = fileOf(name);
    if (reported.has(file)) continue;
    if (got === undefined && !files.has(file)) {
      violations.push(missing(file));
      reported.add(file);
    } else if (got !== digest) {
      violations.push(
        new VerificationError("OMS_FILE_CHANGED", `${file} does not match its signed digest`, {
          details: { name, expected: digest, actual: got ?? null },
        }),
      );
      reported.add(file);
    }
  }
  for (const name of actual.keys()) {
    const file = fileOf(name);
    if (!manifest.resources.has(name) && !reported.has(file)) {
      const signedFile = [...manifest.resources.keys()].some((n) => fileOf(n) === file);
      violations.push(
        signedFile
          ? new VerificationError("OMS_FILE_CHANGED", `${file} changed size`, { details: { name } })
          : new VerificationError("OMS_FILE_UNSIGNED", `${file} is not covered by the signature`, {
              details: { name },
            }),
      );
      reported.add(file);
    }
  }
  if (violations.length > 0) throw new PolicyViolationError(violations);
}
