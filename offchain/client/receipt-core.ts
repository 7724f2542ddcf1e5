// Verification of an inference receipt (DESIGN §12), browser-safe: no node:* modules, signatures through WebCrypto
// (lib/dsse/core), SHA-256 through lib/hash, Merkle proofs and C2SP notes through lib/merkle/core, formats through
// lib/receipt/core (each the one implementation, shared with Node). It takes what a caller gathered (the receipt, the
// serving statement and the verdict on its attestation, the inclusion proof and its signed checkpoint, what the chain
// says) and returns every check with its coded reasons. It trusts only the serving key S that an attested serving
// statement names, and the registry's anchored roots and revocation times.
import {
  EC_CURVES,
  decodeBase64,
  isPlainObject,
  pae,
  parseEcSpki,
  signatureCandidates,
  type DsseEnvelope,
  type EcCurve,
} from "../../lib/dsse/core.ts";
import { equalBytes, fromHex, toHex } from "../../lib/encoding/index.ts";
import {
  MalformedInputError,
  PolicyError,
  PolicyViolationError,
  VerificationError,
  toErrorList,
  type ErrorCode,
} from "../../lib/errors.ts";
import { sha256 } from "../../lib/hash/index.ts";
import {
  MAX_PROOF_HASHES,
  leafHash,
  noteKeyIdOf,
  noteSignaturesBy,
  parseCheckpoint,
  parseNote,
  rootFromInclusionProof,
  type Checkpoint,
  type SignedNote,
} from "../../lib/merkle/core.ts";
import {
  MAX_RECEIPT_PAYLOAD_BYTES,
  parseStatementBytes,
  readServingStatement,
  receiptDigestMismatches,
  servingOrigin,
  validateReceiptStatement,
  type ReceiptStatement,
  type ServingStatement,
} from "../../lib/receipt/core.ts";

// Most hashes an inclusion proof may hold (a tree of 2^64 leaves needs 64): lib/merkle's bound, for toReceiptProof.
export { MAX_PROOF_HASHES };
/** Largest checkpoint note read (c2sp.org/signed-note: a few hundred bytes in practice). */
export const MAX_NOTE_CHARS = 16 * 1024;

/** `null`: not checked (no salt and bytes were given, or an earlier proof failed so this one means nothing). */
export type CheckResult = boolean | null;

export interface ReceiptChecks {
  /** The receipt's DSSE signature by S, and its statement (RECEIPT_BAD_SIGNATURE, RECEIPT_INVALID). */
  signature: CheckResult;
  /** The serving statement names S and the receipt's model, log and manifest (STATEMENT_INVALID, RECEIPT_SERVING_MISMATCH). */
  servingStatement: CheckResult;
  /** The serving bundle passed the verifier's pipeline under the policy (its SNP/GPU/policy codes). */
  attestation: CheckResult;
  /** The model has a record of the kind the serving statement's admission requires, onchain (MODEL_NOT_RECORDED). */
  modelRecorded: CheckResult;
  /** The serving statement is recorded as kind 3 of that model and registered S's log (SERVING_NOT_RECORDED). */
  servingRecorded: CheckResult;
  /** The serving record was not, and not every required model record was, revoked before issuedAt (MODEL_REVOKED). */
  notRevoked: CheckResult;
  /** The receipt is a leaf of a checkpoint S signed and the registry anchored (MERKLE_PROOF_INVALID, RECEIPT_NOT_ANCHORED, CHECKPOINT_INVALID). */
  inclusion: CheckResult;
  /** Given the salt and the bytes: the request and response digests (RECEIPT_DIGEST_MISMATCH). */
  digests: CheckResult;
}

/** The inclusion proof of a receipt, as `GET /v1/receipts/:digest/proof` serves it (fields besides these ignored). */
export interface ReceiptProof {
  logId: string;
  leafIndex: number;
  treeSize: number;
  /** RFC 6962 root of the first treeSize leaves (64 hex). */
  rootHash: string;
  /** The audit path, leaf to root (64 hex each). */
  proof: string[];
  /** The C2SP signed note of that checkpoint and the log whose key signed it (another log's after a restart). */
  checkpoint: { note: string; signerLogId: string };
}

