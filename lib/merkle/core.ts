// RFC 6962 / RFC 9162 Merkle trees and C2SP checkpoints, browser-safe (no node:* module: SHA-256 through lib/hash,
// Node's crypto when there is one): leaf and node hashing, an append-only tree that keeps every perfect subtree hash,
// inclusion and consistency proofs and their verification (RFC 9162 §2.1.3.2, §2.1.4.2), and the text of C2SP signed
// notes and checkpoints. lib/merkle/index.ts adds the Node signing of notes; the explorer verifies them with WebCrypto.
import { fromBase64, toBase64 } from "../encoding/index.ts";
import { MalformedInputError, VerificationError } from "../errors.ts";
import { createSha256, equalDigests, sha256 } from "../hash/index.ts";

export type Hash = Uint8Array;

/** Most hashes a proof may hold: a tree of 2^64 leaves needs 64 (RFC 9162 §2.1.3.2 walks one per level). */
export const MAX_PROOF_HASHES = 64;

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 6962 §2.1: MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = new Uint8Array(createSha256().digest());

/** RFC 6962 §2.1: the hash of a leaf entry, SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Hash {
  return new Uint8Array(createSha256().update(LEAF_PREFIX).update(data).digest());
}

/** RFC 6962 §2.1: the hash of an interior node, SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return new Uint8Array(createSha256().update(NODE_PREFIX).update(left).update(right).digest());
}

/** The largest power of two strictly smaller than n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Whether `n` (a safe integer) is a power of two. Arithmetic, not `n & (n - 1)`: JavaScript's bitwise operators work on
 * 32 bits, so that test misjudges tree sizes from 2^32 up (RFC 9162 sizes are 64-bit; the registry stores uint64).
 */
export function isPowerOfTwo(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 1) return false;
  let x = n;
  while (x % 2 === 0) x /= 2;
  return x === 1;
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
    if (isPowerOfTwo(n) && lo % n === 0) {
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

function checkProofShape(proof: readonly Hash[]): void {
  if (proof.length > MAX_PROOF_HASHES || proof.some((h) => h.length !== 32))
    throw new MalformedInputError("MERKLE_INVALID", `a proof is at most ${MAX_PROOF_HASHES} hashes of 32 bytes`);
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
  if (computed === undefined || !equalDigests(computed, root))
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
    if (!equalDigests(root1, root2)) fail("equal sizes with different roots");
    return;
  }
  if (size1 === 0) {
    if (proof.length !== 0) fail("a proof from the empty tree must be empty");
    return;
  }
  if (proof.length === 0) fail("the proof is empty");
  const path = [...proof];
  // When size1 is a power of two, the old root itself starts the path.
  if (isPowerOfTwo(size1)) path.unshift(root1);
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
  if (!equalDigests(fr, root1)) fail("it does not lead to the old root");
  if (!equalDigests(sr, root2)) fail("it does not lead to the new root");
}

// ── C2SP checkpoints (c2sp.org/tlog-checkpoint) inside C2SP signed notes (c2sp.org/signed-note) ──────────────────
// The text "<origin>\n<tree size>\n<base64 root>\n[extension lines]" and signature lines "— <key name> base64(keyID ‖
// sig)". Signatures are type 0x02 (ECDSA, as transparency-dev's witness implements it): key ID = SHA-256(DER SPKI)[:4],
// the signature an ASN.1 DER ECDSA signature over SHA-256 of the note text. Parsing is strict and bounded.

export interface Checkpoint {
  /** The log's origin line, e.g. "provenant.dev/serving/<keyid>". */
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** Optional extension lines after the root, each without its newline. */
  extensions: string[];
}

export interface SignedNote {
  /** The note text, ending in a newline (what is signed). */
  text: string;
  signatures: { name: string; keyId: Uint8Array; signature: Uint8Array }[];
}

/** Largest signed note read, in UTF-8 bytes (a checkpoint note is a few hundred). */
export const MAX_NOTE_BYTES = 64 * 1024;
/** Most signature lines a note may carry. */
export const MAX_NOTE_SIGNATURES = 16;
const EM_DASH = "\u2014";
const utf8 = new TextEncoder();

/** Whether `text` holds an ASCII control character (below U+0020), newline included unless allowed. */
function hasControl(text: string, allowNewline = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && !(allowNewline && c === 0x0a)) return true;
  }
  return false;
}

