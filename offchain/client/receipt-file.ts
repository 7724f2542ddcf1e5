// Reading what a receipt's verifier is handed, browser-safe (no node:* modules, no pipeline): the receipt file, the
// receipt's unverified claims, a serving bundle's serving statement, and the chain facts for those claims read through
// a RegistryClient. Both edges use it: receipt.ts (Node, the CLI and SDK) and the page (web/src/receipt-check.ts).
// Nothing here is trusted: receipt-core.ts checkReceipt holds every value read here against signatures and the chain.
import { predicateTypeOf, type ProvenanceBundle } from "../../lib/bundle/core.ts";
import { decodeBase64, isPlainObject, type DsseEnvelope } from "../../lib/dsse/core.ts";
import { MalformedInputError } from "../../lib/errors.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import { PREDICATE_SERVING, toReceiptInput, type ReceiptObject } from "../../lib/receipt/core.ts";
import type { RegistryClient, RegistryRecord } from "./core.ts";
import { toReceiptProof, type ReceiptChainFacts, type ReceiptProof, type RecordFact } from "./receipt-core.ts";

/** Largest receipt file read: a receipt (16 KiB at most) with its inclusion proof and checkpoint note. */
export const MAX_RECEIPT_FILE_BYTES = 256 * 1024;
/** Largest request or response file hashed against a receipt's digests (serve bounds a request body far below it). */
export const MAX_DIGESTED_FILE_BYTES = 64 * 1024 * 1024;

/** A receipt as a caller holds it, with the inclusion proof when the file carries one. */
export interface ReceiptFile {
  envelope: DsseEnvelope;
  /** The `provenant_receipt` object when the file holds one (its salt among others). */
  object?: ReceiptObject;
  salt?: string;
  proof?: ReceiptProof;
}

/** What a receipt claims (unverified): the values the edge asks the chain about. */
export interface ReceiptClaims {
  modelRoot: string;
  servingManifest: string;
  logId: string;
}

/**
 * Reads a receipt file: the `provenant_receipt` object a completion carries, the bare DSSE envelope (the
 * `Provenant-Receipt` header decoded), a whole completion response holding `provenant_receipt`, or
 * `{"receipt": <one of those>, "proof": <the proof endpoint's answer>}`. Strict JSON, at most
 * MAX_RECEIPT_FILE_BYTES; RECEIPT_INVALID (MERKLE_INVALID / CHECKPOINT_INVALID for the proof) otherwise.
 */
export function parseReceiptFile(bytes: Uint8Array): ReceiptFile {
  if (bytes.length > MAX_RECEIPT_FILE_BYTES)
    throw new MalformedInputError("RECEIPT_INVALID", `a receipt file is at most ${MAX_RECEIPT_FILE_BYTES} bytes`);
  const json = parseStrictJsonBytes(bytes, { code: "RECEIPT_INVALID", what: "receipt file" });
  if (isPlainObject(json) && "receipt" in json) {
    for (const key of Object.keys(json))
      if (key !== "receipt" && key !== "proof")
        throw new MalformedInputError("RECEIPT_INVALID", `receipt file: unknown field ${JSON.stringify(key)}`, {
          details: { path: key },
        });
    const inner = toReceiptInput(json.receipt);
    return { ...inner, ...(json.proof === undefined ? {} : { proof: toReceiptProof(json.proof) }) };
  }
  if (isPlainObject(json) && "provenant_receipt" in json) return toReceiptInput(json.provenant_receipt);
  return toReceiptInput(json);
}

/** The unverified claims of a receipt payload: what the edge asks the chain about (the core checks them after). */
export function receiptClaims(envelope: DsseEnvelope): ReceiptClaims {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  const json = parseStrictJsonBytes(payload, { code: "RECEIPT_INVALID", what: "receipt payload" });
  const p = isPlainObject(json) && isPlainObject(json.predicate) ? json.predicate : {};
  const hex = (v: unknown, name: string): string => {
    if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v))
      throw new MalformedInputError("RECEIPT_INVALID", `the receipt's predicate.${name} is not 64 hex`);
    return v;
  };
  return {
    modelRoot: hex(p.modelRoot, "modelRoot"),
    servingManifest: hex(p.servingManifest, "servingManifest"),
    logId: hex(p.logId, "logId"),
  };
}

/**
 * The serving statement envelope of a serving bundle (its one serving-predicate envelope) and the bundle's signer K.
 * Read only: whether the bundle's attestation holds is the caller's (the pipeline, or its kind 3 record onchain).
 */
export function servingEnvelopeOf(bundle: ProvenanceBundle): { envelope: DsseEnvelope; signer: Uint8Array } {
  const found = bundle.envelopes.filter((e) => predicateTypeOf(e) === PREDICATE_SERVING);
  if (found.length !== 1)
    throw new MalformedInputError(
      "STATEMENT_INVALID",
      `the attestation is not a serving bundle: it holds ${found.length} serving statements`,
    );
  return {
    envelope: found[0]!,
    signer: decodeBase64(bundle.signer.publicKey, "BUNDLE_MALFORMED", "signer.publicKey"),
  };
}

// ── the chain ────────────────────────────────────────────────────────────────────────────────────────────────────

/** A record as the checks need it; `withRevocationTime` false leaves revokedAt null (no AttestationRevoked lookup). */
async function toRecordFact(
  client: RegistryClient,
  record: RegistryRecord,
  withRevocationTime = true,
): Promise<RecordFact> {
  return {
    manifestDigest: record.manifestDigest,
    modelHash: record.modelHash,
    kind: record.kindCode,
    revoked: record.revoked,
    revokedAt:
      withRevocationTime && record.revoked ? (await client.revocationTime(record.manifestDigest)).revokedAt : null,
  };
}

/**
 * What the registry says about a receipt's claims: the serving record and the log's registration, the model's
 * fine-tune and audit records with their revocation times, the root anchored at the proof's size (and, for a
 * recovery checkpoint, the signer log's serving record). The core compares every fact with the verified values.
 */
export async function receiptChainFacts(
  client: RegistryClient,
  claims: ReceiptClaims & { treeSize?: number; signerLogId?: string },
): Promise<ReceiptChainFacts> {
  const [serving, logRecord, lookup, anchor, successor] = await Promise.all([
    client.record(claims.servingManifest),
    client.servingRecordOf(claims.logId),
    client.lookup(claims.modelRoot),
    claims.treeSize === undefined ? undefined : client.checkpointOf(claims.logId, claims.treeSize),
    claims.signerLogId === undefined || claims.signerLogId === claims.logId
      ? undefined
      : client.servingRecordOf(claims.signerLogId),
  ]);
  const modelRecords: RecordFact[] = [];
  for (const r of lookup.records) if (r.kindCode !== 3) modelRecords.push(await toRecordFact(client, r));
  return {
    serving: serving === null ? null : await toRecordFact(client, serving),
    logManifest: logRecord?.manifestDigest ?? null,
    modelRecords,
    anchor: {
      logId: claims.logId,
      treeSize: claims.treeSize ?? -1,
      rootHash: anchor?.rootHash ?? null,
      anchoredAt: anchor?.anchoredAt ?? null,
    },
    ...(successor === undefined
      ? {}
      : { successorServing: successor === null ? null : await toRecordFact(client, successor, false) }),
  };
}
