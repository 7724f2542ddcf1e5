// The browser-safe receipt core against its Node twins (lib/merkle inclusion proofs, lib/merkle C2SP notes via
// lib/receipt's signer) and its bounds on untrusted proofs; a receipt checked with chain facts given as data.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { leafHash, MerkleTree, rootFromInclusionProof } from "../../lib/merkle/index.ts";
import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { servingCheckpointText, signServingCheckpoint } from "../../lib/receipt/index.ts";
import {
  makeServingBundle,
  modelOfBundle,
  servingPolicy,
  TestReceiptLog,
  type ServingBundle,
} from "../testing/serving.ts";
import type { DsseEnvelope } from "../../lib/dsse/core.ts";
import {
  createReceiptLogVerifier,
  parseReceiptFile,
  rootFromInclusion,
  toReceiptProof,
  verifyLeafProof,
  verifyReceipt,
  type ReceiptChainFacts,
} from "./receipt.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const enc = new TextEncoder();

describe("receipt core", () => {
  let f: BundleFactory;
  let serving: ServingBundle;
  let log: TestReceiptLog;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
    serving = makeServingBundle(f, { seed: "core" });
    log = new TestReceiptLog(serving);
    for (let i = 0; i < 5; i++) log.issue(new Date(Date.UTC(2026, 10, 21, 12, 0, i)));
  });

  it("when proofs of every leaf of trees of 1 to 40 leaves are checked, the browser twin agrees with lib/merkle", () => {
    const leaves = Array.from({ length: 40 }, (_, i) => leafHash(enc.encode(`leaf ${i}`)));
    const tree = new MerkleTree(leaves);
    for (let size = 1; size <= 40; size++) {
      for (let index = 0; index < size; index++) {
        const proof = tree.inclusionProof(index, size);
        const mine = rootFromInclusion(leaves[index]!, index, size, proof);
        assert.deepEqual(mine, rootFromInclusionProof(leaves[index]!, index, size, proof));
        assert.deepEqual(mine, tree.root(size));
        // A proof for another position or size leads elsewhere (or nowhere), for both.
        const other = rootFromInclusion(leaves[index]!, (index + 1) % size, size, proof);
        assert.deepEqual(other, rootFromInclusionProof(leaves[index]!, (index + 1) % size, size, proof));
        if (size > 1) assert.notDeepEqual(other, tree.root(size));
      }
    }
  });

  it("when a proof is malformed or unbounded, it is MERKLE_INVALID (CHECKPOINT_INVALID for the note) before any hashing", () => {
    const good = {
      logId: serving.logId,
      leafIndex: 0,
      treeSize: 5,
      rootHash: log.checkpoint(5).rootHash,
      proof: log.proof(0, 5),
      checkpoint: { note: log.checkpoint(5).note, signerLogId: serving.logId },
    };
    assert.equal(toReceiptProof(good).treeSize, 5);
    for (const bad of [
      null,
      { ...good, leafIndex: 5 },
      { ...good, treeSize: -1 },
      { ...good, rootHash: "AB".repeat(32) },
      { ...good, proof: Array.from({ length: 65 }, () => "00".repeat(32)) },
      { ...good, proof: ["00"] },
      { ...good, checkpoint: null },
    ])
      assert.throws(() => toReceiptProof(bad), { code: "MERKLE_INVALID" });
    assert.throws(() => toReceiptProof({ ...good, checkpoint: { note: "x".repeat(20_000) } }), {
      code: "CHECKPOINT_INVALID",
    });
  });

  it("when a leaf's proof is checked (verifyLeafProof, receipts and usage statements alike), only the right log, path and root pass", () => {
    const payload = Buffer.from(log.receipts[3]!.object.envelope.payload, "base64");
    const cp = log.checkpoint(5);
    const proof = toReceiptProof({
      logId: serving.logId,
      leafIndex: 3,
      treeSize: 5,
      rootHash: cp.rootHash,
      proof: log.proof(3, 5),
      checkpoint: { note: cp.note },
    });
    verifyLeafProof(payload, proof, serving.logId);
    const code = { code: "MERKLE_PROOF_INVALID" };
    assert.throws(() => verifyLeafProof(payload, proof, "11".repeat(32)), code);
    assert.throws(() => verifyLeafProof(payload, { ...proof, leafIndex: 2 }, serving.logId), code);
    assert.throws(() => verifyLeafProof(payload, { ...proof, proof: [...proof.proof].reverse() }, serving.logId), code);
    assert.throws(() => verifyLeafProof(payload, { ...proof, rootHash: "00".repeat(32) }, serving.logId), code);
    const other = Buffer.from(log.receipts[2]!.object.envelope.payload, "base64");
    assert.throws(() => verifyLeafProof(other, proof, serving.logId), code);
  });

  it("when a receipt file is a receipt object, a bare envelope, a completion or a wrapper with its proof, it reads each", () => {
    const object = log.receipts[0]!.object;
    const bytes = (v: unknown) => enc.encode(JSON.stringify(v));
    assert.equal(parseReceiptFile(bytes(object)).salt, object.salt);
    assert.deepEqual(parseReceiptFile(bytes(object.envelope)).envelope, object.envelope);
    assert.equal(parseReceiptFile(bytes({ id: "x", choices: [], provenant_receipt: object })).object?.seq, 0);
    assert.throws(() => parseReceiptFile(bytes({ receipt: object, extra: 1 })), { code: "RECEIPT_INVALID" });
    assert.throws(() => parseReceiptFile(enc.encode('{"a":1,"a":2}')), { code: "RECEIPT_INVALID" });
    assert.throws(() => parseReceiptFile(new Uint8Array(300 * 1024)), { code: "RECEIPT_INVALID" });
  });

  it("when chain facts are given as data, the revocation time decides: before issuedAt refuses, after notes", async () => {
    const r = log.receipts[2]!;
    const cp = log.checkpoint(5);
    const proof = toReceiptProof({
      logId: serving.logId,
      leafIndex: 2,
      treeSize: 5,
      rootHash: cp.rootHash,
      proof: log.proof(2, 5),
      checkpoint: { note: cp.note, signerLogId: serving.logId },
    });
    const issuedAt = Date.parse(
      JSON.parse(Buffer.from(r.object.envelope.payload, "base64").toString()).predicate.issuedAt,
    );
    const facts = (revokedAt: Date | null, revoked: boolean): ReceiptChainFacts => ({
      serving: {
        manifestDigest: serving.servingManifest,
        modelHash: serving.modelRoot,
        kind: 3,
        revoked: false,
        revokedAt: null,
      },
      logManifest: serving.servingManifest,
      modelRecords: [{ manifestDigest: "ab".repeat(32), modelHash: serving.modelRoot, kind: 2, revoked, revokedAt }],
      anchor: { logId: serving.logId, treeSize: 5, rootHash: cp.rootHash, anchoredAt: NOW },
    });
    const options = { policy: servingPolicy(f), now: NOW, servingBundle: serving.bytes, proof };
    const clean = await verifyReceipt(r.object, { ...options, chain: facts(null, false) });
    assert.equal(clean.ok, true, JSON.stringify(clean.errors));
    const before = await verifyReceipt(r.object, { ...options, chain: facts(new Date(issuedAt - 1), true) });
    assert.deepEqual(
      before.errors.map((e) => e.code),
      ["MODEL_REVOKED"],
    );
    // Revoked at the very millisecond of issue counts as before: a receipt must precede its revocation.
    const same = await verifyReceipt(r.object, { ...options, chain: facts(new Date(issuedAt), true) });
    assert.equal(same.checks.notRevoked, false);
    const unknownTime = await verifyReceipt(r.object, { ...options, chain: facts(null, true) });
    assert.equal(unknownTime.checks.notRevoked, false);
    const after = await verifyReceipt(r.object, { ...options, chain: facts(new Date(issuedAt + 1), true) });
    assert.equal(after.ok, true);
    assert.equal(after.revokedAfterIssue.length, 1);
    // Facts about another root or size are no anchor: RECEIPT_NOT_ANCHORED.
    const elsewhere = facts(null, false);
    elsewhere.anchor = { ...elsewhere.anchor, rootHash: "cd".repeat(32) };
    const wrong = await verifyReceipt(r.object, { ...options, chain: elsewhere });
    assert.deepEqual(
      wrong.errors.map((e) => e.code),
      ["RECEIPT_NOT_ANCHORED"],
    );
  });

  it("when a log's receipts are checked in bulk, each verifies once S and the checkpoint are in, and each break has its code", async () => {
    const bundle = JSON.parse(Buffer.from(serving.bytes).toString("utf8")) as {
      envelopes: DsseEnvelope[];
      signer: { publicKey: string };
    };
    const verifier = await createReceiptLogVerifier({
      envelope: bundle.envelopes[0]!,
      signer: Buffer.from(bundle.signer.publicKey, "base64"),
      attestation: null,
    });
    assert.equal(verifier.logId, serving.logId);
    assert.deepEqual(await verifier.addCheckpoint(log.checkpoint(5).note), {
      treeSize: 5,
      rootHash: log.checkpoint(5).rootHash,
    });
    for (const r of log.receipts) {
      const out = await verifier.verify(r.object.envelope, {
        leafIndex: r.object.leafIndex,
        treeSize: 5,
        proof: log.proof(r.object.leafIndex, 5),
      });
      assert.equal(out.digest, r.object.digest);
    }
    const r = log.receipts[3]!;
    const proof = { leafIndex: 3, treeSize: 5, proof: log.proof(3, 5) };
    const payload = Buffer.from(r.object.envelope.payload, "base64");
    payload[payload.length - 3] ^= 1;
    await assert.rejects(verifier.verify({ ...r.object.envelope, payload: payload.toString("base64") }, proof), {
      code: "RECEIPT_BAD_SIGNATURE",
    });
    await assert.rejects(verifier.verify(r.object.envelope, { ...proof, leafIndex: 2 }), {
      code: "MERKLE_PROOF_INVALID",
    });
    await assert.rejects(verifier.verify(r.object.envelope, { leafIndex: 3, treeSize: 4, proof: log.proof(3, 4) }), {
      code: "RECEIPT_NOT_ANCHORED",
    });
    await assert.rejects(verifier.verify(r.object.envelope, { ...proof, proof: ["zz"] }), { code: "MERKLE_INVALID" });
    const stranger = new TestReceiptLog(makeServingBundle(f, { seed: "stranger" })).issue(NOW);
    await assert.rejects(verifier.verify(stranger.object.envelope, proof), { code: "RECEIPT_BAD_SIGNATURE" });
    const foreignNote = new TestReceiptLog(makeServingBundle(f, { seed: "stranger-2" }));
    foreignNote.issue(NOW);
    await assert.rejects(verifier.addCheckpoint(foreignNote.checkpoint(1).note), { code: "CHECKPOINT_INVALID" });
  });

  it("when a checkpoint was signed by a successor key after a restart, it verifies with that key's attested bundle only", async () => {
    const successor = makeServingBundle(f, { seed: "core-successor", model: modelOfBundle(serving.bundle) });
    const r = log.receipts[1]!;
    // S is gone: the successor signs the old log's checkpoint under its own name (lib/receipt signServingCheckpoint).
    const root = log.tree.root(5);
    const note = signServingCheckpoint(servingCheckpointText(serving.logId, 5, root), successor.privateKey);
    const proof = toReceiptProof({
      logId: serving.logId,
      leafIndex: 1,
      treeSize: 5,
      rootHash: Buffer.from(root).toString("hex"),
      proof: log.proof(1, 5),
      checkpoint: { note, signerLogId: successor.logId },
    });
    const successorRecord = {
      manifestDigest: successor.servingManifest,
      modelHash: successor.modelRoot,
      kind: 3,
      revoked: false,
      revokedAt: null,
    };
    const chain: ReceiptChainFacts = {
      serving: {
        manifestDigest: serving.servingManifest,
        modelHash: serving.modelRoot,
        kind: 3,
        revoked: false,
        revokedAt: null,
      },
      logManifest: serving.servingManifest,
      modelRecords: [
        { manifestDigest: "ab".repeat(32), modelHash: serving.modelRoot, kind: 2, revoked: false, revokedAt: null },
      ],
      anchor: { logId: serving.logId, treeSize: 5, rootHash: Buffer.from(root).toString("hex"), anchoredAt: NOW },
      successorServing: successorRecord,
    };
    const options = { policy: servingPolicy(f), now: NOW, servingBundle: serving.bytes, proof, chain };
    const ok = await verifyReceipt(r.object, { ...options, successorBundle: successor.bytes });
    assert.equal(ok.ok, true, JSON.stringify(ok.errors));
    assert.equal(ok.inclusion?.checkpointSigner, "successor");
    const without = await verifyReceipt(r.object, options);
    assert.deepEqual(
      without.errors.map((e) => e.code),
      ["CHECKPOINT_INVALID"],
    );
    const unregistered = await verifyReceipt(r.object, {
      ...options,
      successorBundle: successor.bytes,
      chain: { ...chain, successorServing: null },
    });
    assert.deepEqual(
      unregistered.errors.map((e) => e.code),
      ["CHECKPOINT_INVALID"],
    );
    const stranger = makeServingBundle(f, { seed: "core-stranger" });
    const other = await verifyReceipt(r.object, { ...options, successorBundle: stranger.bytes });
    assert.deepEqual(
      other.errors.map((e) => e.code),
      ["CHECKPOINT_INVALID"],
    );
  });

  it("when the serving bundle is not a serving bundle, nothing about S can be checked and it says why", async () => {
    const other = f.make({ seed: "not-serving", kind: "eval" });
    const result = await verifyReceipt(log.receipts[0]!.object, {
      policy: servingPolicy(f),
      now: NOW,
      servingBundle: other.bytes,
    });
    assert.equal(result.ok, false);
    assert.equal(result.checks.servingStatement, false);
    assert.equal(result.checks.signature, null);
    assert.ok(result.errors.some((e) => e.code === "STATEMENT_INVALID"));
  });
});
