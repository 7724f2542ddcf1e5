import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";

import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { makeHostileBundle } from "../testing/hostile.ts";
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
  });

  it("when a known policy is digested, it is SHA-256 of its RFC 8785 canonical JSON, written out by hand", () => {
    // Keys out of order at every level, arrays in their own order: RFC 8785 sorts object keys (by UTF-16 code units,
    // so "Genoa" < "Milan" < "snp"), keeps array order and writes no whitespace.
    const file = {
      trustedRoots: ["ab".repeat(32)],
      snp: { vmpl: 0, minimumTcb: { Milan: { snp: 24, bootloader: 4 }, Genoa: { snp: 23 } }, allowDebug: false },
      maxBundleBytes: 1048576,
      acceptedKinds: ["finetune", "eval"],
    };
    const canonical =
      '{"acceptedKinds":["finetune","eval"],"maxBundleBytes":1048576,' +
      '"snp":{"allowDebug":false,"minimumTcb":{"Genoa":{"snp":23},"Milan":{"bootloader":4,"snp":24}},"vmpl":0},' +
      `"trustedRoots":["${"ab".repeat(32)}"]}`;
    // `printf '%s' <canonical> | sha256sum`
    const expected = "3da531adaed0657cfe705d1038e0f08fc71633cd65e89939ab9c2feeb6b6d92c";
    assert.equal(createHash("sha256").update(canonical).digest("hex"), expected);
    assert.equal(policyDigest(file), expected);

    // A parsed policy is digested in its normalised form: the same canonical JSON, built here without the library.
    const sortKeys = (value: unknown): string =>
      Array.isArray(value)
        ? `[${value.map(sortKeys).join(",")}]`
        : typeof value === "object" && value !== null
          ? `{${Object.keys(value)
              .sort()
              .map((k) => `${JSON.stringify(k)}:${sortKeys((value as Record<string, unknown>)[k])}`)
              .join(",")}}`
          : JSON.stringify(value);
    for (const policy of [parseVerifierPolicy({}), parseVerifierPolicy(file)]) {
      const text = sortKeys(policy.json);
      assert.match(text, /^\{"acceptedKinds":\[/);
      assert.equal(policyDigest(policy), createHash("sha256").update(text).digest("hex"));
    }
  });
});

