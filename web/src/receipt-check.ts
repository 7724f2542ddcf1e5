// "Verify a receipt" in the browser: the checks of `provenant receipt verify` (offchain/client/receipt-core.ts
// checkReceipt, the receipt engineer's browser-safe core: S's signature, the serving statement, the records and their
// revocation times against issuedAt, the anchored inclusion, the salted digests) over what the page can gather: the
// dropped receipt file (and its proof), the chain through the page's registry client, and the serving bundle from
// the verifier (or a dropped one). The page cannot run the SNP pipeline; the serving bundle's attestation is instead
// the verifier's recorded verdict re-verified here: the bundle must match its kind 3 record onchain
// (details-core checkRecordBundle), which the verifier published only after its full pipeline.
// The receipt file, its claims, the chain facts and the serving statement are read by offchain/client/receipt-file.ts,
// the same browser-safe readers `provenant receipt verify` uses.
import { readBundle } from "../../lib/bundle/core.ts";
import { toErrorList, type ErrorCode } from "../../lib/errors.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import { parseSalt } from "../../lib/receipt/core.ts";
import type { RegistryClient } from "../../offchain/client/core.ts";
import { checkRecordBundle, fetchRecordBundle, type VerifierOptions } from "../../offchain/client/details.ts";
import {
  checkReceipt,
  toReceiptProof,
  type ReceiptVerification,
  type ServingEvidence,
} from "../../offchain/client/receipt-core.ts";
import {
  parseReceiptFile,
  receiptChainFacts,
  receiptClaims,
  servingEnvelopeOf,
} from "../../offchain/client/receipt-file.ts";

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

const coded = (error: unknown): { code: ErrorCode; message: string }[] => toErrorList(error);

/**
 * Verifies a receipt with what the page has. Never throws for what the receipt or the chain says (every check and
 * reason is in the result); throws the coded error of an unreadable input (receipt file, proof file, salt).
 */
export async function verifyReceiptInPage(
  input: ReceiptInput,
  deps: { client: RegistryClient; verifier: VerifierOptions | null },
): Promise<ReceiptPageResult> {
  const file = parseReceiptFile(input.receipt);
  const proof =
    input.proof === undefined
      ? file.proof
      : toReceiptProof(parseStrictJsonBytes(input.proof, { code: "MERKLE_INVALID", what: "proof" }));
  const saltHex = input.salt !== undefined && input.salt.trim() !== "" ? input.salt.trim() : file.salt;
  const salt = saltHex === undefined ? undefined : parseSalt(saltHex);
  const claims = receiptClaims(file.envelope);
  // No signerLogId: the page has no successor's serving bundle, so a recovery checkpoint fails before it is needed.
  const chain = await receiptChainFacts(deps.client, {
    ...claims,
    ...(proof === undefined ? {} : { treeSize: proof.treeSize }),
  });

  // The serving bundle, matched against its kind 3 record: that record is the verifier's verdict (DESIGN §7).
  const record = await deps.client.record(claims.servingManifest);
  let serving: ServingEvidence | { unreadable: { code: ErrorCode; message: string }[]; attestation: null };
  let servingSource: ReceiptPageResult["servingSource"] = "none";
  try {
    if (input.servingBundle !== undefined) {
      servingSource = "file";
      if (record === null) serving = { ...servingEnvelopeOf(readBundle(input.servingBundle)), attestation: null };
      else {
        const matched = await checkRecordBundle(record, input.servingBundle).then(
          (b) => ({ b }),
          (error: unknown) => ({ error }),
        );
        serving =
          "b" in matched
            ? { envelope: matched.b.envelope, signer: matched.b.signer, attestation: { ok: true, errors: [] } }
            : {
                ...servingEnvelopeOf(readBundle(input.servingBundle)),
                attestation: { ok: false, errors: coded(matched.error) },
              };
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
