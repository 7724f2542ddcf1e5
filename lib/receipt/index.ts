// The serving formats of DESIGN §12 on node:crypto: builders for the serving statement, the inference receipt and the
// usage statement, their digests (salted request/response digests, receipt digests, Merkle leaves), DSSE signing
// with the serving key S (also on libuv's thread pool, off the event loop) and verification of what a caller holds:
// a receipt against S, against the request and response bytes with the salt, against an anchored root. Trusts only
// the key and roots it is handed; the shapes are lib/receipt/core.ts's. Byte-level reference: docs/serving.md.
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";

import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  hashAlgorithmOf,
  pae,
  parseEcSpki,
  verifyEnvelope,
  type DsseEnvelope,
} from "../dsse/index.ts";
import { MalformedInputError, ProvenantError, VerificationError, type ErrorCode } from "../errors.ts";
import {
  formatCheckpoint,
  leafHash,
  parseCheckpoint,
  verifyInclusion,
  verifyNote,
  signNote,
  type Checkpoint,
  type Hash,
} from "../merkle/index.ts";
import {
  ANONYMOUS_CLIENT,
  MAX_RECEIPT_PAYLOAD_BYTES,
  MAX_USAGE_PAYLOAD_BYTES,
  PREDICATE_RECEIPT,
  PREDICATE_SERVING,
  PREDICATE_USAGE,
  SALT_BYTES,
  SERVING_KEY_CURVE,
  STATEMENT_TYPE,
  parseStatementBytes,
  readServingStatement,
  receiptDigestMismatches,
  servingOrigin,
  validateReceiptStatement,
  validateServingStatement,
  validateUsageStatement,
  type Meters,
  type Operation,
  type ReceiptStatement,
  type RequireKind,
  type ServingPredicate,
  type ServingStatement,
  type UsagePredicate,
  type UsageStatement,
} from "./core.ts";

export {
  ANONYMOUS_CLIENT,
  MAX_RECEIPT_ENVELOPE_BYTES,
  MAX_RECEIPT_HEADER_CHARS,
  MAX_RECEIPT_PAYLOAD_BYTES,
  MAX_SERVING_PAYLOAD_BYTES,
  MAX_USAGE_CLIENTS,
  MAX_USAGE_PAYLOAD_BYTES,
  METER_INPUT_TOKENS,
  METER_NAMES,
  METER_OUTPUT_TOKENS,
  METER_REQUESTS,
  OPERATIONS,
  OTHER_CLIENTS,
  PREDICATE_RECEIPT,
  PREDICATE_SERVING,
  PREDICATE_USAGE,
  REQUIRE_KINDS,
  SALT_BYTES,
  SERVING_KEY_CURVE,
  SERVING_ORIGIN_PREFIX,
  STATEMENT_TYPE,
  ZERO_DIGEST,
  decodeReceiptHeader,
  encodeReceiptHeader,
  isClientKeyId,
  parseReceiptText,
  parseSalt,
  parseStatementBytes,
  readServingStatement,
  receiptDigestMismatches,
  servingOrigin,
  toReceiptInput,
  validateReceiptStatement,
  validateServingStatement,
  validateUsageStatement,
  type Meters,
  type Operation,
  type ReceiptObject,
  type ReceiptPredicate,
  type ReceiptStatement,
  type RequireKind,
  type ServingPredicate,
  type ServingStatement,
  type UsagePredicate,
  type UsageStatement,
} from "./core.ts";

// ── digests ─────────────────────────────────────────────────────────────────────────────────────────────────────

export function sha256Hex(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

/** The log id of a serving key: hex SHA-256 of its DER SubjectPublicKeyInfo (= the DSSE keyid, REPORT_DATA[0:32]). */
export function logIdOf(key: KeyObject | Uint8Array): string {
  return sha256Hex(key instanceof Uint8Array ? key : spkiOf(key));
}

/** The DER SPKI of a key (its public half for a private key). */
export function spkiOf(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: "spki", format: "der" }));
}

