import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";

import {
  EMPTY_ROOT,
  formatCheckpoint,
  leafHash,
  MerkleTree,
  nodeHash,
  parseCheckpoint,
  rootFromInclusionProof,
  signNote,
  verifyConsistency,
  verifyInclusion,
  verifyNote,
  type Hash,
} from "./index.ts";
import { isPowerOfTwo } from "./core.ts";

const hex = (h: Uint8Array) => Buffer.from(h).toString("hex");
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

/** RFC 6962 §2.1 MTH written as the RFC gives it, independent of the cached tree. */
function naiveRoot(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return new Uint8Array(createHash("sha256").digest());
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

// The leaves and roots of certificate-transparency's merkle tree tests (RFC 6962 reference vectors).
const CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const CT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

describe("RFC 6962 Merkle tree", () => {
  it("when a tree size is 2^32 or more, the power-of-two test that shapes consistency proofs still holds", () => {
    // RFC 9162 sizes are 64-bit; `n & (n - 1)` would call 2^32 + 2 a power of two (it works on 32 bits).
    for (const n of [1, 2, 4, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 52]) assert.equal(isPowerOfTwo(n), true, `${n}`);
    for (const n of [0, 3, 6, 2 ** 31 + 1, 2 ** 32 + 2, 2 ** 32 + 2 ** 31, 2 ** 52 + 2, -4, 1.5, NaN])
      assert.equal(isPowerOfTwo(n), false, `${n}`);
  });

  it("when built over the CT reference leaves, every prefix has the reference root", () => {
    const tree = new MerkleTree();
    assert.equal(hex(tree.root()), hex(EMPTY_ROOT));
    CT_LEAVES.forEach((leaf, i) => {
      tree.append(leafHash(Buffer.from(leaf, "hex")));
      assert.equal(hex(tree.root()), CT_ROOTS[i]);
    });
    CT_ROOTS.forEach((root, i) => assert.equal(hex(tree.root(i + 1)), root));
  });

  it("when any size up to 70 is asked, the root equals the RFC's recursion and every proof verifies", () => {
    const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    const tree = new MerkleTree(leaves);
    for (let n = 1; n <= leaves.length; n++) {
      const root = tree.root(n);
      assert.equal(hex(root), hex(naiveRoot(leaves.slice(0, n))), `size ${n}`);
      for (let i = 0; i < n; i++) verifyInclusion(leaves[i]!, i, n, tree.inclusionProof(i, n), root);
      for (let m = 0; m <= n; m++) verifyConsistency(m, n, tree.consistencyProof(m, n), tree.root(m), root);
    }
  });

  it("when a proof, a leaf, an index or a root is changed, verification fails with MERKLE_PROOF_INVALID", () => {
    const leaves = Array.from({ length: 13 }, (_, i) => leafHash(Buffer.from([i])));
    const tree = new MerkleTree(leaves);
    const root = tree.root();
    const proof = tree.inclusionProof(5);
    const flipped = proof.map((h, i) => (i === 1 ? Uint8Array.from(h, (b, j) => (j === 0 ? b ^ 1 : b)) : h));
    const bad = code("MERKLE_PROOF_INVALID");
    assert.throws(() => verifyInclusion(leaves[5]!, 5, 13, flipped, root), bad);
    assert.throws(() => verifyInclusion(leaves[6]!, 5, 13, proof, root), bad);
    assert.throws(() => verifyInclusion(leaves[5]!, 4, 13, proof, root), bad);
    assert.throws(() => verifyInclusion(leaves[5]!, 5, 6, proof, root), bad);
    assert.throws(() => verifyInclusion(leaves[5]!, 5, 13, proof.slice(1), root), bad);
    assert.throws(() => verifyInclusion(leaves[5]!, 5, 13, [...proof, root], root), bad);
    assert.equal(rootFromInclusionProof(leaves[5]!, 13, 13, proof), undefined);
    const cproof = tree.consistencyProof(7);
    assert.throws(() => verifyConsistency(7, 13, cproof, tree.root(8), root), bad);
    assert.throws(() => verifyConsistency(7, 13, cproof.slice(1), tree.root(7), root), bad);
    assert.throws(() => verifyConsistency(8, 13, cproof, tree.root(8), root), bad);
    assert.throws(() => verifyConsistency(13, 7, [], root, tree.root(7)), bad);
  });

  it("when sizes are out of range or hashes are not 32 bytes, it is MERKLE_INVALID", () => {
    const tree = new MerkleTree([leafHash(Buffer.from("a"))]);
    const invalid = code("MERKLE_INVALID");
    assert.throws(() => tree.root(2), invalid);
    assert.throws(() => tree.inclusionProof(1), invalid);
    assert.throws(() => tree.inclusionProof(-1), invalid);
    assert.throws(() => tree.consistencyProof(2, 1), invalid);
    assert.throws(() => tree.append(new Uint8Array(31)), invalid);
    assert.throws(() => verifyInclusion(new Uint8Array(32), 0, 1, [new Uint8Array(5)], EMPTY_ROOT), invalid);
  });
});

describe("C2SP checkpoints in signed notes", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const checkpoint = {
    origin: "provenant.dev/serving/abcd",
    size: 42,
    rootHash: new Uint8Array(32).fill(7),
    extensions: [],
  };

  it("when a checkpoint is formatted, signed and verified, it reads back the same", () => {
    const text = formatCheckpoint(checkpoint);
    assert.equal(text, `provenant.dev/serving/abcd\n42\n${Buffer.alloc(32, 7).toString("base64")}\n`);
    const note = signNote(text, "provenant.dev/serving/abcd", privateKey, publicKey);
    assert.match(note, /\n\n\u2014 provenant\.dev\/serving\/abcd [A-Za-z0-9+/=]+\n$/u);
    const back = parseCheckpoint(verifyNote(note, "provenant.dev/serving/abcd", publicKey));
    assert.deepEqual({ ...back, rootHash: hex(back.rootHash) }, { ...checkpoint, rootHash: hex(checkpoint.rootHash) });
  });

  it("when the text or signature is changed, or another key is expected, it is CHECKPOINT_INVALID", () => {
    const note = signNote(formatCheckpoint(checkpoint), "log", privateKey, publicKey);
    const other = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey;
    const invalid = code("CHECKPOINT_INVALID");
    assert.throws(() => verifyNote(note.replace("\n42\n", "\n43\n"), "log", publicKey), invalid);
    assert.throws(() => verifyNote(note, "log", other), invalid);
    assert.throws(() => verifyNote(note, "other", publicKey), invalid);
    assert.throws(() => verifyNote(note.replace(/\n\n.*$/su, "\n"), "log", publicKey), invalid);
    assert.throws(() => verifyNote(`${note}\u0001`, "log", publicKey), invalid);
  });

  it("when a checkpoint body is malformed, parsing refuses it", () => {
    const root = Buffer.alloc(32, 1).toString("base64");
    for (const bad of [
      `o\n42\n${root}`,
      `o\n042\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1\n${root.slice(1)}\n`,
      `\n1\n${root}\n`,
      `o\n1\n${Buffer.alloc(31).toString("base64")}\n`,
      `o\n1\n${root}\n\n`,
      "o\n1\n",
    ])
      assert.throws(() => parseCheckpoint(bad), code("CHECKPOINT_INVALID"), JSON.stringify(bad));
  });
});