/** A registry record as the checks need it (offchain/client: recordOf, and the AttestationRevoked block's time). */
export interface RecordFact {
  manifestDigest: string;
  modelHash: string;
  /** 1 fine-tune, 2 audit, 3 serving. */
  kind: number;
  revoked: boolean;
  /** The block time of AttestationRevoked; null when not revoked (or the event was not found: then it counts as ever). */
  revokedAt: Date | null;
}

/** What the chain says, read by the SDK's edge (receiptChainFacts) for the values the receipt claims. */
export interface ReceiptChainFacts {
  /** recordOf(servingManifest); null when not recorded. */
  serving: RecordFact | null;
  /** logOf(logId): the serving manifest that registered the log; null when the log is not registered. */
  logManifest: string | null;
  /** The model's fine-tune and audit records (kinds 1 and 2). */
  modelRecords: RecordFact[];
  /** checkpointRoot(logId, treeSize) for the proof's (logId, treeSize); rootHash null when that size is not anchored. */
  anchor: { logId: string; treeSize: number; rootHash: string | null; anchoredAt: Date | null };
  /** For a checkpoint signed by a successor key: recordOf(logOf(signerLogId)), null when not registered. */
  successorServing?: RecordFact | null;
}

/** An attested serving statement: its envelope, the bundle's signer K, and the pipeline's verdict on the bundle. */
export interface ServingEvidence {
  envelope: DsseEnvelope;
  /** The bundle's signer K (DER SPKI): S must be K. */
  signer: Uint8Array;
  /** verifyBundle's verdict (ok and its errors); null when it could not be run here (the page: no SNP checks). */
  attestation: { ok: boolean; errors: { code: ErrorCode; message: string }[] } | null;
}

export interface ReceiptCheckInput {
  /** The receipt's DSSE envelope (lib/receipt toReceiptInput reads what a caller holds). */
  envelope: DsseEnvelope;
  /** The serving statement; or, when the serving bundle could not be read as one, why (and its attestation verdict). */
  serving:
    | ServingEvidence
    | { unreadable: { code: ErrorCode; message: string }[]; attestation: ServingEvidence["attestation"] };
  /** The serving statement of the key that signed a recovery checkpoint (a successor of S), when there is one. */
  successor?: ServingEvidence;
  proof?: ReceiptProof;
  chain?: ReceiptChainFacts;
  /** The salt (32 bytes) and the bytes the caller kept; digests are checked for whichever is given. */
  salt?: Uint8Array;
  request?: Uint8Array;
  response?: Uint8Array;
  subtle?: SubtleCrypto;
}

