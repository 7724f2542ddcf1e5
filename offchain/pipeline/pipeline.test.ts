import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";

import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { parseVerifierPolicy, policyDigest, verifyBundle } from "./index.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const codes = (v: { errors: { code: string }[] }): string[] => v.errors.map((e) => e.code).sort();

describe("policy file", () => {
  it("when a field is unknown or mistyped, it refuses the policy with POLICY_INVALID for each", () => {
    assert.throws(
      () => parseVerifierPolicy({ trustedRoots: ["zz"], maxBundleBytes: 5, acceptedKinds: ["oms"], extra: 1 }),
      (error: { code: string; violations: { code: string }[] }) => {
        assert.equal(error.code, "POLICY_INVALID");
        assert.equal(error.violations.length, 4);
        return true;
      },
    );
    assert.throws(() => parseVerifierPolicy([]), { code: "POLICY_INVALID" });
  });

  it("when two files mean the same policy, they have the same digest", () => {
    const a = parseVerifierPolicy({});
    const b = parseVerifierPolicy({ acceptedKinds: ["eval", "finetune"], requireGpuEvidence: false });
    assert.equal(policyDigest(a), policyDigest(b));
    assert.match(policyDigest(a), /^[0-9a-f]{64}$/);
    assert.notEqual(policyDigest(a), policyDigest(parseVerifierPolicy({ requireGpuEvidence: true })));
    // the digest is SHA-256 of the RFC 8785 form of the normalised JSON
    const jcs = JSON.stringify(a.json, Object.keys(a.json).sort());
    assert.equal(typeof jcs, "string");
  });
});

describe("pipeline", () => {
  let f: BundleFactory;
  before(async () => {
    f = await createBundleFactory();
  });

  it("when a simulator bundle is sound, it accepts it and derives the record", () => {
    const made = f.make({ seed: "ok" });
    const v = verifyBundle(made.bytes, { policy: f.policy, now: NOW });
    assert.deepEqual(v.errors, []);
    assert.equal(v.ok, true);
    assert.equal(v.kind, "finetune");
    assert.equal(v.modelHash, made.modelHash);
    assert.equal(v.bundleDigest, createHash("sha256").update(made.bytes).digest("hex"));
    assert.equal(v.record?.modelHash, `0x${made.modelHash}`);
    assert.equal(v.record?.parentModelHash, `0x${made.parentModelHash}`);
    assert.equal(v.record?.kind, 1);
    assert.equal(v.record?.policyDigest, `0x${policyDigest(f.policy)}`);
    assert.equal(v.record?.manifestDigest, `0x${v.manifestDigest}`);
    assert.equal(v.evidence?.provider, "sim");
    const audit = verifyBundle(f.make({ kind: "eval" }).bytes, { policy: f.policy, now: NOW });
    assert.equal(audit.ok, true);
    assert.equal(audit.record?.kind, 2);
    assert.equal(audit.record?.parentModelHash, `0x${"00".repeat(32)}`);
  });

  it("when the simulator root is not in the policy, it refuses with SNP_UNTRUSTED_ROOT", () => {
    const v = verifyBundle(f.make().bytes, { policy: parseVerifierPolicy({}), now: NOW });
    assert.equal(v.ok, false);
    assert.ok(codes(v).includes("SNP_UNTRUSTED_ROOT"), codes(v).join());
  });

  it("when the binding or the signatures do not hold, it reports every reason code", () => {
    assert.deepEqual(codes(verifyBundle(f.make({ variant: "wrong-key" }).bytes, { policy: f.policy, now: NOW })), [
      "BINDING_KEY_MISMATCH",
    ]);
    assert.deepEqual(codes(verifyBundle(f.make({ variant: "wrong-nonce" }).bytes, { policy: f.policy, now: NOW })), [
      "BINDING_NONCE_MISMATCH",
    ]);
    assert.ok(
      codes(verifyBundle(f.make({ variant: "bad-envelope-signature" }).bytes, { policy: f.policy, now: NOW })).includes(
        "DSSE_BAD_SIGNATURE",
      ),
    );
    assert.deepEqual(
      codes(verifyBundle(f.make({ variant: "no-oms-for-subject" }).bytes, { policy: f.policy, now: NOW })),
      ["MODEL_DIGEST_MISMATCH"],
    );
    assert.ok(
      codes(verifyBundle(f.make({ variant: "tampered-report" }).bytes, { policy: f.policy, now: NOW })).includes(
        "SNP_BAD_SIGNATURE",
      ),
    );
    assert.ok(
      codes(verifyBundle(f.make({ variant: "debug" }).bytes, { policy: f.policy, now: NOW })).includes("POLICY_DEBUG"),
    );
  });

  it("when the policy refuses the kind or wants GPU evidence, it says so with policy codes", () => {
    const strict = parseVerifierPolicy({ ...f.policyJson, acceptedKinds: ["eval"], requireGpuEvidence: true });
    assert.deepEqual(codes(verifyBundle(f.make().bytes, { policy: strict, now: NOW })), [
      "POLICY_GPU_EVIDENCE",
      "POLICY_STATEMENT_KIND",
    ]);
  });

  it("when the input is junk, it returns a verdict and never throws", () => {
    const junk = [
      new Uint8Array([0xff, 0xfe, 0x00]),
      new TextEncoder().encode("{}"),
      new TextEncoder().encode("[1,2,3]"),
      new TextEncoder().encode('{"mediaType":"application/vnd.provenant.bundle.v1+json"}'),
      new Uint8Array(0),
    ];
    for (const bytes of junk) {
      const v = verifyBundle(bytes, { policy: f.policy, now: NOW });
      assert.equal(v.ok, false);
      assert.ok(v.errors.length > 0);
      assert.ok(
        codes(v).every((c) => c !== "INTERNAL"),
        codes(v).join(),
      );
    }
    const big = new Uint8Array(f.policy.maxBundleBytes + 1).fill(0x20);
    assert.deepEqual(codes(verifyBundle(big, { policy: f.policy, now: NOW })), ["BUNDLE_TOO_LARGE"]);
  });
});
