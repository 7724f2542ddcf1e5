// The browser-safe receipt-file readers: receipt.ts (the CLI and SDK) re-exports them rather than keeping its own, and
// what a receipt claims or a serving bundle holds is refused with the same codes whoever reads it.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { before, describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, type DsseEnvelope } from "../../lib/dsse/core.ts";
import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { makeServingBundle, TestReceiptLog, type ServingBundle } from "../testing/serving.ts";
import * as node from "./receipt.ts";
import {
  MAX_RECEIPT_FILE_BYTES,
  parseReceiptFile,
  receiptChainFacts,
  receiptClaims,
  servingEnvelopeOf,
} from "./receipt-file.ts";

const NOW = new Date("2026-11-21T12:00:00Z");

/** An envelope around `payload` (JSON): receiptClaims reads claims before any signature is checked. */
function envelopeOf(payload: unknown): DsseEnvelope {
  return {
    payloadType: INTOTO_PAYLOAD_TYPE,
    payload: Buffer.from(JSON.stringify(payload)).toString("base64"),
    signatures: [],
  };
}

describe("receipt file readers", () => {
  let f: BundleFactory;
  let serving: ServingBundle;
  let log: TestReceiptLog;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
    serving = makeServingBundle(f, { seed: "receipt-file" });
    log = new TestReceiptLog(serving);
    log.issue(new Date("2026-11-21T12:00:01Z"));
  });

  it("when receipt.ts is imported, its file, claims, serving and chain readers are receipt-file.ts's own", () => {
    assert.equal(node.parseReceiptFile, parseReceiptFile);
    assert.equal(node.receiptClaims, receiptClaims);
    assert.equal(node.receiptChainFacts, receiptChainFacts);
    assert.equal(node.servingEnvelopeOf, servingEnvelopeOf);
    assert.equal(node.MAX_RECEIPT_FILE_BYTES, MAX_RECEIPT_FILE_BYTES);
    assert.equal(MAX_RECEIPT_FILE_BYTES, 256 * 1024);
  });

  it("when a receipt file is one byte over the bound, it is RECEIPT_INVALID before it is parsed", () => {
    const json = Buffer.from(JSON.stringify(log.receipts[0]!.object));
    const padded = new Uint8Array(MAX_RECEIPT_FILE_BYTES + 1).fill(0x20);
    padded.set(json, 0);
    assert.throws(() => parseReceiptFile(padded), { code: "RECEIPT_INVALID" });
    // The same object padded to exactly the bound reads (JSON allows trailing white space).
    assert.equal(parseReceiptFile(padded.subarray(0, MAX_RECEIPT_FILE_BYTES)).object?.seq, 0);
  });

  it("when a receipt claims its model, serving manifest and log, receiptClaims gives them; not 64 hex is RECEIPT_INVALID", () => {
    const envelope = log.receipts[0]!.object.envelope;
    assert.deepEqual(receiptClaims(envelope), {
      modelRoot: serving.modelRoot,
      servingManifest: serving.servingManifest,
      logId: serving.logId,
    });
    const predicate = { modelRoot: serving.modelRoot, servingManifest: serving.servingManifest, logId: serving.logId };
    for (const key of ["modelRoot", "servingManifest", "logId"] as const) {
      for (const bad of [undefined, 7, serving.logId.toUpperCase(), `${serving.logId}00`]) {
        const e = envelopeOf({ predicate: { ...predicate, [key]: bad } });
        assert.throws(() => receiptClaims(e), { code: "RECEIPT_INVALID" }, `${key} = ${String(bad)}`);
      }
    }
    assert.throws(() => receiptClaims(envelopeOf([])), { code: "RECEIPT_INVALID" });
    assert.throws(() => receiptClaims({ ...envelope, payload: "not base64!" }), { code: "DSSE_MALFORMED" });
    const dup = { ...envelope, payload: Buffer.from('{"predicate":{},"predicate":{}}').toString("base64") };
    assert.throws(() => receiptClaims(dup), { code: "RECEIPT_INVALID" });
  });

  it("when a bundle holds one serving statement, servingEnvelopeOf gives it and S; none or two is STATEMENT_INVALID", () => {
    const { envelope, signer } = servingEnvelopeOf(serving.bundle);
    assert.deepEqual(envelope, serving.bundle.envelopes[0]);
    const s = createPublicKey({ key: Buffer.from(signer), format: "der", type: "spki" });
    assert.equal(s.equals(serving.publicKey), true);
    const audit = f.make({ seed: "receipt-file eval", kind: "eval" });
    assert.throws(() => servingEnvelopeOf(audit.bundle), { code: "STATEMENT_INVALID" });
    const twice = { ...serving.bundle, envelopes: [envelope, ...serving.bundle.envelopes] };
    assert.throws(() => servingEnvelopeOf(twice), { code: "STATEMENT_INVALID" });
    const badKey = { ...serving.bundle, signer: { publicKey: "%%%" } };
    assert.throws(() => servingEnvelopeOf(badKey), { code: "BUNDLE_MALFORMED" });
  });
});