export interface ReceiptVerification {
  /** Every check true; `digests` may be null (not asked). */
  ok: boolean;
  /** SHA-256 of the receipt payload (hex), once the payload is read. */
  receiptDigest: string | null;
  modelRoot: string | null;
  servingManifest: string | null;
  logId: string | null;
  seq: number | null;
  issuedAt: string | null;
  checks: ReceiptChecks;
  errors: { code: ErrorCode; message: string }[];
  /** Said, refuses nothing: e.g. a record revoked after issuedAt ("issued before revocation"). */
  notes: { code: string; message: string }[];
  /** Where the inclusion was proved: the anchored size and root, when, and who signed the checkpoint. */
  inclusion: {
    leafIndex: number;
    treeSize: number;
    rootHash: string;
    anchoredAt: string | null;
    checkpointSigner: "serving-key" | "successor";
  } | null;
  /** The latest revocation that did not refuse the receipt because it came after issuedAt. */
  revokedAfterIssue: { manifestDigest: string; revokedAt: string }[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();

function malformed(code: ErrorCode, message: string, path?: string): MalformedInputError {
  return new MalformedInputError(code, message, path === undefined ? {} : { details: { path } });
}

/**
 * Reads an inclusion proof from untrusted JSON (a receipt file's `proof`, the server's answer), bounded: 64-hex
 * digests, integers, at most MAX_PROOF_HASHES hashes, a note of at most MAX_NOTE_CHARS. MERKLE_INVALID otherwise.
 */
export function toReceiptProof(json: unknown): ReceiptProof {
  if (!isPlainObject(json)) throw malformed("MERKLE_INVALID", "an inclusion proof is a JSON object");
  const hex = (value: unknown, path: string): string => {
    if (typeof value !== "string" || !HEX64.test(value))
      throw malformed("MERKLE_INVALID", `${path}: expected 64 lower-case hex`, path);
    return value;
  };
  const int = (value: unknown, path: string): number => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
      throw malformed("MERKLE_INVALID", `${path}: expected a non-negative integer`, path);
    return value;
  };
  const logId = hex(json.logId, "logId");
  const leafIndex = int(json.leafIndex, "leafIndex");
  const treeSize = int(json.treeSize, "treeSize");
  if (leafIndex >= treeSize)
    throw malformed("MERKLE_INVALID", `leaf ${leafIndex} is not in a tree of ${treeSize}`, "leafIndex");
  const rootHash = hex(json.rootHash, "rootHash");
  if (!Array.isArray(json.proof) || json.proof.length > MAX_PROOF_HASHES)
    throw malformed("MERKLE_INVALID", `proof: expected at most ${MAX_PROOF_HASHES} hashes`, "proof");
  const proof = json.proof.map((h, i) => hex(h, `proof[${i}]`));
  const checkpoint = json.checkpoint;
  if (!isPlainObject(checkpoint)) throw malformed("MERKLE_INVALID", "checkpoint: expected an object", "checkpoint");
  if (typeof checkpoint.note !== "string" || checkpoint.note.length === 0 || checkpoint.note.length > MAX_NOTE_CHARS)
    throw malformed(
      "CHECKPOINT_INVALID",
      `checkpoint.note: expected a signed note of at most ${MAX_NOTE_CHARS} characters`,
      "checkpoint.note",
    );
  const signerLogId =
    checkpoint.signerLogId === undefined ? logId : hex(checkpoint.signerLogId, "checkpoint.signerLogId");
  return { logId, leafIndex, treeSize, rootHash, proof, checkpoint: { note: checkpoint.note, signerLogId } };
}

// ── RFC 6962 / 9162 inclusion and C2SP checkpoints (lib/merkle/core, the one implementation) ──────────────────────

/**
 * RFC 9162 §2.1.3.2: the root an inclusion proof leads to (lib/merkle rootFromInclusionProof), or undefined when the
 * proof does not fit the tree: an index outside it, more than MAX_PROOF_HASHES hashes, a hash not of 32 bytes.
 */
export function rootFromInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined;
  if (proof.length > MAX_PROOF_HASHES || proof.some((h) => h.length !== 32)) return undefined;
  return rootFromInclusionProof(leaf, index, size, proof);
}

/**
 * A statement payload (a receipt or a usage statement) is leaf `proof.leafIndex` of log `logId`: the proof, read by
 * toReceiptProof, leads from its RFC 6962 leaf hash to `proof.rootHash`. MERKLE_PROOF_INVALID otherwise. Whether
 * that root is signed and anchored is the caller's (checkReceipt, usage-core checkUsage).
 */
export function verifyLeafProof(payload: Uint8Array, proof: ReceiptProof, logId: string): void {
  if (proof.logId !== logId)
    throw new VerificationError("MERKLE_PROOF_INVALID", `the proof is for log ${proof.logId}, the leaf is in ${logId}`);
  const root = rootFromInclusion(
    leafHash(payload),
    proof.leafIndex,
    proof.treeSize,
    proof.proof.map((h) => fromHex(h)!),
  );
  if (root === undefined || toHex(root) !== proof.rootHash)
    throw new VerificationError(
      "MERKLE_PROOF_INVALID",
      `the inclusion proof of leaf ${proof.leafIndex} does not lead to the root of the tree of size ${proof.treeSize}`,
    );
}

function checkpointError(message: string, cause?: unknown): VerificationError {
  return new VerificationError("CHECKPOINT_INVALID", message, cause === undefined ? {} : { cause });
}

/** A signed note read by lib/merkle (parseNote, then parseCheckpoint of its text); CHECKPOINT_INVALID otherwise. */
function readNote(note: string): SignedNote & { body: Checkpoint } {
  try {
    const parsed = parseNote(note);
    return { ...parsed, body: parseCheckpoint(parsed.text) };
  } catch (error) {
    throw checkpointError(error instanceof Error ? error.message : String(error), error);
  }
}

/**
 * Verifies a C2SP note against one ECDSA key (type 0x02: key ID = SHA-256(SPKI)[:4], an ASN.1 signature over SHA-256
 * of the text, as lib/merkle signNote writes it) named `name`; CHECKPOINT_INVALID unless it carries a signature by
 * that key and every such signature verifies.
 */
