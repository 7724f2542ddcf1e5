// The usage check (usage-core, usage): a real usage statement signed by a P-256 serving key S as a leaf of an RFC 6962
// log after three receipt-sized leaves, its proof and the anchored root; every way of not holding has its code (a
// flipped byte, another key, another log, a proof to another root, a root the chain does not hold, oversized
// answers), and Node's verifyUsageStatement reads the same envelope the same way. The fetch edge runs against real
// HTTP servers (bounded sizes, 404 as "none").
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import type { DsseEnvelope } from "../../lib/dsse/core.ts";
import { leafHash, MerkleTree } from "../../lib/merkle/index.ts";
import {
  buildUsageStatement,
  clientKeyIdOf,
  encodeStatement,
  generateServingKey,
  logIdOf,
  sha256Hex,
  signStatementPayload,
  verifyUsageStatement,
  ZERO_DIGEST,
} from "../../lib/receipt/index.ts";
import {
  MAX_USAGE_ANSWER_BYTES,
  MAX_USAGE_PAYLOAD_CHARS,
  checkUsage,
  readUsageAnswer,
  readUsageProofAnswer,
  servingGet,
  toUsageAnswer,
  fetchServingUsage,
  type UsageCheckInput,
} from "./usage.ts";

const NOW = new Date("2026-02-02T10:00:00.000Z");
const MODEL = "ab".repeat(32);
const MANIFEST = "cd".repeat(32);
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

const s = generateServingKey();
const logId = logIdOf(s.spki);
const alice = clientKeyIdOf("sk-alice");