describe("pipeline", () => {
  let f: BundleFactory;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
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
    // The verdict names the root the report chained to; the bundle's unsigned provider label is not shown.
    assert.deepEqual(v.evidence?.root, {
      kind: "development",
      product: "Milan",
      fingerprint: f.sim.rootFingerprint,
      name: `development root ${f.sim.rootFingerprint}`,
    });
    assert.equal("provider" in (v.evidence ?? {}), false);
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
    const strict = parseVerifierPolicy({ ...f.policyJson, acceptedKinds: ["eval"], gpu: { required: true } });
    assert.deepEqual(codes(verifyBundle(f.make().bytes, { policy: strict, now: NOW })), [
      "POLICY_GPU",
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

describe("pipeline: verification cost is bounded before it is spent", () => {
  let f: BundleFactory;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
  });

  it("when a bundle holds 16,000 junk signatures (2.2 MB), it is refused with BUNDLE_TOO_COMPLEX without verifying them", () => {
    const hostile = makeHostileBundle(f.sim, { seed: "junk-16000", junkInFirst: 16_000 });
    assert.ok(hostile.bytes.length > 2_000_000, `${hostile.bytes.length} bytes`);
    const started = performance.now();
    const v = verifyBundle(hostile.bytes, { policy: f.policy, now: NOW });
    const ms = performance.now() - started;
    assert.deepEqual(codes(v), ["BUNDLE_TOO_COMPLEX"]);
    // 32,000 P-384 verifications take 20-40 s on one core; counting them takes milliseconds.
    assert.ok(ms < 5_000, `took ${ms.toFixed(0)} ms`);
  });

  it("when a bundle has more envelopes or signatures than the policy allows, it is BUNDLE_TOO_COMPLEX; within them it is judged", () => {
    const many = makeHostileBundle(f.sim, { seed: "many", extraEnvelopes: 15 }); // 17 envelopes
    assert.deepEqual(codes(verifyBundle(many.bytes, { policy: f.policy, now: NOW })), ["BUNDLE_TOO_COMPLEX"]);
    const roomy = parseVerifierPolicy({ ...f.policyJson, maxEnvelopes: 17 });
    assert.deepEqual(codes(verifyBundle(many.bytes, { policy: roomy, now: NOW })), []);
    const sigs = makeHostileBundle(f.sim, { seed: "sigs", junkSignatures: 4 }); // 5 per envelope
    assert.deepEqual(codes(verifyBundle(sigs.bytes, { policy: f.policy, now: NOW })), ["BUNDLE_TOO_COMPLEX"]);
    const four = makeHostileBundle(f.sim, { seed: "four", junkSignatures: 3 }); // 4 per envelope: the default bound
    assert.deepEqual(codes(verifyBundle(four.bytes, { policy: f.policy, now: NOW })), []);
  });

  it("when the policy sets the bounds, they are checked and digested", () => {
    assert.throws(() => parseVerifierPolicy({ maxEnvelopes: 0 }), { code: "POLICY_INVALID" });
    assert.throws(() => parseVerifierPolicy({ maxSignaturesPerEnvelope: 17 }), { code: "POLICY_INVALID" });
    assert.throws(() => parseVerifierPolicy({ maxEnvelopes: 2.5 }), { code: "POLICY_INVALID" });
    const d = parseVerifierPolicy({});
    assert.equal(d.maxEnvelopes, 16);
    assert.equal(d.maxSignaturesPerEnvelope, 4);
    assert.deepEqual([d.json.maxEnvelopes, d.json.maxSignaturesPerEnvelope], [16, 4]);
    assert.equal(policyDigest(d), policyDigest(parseVerifierPolicy({ maxEnvelopes: 16, maxSignaturesPerEnvelope: 4 })));
    assert.notEqual(policyDigest(d), policyDigest(parseVerifierPolicy({ maxEnvelopes: 8 })));
  });

  it("when a proof is broken, no further signature is verified but shape and policy reasons are still listed", () => {
    // The report signature fails: the envelope with a foreign signature is not even looked at.
    const tampered = f.make({ variant: "tampered-report" });
    const t = JSON.parse(Buffer.from(tampered.bytes).toString("utf8")) as { envelopes: { signatures: unknown[] }[] };
    t.envelopes[2]!.signatures = [{ sig: Buffer.alloc(96, 1).toString("base64") }];
    assert.deepEqual(codes(verifyBundle(Buffer.from(JSON.stringify(t)), { policy: f.policy, now: NOW })), [
      "SNP_BAD_SIGNATURE",
    ]);
    // The binding fails: no envelope is verified.
    const debugWrongKey = f.make({ variant: "wrong-key" });
    assert.deepEqual(codes(verifyBundle(debugWrongKey.bytes, { policy: f.policy, now: NOW })), [
      "BINDING_KEY_MISMATCH",
    ]);
    // The first envelope fails: the second, though signed, is not verified, so its bad statement goes unreported.
    const first = makeHostileBundle(f.sim, { seed: "first-bad", badFirstThenNonStatement: true });
    assert.deepEqual(codes(verifyBundle(first.bytes, { policy: f.policy, now: NOW })), ["DSSE_BAD_SIGNATURE"]);
    // Shape and policy reasons together are all collected.
    const strict = parseVerifierPolicy({ ...f.policyJson, acceptedKinds: ["finetune"], gpu: { required: true } });
    assert.deepEqual(codes(verifyBundle(f.make({ seed: "p", kind: "eval" }).bytes, { policy: strict, now: NOW })), [
      "POLICY_GPU",
      "POLICY_STATEMENT_KIND",
    ]);
  });

  it("when a payload is 12 MiB of base64, the bundle gets its real verdict, and a stray character its real reason", () => {
    const big = makeHostileBundle(f.sim, { seed: "big", manifestPadding: 9 * 1024 * 1024 + 512 });
    const payload = big.bundle.envelopes[0]!.payload;
    assert.ok(payload.length > 12 * 1024 * 1024, `${payload.length} characters`);
    const ok = verifyBundle(big.bytes, { policy: f.policy, now: NOW });
    assert.deepEqual(codes(ok), []);
    assert.equal(ok.ok, true);
    const text = Buffer.from(big.bytes).toString("utf8");
    const broken = text.replace(payload, `${payload.slice(0, -8)}AAAA*AAA`);
    const v = verifyBundle(Buffer.from(broken), { policy: f.policy, now: NOW });
    assert.deepEqual(codes(v), ["BUNDLE_MALFORMED"]);
    assert.match(v.errors[0]!.message, /not valid base64/);
  });

  it("when JSON is nested a million levels deep, it is refused as malformed at once, in the bundle and in a payload", () => {
    const deep = new TextEncoder().encode(`${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`);
    const started = performance.now();
    const v = verifyBundle(deep, { policy: f.policy, now: NOW });
    assert.deepEqual(codes(v), ["BUNDLE_MALFORMED"]);
    assert.match(v.errors[0]!.message, /deeper than 64/);
    assert.ok(performance.now() - started < 2_000, "the depth check runs before JSON.parse");
  });
});