async function verifyNoteWeb(note: SignedNote, name: string, key: WebKey, subtle: SubtleCrypto): Promise<void> {
  const mine = noteSignaturesBy(note, name, noteKeyIdOf(key.spki));
  if (mine.length === 0) throw checkpointError(`the checkpoint carries no signature by ${name}`);
  const message = encoder.encode(note.text);
  for (const signature of mine)
    if (!(await verifyWithKey(key, "SHA-256", message, signature, subtle)))
      throw checkpointError(`the checkpoint's signature by ${name} does not verify`);
}

/** An EC public key imported into WebCrypto once: S verifies every receipt and checkpoint of its log. */
export interface WebKey {
  key: CryptoKey;
  curve: EcCurve;
  spki: Uint8Array;
}

/** Imports an EC SPKI for ECDSA verification; DSSE_MALFORMED when it is not one, STATEMENT_INVALID when WebCrypto refuses it. */
export async function importWebKey(spki: Uint8Array, subtle: SubtleCrypto = globalThis.crypto.subtle): Promise<WebKey> {
  const { curve } = parseEcSpki(spki);
  try {
    const key = await subtle.importKey(
      "spki",
      spki as Uint8Array<ArrayBuffer>,
      { name: "ECDSA", namedCurve: curve },
      false,
      ["verify"],
    );
    return { key, curve, spki };
  } catch (error) {
    throw new MalformedInputError("STATEMENT_INVALID", `the serving key is not a usable ${curve} key`, {
      cause: error,
    });
  }
}

/** ECDSA with `hash` over `message`: a DER or r‖s signature (lib/dsse signatureCandidates), high-S accepted. */
async function verifyWithKey(
  key: WebKey,
  hash: "SHA-256" | "SHA-384" | "SHA-512",
  message: Uint8Array,
  signature: Uint8Array,
  subtle: SubtleCrypto,
): Promise<boolean> {
  for (const raw of signatureCandidates(signature, EC_CURVES[key.curve].fieldBytes))
    if (
      await subtle.verify(
        { name: "ECDSA", hash },
        key.key,
        raw as Uint8Array<ArrayBuffer>,
        message as Uint8Array<ArrayBuffer>,
      )
    )
      return true;
  return false;
}

// ── the checks ───────────────────────────────────────────────────────────────────────────────────────────────────

/** A DSSE envelope verified with one EC key over WebCrypto (the curve's hash): the payload when any signature verifies. */
export async function verifyEnvelopeWeb(
  envelope: DsseEnvelope,
  key: WebKey,
  subtle: SubtleCrypto,
): Promise<Uint8Array | undefined> {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  const message = pae(envelope.payloadType, payload);
  for (const [i, s] of envelope.signatures.entries()) {
    const signature = decodeBase64(s.sig, "DSSE_MALFORMED", `signatures[${i}].sig`);
    if (await verifyWithKey(key, EC_CURVES[key.curve].hash, message, signature, subtle)) return payload;
  }
  return undefined;
}

/**
 * A serving statement read and bound by lib/receipt/core readServingStatement (as verifyServingStatement reads it),
 * then its signature by S checked over WebCrypto.
 */
async function verifyServingWeb(
  evidence: ServingEvidence,
  subtle: SubtleCrypto,
): Promise<{ statement: ServingStatement; manifestDigest: string; logId: string; spki: Uint8Array; key: WebKey }> {
  const { statement, payload, spki, logId } = readServingStatement(evidence.envelope, evidence.signer);
  const key = await importWebKey(spki, subtle);
  if ((await verifyEnvelopeWeb(evidence.envelope, key, subtle)) === undefined)
    throw new VerificationError("DSSE_BAD_SIGNATURE", "the serving statement is not signed by its serving key");
  return { statement, manifestDigest: toHex(sha256(payload)), logId, spki, key };
}

class Errors {
  readonly list: { code: ErrorCode; message: string }[] = [];
  add(error: unknown): void {
    for (const e of toErrorList(error))
      if (!this.list.some((x) => x.code === e.code && x.message === e.message)) this.list.push(e);
  }
  /** Runs a step; false (and its coded reasons) when it throws. */
  async step(body: () => Promise<void> | void): Promise<boolean> {
    try {
      await body();
      return true;
    } catch (error) {
      this.add(error);
      return false;
    }
  }
}

