// RFC 6962 / RFC 9162 Merkle trees: leaf and node hashing with domain separation, an append-only tree that keeps
// every perfect subtree hash (so roots and proofs for any earlier size cost O(log² n) lookups), inclusion and
// consistency proofs, and their verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 give the algorithms.
// Used by inference receipts (one log per serving key) and training traces (one tree per fine-tune).
import { createHash, timingSafeEqual } from "node:crypto";

import { MalformedInputError, VerificationError } from "../errors.ts";

export type Hash = Uint8Array;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 6962 §2.1: MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = new Uint8Array(createHash("sha256").digest());

/** RFC 6962 §2.1: the hash of a leaf entry, SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Hash {
  return new Uint8Array(createHash("sha256").update(LEAF_PREFIX).update(data).digest());
}

/** RFC 6962 §2.1: the hash of an interior node, SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return new Uint8Array(createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest());
}

/** The largest power of two strictly smaller than n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new MalformedInputError("MERKLE_INVALID", `${what} must be a non-negative integer, got ${value}`);
}

/**
 * An append-only RFC 6962 tree over leaf hashes. `levels[l][i]` is the hash of the perfect subtree over leaves
 * [i·2^l, (i+1)·2^l); every subtree that RFC 6962's recursion asks for is either one of those or splits into them.
 */
export class MerkleTree {
  private readonly levels: Hash[][] = [[]];

  /** A tree over these leaf hashes (each already `leafHash`ed). */
  constructor(leafHashes: Iterable<Hash> = []) {
    for (const h of leafHashes) this.append(h);
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Appends one leaf hash and returns its index. */
  append(hash: Hash): number {
    if (hash.length !== 32) throw new MalformedInputError("MERKLE_INVALID", "a leaf hash must be 32 bytes");
    const index = this.size;
    this.levels[0]!.push(hash);
    // Carry: every completed perfect subtree gets its hash on the level above.
    let level = 0;
    let i = index;
    while (i % 2 === 1) {
      const row = this.levels[level]!;
      const parent = nodeHash(row[i - 1]!, row[i]!);
      level += 1;
      if (this.levels[level] === undefined) this.levels[level] = [];
      this.levels[level]!.push(parent);
      i = (i - 1) / 2;
    }
    return index;
  }

  /** The leaf hash at `index`. */
  leaf(index: number): Hash {
    const h = this.levels[0]![index];
    if (h === undefined) throw new MalformedInputError("MERKLE_INVALID", `no leaf ${index} in a tree of ${this.size}`);
    return h;
  }

  /** MTH of the first `size` leaves (default: all). */
  root(size = this.size): Hash {
    this.checkTreeSize(size);
    return size === 0 ? EMPTY_ROOT : this.range(0, size);
  }

  /** RFC 6962 §2.1.1 PATH(index, D[0:size]): the audit path of leaf `index` in the tree of the first `size` leaves. */
  inclusionProof(index: number, size = this.size): Hash[] {
    this.checkTreeSize(size);
    checkSize(index, "index");
    if (index >= size)
      throw new MalformedInputError("MERKLE_INVALID", `leaf ${index} is not in a tree of size ${size}`);
    const proof: Hash[] = [];
    this.path(index, 0, size, proof);
    return proof;
  }

  /** RFC 6962 §2.1.2 PROOF(m, D[0:n]): shows that the tree of size `m` is a prefix of the tree of size `n`. */
  consistencyProof(m: number, n = this.size): Hash[] {
    this.checkTreeSize(n);
    checkSize(m, "old size");
    if (m > n) throw new MalformedInputError("MERKLE_INVALID", `old size ${m} is larger than new size ${n}`);
    const proof: Hash[] = [];
    if (m === 0 || m === n) return proof;
    this.subproof(m, 0, n, true, proof);
    return proof;
  }

  private checkTreeSize(size: number): void {
    checkSize(size, "tree size");
    if (size > this.size)
      throw new MalformedInputError("MERKLE_INVALID", `tree size ${size} is larger than the log (${this.size})`);
  }

  /** MTH(D[lo:hi]) for hi > lo, from the cached perfect subtrees. */
  private range(lo: number, hi: number): Hash {
    const n = hi - lo;
    if ((n & (n - 1)) === 0 && lo % n === 0) {
      const level = Math.log2(n);
      return this.levels[level]![lo / n]!;
    }
    const k = splitPoint(n);
    return nodeHash(this.range(lo, lo + k), this.range(lo + k, hi));
  }

  private path(m: number, lo: number, hi: number, out: Hash[]): void {
    const n = hi - lo;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      this.path(m, lo, lo + k, out);
      out.push(this.range(lo + k, hi));
    } else {
      this.path(m - k, lo + k, hi, out);
      out.push(this.range(lo, lo + k));
    }
  }

  private subproof(m: number, lo: number, hi: number, whole: boolean, out: Hash[]): void {
    const n = hi - lo;
    if (m === n) {
      if (!whole) out.push(this.range(lo, hi));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      this.subproof(m, lo, lo + k, whole, out);
      out.push(this.range(lo + k, hi));
    } else {
      this.subproof(m - k, lo + k, hi, false, out);
      out.push(this.range(lo, lo + k));
    }
  }
}

/** MTH over leaf hashes, without keeping a tree. */
export function rootOf(leafHashes: readonly Hash[]): Hash {
  return new MerkleTree(leafHashes).root();
}

function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkProofShape(proof: readonly Hash[]): void {
  if (proof.length > 64 || proof.some((h) => h.length !== 32))
    throw new MalformedInputError("MERKLE_INVALID", "a proof is at most 64 hashes of 32 bytes");
}

/** The root that an inclusion proof leads to (RFC 9162 §2.1.3.2), or undefined when its length is wrong. */
export function rootFromInclusionProof(
  leaf: Hash,
  index: number,
  size: number,
  proof: readonly Hash[],
): Hash | undefined {
  checkSize(index, "index");
  checkSize(size, "tree size");
  checkProofShape(proof);
  if (index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

/** Throws MERKLE_PROOF_INVALID unless `leaf` is at `index` of the tree of `size` leaves whose root is `root`. */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): void {
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (computed === undefined || !equalHash(computed, root))
    throw new VerificationError(
      "MERKLE_PROOF_INVALID",
      `the inclusion proof of leaf ${index} does not lead to the root of the tree of size ${size}`,
    );
}

/** Throws MERKLE_PROOF_INVALID unless the tree (size1, root1) is a prefix of (size2, root2) (RFC 9162 §2.1.4.2). */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Hash[],
  root1: Hash,
  root2: Hash,
): void {
  checkSize(size1, "old size");
  checkSize(size2, "new size");
  checkProofShape(proof);
  const fail = (why: string): never => {
    throw new VerificationError("MERKLE_PROOF_INVALID", `the consistency proof ${size1} → ${size2} fails: ${why}`);
  };
  if (size1 > size2) fail("the old tree is larger");
  if (size1 === size2) {
    if (proof.length !== 0) fail("a proof between equal sizes must be empty");
    if (!equalHash(root1, root2)) fail("equal sizes with different roots");
    return;
  }
  if (size1 === 0) {
    if (proof.length !== 0) fail("a proof from the empty tree must be empty");
    return;
  }
  if (proof.length === 0) fail("the proof is empty");
  const path = [...proof];
  // When size1 is a power of two, the old root itself starts the path.
  if ((size1 & (size1 - 1)) === 0) path.unshift(root1);
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) fail("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("the proof is too short");
  if (!equalHash(fr, root1)) fail("it does not lead to the old root");
  if (!equalHash(sr, root2)) fail("it does not lead to the new root");
}

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