/**
 * A fresh serving key S (ECDSA P-256, SERVING_KEY_CURVE), born in this process and never written to disk: its log id
 * is SHA-256 of `spki`, which the attestation binds through REPORT_DATA[0:32].
 */
export function generateServingKey(): { privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: SERVING_KEY_CURVE });
  return { privateKey, publicKey, spki: spkiOf(publicKey) };
}

/** A fresh per-request salt (32 random bytes). */
export function newSalt(): Uint8Array {
  return new Uint8Array(randomBytes(SALT_BYTES));
}

/** SHA-256(salt ‖ bytes), hex: a receipt's requestDigest and responseDigest. */
export function saltedDigest(salt: Uint8Array, bytes: Uint8Array): string {
  if (salt.length !== SALT_BYTES)
    throw new MalformedInputError("RECEIPT_INVALID", `a salt is ${SALT_BYTES} bytes, got ${salt.length}`);
  return sha256Hex(salt, bytes);
}

/** The client key id of a bearer API key: hex SHA-256 of its UTF-8 bytes; ANONYMOUS_CLIENT without a key. */
export function clientKeyIdOf(apiKey: string | undefined): string {
  return apiKey === undefined || apiKey === "" ? ANONYMOUS_CLIENT : sha256Hex(new TextEncoder().encode(apiKey));
}

/** The payload bytes of a statement exactly as they are signed: JSON.stringify in the builders' key order, UTF-8. */
export function encodeStatement(statement: ServingStatement | ReceiptStatement | UsageStatement): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(statement));
}

/**
 * The digest of a signed statement: hex SHA-256 of the envelope's payload bytes as signed. For a serving statement it
 * is the manifest digest (the kind 3 record), for a receipt the receipt digest (`prevReceipt`, the proof API's key),
 * for a usage statement the usage digest (`prevUsage`).
 */
export function payloadDigestOf(envelope: DsseEnvelope): string {
  return sha256Hex(decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload"));
}

/** A serving log's Merkle leaf: the leaf data is the statement payload as signed, hashed as RFC 6962 §2.1 says. */
export function leafHashOfPayload(payload: Uint8Array): Hash {
  return leafHash(payload);
}

// ── builders ────────────────────────────────────────────────────────────────────────────────────────────────────

export interface ServingInput {
  /** The model's name in the subject (its file name) and its OMS root digest. */
  modelName: string;
  modelRoot: string;
  /** DER SPKI of the serving key S (P-256, SERVING_KEY_CURVE). */
  servingKey: Uint8Array;
  jobCodeDigest: string;
  startedOn: Date;
  epoch: { maxReceipts: number; maxSeconds: number };
  admission: { require: RequireKind; manifestDigest: string };
  predecessor?: { logId: string; lastSeq: number; lastReceipt: string };
  /** The seq of the log's first receipt (the data directory's reserved mark); default the predecessor's next, or 0. */
  firstSeq?: number;
  runtime: { name: string; version: string; gpu: boolean };
}

/** The serving statement S signs at start (DESIGN §12): the manifest of the serving bundle, recorded as kind 3. */
export function buildServingStatement(input: ServingInput): ServingStatement {
  const logId = logIdOf(input.servingKey);
  const predicate: ServingPredicate = {
    servingKey: { publicKey: Buffer.from(input.servingKey).toString("base64"), keyid: logId },
    log: {
      logId,
      origin: servingOrigin(logId),
      firstSeq: input.firstSeq ?? (input.predecessor === undefined ? 0 : input.predecessor.lastSeq + 1),
    },
    jobCode: { name: "provenant", digest: { sha256: input.jobCodeDigest } },
    startedOn: input.startedOn.toISOString(),
    epoch: { maxReceipts: input.epoch.maxReceipts, maxSeconds: input.epoch.maxSeconds },
    admission: { require: input.admission.require, manifestDigest: input.admission.manifestDigest },
    ...(input.predecessor === undefined ? {} : { predecessor: { ...input.predecessor } }),
    runtime: { name: input.runtime.name, version: input.runtime.version, gpu: input.runtime.gpu },
  };
  // Built, then validated: a builder never emits what a reader would refuse.
  return validateServingStatement({
    _type: STATEMENT_TYPE,
    subject: [{ name: input.modelName, digest: { sha256: input.modelRoot } }],
    predicateType: PREDICATE_SERVING,
    predicate,
  });
}

export interface ReceiptInput {
  modelRoot: string;
  servingManifest: string;
  logId: string;
  operation: Operation;
  salt: Uint8Array;
  /** The exact request body bytes. */
  request: Uint8Array;
  /** The response bytes: the UTF-8 completion text (a stream: its deltas concatenated). */
  response: Uint8Array;
  promptTokens: number;
  completionTokens: number;
  clientKeyId: string;
  seq: number;
  prevReceipt: string;
  issuedAt: Date;
}

/** The inference receipt statement: subject = SHA-256 of the response bytes, digests salted (DESIGN §12). */
export function buildReceiptStatement(input: ReceiptInput): ReceiptStatement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: "response", digest: { sha256: sha256Hex(input.response) } }],
    predicateType: PREDICATE_RECEIPT,
    predicate: {
      modelRoot: input.modelRoot,
      servingManifest: input.servingManifest,
      logId: input.logId,
      operation: input.operation,
      requestDigest: saltedDigest(input.salt, input.request),
      responseDigest: saltedDigest(input.salt, input.response),
      promptTokens: input.promptTokens,
      completionTokens: input.completionTokens,
      clientKeyId: input.clientKeyId,
      seq: input.seq,
      prevReceipt: input.prevReceipt,
      issuedAt: input.issuedAt.toISOString(),
    },
  };
}