const KIND_NAMES: Record<number, string> = { 1: "fine-tune", 2: "audit", 3: "serving" };

/**
 * Checks one receipt (DESIGN §12; docs/serving.md, "Verifying a receipt"). Cryptography fails fast: without an
 * attested serving statement there is no S, and without S's signature nothing the receipt says is checked further.
 * Never throws: every reason is a coded error in `errors`, every check true, false or null (not checked).
 */
export async function checkReceipt(input: ReceiptCheckInput): Promise<ReceiptVerification> {
  const subtle = input.subtle ?? globalThis.crypto.subtle;
  const e = new Errors();
  const notes: ReceiptVerification["notes"] = [];
  const checks: ReceiptChecks = {
    signature: null,
    servingStatement: null,
    attestation: null,
    modelRecorded: null,
    servingRecorded: null,
    notRevoked: null,
    inclusion: null,
    digests: null,
  };
  const result: ReceiptVerification = {
    ok: false,
    receiptDigest: null,
    modelRoot: null,
    servingManifest: null,
    logId: null,
    seq: null,
    issuedAt: null,
    checks,
    errors: e.list,
    notes,
    inclusion: null,
    revokedAfterIssue: [],
  };

  // The attestation: the pipeline's verdict on the serving bundle, taken as given (the page cannot check SNP).
  const attestation = input.serving.attestation;
  if (attestation !== null) {
    checks.attestation = attestation.ok;
    for (const error of attestation.errors) e.add(new PolicyError(error.code, `serving bundle: ${error.message}`));
  }

  // S: the serving statement's key, bound to the bundle's signer.
  let serving: Awaited<ReturnType<typeof verifyServingWeb>> | undefined;
  const evidence = input.serving;
  checks.servingStatement = await e.step(async () => {
    if ("unreadable" in evidence)
      throw new PolicyViolationError(
        evidence.unreadable.length > 0
          ? evidence.unreadable.map(toCodedError)
          : [new MalformedInputError("STATEMENT_INVALID", "no serving statement was given")],
      );
    serving = await verifyServingWeb(evidence, subtle);
  });
  if (serving === undefined) return result;

  // The receipt: signed by S, a valid receipt statement of S's log.
  let statement: ReceiptStatement | undefined;
  let payload: Uint8Array | undefined;
  checks.signature = await e.step(async () => {
    const signed = await verifyEnvelopeWeb(input.envelope, serving!.key, subtle);
    if (signed === undefined)
      throw new VerificationError("RECEIPT_BAD_SIGNATURE", "no receipt signature verifies with the serving key S");
    payload = signed;
    statement = validateReceiptStatement(
      parseStatementBytes(input.envelope.payloadType, signed, MAX_RECEIPT_PAYLOAD_BYTES, "RECEIPT_INVALID"),
    );
  });
  if (statement === undefined || payload === undefined) return result;
  const p = statement.predicate;
  Object.assign(result, {
    receiptDigest: toHex(sha256(payload)),
    modelRoot: p.modelRoot,
    servingManifest: p.servingManifest,
    logId: p.logId,
    seq: p.seq,
    issuedAt: p.issuedAt,
  });

  // The receipt is one of this serving statement's: same log, same manifest, same model.
  checks.servingStatement = await e.step(() => {
    const mismatch: string[] = [];
    if (p.logId !== serving!.logId) mismatch.push(`logId ${p.logId} is not S's log ${serving!.logId}`);
    if (p.servingManifest !== serving!.manifestDigest)
      mismatch.push(
        `servingManifest ${p.servingManifest} is not the serving statement's digest ${serving!.manifestDigest}`,
      );
    const subject = serving!.statement.subject[0].digest.sha256;
    if (p.modelRoot !== subject) mismatch.push(`modelRoot ${p.modelRoot} is not the served model ${subject}`);
    // A log's receipts start at its firstSeq: an earlier seq was another life's (or was never issued).
    const firstSeq = serving!.statement.predicate.log.firstSeq;
    if (p.seq < firstSeq) mismatch.push(`seq ${p.seq} is before the log's firstSeq ${firstSeq}`);
    if (mismatch.length > 0) throw new VerificationError("RECEIPT_SERVING_MISMATCH", mismatch.join("; "));
  });

  // The bytes, with the salt (SHA-256(salt ‖ bytes)); the subject is SHA-256 of the response.
  if (input.salt !== undefined && (input.request !== undefined || input.response !== undefined)) {
    const salt = input.salt;
    checks.digests = await e.step(() => {
      const wrong = receiptDigestMismatches(statement!, salt, {
        ...(input.request === undefined ? {} : { request: input.request }),
        ...(input.response === undefined ? {} : { response: input.response }),
      });
      if (wrong.length > 0)
        throw new VerificationError(
          "RECEIPT_DIGEST_MISMATCH",
          `${wrong.map((w) => w.path).join(", ")} do not match the bytes and salt given`,
        );
    });
  }

  // Inclusion: the leaf's proof leads to the root S signed in a checkpoint and the registry anchored.
  const proof = input.proof;
  if (proof === undefined) {
    checks.inclusion = false;
    e.add(new VerificationError("RECEIPT_NOT_ANCHORED", "no inclusion proof was given for this receipt"));
  } else {
    checks.inclusion = await e.step(async () => {
      verifyLeafProof(payload!, proof, p.logId);
      const note = readNote(proof.checkpoint.note);
      if (
        note.body.origin !== servingOrigin(p.logId) ||
        note.body.size !== proof.treeSize ||
        toHex(note.body.rootHash) !== proof.rootHash
      )
        throw checkpointError(
          `the checkpoint note is not (${servingOrigin(p.logId)}, ${proof.treeSize}, the proof's root)`,
        );
      let signer: "serving-key" | "successor" = "serving-key";
      if (proof.checkpoint.signerLogId === p.logId)
        await verifyNoteWeb(note, servingOrigin(p.logId), serving!.key, subtle);
      else {
        // A recovery checkpoint (docs/serving.md): S's process died and the next serving key of the same data
        // directory signed its log's tail. That key must itself be attested, recorded and of the same model.
        signer = "successor";
        const successor = input.successor;
        if (successor === undefined)
          throw checkpointError(
            `the checkpoint was signed by log ${proof.checkpoint.signerLogId} (a successor of S): its serving bundle is needed`,
          );
        const next = await verifyServingWeb(successor, subtle);
        if (next.logId !== proof.checkpoint.signerLogId)
          throw checkpointError("the successor's serving bundle is not the checkpoint signer's");
        if (successor.attestation !== null && !successor.attestation.ok)
          throw checkpointError("the successor's serving bundle does not pass the policy");
        if (next.statement.subject[0].digest.sha256 !== p.modelRoot)
          throw checkpointError("the successor serves another model");
        const record = input.chain?.successorServing;
        if (
          input.chain !== undefined &&
          (record === null || record === undefined || record.manifestDigest !== next.manifestDigest)
        )
          throw checkpointError("the successor's serving statement is not the record that registered its log");
        await verifyNoteWeb(note, servingOrigin(next.logId), next.key, subtle);
      }
      const anchor = input.chain?.anchor;
      if (anchor === undefined)
        throw new VerificationError("RECEIPT_NOT_ANCHORED", "the registry was not asked for the anchored root");
      if (anchor.logId !== p.logId || anchor.treeSize !== proof.treeSize || anchor.rootHash === null)
        throw new VerificationError(
          "RECEIPT_NOT_ANCHORED",
          `no checkpoint of size ${proof.treeSize} is anchored for log ${p.logId} (checkpointRoot is zero)`,
        );
      if (anchor.rootHash !== proof.rootHash)
        throw new VerificationError(
          "RECEIPT_NOT_ANCHORED",
          `the root anchored for size ${proof.treeSize} is ${anchor.rootHash}, not the proof's ${proof.rootHash}`,
        );
      result.inclusion = {
        leafIndex: proof.leafIndex,
        treeSize: proof.treeSize,
        rootHash: proof.rootHash,
        anchoredAt: anchor.anchoredAt?.toISOString() ?? null,
        checkpointSigner: signer,
      };
    });
  }

  // The chain: the model's and the serving statement's records, and when they were revoked.
  const chain = input.chain;
  if (chain === undefined) return finish(result);
  const issuedAt = Date.parse(p.issuedAt);
  const revokedBefore = (r: RecordFact): boolean =>
    r.revoked && (r.revokedAt === null || r.revokedAt.getTime() <= issuedAt);
  const noteAfter = (r: RecordFact) => {
    if (r.revoked && r.revokedAt !== null && r.revokedAt.getTime() > issuedAt) {
      result.revokedAfterIssue.push({ manifestDigest: r.manifestDigest, revokedAt: r.revokedAt.toISOString() });
      notes.push({
        code: "ISSUED_BEFORE_REVOCATION",
        message: `the ${KIND_NAMES[r.kind] ?? "?"} record ${r.manifestDigest} was revoked at ${r.revokedAt.toISOString()}, after this receipt was issued (${p.issuedAt})`,
      });
    }
  };
  // The records the server's gate required (the serving statement's admission.require): audits, fine-tunes or either.
  const require = serving.statement.predicate.admission.require;
  const kinds = require === "audit" ? [2] : require === "finetune" ? [1] : [1, 2];
  const wanted = require === "any" ? "fine-tune or audit" : require === "audit" ? "audit" : "fine-tune";
  const models = chain.modelRecords.filter((r) => r.modelHash === p.modelRoot && kinds.includes(r.kind));
  checks.modelRecorded = await e.step(() => {
    if (models.length === 0)
      throw new VerificationError(
        "MODEL_NOT_RECORDED",
        `model ${p.modelRoot} has no ${wanted} record onchain (the serving statement requires ${require})`,
      );
  });
  const servingRecord = chain.serving;
  checks.servingRecorded = await e.step(() => {
    if (servingRecord === null || servingRecord.manifestDigest !== p.servingManifest)
      throw new VerificationError(
        "SERVING_NOT_RECORDED",
        `serving statement ${p.servingManifest} is not recorded onchain`,
      );
    if (servingRecord.kind !== 3 || servingRecord.modelHash !== p.modelRoot)
      throw new VerificationError(
        "SERVING_NOT_RECORDED",
        `record ${p.servingManifest} is a ${KIND_NAMES[servingRecord.kind] ?? "?"} record of model ${servingRecord.modelHash}, not a serving record of ${p.modelRoot}`,
      );
    if (chain.logManifest !== p.servingManifest)
      throw new VerificationError(
        "SERVING_NOT_RECORDED",
        `log ${p.logId} was registered by ${chain.logManifest ?? "no serving record"}, not by ${p.servingManifest}`,
      );
  });
  checks.notRevoked = await e.step(() => {
    const reasons: string[] = [];
    if (servingRecord !== null && revokedBefore(servingRecord))
      reasons.push(`the serving record ${servingRecord.manifestDigest} was revoked ${when(servingRecord)}`);
    // The model stands while one of its fine-tune or audit records stood when the receipt was issued.
    if (models.length > 0 && models.every(revokedBefore))
      reasons.push(
        `every record of model ${p.modelRoot} was revoked by then (${models.map((r) => `${r.manifestDigest} ${when(r)}`).join(", ")})`,
      );
    if (reasons.length > 0)
      throw new PolicyError("MODEL_REVOKED", `${reasons.join("; ")}; the receipt was issued at ${p.issuedAt}`);
  });
  if (servingRecord !== null) noteAfter(servingRecord);
  for (const r of models) noteAfter(r);
  return finish(result);
}

