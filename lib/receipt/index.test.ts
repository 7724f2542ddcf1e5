import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, it } from "node:test";

import { isProvenantError } from "../errors.ts";
import { MerkleTree } from "../merkle/index.ts";
import {
  MAX_RECEIPT_ENVELOPE_BYTES,
  ZERO_DIGEST,
  buildReceiptStatement,
  buildServingStatement,
  buildUsageStatement,
  decodeReceiptHeader,
  encodeReceiptHeader,
  encodeStatement,
  generateServingKey,
  leafHashOfPayload,
  logIdOf,
  parseReceiptText,
  parseSalt,
  payloadDigestOf,
  readServingStatement,
  receiptDigestMismatches,
  saltedDigest,
  servingCheckpointText,
  sha256Hex,
  signServingCheckpoint,
  signStatementPayload,
  signStatementPayloadAsync,
  spkiOf,
  toReceiptInput,
  validateReceiptStatement,
  validateServingStatement,
  validateUsageStatement,
  verifyReceipt,
  verifyReceiptBytes,
  verifyReceiptInclusion,
  verifyServingCheckpoint,
  verifyServingStatement,
  verifyUsageStatement,
  type ReceiptInput,
} from "./index.ts";

const NOW = new Date("2026-03-01T12:00:00.000Z");
const MODEL_ROOT = "ab".repeat(32);
const ADMISSION = "cd".repeat(32);

function key(): { privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array; logId: string } {
  const { privateKey, publicKey, spki } = generateServingKey();
  return { privateKey, publicKey, spki, logId: logIdOf(spki) };
}

/** A key on another curve than the serving keys' (P-384, the job key's curve). */
function p384(): { privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array; logId: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const spki = spkiOf(publicKey);
  return { privateKey, publicKey, spki, logId: logIdOf(spki) };
}

const S = key();