function bad(message: string): MalformedInputError {
  return new MalformedInputError("CHECKPOINT_INVALID", message);
}

/** Standard base64 with padding, canonical (the one encoding of its bytes), as C2SP notes write it. */
function strictBase64(text: string, what: string): Uint8Array {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text))
    throw bad(`${what} is not standard base64`);
  const bytes = fromBase64(text);
  if (bytes === undefined || toBase64(bytes) !== text) throw bad(`${what} is not canonical base64`);
  return bytes;
}

/** The checkpoint body (the note text): origin, decimal size, base64 root, extension lines; ends in "\n". */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  if (checkpoint.origin === "" || /^\s/.test(checkpoint.origin) || hasControl(checkpoint.origin))
    throw bad("the origin must be one line of text");
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw bad("the tree size must be an integer");
  if (checkpoint.rootHash.length !== 32) throw bad("the root hash must be 32 bytes");
  for (const line of checkpoint.extensions)
    if (line === "" || hasControl(line)) throw bad("an extension line must be non-empty text");
  return [checkpoint.origin, String(checkpoint.size), toBase64(checkpoint.rootHash), ...checkpoint.extensions]
    .map((line) => `${line}\n`)
    .join("");
}

/** Reads a checkpoint body (the text of a signed note). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith("\n")) throw bad("a checkpoint ends in a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw bad("a checkpoint has an origin, a size and a root hash");
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === "" || hasControl(origin)) throw bad("the origin line is empty or has control characters");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw bad("the tree size is not a decimal number");
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw bad("the tree size is too large");
  const rootHash = strictBase64(rootText, "the root hash");
  if (rootHash.length !== 32) throw bad("the root hash is not 32 bytes");
  if (extensions.some((line) => line === "")) throw bad("a checkpoint has no empty lines");
  return { origin, size, rootHash, extensions };
}

/** C2SP signed-note key ID of an ECDSA key (type 0x02): the first 4 bytes of SHA-256 of its DER SPKI. */
export function noteKeyIdOf(spki: Uint8Array): Uint8Array {
  return sha256(spki).slice(0, 4);
}

/** CHECKPOINT_INVALID unless `name` can name a note's key: non-empty, without spaces, '+' or control characters. */
export function checkNoteKeyName(name: string): void {
  if (name === "" || /[\s+]/u.test(name) || hasControl(name))
    throw bad("a key name is non-empty, without spaces or '+'");
}

/** One signature line of a note, "— <name> base64(keyID ‖ signature)\n". */
export function formatNoteSignature(name: string, keyId: Uint8Array, signature: Uint8Array): string {
  checkNoteKeyName(name);
  const blob = new Uint8Array(keyId.length + signature.length);
  blob.set(keyId);
  blob.set(signature, keyId.length);
  return `${EM_DASH} ${name} ${toBase64(blob)}\n`;
}

/** Splits a signed note into its text and signature lines (strict: UTF-8 text, no control characters, bounded). */
export function parseNote(note: string): SignedNote {
  // A UTF-16 code unit is at least one UTF-8 byte: the length bounds the encoding's cost before it is paid.
  if (note.length > MAX_NOTE_BYTES || utf8.encode(note).length > MAX_NOTE_BYTES)
    throw bad(`a note is at most ${MAX_NOTE_BYTES} bytes`);
  if (hasControl(note, true)) throw bad("a note has no control characters but newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw bad("a note is text, a blank line and signature lines");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length === 0 || lines.length > MAX_NOTE_SIGNATURES)
    throw bad(`a note has 1 to ${MAX_NOTE_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (match === null) throw bad("a signature line is '— <name> <base64>'");
    const blob = strictBase64(match[2]!, "a signature");
    if (blob.length < 5) throw bad("a signature holds a key ID and a signature");
    return { name: match[1]!, keyId: blob.subarray(0, 4), signature: blob.subarray(4) };
  });
  return { text, signatures };
}

/** The note signatures by `name` whose key ID is `keyId` (c2sp.org/signed-note: signatures by other keys are ignored). */
export function noteSignaturesBy(note: SignedNote, name: string, keyId: Uint8Array): Uint8Array[] {
  return note.signatures.filter((s) => s.name === name && equalDigests(s.keyId, keyId)).map((s) => s.signature);
}