/** An `{code, message}` pair back as a coded error (its kind does not matter here: only the list is reported). */
function toCodedError(error: { code: ErrorCode; message: string }): MalformedInputError {
  return new MalformedInputError(error.code, error.message);
}

function when(r: RecordFact): string {
  return r.revokedAt === null ? "(time unknown, taken as before)" : `at ${r.revokedAt.toISOString()}`;
}

function finish(result: ReceiptVerification): ReceiptVerification {
  const { digests, ...rest } = result.checks;
  result.ok = result.errors.length === 0 && Object.values(rest).every((v) => v === true) && digests !== false;
  return result;
}

// ── many receipts of one log ─────────────────────────────────────────────────────────────────────────────────────

/** An inclusion proof without its checkpoint: the log verifier holds the checkpoints. */
export interface LeafProof {
  leafIndex: number;
  treeSize: number;
  proof: string[];
}

/**
 * The receipts of one serving log checked in bulk (an auditor's loop, a marketplace's meter): S is verified and
 * imported once, each checkpoint's note once (addCheckpoint), and each receipt then costs one ECDSA verification,
 * its statement read and a few SHA-256 of its inclusion proof. Whether a checkpoint is anchored is the caller's to
 * know (checkpointOf) before adding it; the records and revocations are checkReceipt's.
 */
