// SHA-256 (FIPS 180-4) and digest comparison for Node and the explorer page alike: Node's crypto module where there is
// one, found at run time with process.getBuiltinModule (browsers lack it, so this module imports no Node built-in and
// the page's build stays free of them), else @noble/hashes and a branch-free loop. The same digest either way.
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

import { equalBytes } from "../encoding/index.ts";

/** An incremental SHA-256: Node's Hash or noble's, both chainable. */
export interface Sha256 {
  update(data: Uint8Array): Sha256;
  digest(): Uint8Array;
}

interface NodeCrypto {
  createHash(algorithm: "sha256"): Sha256;
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

const nodeCrypto = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.("crypto") as NodeCrypto | undefined;

/**
 * A new incremental SHA-256. Natively it costs a fifth of what it does in JavaScript (the verifier's pipeline, the
 * serving log's tree); its digest may be a Buffer on Node, so copy it (`new Uint8Array`) where a plain one is needed.
 */
export const createSha256: () => Sha256 =
  nodeCrypto === undefined ? () => nobleSha256.create() : () => nodeCrypto.createHash("sha256");

/** SHA-256 of `data`, as a plain Uint8Array. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createSha256().update(data).digest());
}

/**
 * Whether two digests are equal, in time that depends only on their lengths: Node's timingSafeEqual where there is
 * one, else lib/encoding equalBytes (branch-free, though not secret-grade in JS engines).
 */
export function equalDigests(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return nodeCrypto === undefined ? equalBytes(a, b) : nodeCrypto.timingSafeEqual(a, b);
}
