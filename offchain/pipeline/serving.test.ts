import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";

import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { makeServingBundle, servingPolicy } from "../testing/serving.ts";
import { parseVerifierPolicy, policyDigest, verifyBundle, type VerifierPolicy } from "./index.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const codes = (v: { errors: { code: string }[] }): string[] => [...new Set(v.errors.map((e) => e.code))].sort();

describe("pipeline, serving statements (kind 3)", () => {
  let f: BundleFactory;
  let policy: VerifierPolicy;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
    policy = servingPolicy(f);
  });

  it("when a simulator serving bundle is sound, it accepts it and derives the kind 3 record with the log id", () => {
    const made = makeServingBundle(f, { seed: "sound" });
    const v = verifyBundle(made.bytes, { policy, now: NOW });
    assert.deepEqual(v.errors, []);
    assert.equal(v.ok, true);
    assert.equal(v.kind, "serving");
    assert.equal(v.modelHash, made.modelRoot);
    assert.equal(v.manifestDigest, made.servingManifest);
    assert.equal(v.jobCodeDigest, `sha256:${createHash("sha256").update("job-code-sound").digest("hex")}`);
    const report = Buffer.from(made.bundle.evidence.cpu.report, "base64");
    const measurement = report.subarray(0x90, 0x90 + 48);
    assert.deepEqual(v.record, {
      modelHash: `0x${made.modelRoot}`,
      manifestDigest: `0x${made.servingManifest}`,
      // The log id: SHA-256 of S's DER SPKI, S being the bundle's signer K.
      parentModelHash: `0x${createHash("sha256").update(Buffer.from(made.bundle.signer.publicKey, "base64")).digest("hex")}`,
      measurementHash: `0x${createHash("sha256").update(measurement).digest("hex")}`,
      policyDigest: `0x${policyDigest(policy)}`,
      reportedTcb: report.readBigUInt64LE(0x180).toString(),
      kind: 3,
    });
    assert.equal(v.record?.parentModelHash, `0x${made.logId}`);
  });

  it("when the serving statement names another key than the bundle's signer K, it refuses it with BINDING_KEY_MISMATCH", () => {
    const v = verifyBundle(makeServingBundle(f, { seed: "other-key", variant: "key-differs" }).bytes, {
      policy,
      now: NOW,
    });
    assert.equal(v.ok, false);
    assert.deepEqual(codes(v), ["BINDING_KEY_MISMATCH"]);
    assert.equal(v.record, undefined);
  });

  it("when the policy does not list serving (the default kinds), it refuses it with POLICY_STATEMENT_KIND", () => {
    const made = makeServingBundle(f, { seed: "kind" });
    for (const refusing of [f.policy, servingPolicy(f, ["eval"])]) {
      const v = verifyBundle(made.bytes, { policy: refusing, now: NOW });
      assert.equal(v.ok, false);
      assert.deepEqual(codes(v), ["POLICY_STATEMENT_KIND"]);
    }
    assert.deepEqual(parseVerifierPolicy({}).acceptedKinds, ["eval", "finetune"]);
    assert.equal(verifyBundle(made.bytes, { policy: servingPolicy(f, ["serving"]), now: NOW }).ok, true);
  });

  it("when the served model has no OMS statement in the bundle, it refuses it with MODEL_DIGEST_MISMATCH", () => {
    const v = verifyBundle(makeServingBundle(f, { seed: "no-oms", variant: "no-oms-for-model" }).bytes, {
      policy,
      now: NOW,
    });
    assert.deepEqual(codes(v), ["MODEL_DIGEST_MISMATCH"]);
  });

  it("when a serving statement comes with another manifest, it refuses the bundle with BUNDLE_MALFORMED", () => {
    const v = verifyBundle(makeServingBundle(f, { seed: "two", variant: "with-eval-manifest" }).bytes, {
      policy,
      now: NOW,
    });
    assert.equal(v.ok, false);
    assert.ok(codes(v).includes("BUNDLE_MALFORMED"), codes(v).join());
  });

  it("when the serving statement pins job code the policy does not, it refuses it with POLICY_JOB_CODE", () => {
    const pinned = parseVerifierPolicy({
      ...f.policyJson,
      acceptedKinds: ["serving"],
      jobCodeDigests: [`sha256:${"ab".repeat(32)}`],
    });
    const v = verifyBundle(makeServingBundle(f, { seed: "job" }).bytes, { policy: pinned, now: NOW });
    assert.deepEqual(codes(v), ["POLICY_JOB_CODE"]);
  });

  it("when acceptedKinds names an unknown kind, the policy is POLICY_INVALID; serving is in the digest", () => {
    assert.throws(() => parseVerifierPolicy({ acceptedKinds: ["serve"] }), { code: "POLICY_INVALID" });
    assert.notEqual(policyDigest(servingPolicy(f)), policyDigest(servingPolicy(f, ["eval", "finetune"])));
    assert.equal(
      policyDigest(servingPolicy(f, ["serving", "eval", "finetune"])),
      policyDigest(servingPolicy(f, ["finetune", "serving", "eval"])),
    );
  });
});