export interface ReceiptLogVerifier {
  readonly logId: string;
  readonly modelRoot: string;
  readonly servingManifest: string;
  /** Verifies a checkpoint note of this log signed by S and keeps its root for `verify`; CHECKPOINT_INVALID otherwise. */
  addCheckpoint(note: string): Promise<{ treeSize: number; rootHash: string }>;
  /**
   * A receipt signed by S (RECEIPT_BAD_SIGNATURE), a valid receipt of this log, model and serving statement
   * (RECEIPT_INVALID, RECEIPT_SERVING_MISMATCH), a leaf of a checkpoint added before (MERKLE_PROOF_INVALID,
   * RECEIPT_NOT_ANCHORED for a size none was added for). Returns its digest and statement.
   */
  verify(envelope: DsseEnvelope, proof: LeafProof): Promise<{ digest: string; statement: ReceiptStatement }>;
}

export async function createReceiptLogVerifier(
  serving: ServingEvidence,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<ReceiptLogVerifier> {
  const s = await verifyServingWeb(serving, subtle);
  const modelRoot = s.statement.subject[0].digest.sha256;
  const roots = new Map<number, Uint8Array>();
  return {
    logId: s.logId,
    modelRoot,
    servingManifest: s.manifestDigest,
    async addCheckpoint(text) {
      if (text.length > MAX_NOTE_CHARS)
        throw checkpointError(`a checkpoint note is at most ${MAX_NOTE_CHARS} characters`);
      const note = readNote(text);
      if (note.body.origin !== servingOrigin(s.logId))
        throw checkpointError(`the checkpoint's origin is not ${servingOrigin(s.logId)}`);
      await verifyNoteWeb(note, servingOrigin(s.logId), s.key, subtle);
      roots.set(note.body.size, note.body.rootHash);
      return { treeSize: note.body.size, rootHash: toHex(note.body.rootHash) };
    },
    async verify(envelope, proof) {
      const payload = await verifyEnvelopeWeb(envelope, s.key, subtle);
      if (payload === undefined)
        throw new VerificationError("RECEIPT_BAD_SIGNATURE", "no receipt signature verifies with the serving key S");
      const statement = validateReceiptStatement(
        parseStatementBytes(envelope.payloadType, payload, MAX_RECEIPT_PAYLOAD_BYTES, "RECEIPT_INVALID"),
      );
      const p = statement.predicate;
      if (
        p.logId !== s.logId ||
        p.servingManifest !== s.manifestDigest ||
        p.modelRoot !== modelRoot ||
        p.seq < s.statement.predicate.log.firstSeq
      )
        throw new VerificationError(
          "RECEIPT_SERVING_MISMATCH",
          "the receipt names another log, serving statement or model",
        );
      const root = roots.get(proof.treeSize);
      if (root === undefined)
        throw new VerificationError("RECEIPT_NOT_ANCHORED", `no checkpoint of size ${proof.treeSize} was added`);
      if (proof.proof.length > MAX_PROOF_HASHES)
        throw malformed("MERKLE_INVALID", "a proof is at most 64 hashes", "proof");
      const path = proof.proof.map((h) => {
        const bytes = HEX64.test(h) ? fromHex(h) : undefined;
        if (bytes === undefined) throw malformed("MERKLE_INVALID", "a proof hash is 64 lower-case hex", "proof");
        return bytes;
      });
      const computed =
        Number.isSafeInteger(proof.leafIndex) && Number.isSafeInteger(proof.treeSize)
          ? rootFromInclusion(leafHash(payload), proof.leafIndex, proof.treeSize, path)
          : undefined;
      if (computed === undefined || !equalBytes(computed, root))
        throw new VerificationError(
          "MERKLE_PROOF_INVALID",
          `the inclusion proof of leaf ${proof.leafIndex} does not lead to the root of the tree of size ${proof.treeSize}`,
        );
      return { digest: toHex(sha256(payload)), statement };
    },
  };
}
