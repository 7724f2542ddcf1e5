// A serving log's usage statement checked (docs/serving.md, "Usage statement"), browser-safe: one source of truth for
// the explorer's usage panel and for Node. It takes the server's answers (GET /v1/usage/latest, the leaf's proof),
// the serving key S of an attested serving bundle already checked against its onchain record, and the root the
// registry anchored; it trusts only S and the chain, never what the server says about either.
import { isPlainObject, parseEcSpki, parseEnvelope } from "../../lib/dsse/core.ts";
import type { DsseEnvelope } from "../../lib/dsse/core.ts";
import { toHex } from "../../lib/encoding/index.ts";
import { MalformedInputError, VerificationError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { sha256 } from "../../lib/hash/index.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import {
  MAX_USAGE_PAYLOAD_BYTES,
  SERVING_KEY_CURVE,
  parseStatementBytes,
  validateUsageStatement,
  type Meters,
  type UsageStatement,
} from "../../lib/receipt/core.ts";
import { importWebKey, toReceiptProof, verifyEnvelopeWeb, verifyLeafProof, type ReceiptProof } from "./receipt-core.ts";

/** Most base64 characters of a usage envelope's payload: MAX_USAGE_PAYLOAD_BYTES encoded. */
export const MAX_USAGE_PAYLOAD_CHARS = Math.ceil(MAX_USAGE_PAYLOAD_BYTES / 3) * 4;
/** Largest `GET /v1/usage/…` answer read: the envelope (payload at its bound, 4 signatures) and the answer's fields. */
export const MAX_USAGE_ANSWER_BYTES = MAX_USAGE_PAYLOAD_CHARS + 16 * 1024;
/** Largest proof answer read (as offchain/client/receipt.ts MAX_PROOF_ANSWER_BYTES). */
export const MAX_USAGE_PROOF_BYTES = 128 * 1024;

const HEX64 = /^[0-9a-f]{64}$/;

/** `GET /v1/usage/latest?log=` / `/v1/usage/<digest>`, as read: hints besides the envelope, which is the statement. */
export interface UsageAnswer {
  digest: string;
  /** The log the statement meters (predicate.logId). */
  meteredLogId: string;
  /** The log the statement is a leaf of: the metered log, or its successor's for a recovery statement. */
  logId: string;
  leafIndex: number;
  envelope: DsseEnvelope;
}

/** `GET /v1/receipts/<digest>/proof` as read: 200 anchored, 202 pending (with the proof when a checkpoint covers it). */
export interface UsageProofAnswer {
  status: "anchored" | "pending";
  reason: string | null;
  proof: ReceiptProof | null;
}

/** The attested serving key that signed the statement: S of the log holding the leaf, and its serving record. */
export interface UsageSigner {
  /** SHA-256 of `spki` (hex): the log id. */
  logId: string;
  /** DER SPKI of S (P-256), from a serving bundle checked against its onchain record (details-core checkRecordBundle). */
  spki: Uint8Array;
}

export interface UsageCheckInput {
  answer: UsageAnswer;
  /** The serving record whose log is shown: its log id (parentModelHash), model and manifest digest. */
  record: { logId: string; modelHash: string; manifestDigest: string };
  /** S of `answer.logId`: the record's own key, or (a recovery statement) the successor log's attested key. */
  signer: UsageSigner;
  /** The leaf's proof answer; null when none was read. */
  proof: UsageProofAnswer | null;
  /** checkpointRoot(signer.logId, proof.treeSize) onchain (rootHash null: that size is not anchored); null: not read. */
  anchor: { logId: string; treeSize: number; rootHash: string | null } | null;
  subtle?: SubtleCrypto;
}