function usageEnvelope(overrides: { logId?: string; modelRoot?: string; recovery?: boolean } = {}): DsseEnvelope {
  const statement = buildUsageStatement({
    modelName: "tiny.gguf",
    modelRoot: overrides.modelRoot ?? MODEL,
    logId: overrides.logId ?? logId,
    servingManifest: MANIFEST,
    period: { start: NOW, end: new Date(NOW.getTime() + 60_000) },
    receipts: { fromSize: 0, treeSize: 3, rootHash: "ee".repeat(32), count: 3, firstSeq: 0, lastSeq: 2 },
    meters: { "gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 12, requests: 3 },
    clients: [
      { clientKeyId: alice, meters: { "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 8, requests: 2 } },
      {
        clientKeyId: "anonymous",
        meters: { "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4, requests: 1 },
      },
    ].sort((a, b) => (a.clientKeyId < b.clientKeyId ? -1 : 1)),
    prevUsage: ZERO_DIGEST,
    recovery: overrides.recovery ?? false,
  });
  return signStatementPayload(encodeStatement(statement), s.privateKey, logId);
}

/** A log of three receipt leaves and the usage leaf (index 3), as serve/log.ts builds it. */
function world(envelope = usageEnvelope()) {
  const payload = Buffer.from(envelope.payload, "base64");
  const tree = new MerkleTree([1, 2, 3].map((i) => leafHash(enc(`receipt ${i}`))));
  const leafIndex = tree.append(leafHash(payload));
  const rootHash = hex(tree.root());
  const digest = sha256Hex(payload);
  const input: UsageCheckInput = {
    answer: { digest, meteredLogId: logId, logId, leafIndex, envelope },
    record: { logId, modelHash: MODEL, manifestDigest: MANIFEST },
    signer: { logId, spki: s.spki },
    proof: {
      status: "anchored",
      reason: null,
      proof: {
        logId,
        leafIndex,
        treeSize: tree.size,
        rootHash,
        proof: tree.inclusionProof(leafIndex).map(hex),
        checkpoint: { note: "unused\n\n— x AAAAAA==\n", signerLogId: logId },
      },
    },
    anchor: { logId, treeSize: tree.size, rootHash },
  };
  return { input, digest, rootHash, payload, tree };
}

const flip = (b64: string, at: number): string => {
  const bytes = Buffer.from(b64, "base64");
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString("base64");
};

describe("usage statement check (usage-core)", () => {
  it("when the statement is signed by S and under the anchored root, it is anchored with its period, meters and clients", async () => {
    const { input, digest, rootHash } = world();
    const result = await checkUsage(input);
    assert.equal(result.error, null);
    assert.equal(result.status, "anchored");
    assert.equal(result.signature, true);
    assert.equal(result.anchored, true);
    assert.equal(result.digest, digest);
    assert.deepEqual(result.meters, { "gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 12, requests: 3 });
    assert.equal(result.clients, 2);
    assert.equal(result.prevUsage, ZERO_DIGEST);
    assert.deepEqual(result.period, { start: NOW.toISOString(), end: "2026-02-02T10:01:00.000Z" });
    assert.deepEqual(result.inclusion, { leafIndex: 3, treeSize: 4, rootHash });
    // Node's verifier (node:crypto) reads the same envelope the same way.
    const node = verifyUsageStatement(input.answer.envelope, s.publicKey);
    assert.equal(node.digest, digest);
    assert.deepEqual(node.statement.predicate.meters, result.meters);
  });

  it("when no root is anchored at the proof's size, or the server has no proof yet, it is signed but pending", async () => {
    const { input } = world();
    const unanchored = await checkUsage({ ...input, anchor: { ...input.anchor!, rootHash: null } });
    assert.equal(unanchored.status, "pending");
    assert.equal(unanchored.signature, true);
    assert.equal(unanchored.anchored, false);
    assert.match(unanchored.pendingReason!, /size 4/);
    const open = await checkUsage({ ...input, proof: { status: "pending", reason: "epoch-open", proof: null } });
    assert.deepEqual([open.status, open.pendingReason, open.meters?.requests], ["pending", "epoch-open", 3]);
  });

  it("when a byte of the payload or of the signature is flipped, it fails DSSE_BAD_SIGNATURE and shows no numbers", async () => {
    const { input } = world();
    const envelope = input.answer.envelope;
    const payloadFlipped = { ...envelope, payload: flip(envelope.payload, 40) };
    const sigFlipped = {
      ...envelope,
      signatures: [{ ...envelope.signatures[0]!, sig: flip(envelope.signatures[0]!.sig, 20) }],
    };
    for (const bad of [payloadFlipped, sigFlipped]) {
      const result = await checkUsage({ ...input, answer: { ...input.answer, envelope: bad } });
      assert.equal(result.status, "failed");
      assert.equal(result.error?.code, "DSSE_BAD_SIGNATURE");
      assert.deepEqual([result.signature, result.meters, result.period, result.clients], [false, null, null, null]);
    }
  });

  it("when another key signed it, or the signer is not the key of the leaf's log, it fails with a code", async () => {
    const other = generateServingKey();
    const otherLog = logIdOf(other.spki);
    const { input } = world();
    // The attested key of another log: the answer claims the leaf is there; S's signature does not verify with it.
    const forged = await checkUsage({
      ...input,
      answer: { ...input.answer, logId: otherLog },
      signer: { logId: otherLog, spki: other.spki },
    });
    assert.equal(forged.error?.code, "DSSE_BAD_SIGNATURE");
    // A statement signed by another key, checked with S.
    const statement = Buffer.from(input.answer.envelope.payload, "base64");
    const byOther = signStatementPayload(statement, other.privateKey, otherLog);
    const wrongKey = await checkUsage({ ...input, answer: { ...input.answer, envelope: byOther } });
    assert.equal(wrongKey.error?.code, "DSSE_BAD_SIGNATURE");
    // A signer whose SPKI is not its log id's; a leaf in another log than the attested key's.
    const mislabelled = await checkUsage({ ...input, signer: { logId, spki: other.spki } });
    assert.equal(mislabelled.error?.code, "RECEIPT_SERVING_MISMATCH");
    const elsewhere = await checkUsage({ ...input, answer: { ...input.answer, logId: otherLog } });
    assert.equal(elsewhere.error?.code, "RECEIPT_SERVING_MISMATCH");
  });

  it("when it meters another log or model than the record's, it fails RECEIPT_SERVING_MISMATCH", async () => {
    for (const overrides of [{ logId: "11".repeat(32) }, { modelRoot: "22".repeat(32) }]) {
      const { input } = world(usageEnvelope(overrides));
      const result = await checkUsage({
        ...input,
        answer: { ...input.answer, meteredLogId: input.answer.meteredLogId },
      });
      assert.equal(result.error?.code, "RECEIPT_SERVING_MISMATCH", JSON.stringify(overrides));
    }
    // Signed by a successor's key (another log) without being a recovery statement.
    const { input } = world();
    const result = await checkUsage({ ...input, record: { ...input.record, logId: "33".repeat(32) } });
    assert.equal(result.error?.code, "RECEIPT_SERVING_MISMATCH");
  });

  it("when the proof leads to another root, or the chain anchored another root, it fails with the proof's code", async () => {
    const { input, tree } = world();
    const proof = input.proof!.proof!;
    const wrongPath = await checkUsage({
      ...input,
      proof: { ...input.proof!, proof: { ...proof, proof: [...proof.proof.slice(1), proof.proof[0]!] } },
    });
    assert.equal(wrongPath.error?.code, "MERKLE_PROOF_INVALID");
    const wrongRoot = await checkUsage({
      ...input,
      proof: { ...input.proof!, proof: { ...proof, rootHash: "00".repeat(32) } },
    });
    assert.equal(wrongRoot.error?.code, "MERKLE_PROOF_INVALID");
    // A consistent proof to a root the chain does not hold at that size (the server signed one tree, anchored another).
    const otherRoot = hex(new MerkleTree([leafHash(enc("x"))]).root());
    const anchoredOther = await checkUsage({ ...input, anchor: { logId, treeSize: tree.size, rootHash: otherRoot } });
    assert.equal(anchoredOther.error?.code, "RECEIPT_NOT_ANCHORED");
    assert.equal(anchoredOther.meters, null);
  });

  it("when an answer is oversized or malformed, reading it refuses with a code before decoding", () => {
    const { input } = world();
    const big = new Uint8Array(MAX_USAGE_ANSWER_BYTES + 1).fill(0x20);
    assert.throws(() => readUsageAnswer(big), { code: "STATEMENT_INVALID" });
    const json = JSON.parse(JSON.stringify(input.answer)) as Record<string, unknown>;
    const hugePayload = {
      ...json,
      envelope: { ...input.answer.envelope, payload: "A".repeat(MAX_USAGE_PAYLOAD_CHARS + 4) },
    };
    assert.throws(() => toUsageAnswer(hugePayload), { code: "STATEMENT_INVALID" });
    assert.throws(() => readUsageAnswer(enc('{"digest":"a","digest":"b"}')), { code: "STATEMENT_INVALID" });
    assert.throws(() => toUsageAnswer({ ...json, leafIndex: -1 }), { code: "STATEMENT_INVALID" });
    assert.equal(readUsageAnswer(enc(JSON.stringify(json))).digest, input.answer.digest);
    const proof = input.proof!.proof!;
    const longProof = { ...proof, proof: Array.from({ length: 65 }, () => "00".repeat(32)) };
    assert.throws(() => readUsageProofAnswer(200, enc(JSON.stringify(longProof))), { code: "MERKLE_INVALID" });
    assert.throws(() => readUsageProofAnswer(200, new Uint8Array(200 * 1024)), { code: "MERKLE_INVALID" });
    assert.throws(() => readUsageProofAnswer(200, enc("{}")), { code: "MERKLE_INVALID" });
    assert.equal(readUsageProofAnswer(202, enc('{"status":"pending","reason":"epoch-open"}')).proof, null);
  });
});

describe("usage fetch edge (usage.ts) against real HTTP", () => {
  let server: Server;
  let url: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith("/big")) {
        // No content-length: the bound must hold while reading.
        res.writeHead(200, { "content-type": "application/json" });
        for (let i = 0; i < 40; i++) res.write(Buffer.alloc(64 * 1024, 0x20));
        res.end();
      } else if (req.url?.startsWith("/v1/usage/latest")) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end('{"error":{"code":"NOT_FOUND"}}');
      } else {
        res.writeHead(500);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("when an answer is larger than its bound, or the server fails, reading stops with IO_ERROR", async () => {
    await assert.rejects(servingGet({ servingUrl: url }, "big", 1024 * 1024), { code: "IO_ERROR" });
    await assert.rejects(servingGet({ servingUrl: url }, "other", 1024), { code: "IO_ERROR" });
    await assert.rejects(servingGet({ servingUrl: "http://127.0.0.1:9" }, "x", 1024), { code: "IO_ERROR" });
    const ok = await servingGet({ servingUrl: `${url}/` }, "big", 4 * 1024 * 1024);
    assert.equal(ok.body.length, 40 * 64 * 1024);
  });

  it("when the server has no usage for the log yet it is 'none'; an unreachable server is 'unavailable'; a non-serving record is refused", async () => {
    const record = {
      manifestDigest: MANIFEST,
      modelHash: MODEL,
      kind: "serving" as const,
      parentModelHash: logId,
      measurementHash: null,
      policyDigest: null,
    };
    const chain = {
      checkpointOf: () => Promise.reject(new Error("not asked")),
      servingRecordOf: () => Promise.reject(new Error("not asked")),
    };
    const none = await fetchServingUsage({ servingUrl: url }, record, chain);
    assert.deepEqual([none.status, none.error?.code], ["none", "NOT_FOUND"]);
    const down = await fetchServingUsage({ servingUrl: "http://127.0.0.1:9", timeoutMs: 2000 }, record, chain);
    assert.deepEqual([down.status, down.error?.code], ["unavailable", "IO_ERROR"]);
    const audit = await fetchServingUsage({ servingUrl: url }, { ...record, kind: "audit" }, chain);
    assert.deepEqual([audit.status, audit.error?.code], ["failed", "USAGE"]);
  });
});