export interface UsageInput extends Omit<UsagePredicate, "period"> {
  modelName: string;
  period: { start: Date; end: Date };
}

/** The usage statement of an epoch: one leaf of the log, after the receipts it meters. */
export function buildUsageStatement(input: UsageInput): UsageStatement {
  const meters = (m: Meters): Meters => ({
    "gen_ai.usage.input_tokens": m["gen_ai.usage.input_tokens"],
    "gen_ai.usage.output_tokens": m["gen_ai.usage.output_tokens"],
    requests: m.requests,
  });
  return validateUsageStatement({
    _type: STATEMENT_TYPE,
    subject: [{ name: input.modelName, digest: { sha256: input.modelRoot } }],
    predicateType: PREDICATE_USAGE,
    predicate: {
      modelRoot: input.modelRoot,
      logId: input.logId,
      servingManifest: input.servingManifest,
      period: { start: input.period.start.toISOString(), end: input.period.end.toISOString() },
      receipts: { ...input.receipts },
      meters: meters(input.meters),
      clients: input.clients.map((c) => ({ clientKeyId: c.clientKeyId, meters: meters(c.meters) })),
      prevUsage: input.prevUsage,
      recovery: input.recovery,
    },
  });
}

// ── signing ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** DSSE envelope over `payload` (in-toto type), ECDSA with the curve's hash, DER; keyid = the key's log id. */
export function signStatementPayload(payload: Uint8Array, privateKey: KeyObject, keyid: string): DsseEnvelope {
  const signature = sign(hashAlgorithmOf(privateKey), pae(INTOTO_PAYLOAD_TYPE, payload), {
    key: privateKey,
    dsaEncoding: "der",
  });
  return toEnvelope(payload, signature, keyid);
}

/**
 * The same signature computed on libuv's thread pool (node:crypto's callback form), so that the event loop keeps
 * driving token generation while a receipt is signed.
 */
export function signStatementPayloadAsync(
  payload: Uint8Array,
  privateKey: KeyObject,
  keyid: string,
): Promise<DsseEnvelope> {
  return new Promise((resolve, reject) => {
    sign(
      hashAlgorithmOf(privateKey),
      pae(INTOTO_PAYLOAD_TYPE, payload),
      { key: privateKey, dsaEncoding: "der" },
      (error, signature) => (error === null ? resolve(toEnvelope(payload, signature, keyid)) : reject(error)),
    );
  });
}