export interface UsageVerification {
  /** anchored: signed by S and included under the anchored root; pending: signed, not (yet) under an anchored root. */
  status: "anchored" | "pending" | "failed";
  /** Signed by the attested S and a valid usage statement of the record's log and model. */
  signature: boolean;
  /** Included under the root the registry anchored for the leaf's log. */
  anchored: boolean;
  /** Why it is not anchored (the server's reason, or the chain's), when pending. */
  pendingReason: string | null;
  /** SHA-256 of the payload (hex), once it is verified. */
  digest: string | null;
  period: { start: string; end: string } | null;
  meters: Meters | null;
  /** Client key ids metered (entries of predicate.clients, `other` included). */
  clients: number | null;
  prevUsage: string | null;
  recovery: boolean | null;
  receipts: { fromSize: number; treeSize: number; count: number } | null;
  /** Where it was proved: the leaf, the anchored size and root. */
  inclusion: { leafIndex: number; treeSize: number; rootHash: string } | null;
  /** The first check that failed (its stable code); null when none did. */
  error: { code: ErrorCode; message: string } | null;
}

function malformed(code: ErrorCode, message: string, path?: string): MalformedInputError {
  return new MalformedInputError(code, message, path === undefined ? {} : { details: { path } });
}

/**
 * Reads a usage answer from untrusted JSON, bounded before anything is decoded: 64-hex ids, an integer leaf index, a
 * DSSE envelope whose payload is at most MAX_USAGE_PAYLOAD_CHARS of base64 and at most 4 signatures. STATEMENT_INVALID
 * (DSSE_MALFORMED for the envelope itself) otherwise. Other fields are ignored.
 */
export function toUsageAnswer(json: unknown): UsageAnswer {
  if (!isPlainObject(json)) throw malformed("STATEMENT_INVALID", "a usage answer is a JSON object");
  const hex = (value: unknown, path: string): string => {
    if (typeof value !== "string" || !HEX64.test(value))
      throw malformed("STATEMENT_INVALID", `${path}: expected 64 lower-case hex`, path);
    return value;
  };
  const digest = hex(json.digest, "digest");
  const meteredLogId = hex(json.meteredLogId, "meteredLogId");
  const logId = hex(json.logId, "logId");
  if (typeof json.leafIndex !== "number" || !Number.isSafeInteger(json.leafIndex) || json.leafIndex < 0)
    throw malformed("STATEMENT_INVALID", "leafIndex: expected a non-negative integer", "leafIndex");
  const raw = json.envelope;
  if (!isPlainObject(raw) || typeof raw.payload !== "string" || raw.payload.length > MAX_USAGE_PAYLOAD_CHARS)
    throw malformed(
      "STATEMENT_INVALID",
      `envelope: expected a DSSE envelope with at most ${MAX_USAGE_PAYLOAD_CHARS} characters of payload`,
      "envelope",
    );
  if (Array.isArray(raw.signatures) && raw.signatures.length > 4)
    throw malformed("STATEMENT_INVALID", "envelope: a usage envelope has at most 4 signatures", "envelope.signatures");
  return { digest, meteredLogId, logId, leafIndex: json.leafIndex, envelope: parseEnvelope(raw) };
}

/** toUsageAnswer on the answer's bytes: strict JSON (lib/json), at most MAX_USAGE_ANSWER_BYTES. */
export function readUsageAnswer(bytes: Uint8Array): UsageAnswer {
  if (bytes.length > MAX_USAGE_ANSWER_BYTES)
    throw malformed(
      "STATEMENT_INVALID",
      `a usage answer is at most ${MAX_USAGE_ANSWER_BYTES} bytes, got ${bytes.length}`,
    );
  return toUsageAnswer(parseStrictJsonBytes(bytes, { code: "STATEMENT_INVALID", what: "usage answer" }));
}

/**
 * Reads the proof endpoint's answer (HTTP 200 or 202) from its bytes, bounded (MAX_USAGE_PROOF_BYTES, then
 * toReceiptProof: at most MAX_PROOF_HASHES hashes): MERKLE_INVALID / CHECKPOINT_INVALID otherwise. A pending answer
 * may carry no proof (the epoch is open).
 */
