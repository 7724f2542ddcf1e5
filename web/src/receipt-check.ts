// "Verify a receipt" in the browser: the checks of `provenant receipt verify` (offchain/client/receipt-core.ts
// checkReceipt, the receipt engineer's browser-safe core: S's signature, the serving statement, the records and their
// revocation times against issuedAt, the anchored inclusion, the salted digests) over what the page can gather: the
// dropped receipt file (and its proof), the chain through the page's registry client, and the serving bundle from
// the verifier (or a dropped one). The page cannot run the SNP pipeline; the serving bundle's attestation is instead
// the verifier's recorded verdict re-verified here: the bundle must match its kind 3 record onchain
// (details-core checkRecordBundle), which the verifier published only after its full pipeline.
// parseReceiptFile, receiptClaims and receiptChainFacts of offchain/client/receipt.ts are Node-only there (that
// module runs the pipeline), so their browser-safe twins are here, built on the same cores.
import { predicateTypeOf, readBundle } from "../../lib/bundle/core.ts";
import { decodeBase64, isPlainObject, type DsseEnvelope } from "../../lib/dsse/core.ts";
import { MalformedInputError, toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import { PREDICATE_SERVING, parseSalt, toReceiptInput } from "../../lib/receipt/core.ts";
import type { RegistryClient, RegistryRecord } from "../../offchain/client/core.ts";
import { checkRecordBundle, fetchRecordBundle, type VerifierOptions } from "../../offchain/client/details.ts";
import {
  checkReceipt,
  toReceiptProof,
  type ReceiptChainFacts,
  type ReceiptProof,
  type ReceiptVerification,
  type RecordFact,
  type ServingEvidence,
} from "../../offchain/client/receipt-core.ts";

/** Largest receipt file read (as receipt.ts MAX_RECEIPT_FILE_BYTES). */
export const MAX_RECEIPT_FILE_BYTES = 256 * 1024;

/** What the "verify a receipt" panel was given. */
export interface ReceiptInput {
  /** The receipt file: a `provenant_receipt` object, a bare envelope, a completion, or `{receipt, proof}`. */
  receipt: Uint8Array;
  /** A proof file (the serving endpoint's `/v1/receipts/:digest/proof` answer), when the receipt file has none. */
  proof?: Uint8Array;
  /** The serving bundle, when not fetched from the verifier. */
  servingBundle?: Uint8Array;
  /** 64 hex; else the receipt object's own salt. */
  salt?: string;
  request?: Uint8Array;
  response?: Uint8Array;
}

export interface ReceiptPageResult extends ReceiptVerification {
  /** Where the serving bundle came from, and whether it matched its record onchain. */
  servingSource: "verifier" | "file" | "none";
}

/** The twin of receipt.ts parseReceiptFile (strict JSON, bounded; RECEIPT_INVALID / MERKLE_INVALID). */
export function readReceiptFile(bytes: Uint8Array): { envelope: DsseEnvelope; salt?: string; proof?: ReceiptProof } {
  if (bytes.length > MAX_RECEIPT_FILE_BYTES)
    throw new MalformedInputError("RECEIPT_INVALID", `a receipt file is at most ${MAX_RECEIPT_FILE_BYTES} bytes`);
  const json = parseStrictJsonBytes(bytes, { code: "RECEIPT_INVALID", what: "receipt file" });
  if (isPlainObject(json) && "receipt" in json) {
    for (const key of Object.keys(json))
      if (key !== "receipt" && key !== "proof")
        throw new MalformedInputError("RECEIPT_INVALID", `receipt file: unknown field ${JSON.stringify(key)}`);
    const inner = toReceiptInput(json.receipt);
    return { ...inner, ...(json.proof === undefined ? {} : { proof: toReceiptProof(json.proof) }) };
  }
  if (isPlainObject(json) && "provenant_receipt" in json) return toReceiptInput(json.provenant_receipt);
  return toReceiptInput(json);
}

/** The twin of receipt.ts receiptClaims: what the receipt claims (unverified), to ask the chain about. */
function claimsOf(envelope: DsseEnvelope): { modelRoot: string; servingManifest: string; logId: string } {
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

async function factOf(client: RegistryClient, record: RegistryRecord): Promise<RecordFact> {
  return {
    manifestDigest: record.manifestDigest,
    modelHash: record.modelHash,
    kind: record.kindCode,
    revoked: record.revoked,
    revokedAt: record.revoked ? (await client.revocationTime(record.manifestDigest)).revokedAt : null,
  };
}

/** The twin of receipt.ts receiptChainFacts, through the page's registry client. */
async function chainFacts(
  client: RegistryClient,
  claims: { modelRoot: string; servingManifest: string; logId: string },
  proof: ReceiptProof | undefined,
): Promise<ReceiptChainFacts> {
  const [serving, logRecord, lookup, anchor] = await Promise.all([
    client.record(claims.servingManifest),
    client.servingRecordOf(claims.logId),
    client.lookup(claims.modelRoot),
    proof === undefined ? undefined : client.checkpointOf(claims.logId, proof.treeSize),
  ]);
  const modelRecords: RecordFact[] = [];
  for (const r of lookup.records) if (r.kindCode !== 3) modelRecords.push(await factOf(client, r));
  return {
    serving: serving === null ? null : await factOf(client, serving),
    logManifest: logRecord?.manifestDigest ?? null,
    modelRecords,
    anchor: {
      logId: claims.logId,
      treeSize: proof?.treeSize ?? -1,
      rootHash: anchor?.rootHash ?? null,
      anchoredAt: anchor?.anchoredAt ?? null,
    },
  };
}

/** The serving statement envelope of a bundle that is not (yet) recorded: read only, attestation not known here. */
function servingEnvelopeOf(bytes: Uint8Array): { envelope: DsseEnvelope; signer: Uint8Array } {
  const bundle = readBundle(bytes);
  const found = bundle.envelopes.filter((e) => predicateTypeOf(e) === PREDICATE_SERVING);
  if (found.length !== 1)
    throw new MalformedInputError("STATEMENT_INVALID", `the bundle holds ${found.length} serving statements, not one`);
  return { envelope: found[0]!, signer: decodeBase64(bundle.signer.publicKey, "BUNDLE_MALFORMED", "signer.publicKey") };
}

const coded = (error: unknown): { code: ErrorCode; message: string }[] => toErrorList(error);

/**
 * Verifies a receipt with what the page has. Never throws for what the receipt or the chain says (every check and
 * reason is in the result); throws the coded error of an unreadable input (receipt file, proof file, salt).
 */
export async function verifyReceiptInPage(
  input: ReceiptInput,
  deps: { client: RegistryClient; verifier: VerifierOptions | null },
): Promise<ReceiptPageResult> {
  const file = readReceiptFile(input.receipt);
  const proof =
    input.proof === undefined
      ? file.proof
      : toReceiptProof(parseStrictJsonBytes(input.proof, { code: "MERKLE_INVALID", what: "proof" }));
  const saltHex = input.salt !== undefined && input.salt.trim() !== "" ? input.salt.trim() : file.salt;
  const salt = saltHex === undefined ? undefined : parseSalt(saltHex);
  const claims = claimsOf(file.envelope);
  const chain = await chainFacts(deps.client, claims, proof);

  // The serving bundle, matched against its kind 3 record: that record is the verifier's verdict (DESIGN §7).
  const record = await deps.client.record(claims.servingManifest);
  let serving: ServingEvidence | { unreadable: { code: ErrorCode; message: string }[]; attestation: null };
  let servingSource: ReceiptPageResult["servingSource"] = "none";
  try {
    if (input.servingBundle !== undefined) {
      servingSource = "file";
      if (record === null) serving = { ...servingEnvelopeOf(input.servingBundle), attestation: null };
      else {
        const matched = await checkRecordBundle(record, input.servingBundle).then(
          (b) => ({ b }),
          (error: unknown) => ({ error }),
        );
        serving =
          "b" in matched
            ? { envelope: matched.b.envelope, signer: matched.b.signer, attestation: { ok: true, errors: [] } }
            : { ...servingEnvelopeOf(input.servingBundle), attestation: { ok: false, errors: coded(matched.error) } };
      }
    } else if (deps.verifier !== null && record !== null) {
      servingSource = "verifier";
      const b = await fetchRecordBundle(deps.verifier, record);
      serving = { envelope: b.envelope, signer: b.signer, attestation: { ok: true, errors: [] } };
    } else {
      serving = {
        unreadable: [
          {
            code: record === null ? "SERVING_NOT_RECORDED" : "VERIFIER_UNAVAILABLE",
            message:
              record === null
                ? "the receipt's serving statement is not recorded onchain, and no serving bundle was given"
                : "no verifier is set and no serving bundle was given",
          },
        ],
        attestation: null,
      };
    }
  } catch (error) {
    serving = { unreadable: coded(error), attestation: null };
  }
  const result = await checkReceipt({
    envelope: file.envelope,
    serving,
    chain,
    ...(proof === undefined ? {} : { proof }),
    ...(salt === undefined ? {} : { salt }),
    ...(input.request === undefined ? {} : { request: input.request }),
    ...(input.response === undefined ? {} : { response: input.response }),
  });
  return { ...result, servingSource };
}