function code(expected: string) {
  return (error: unknown) => {
    assert.ok(isProvenantError(error), `expected a coded error, got ${String(error)}`);
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

function serving(
  k = S,
  extra: { predecessor?: { logId: string; lastSeq: number; lastReceipt: string }; firstSeq?: number } = {},
) {
  const statement = buildServingStatement({
    ...extra,
    modelName: "tiny.gguf",
    modelRoot: MODEL_ROOT,
    servingKey: k.spki,
    jobCodeDigest: "ef".repeat(32),
    startedOn: NOW,
    epoch: { maxReceipts: 1000, maxSeconds: 60 },
    admission: { require: "audit", manifestDigest: ADMISSION },
    runtime: { name: "provenant-serve", version: "0.1.0+node-llama-cpp.3.22.1", gpu: false },
  });
  return { statement, envelope: signStatementPayload(encodeStatement(statement), k.privateKey, k.logId) };
}

const SERVING_MANIFEST = payloadDigestOf(serving().envelope);
const SALT = new Uint8Array(32).fill(7);
const REQUEST = new TextEncoder().encode('{"model":"tiny","messages":[{"role":"user","content":"hi"}]}');
const RESPONSE = new TextEncoder().encode("hello there");

function receiptInput(overrides: Partial<ReceiptInput> = {}): ReceiptInput {
  return {
    modelRoot: MODEL_ROOT,
    servingManifest: SERVING_MANIFEST,
    logId: S.logId,
    operation: "chat",
    salt: SALT,
    request: REQUEST,
    response: RESPONSE,
    promptTokens: 12,
    completionTokens: 3,
    clientKeyId: "anonymous",
    seq: 0,
    prevReceipt: ZERO_DIGEST,
    issuedAt: NOW,
    ...overrides,
  };
}

function signedReceipt(overrides: Partial<ReceiptInput> = {}, k = S) {
  const payload = encodeStatement(buildReceiptStatement(receiptInput(overrides)));
  return { payload, envelope: signStatementPayload(payload, k.privateKey, k.logId) };
}

describe("serving statement", () => {
  it("when built and signed by S, it verifies and names S's log and the payload's digest", () => {
    const { envelope } = serving();
    const verified = verifyServingStatement(envelope, S.spki);
    assert.equal(verified.logId, S.logId);
    assert.equal(verified.manifestDigest, payloadDigestOf(envelope));
    assert.equal(verified.statement.predicate.log.origin, `provenant.dev/serving/${S.logId}`);
    assert.equal(verified.statement.subject[0].digest.sha256, MODEL_ROOT);
    assert.equal(verified.statement.predicate.log.firstSeq, 0);
    assert.equal(S.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  });

  it("when S is not a P-256 key (a P-384 one, as the job key K), it is STATEMENT_INVALID", () => {
    const k = p384();
    const statement = structuredClone(serving().statement);
    statement.predicate.servingKey = { publicKey: Buffer.from(k.spki).toString("base64"), keyid: k.logId };
    statement.predicate.log = { logId: k.logId, origin: `provenant.dev/serving/${k.logId}`, firstSeq: 0 };
    assert.throws(() => validateServingStatement(statement), code("STATEMENT_INVALID"));
    const envelope = signStatementPayload(encodeStatement(statement), k.privateKey, k.logId);
    assert.throws(() => verifyServingStatement(envelope, k.spki), code("STATEMENT_INVALID"));
  });

  it("when it continues a predecessor, firstSeq follows its lastSeq (or the reserved mark), never at or below it", () => {
    const predecessor = { logId: "12".repeat(32), lastSeq: 41, lastReceipt: "34".repeat(32) };
    assert.equal(serving(S, { predecessor }).statement.predicate.log.firstSeq, 42);
    assert.equal(serving(S, { predecessor, firstSeq: 1024 }).statement.predicate.log.firstSeq, 1024);
    assert.throws(() => serving(S, { predecessor, firstSeq: 41 }), code("STATEMENT_INVALID"));
    const missing = structuredClone(serving().statement) as unknown as { predicate: { log: Record<string, unknown> } };
    delete missing.predicate.log.firstSeq;
    assert.throws(() => validateServingStatement(missing), code("STATEMENT_INVALID"));
  });

  it("when another key signed it, or the bundle's signer is another key, it is refused", () => {
    const other = key();
    const { statement } = serving();
    const forged = signStatementPayload(encodeStatement(statement), other.privateKey, other.logId);
    assert.throws(() => verifyServingStatement(forged), code("DSSE_BAD_SIGNATURE"));
    assert.throws(() => verifyServingStatement(serving().envelope, other.spki), code("BINDING_KEY_MISMATCH"));
  });

  it("when read by readServingStatement (the reader shared with the WebCrypto twin), it binds logId and signer, not the signature", () => {
    const other = key();
    const read = readServingStatement(serving().envelope, S.spki);
    assert.deepEqual([read.logId, read.spki], [S.logId, S.spki]);
    assert.equal(sha256Hex(read.payload), SERVING_MANIFEST);
    assert.throws(() => readServingStatement(serving().envelope, other.spki), code("BINDING_KEY_MISMATCH"));
    // The statement names S but its log id is another key's: the reader refuses it before any signature.
    const { statement } = serving();
    const swapped = structuredClone(statement);
    swapped.predicate.servingKey = { publicKey: Buffer.from(other.spki).toString("base64"), keyid: S.logId };
    const envelope = signStatementPayload(encodeStatement(swapped), other.privateKey, other.logId);
    assert.throws(() => readServingStatement(envelope), code("STATEMENT_INVALID"));
    assert.throws(() => verifyServingStatement(envelope), code("STATEMENT_INVALID"));
    // A signature by another key passes the reader: it is the caller's to check (DSSE_BAD_SIGNATURE there).
    const forged = signStatementPayload(encodeStatement(statement), other.privateKey, other.logId);
    assert.equal(readServingStatement(forged).logId, S.logId);
    assert.throws(() => verifyServingStatement(forged), code("DSSE_BAD_SIGNATURE"));
  });

  it("when its log id is not the key's digest, or a field is unknown, it is STATEMENT_INVALID", () => {
    const { statement } = serving();
    const bad = structuredClone(statement) as unknown as { predicate: Record<string, unknown> };
    (bad.predicate.log as { logId: string }).logId = "00".repeat(32);
    assert.throws(() => validateServingStatement(bad), code("STATEMENT_INVALID"));
    const extra = structuredClone(statement) as unknown as { predicate: Record<string, unknown> };
    extra.predicate.extra = 1;
    assert.throws(() => validateServingStatement(extra), code("STATEMENT_INVALID"));
    // A consistent keyid/logId that is not the key's SHA-256 passes the shape check but not verification.
    const swapped = structuredClone(statement);
    swapped.predicate.servingKey.keyid = "00".repeat(32);
    swapped.predicate.log = { logId: "00".repeat(32), origin: `provenant.dev/serving/${"00".repeat(32)}`, firstSeq: 0 };
    const envelope = signStatementPayload(encodeStatement(swapped), S.privateKey, S.logId);
    assert.throws(() => verifyServingStatement(envelope), code("STATEMENT_INVALID"));
  });
});

describe("inference receipt", () => {
  it("when signed by S, it verifies, and the salt with the exact bytes gives its digests", () => {
    const { envelope, payload } = signedReceipt();
    const verified = verifyReceipt(envelope, S.publicKey);
    assert.equal(verified.digest, sha256Hex(payload));
    assert.equal(verified.statement.predicate.requestDigest, saltedDigest(SALT, REQUEST));
    assert.equal(verified.statement.subject[0].digest.sha256, sha256Hex(RESPONSE));
    verifyReceiptBytes(verified.statement, SALT, { request: REQUEST, response: RESPONSE });
  });

  it("when signed on the thread pool, it is the same kind of signature", async () => {
    const payload = encodeStatement(buildReceiptStatement(receiptInput()));
    const envelope = await signStatementPayloadAsync(payload, S.privateKey, S.logId);
    assert.equal(verifyReceipt(envelope, S.publicKey).digest, sha256Hex(payload));
  });

  it("when a payload byte is flipped, or another key is used, the signature fails", () => {
    const { envelope } = signedReceipt();
    const bytes = Buffer.from(envelope.payload, "base64");
    bytes[40]! ^= 1;
    assert.throws(
      () => verifyReceipt({ ...envelope, payload: bytes.toString("base64") }, S.publicKey),
      code("RECEIPT_BAD_SIGNATURE"),
    );
    assert.throws(() => verifyReceipt(envelope, key().publicKey), code("RECEIPT_BAD_SIGNATURE"));
  });

  it("when the salt, the request or the response differs, the digests do not match", () => {
    const { statement } = verifyReceipt(signedReceipt().envelope, S.publicKey);
    const wrongSalt = new Uint8Array(32).fill(8);
    assert.throws(
      () => verifyReceiptBytes(statement, wrongSalt, { request: REQUEST }),
      code("RECEIPT_DIGEST_MISMATCH"),
    );
    assert.throws(
      () => verifyReceiptBytes(statement, SALT, { response: new TextEncoder().encode("hello therE") }),
      code("RECEIPT_DIGEST_MISMATCH"),
    );
    assert.throws(
      () => verifyReceiptBytes(statement, SALT, { request: new Uint8Array([...REQUEST, 0x20]) }),
      code("RECEIPT_DIGEST_MISMATCH"),
    );
  });

  it("when the bytes are checked, receiptDigestMismatches names every digest that differs, and none for the right ones", () => {
    const { statement } = verifyReceipt(signedReceipt().envelope, S.publicKey);
    assert.deepEqual(receiptDigestMismatches(statement, SALT, { request: REQUEST, response: RESPONSE }), []);
    const wrongSalt = new Uint8Array(32).fill(8);
    assert.deepEqual(
      receiptDigestMismatches(statement, wrongSalt, { request: REQUEST, response: RESPONSE }).map((w) => w.path),
      ["predicate.responseDigest", "predicate.requestDigest"],
    );
    assert.deepEqual(
      receiptDigestMismatches(statement, SALT, { response: new TextEncoder().encode("other") }).map((w) => w.path),
      ["subject[0].digest.sha256", "predicate.responseDigest"],
    );
    assert.throws(
      () => receiptDigestMismatches(statement, new Uint8Array(31), { request: REQUEST }),
      code("RECEIPT_INVALID"),
    );
  });

  it("when a key of another log signs a receipt naming S's log, it is refused", () => {
    const other = key();
    const { envelope } = signedReceipt({}, other);
    assert.throws(() => verifyReceipt(envelope, other.publicKey), code("RECEIPT_INVALID"));
  });

  it("when seq and prevReceipt disagree, or a field is unknown or out of range, it is RECEIPT_INVALID", () => {
    const base = buildReceiptStatement(receiptInput());
    const cases: ((p: Record<string, unknown>) => void)[] = [
      (p) => (p.prevReceipt = "11".repeat(32)),
      (p) => (p.seq = -1),
      (p) => (p.operation = "embeddings"),
      (p) => (p.promptTokens = 1.5),
      (p) => (p.clientKeyId = "other"),
      (p) => (p.issuedAt = "2026-03-01 12:00:00"),
      (p) => (p.extra = true),
      (p) => delete p.logId,
    ];
    for (const edit of cases) {
      const copy = structuredClone(base) as unknown as { predicate: Record<string, unknown> };
      edit(copy.predicate);
      assert.throws(() => validateReceiptStatement(copy), code("RECEIPT_INVALID"));
    }
    assert.throws(() => validateReceiptStatement([]), code("RECEIPT_INVALID"));
    // The first receipt of a data directory whose first life crashed before any receipt reached the disk: its seq
    // goes on from the reserved mark with no predecessor to name.
    const afterCrash = structuredClone(base) as unknown as { predicate: Record<string, unknown> };
    afterCrash.predicate.seq = 1024;
    assert.equal(validateReceiptStatement(afterCrash).predicate.seq, 1024);
  });

  it("when carried in the Provenant-Receipt header, it reads back as the same envelope", () => {
    const { envelope } = signedReceipt();
    const header = encodeReceiptHeader(envelope);
    assert.deepEqual(decodeReceiptHeader(header), envelope);
    assert.throws(() => decodeReceiptHeader("not base64!"), code("RECEIPT_INVALID"));
    assert.throws(() => decodeReceiptHeader("A".repeat(20_000)), code("RECEIPT_INVALID"));
    assert.throws(() => decodeReceiptHeader(Buffer.from("[1,2]").toString("base64")), code("RECEIPT_INVALID"));
  });

  it("when read as a caller keeps it (object or bare envelope), it gives the envelope and the salt", () => {
    const { envelope, payload } = signedReceipt();
    const object = {
      envelope,
      digest: sha256Hex(payload),
      salt: Buffer.from(SALT).toString("hex"),
      seq: 0,
      logId: S.logId,
      leafIndex: 0,
    };
    const read = parseReceiptText(JSON.stringify(object));
    assert.deepEqual(read.envelope, envelope);
    assert.deepEqual(parseSalt(read.salt!), SALT);
    assert.deepEqual(toReceiptInput(envelope).envelope, envelope);
    assert.throws(() => toReceiptInput({ ...object, extra: 1 }), code("RECEIPT_INVALID"));
    // A bare envelope is bounded like one in a receipt object (a receipt file may be 256 KiB of it).
    const big = { ...envelope, payload: Buffer.alloc(MAX_RECEIPT_ENVELOPE_BYTES).toString("base64") };
    assert.throws(() => toReceiptInput(big), code("RECEIPT_INVALID"));
    assert.throws(() => toReceiptInput({ ...object, envelope: big }), code("RECEIPT_INVALID"));
    assert.throws(() => parseReceiptText(`{"envelope":1,"envelope":2}`), code("RECEIPT_INVALID"));
    assert.throws(() => parseReceiptText(" ".repeat(17_000)), code("RECEIPT_INVALID"));
    assert.throws(() => parseSalt("abc"), code("RECEIPT_INVALID"));
  });
});

describe("receipts in a log", () => {
  it("when receipts are leaves of a tree, each proof leads to the root, and a wrong index does not", () => {
    const tree = new MerkleTree();
    const payloads: Uint8Array[] = [];
    let prev = ZERO_DIGEST;
    for (let seq = 0; seq < 7; seq++) {
      const { payload } = signedReceipt({ seq, prevReceipt: prev });
      prev = sha256Hex(payload);
      payloads.push(payload);
      tree.append(leafHashOfPayload(payload));
    }
    const root = tree.root();
    payloads.forEach((payload, i) => verifyReceiptInclusion(payload, i, 7, tree.inclusionProof(i), root));
    assert.throws(
      () => verifyReceiptInclusion(payloads[2]!, 3, 7, tree.inclusionProof(2), root),
      code("MERKLE_PROOF_INVALID"),
    );
  });

  it("when a checkpoint is signed by S, or by a successor key for S's log, it verifies with that key only", () => {
    const text = servingCheckpointText(S.logId, 5, new Uint8Array(32).fill(3));
    const note = signServingCheckpoint(text, S.privateKey);
    assert.equal(verifyServingCheckpoint(note, S.logId, S.publicKey).size, 5);
    const successor = key();
    const recovered = signServingCheckpoint(text, successor.privateKey);
    assert.equal(verifyServingCheckpoint(recovered, S.logId, successor.publicKey).size, 5);
    assert.throws(() => verifyServingCheckpoint(recovered, S.logId, S.publicKey), code("CHECKPOINT_INVALID"));
    assert.throws(() => verifyServingCheckpoint(note, successor.logId, S.publicKey), code("CHECKPOINT_INVALID"));
  });
});

describe("usage statement", () => {
  const input = () => ({
    modelName: "tiny.gguf",
    modelRoot: MODEL_ROOT,
    logId: S.logId,
    servingManifest: SERVING_MANIFEST,
    period: { start: NOW, end: new Date(NOW.getTime() + 60_000) },
    receipts: { fromSize: 0, treeSize: 3, rootHash: "12".repeat(32), count: 3, firstSeq: 0, lastSeq: 2 },
    meters: { "gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 9, requests: 3 },
    clients: [
      {
        clientKeyId: "aa".repeat(32),
        meters: { "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 6, requests: 2 },
      },
      {
        clientKeyId: "anonymous",
        meters: { "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3, requests: 1 },
      },
    ],
    prevUsage: ZERO_DIGEST,
    recovery: false,
  });

  it("when built and signed, it verifies and its meters add up", () => {
    const statement = buildUsageStatement(input());
    const envelope = signStatementPayload(encodeStatement(statement), S.privateKey, S.logId);
    const verified = verifyUsageStatement(envelope, S.publicKey);
    assert.equal(verified.statement.predicate.meters.requests, 3);
  });

  it("when the clients do not add up, are unsorted, or the counts disagree, it is STATEMENT_INVALID", () => {
    const edits: ((p: ReturnType<typeof input>) => void)[] = [
      (p) => (p.meters["gen_ai.usage.input_tokens"] = 31),
      (p) => p.clients.reverse(),
      (p) => (p.receipts.count = 2),
      (p) => (p.receipts.lastSeq = 5),
      (p) => (p.receipts.fromSize = 2),
      (p) => (p.clients[0]!.clientKeyId = "AA"),
    ];
    for (const edit of edits) {
      const p = input();
      edit(p);
      assert.throws(() => buildUsageStatement(p), code("STATEMENT_INVALID"));
    }
    const statement = structuredClone(buildUsageStatement(input())) as unknown as {
      subject: { digest: { sha256: string } }[];
    };
    statement.subject[0]!.digest.sha256 = "00".repeat(32);
    assert.throws(() => validateUsageStatement(statement), code("STATEMENT_INVALID"));
  });
});