export function readUsageProofAnswer(httpStatus: number, bytes: Uint8Array): UsageProofAnswer {
  if (httpStatus !== 200 && httpStatus !== 202)
    throw malformed("MERKLE_INVALID", `a proof answer is HTTP 200 or 202, got ${httpStatus}`);
  if (bytes.length > MAX_USAGE_PROOF_BYTES)
    throw malformed("MERKLE_INVALID", `a proof answer is at most ${MAX_USAGE_PROOF_BYTES} bytes, got ${bytes.length}`);
  const json = parseStrictJsonBytes(bytes, { code: "MERKLE_INVALID", what: "proof answer" });
  if (!isPlainObject(json)) throw malformed("MERKLE_INVALID", "a proof answer is a JSON object");
  const reason = typeof json.reason === "string" ? json.reason.slice(0, 200) : null;
  const hasProof = json.proof !== undefined;
  if (httpStatus === 200 && !hasProof) throw malformed("MERKLE_INVALID", "an anchored answer carries its proof");
  return { status: httpStatus === 200 ? "anchored" : "pending", reason, proof: hasProof ? toReceiptProof(json) : null };
}

/** A verification with nothing verified: `status` and `error` say why (the page shows no numbers of it). */
export function unverifiedUsage<S extends string = UsageVerification["status"]>(
  status: S,
  error: { code: ErrorCode; message: string } | null,
): Omit<UsageVerification, "status"> & { status: S } {
  return {
    status,
    signature: false,
    anchored: false,
    pendingReason: null,
    digest: null,
    period: null,
    meters: null,
    clients: null,
    prevUsage: null,
    recovery: null,
    receipts: null,
    inclusion: null,
    error,
  };
}

/**
 * Checks a usage statement, as a list of steps that each throw one coded error; never throws itself. A statement
 * that fails any step comes back `failed` with its code and none of its numbers.
 * 1. S: a P-256 SPKI whose SHA-256 is the signer's log id, the log the answer says the leaf is in (RECEIPT_SERVING_MISMATCH).
 * 2. The envelope is signed by S (DSSE_BAD_SIGNATURE), its payload a valid usage statement (STATEMENT_INVALID).
 * 3. It meters the record's log and model under the record's manifest; signed by another log's key only as a
 *    recovery statement (RECEIPT_SERVING_MISMATCH).
 * 4. Its leaf (SHA-256(0x00 ‖ payload)) leads by the proof to the proof's root (MERKLE_PROOF_INVALID), and that root
 *    is the one the registry anchored for the size (RECEIPT_NOT_ANCHORED when the chain holds another); no proof, or
 *    no root anchored at that size yet, is `pending`.
 */
export async function checkUsage(input: UsageCheckInput): Promise<UsageVerification> {
  const out: UsageVerification = unverifiedUsage("failed", null);
  try {
    const { statement, digest, payload } = await verifiedStatement(input);
    const p = statement.predicate;
    Object.assign(out, {
      signature: true,
      digest,
      period: { ...p.period },
      meters: { ...p.meters },
      clients: p.clients.length,
      prevUsage: p.prevUsage,
      recovery: p.recovery,
      receipts: { fromSize: p.receipts.fromSize, treeSize: p.receipts.treeSize, count: p.receipts.count },
    });
    const included = inclusion(input, payload);
    if (included.proved !== null) {
      out.status = "anchored";
      out.anchored = true;
      out.inclusion = included.proved;
    } else {
      out.status = "pending";
      out.pendingReason = included.reason;
    }
  } catch (error) {
    const [first] = toErrorList(error);
    // Nothing a failed statement says is shown.
    Object.assign(out, unverifiedUsage("failed", null), {
      error: first ?? { code: "INTERNAL", message: String(error) },
    });
  }
  return out;
}

