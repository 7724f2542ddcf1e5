// Cross-part: a bundle assembled by the enclave job (enclave-job/bundle.ts, simulator attestation provider) is
// accepted by the verifier's pipeline with the policy that `provenant sim policy` prints, and its record carries the
// manifest digest the job computed.
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";

import { simProvider } from "../enclave-job/attest/providers.ts";
import { assembleBundle } from "../enclave-job/bundle.ts";
import { buildEvalStatement, buildOmsStatement } from "../lib/intoto/index.ts";
import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../lib/snp/index.ts";
import { parseVerifierPolicy, verifyBundle } from "../offchain/pipeline/index.ts";
import { oneFileModelHash } from "../offchain/testing/bundles.ts";

/** The simulator's clock and the verification time: nothing here depends on the day the test runs. */
const NOW = new Date("2026-11-21T12:00:00Z");

describe("enclave job bundle → verifier pipeline", () => {
  it("when the enclave job assembles an audit bundle with the simulator, the verifier accepts it", async () => {
    const sim = await createSimulator({ now: NOW });
    const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const spki = k.publicKey.export({ format: "der", type: "spki" });
    const nonce = createHash("sha256").update("enclave-nonce").digest();
    const reportData = Buffer.concat([createHash("sha256").update(spki).digest(), nonce]);
    const evidence = await simProvider({ now: NOW }).attest(new Uint8Array(reportData));
    const hash = oneFileModelHash("tiny", createHash("sha256").update("weights").digest("hex"), 7);
    const root = hash.rootDigest;
    const manifest = buildEvalStatement({
      model: { name: "tiny", rootDigest: root },
      suite: { name: "suite", digest: createHash("sha256").update("suite").digest("hex") },
      harness: { name: "provenant", version: "0.1.0", digest: createHash("sha256").update("h").digest("hex") },
      metrics: [{ name: "accuracy", value: 1, sampleSize: 2 }],
      startedOn: new Date("2026-11-21T10:00:00Z"),
      finishedOn: new Date("2026-11-21T10:01:00Z"),
    });
    const { bytes, manifestDigest } = assembleBundle({
      manifest,
      models: [buildOmsStatement("tiny", hash)],
      privateKey: k.privateKey,
      spki: new Uint8Array(spki),
      nonce: new Uint8Array(nonce),
      evidence,
    });
    const policy = parseVerifierPolicy({
      snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
      trustedRoots: [sim.rootFingerprint],
    });
    const verdict = verifyBundle(bytes, { policy, now: NOW });
    assert.deepEqual(verdict.errors, []);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.manifestDigest, manifestDigest);
    assert.equal(verdict.record?.modelHash, `0x${root}`);
    assert.equal(verdict.record?.kind, 2);
    assert.equal(verdict.evidence?.root.kind, "development");
  });
});