function toEnvelope(payload: Uint8Array, signature: Uint8Array, keyid: string): DsseEnvelope {
  return {
    payloadType: INTOTO_PAYLOAD_TYPE,
    payload: Buffer.from(payload).toString("base64"),
    signatures: [{ keyid, sig: Buffer.from(signature).toString("base64") }],
  };
}

// ── checkpoints ─────────────────────────────────────────────────────────────────────────────────────────────────

/** The C2SP checkpoint body of a serving log: origin `provenant.dev/serving/<logId>`, size, base64 root. */
export function servingCheckpointText(logId: string, treeSize: number, rootHash: Uint8Array): string {
  return formatCheckpoint({ origin: servingOrigin(logId), size: treeSize, rootHash, extensions: [] });
}

/**
 * Signs a checkpoint body as a C2SP signed note with a serving key, whose key name is its own log's origin: S for
 * its own log, or a successor key for a predecessor's log after a restart (docs/serving.md, restart semantics).
 */
export function signServingCheckpoint(text: string, privateKey: KeyObject): string {
  const publicKey = createPublicKey(privateKey);
  return signNote(text, servingOrigin(logIdOf(publicKey)), privateKey, publicKey);
}

/**
 * Verifies a serving log's checkpoint note against the key that signed it (S, or the successor key named by
 * `signerKey`), and that it is a checkpoint of `logId`. Returns the checkpoint. CHECKPOINT_INVALID otherwise.
 */
export function verifyServingCheckpoint(note: string, logId: string, signerKey: KeyObject): Checkpoint {
  const text = verifyNote(note, servingOrigin(logIdOf(signerKey)), signerKey);
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== servingOrigin(logId))
    throw new VerificationError("CHECKPOINT_INVALID", `the checkpoint's origin is not ${servingOrigin(logId)}`, {
      details: { expected: servingOrigin(logId), actual: checkpoint.origin },
    });
  return checkpoint;
}

// ── verification ────────────────────────────────────────────────────────────────────────────────────────────────