async function verifiedStatement(
  input: UsageCheckInput,
): Promise<{ statement: UsageStatement; digest: string; payload: Uint8Array }> {
  const { answer, record, signer } = input;
  // 1. S, the log of the leaf.
  const { curve } = parseEcSpki(signer.spki);
  if (curve !== SERVING_KEY_CURVE || toHex(sha256(signer.spki)) !== signer.logId)
    throw new VerificationError(
      "RECEIPT_SERVING_MISMATCH",
      `the signer is not the ${SERVING_KEY_CURVE} key of log ${signer.logId}`,
    );
  if (answer.logId !== signer.logId)
    throw new VerificationError(
      "RECEIPT_SERVING_MISMATCH",
      `the statement is a leaf of log ${answer.logId}, not of the attested key's log ${signer.logId}`,
    );
  // 2. Signed by S (DSSE, PAE over the payload as signed), then read strictly and validated.
  if (answer.envelope.payload.length > MAX_USAGE_PAYLOAD_CHARS)
    throw malformed("STATEMENT_INVALID", `the payload is more than ${MAX_USAGE_PAYLOAD_BYTES} bytes`, "payload");
  const subtle = input.subtle ?? globalThis.crypto.subtle;
  const payload = await verifyEnvelopeWeb(answer.envelope, await importWebKey(signer.spki, subtle), subtle);
  if (payload === undefined)
    throw new VerificationError(
      "DSSE_BAD_SIGNATURE",
      `no signature of the usage statement verifies with S of log ${signer.logId}`,
    );
  const statement = validateUsageStatement(
    parseStatementBytes(answer.envelope.payloadType, payload, MAX_USAGE_PAYLOAD_BYTES, "STATEMENT_INVALID"),
  );
  const digest = toHex(sha256(payload));
  if (answer.digest !== digest)
    throw malformed(
      "STATEMENT_INVALID",
      `the answer names digest ${answer.digest}, the payload's is ${digest}`,
      "digest",
    );
  // 3. The record's log, model and serving manifest.
  const p = statement.predicate;
  const wrong: string[] = [];
  if (p.logId !== record.logId) wrong.push(`it meters log ${p.logId}, not ${record.logId}`);
  if (answer.meteredLogId !== p.logId) wrong.push(`the answer says it meters ${answer.meteredLogId}`);
  if (p.modelRoot !== record.modelHash) wrong.push(`it meters model ${p.modelRoot}, not ${record.modelHash}`);
  if (p.servingManifest !== record.manifestDigest)
    wrong.push(`it names serving manifest ${p.servingManifest}, not the record's ${record.manifestDigest}`);
  if (signer.logId !== record.logId && !p.recovery)
    wrong.push(`it is signed by log ${signer.logId}'s key without being a recovery statement`);
  if (wrong.length > 0) throw new VerificationError("RECEIPT_SERVING_MISMATCH", wrong.join("; "));
  return { statement, digest, payload };
}

function inclusion(
  input: UsageCheckInput,
  payload: Uint8Array,
): { proved: { leafIndex: number; treeSize: number; rootHash: string } | null; reason: string | null } {
  const answer = input.proof;
  if (answer === null) return { proved: null, reason: "no proof was read" };
  const proof = answer.proof;
  if (proof === null) return { proved: null, reason: answer.reason ?? "no checkpoint covers it yet" };
  verifyLeafProof(payload, proof, input.signer.logId);
  const anchor = input.anchor;
  if (anchor === null || anchor.logId !== proof.logId || anchor.treeSize !== proof.treeSize)
    return { proved: null, reason: `the chain was not read for size ${proof.treeSize}` };
  if (anchor.rootHash === null)
    return { proved: null, reason: answer.reason ?? `no root is anchored for size ${proof.treeSize} yet` };
  if (anchor.rootHash !== proof.rootHash)
    throw new VerificationError(
      "RECEIPT_NOT_ANCHORED",
      `the root anchored for size ${proof.treeSize} is ${anchor.rootHash}, not the proof's ${proof.rootHash}`,
    );
  return { proved: { leafIndex: proof.leafIndex, treeSize: proof.treeSize, rootHash: proof.rootHash }, reason: null };
}