/** A serving public key (SERVING_KEY_CURVE, P-256) from DER SPKI bytes; `code` when it is not one. */
export function servingPublicKey(spki: Uint8Array, code: ErrorCode = "STATEMENT_INVALID"): KeyObject {
  try {
    if (parseEcSpki(spki).curve !== SERVING_KEY_CURVE) throw new Error(`not a ${SERVING_KEY_CURVE} key`);
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch (error) {
    throw new MalformedInputError(
      code,
      `the serving key is not a ${SERVING_KEY_CURVE} SubjectPublicKeyInfo: ${String(error)}`,
      { cause: error },
    );
  }
}

/** Re-throws a DSSE error under a receipt code (RECEIPT_BAD_SIGNATURE, RECEIPT_INVALID); others pass. */
function asReceiptError(error: unknown): never {
  if (error instanceof ProvenantError && error.code === "DSSE_BAD_SIGNATURE")
    throw new VerificationError("RECEIPT_BAD_SIGNATURE", error.message, { cause: error });
  if (error instanceof ProvenantError && (error.code === "DSSE_MALFORMED" || error.code === "STATEMENT_INVALID"))
    throw new MalformedInputError("RECEIPT_INVALID", error.message, { cause: error });
  throw error;
}

export interface VerifiedServing {
  statement: ServingStatement;
  /** The manifest digest (the kind 3 record's manifestDigest). */
  manifestDigest: string;
  logId: string;
  publicKey: KeyObject;
}

/**
 * Verifies a serving statement envelope: its payload is a valid serving statement, its servingKey is P-256 and is the
 * key that signed it (S signs its own statement; the bundle's attestation binds the same key in REPORT_DATA), and
 * keyid = logId = SHA-256(SPKI). STATEMENT_INVALID, DSSE_BAD_SIGNATURE or BINDING_KEY_MISMATCH otherwise.
 */
export function verifyServingStatement(envelope: DsseEnvelope, signer?: Uint8Array): VerifiedServing {
  // The reading and binding are lib/receipt/core's (shared with the SDK's WebCrypto twin); the signature is here.
  const { statement, payload, spki, logId } = readServingStatement(envelope, signer);
  const publicKey = servingPublicKey(spki);
  verifyEnvelope(envelope, publicKey);
  return { statement, manifestDigest: sha256Hex(payload), logId, publicKey };
}

export interface VerifiedReceipt {
  statement: ReceiptStatement;
  /** The payload bytes exactly as signed: the Merkle leaf data. */
  payload: Uint8Array;
  /** The receipt digest, hex SHA-256 of the payload. */
  digest: string;
}

/**
 * Verifies an inference receipt against the serving key S: a DSSE signature by S (RECEIPT_BAD_SIGNATURE), a valid
 * receipt statement (RECEIPT_INVALID), and its logId = SHA-256(SPKI(S)) (RECEIPT_INVALID). The serving statement is
 * the caller's to verify (verifyServingStatement) and to compare with `servingManifest` / `modelRoot`.
 */
export function verifyReceipt(envelope: DsseEnvelope, servingKey: KeyObject): VerifiedReceipt {
  let payload: Uint8Array;
  try {
    payload = verifyEnvelope(envelope, servingKey);
  } catch (error) {
    return asReceiptError(error);
  }
  const statement = validateReceiptStatement(
    parseStatementBytes(envelope.payloadType, payload, MAX_RECEIPT_PAYLOAD_BYTES, "RECEIPT_INVALID"),
  );
  const logId = logIdOf(servingKey);
  if (statement.predicate.logId !== logId)
    throw new MalformedInputError("RECEIPT_INVALID", "the receipt names another log than its signer's", {
      details: { path: "predicate.logId", expected: logId, actual: statement.predicate.logId },
    });
  return { statement, payload, digest: sha256Hex(payload) };
}

/**
 * Checks a receipt against the bytes its holder kept, with the salt (lib/receipt/core receiptDigestMismatches: the
 * subject, responseDigest and requestDigest; either side may be left out). RECEIPT_DIGEST_MISMATCH names the first
 * digest that differs; RECEIPT_INVALID for a salt that is not SALT_BYTES long.
 */
export function verifyReceiptBytes(
  statement: ReceiptStatement,
  salt: Uint8Array,
  bytes: { request?: Uint8Array; response?: Uint8Array },
): void {
  const [first] = receiptDigestMismatches(statement, salt, bytes);
  if (first !== undefined)
    throw new VerificationError("RECEIPT_DIGEST_MISMATCH", `${first.path} does not match the bytes and salt given`, {
      details: { ...first },
    });
}

/**
 * Checks that a statement payload (a receipt or a usage statement) is leaf `leafIndex` of the log tree of `treeSize`
 * leaves whose root is `rootHash` (RFC 9162 §2.1.3.2). MERKLE_PROOF_INVALID otherwise. Whether that root is anchored
 * (`checkpointRoot(logId, treeSize)` onchain) is the caller's check.
 */
export function verifyReceiptInclusion(
  payload: Uint8Array,
  leafIndex: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  rootHash: Uint8Array,
): void {
  verifyInclusion(leafHash(payload), leafIndex, treeSize, proof, rootHash);
}

/** Verifies a usage statement envelope against the key that signed it; returns the statement and its digest. */
export function verifyUsageStatement(
  envelope: DsseEnvelope,
  signerKey: KeyObject,
): { statement: UsageStatement; payload: Uint8Array; digest: string } {
  const payload = verifyEnvelope(envelope, signerKey);
  const statement = validateUsageStatement(
    parseStatementBytes(envelope.payloadType, payload, MAX_USAGE_PAYLOAD_BYTES, "STATEMENT_INVALID"),
  );
  return { statement, payload, digest: sha256Hex(payload) };
}
