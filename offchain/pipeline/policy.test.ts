// The verifier policy that cannot be open by accident (DESIGN §11): what makes a policy open and why, the
// development flag in the digest, pinned job code, the strict policy-file reader, and the shipped ROFL template.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../../lib/errors.ts";
import {
  assertPolicyNotOpen,
  defaultVerifierPolicy,
  parseVerifierPolicy,
  parseVerifierPolicyBytes,
  policyDigest,
} from "./index.ts";

const M = "5f".repeat(48);
const ROOT = "ab".repeat(32);
const J = `sha256:${"cd".repeat(32)}`;
const FLOOR = { bootloader: 9, tee: 0, snp: 23, microcode: 72 };
const PINNED = { snp: { measurements: [{ name: "job 0.2.0", value: M }], minimumTcb: { Genoa: FLOOR } } };
const TEMPLATE = new URL("../rofl/policy.json", import.meta.url);

function violations(fn: () => unknown): { code: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    const list = (error as { violations?: ProvenantError[] }).violations ?? [error];
    return list.map((v) => ({ code: v.code, message: v.message }));
  }
  assert.fail("expected an error");
}

describe("verifier policy: open, development, pinned job code", () => {
  it("when the policy pins nothing (the default), it is open for the measurements and the TCB floor", () => {
    const policy = defaultVerifierPolicy();
    assert.equal(policy.openness.open, true);
    assert.deepEqual(
      policy.openness.reasons.map((r) => r.field),
      ["snp.measurements", "snp.minimumTcb"],
    );
    assert.equal(policy.development, false);
    assert.equal(policy.json.development, false);
  });

  it("when it pins measurements and a whole floor for every product it accepts, and trusts no other root, it is closed", () => {
    const policy = parseVerifierPolicy(PINNED);
    assert.deepEqual(policy.openness, { open: false, reasons: [] });
    assertPolicyNotOpen(policy);
  });

  it("when a floor leaves a component unset, or a development root is trusted, it is open and says which", () => {
    const partial = parseVerifierPolicy({ snp: { ...PINNED.snp, minimumTcb: { Genoa: FLOOR, Turin: FLOOR } } });
    assert.deepEqual(
      partial.openness.reasons.map((r) => `${r.field}: ${r.message}`),
      ["snp.minimumTcb.Turin: the Turin floor leaves fmc unset"],
    );
    const dev = parseVerifierPolicy({ ...PINNED, trustedRoots: [ROOT] });
    assert.deepEqual(
      dev.openness.reasons.map((r) => r.field),
      ["trustedRoots"],
    );
  });

  it("when an open policy does not say development, assertPolicyNotOpen is POLICY_OPEN (a usage error, exit 2)", () => {
    for (const policy of [defaultVerifierPolicy(), parseVerifierPolicy({ ...PINNED, trustedRoots: [ROOT] })]) {
      assert.throws(
        () => assertPolicyNotOpen(policy),
        (e: unknown) => e instanceof ProvenantError && e.code === "POLICY_OPEN" && e.kind === "usage",
      );
    }
    assertPolicyNotOpen(parseVerifierPolicy({ trustedRoots: [ROOT], development: true }));
  });

  it("when a policy says development, that is in its digest and its normalised JSON", () => {
    const plain = parseVerifierPolicy({ trustedRoots: [ROOT] });
    const dev = parseVerifierPolicy({ trustedRoots: [ROOT], development: true });
    assert.notEqual(policyDigest(plain), policyDigest(dev));
    assert.equal(dev.json.development, true);
    assert.equal(policyDigest(parseVerifierPolicy({ trustedRoots: [ROOT], development: false })), policyDigest(plain));
    assert.deepEqual(
      violations(() => parseVerifierPolicy({ development: "yes" })).map((v) => v.code),
      ["POLICY_INVALID"],
    );
  });

  it("when job code is pinned as strings or {name, value}, it normalises to one form; bad entries are POLICY_INVALID", () => {
    const upper = `sha256:${"CD".repeat(32)}`;
    const a = parseVerifierPolicy({ jobCodeDigests: [upper, `sha256:${"01".repeat(32)}`] });
    const b = parseVerifierPolicy({ jobCodeDigests: [{ value: `sha256:${"01".repeat(32)}` }, { value: J }] });
    assert.deepEqual(a.json.jobCodeDigests, [{ value: `sha256:${"01".repeat(32)}` }, { value: J }]);
    assert.equal(policyDigest(a), policyDigest(b));
    const named = parseVerifierPolicy({ jobCodeDigests: [{ name: "provenant 0.2.0", value: J }] });
    assert.deepEqual(named.jobCodeDigests, [{ name: "provenant 0.2.0", value: J }]);
    assert.notEqual(policyDigest(named), policyDigest(parseVerifierPolicy({ jobCodeDigests: [J] })));
    assert.equal(parseVerifierPolicy({}).json.jobCodeDigests, undefined, "not pinned: not in the digest");
    for (const bad of [[], [J, J], ["cd".repeat(32)], [{ value: J, extra: 1 }], [{ name: "", value: J }], "x"])
      assert.equal(violations(() => parseVerifierPolicy({ jobCodeDigests: bad }))[0]?.code, "POLICY_INVALID");
  });

  it("when a parsed policy's normalised JSON is parsed again (as a worker does), the digest is the same", () => {
    const policy = parseVerifierPolicy({
      ...PINNED,
      jobCodeDigests: [{ name: "0.2.0", value: J }],
      trustedRoots: [ROOT],
      development: true,
    });
    assert.equal(policyDigest(parseVerifierPolicy(policy.json)), policyDigest(policy));
    assert.deepEqual(parseVerifierPolicy(policy.json).openness, policy.openness);
  });

  it("when a policy file repeats a key or starts with a BOM, it is POLICY_INVALID (read with the strict reader)", () => {
    const text = '{"development": false, "development": true}';
    assert.equal(JSON.parse(text).development, true, "JSON.parse would take the last");
    assert.equal(violations(() => parseVerifierPolicyBytes(new TextEncoder().encode(text)))[0]?.code, "POLICY_INVALID");
    const bom = Uint8Array.of(0xef, 0xbb, 0xbf, ...new TextEncoder().encode("{}"));
    assert.equal(violations(() => parseVerifierPolicyBytes(bom))[0]?.code, "POLICY_INVALID");
  });

  it("when the shipped ROFL policy is used as it ships, every placeholder is POLICY_INVALID and says it is one", () => {
    const found = violations(() => parseVerifierPolicyBytes(readFileSync(TEMPLATE)));
    assert.ok(found.length >= 6, JSON.stringify(found));
    for (const v of found) {
      assert.equal(v.code, "POLICY_INVALID");
      assert.match(v.message, /template placeholder/);
    }
  });

  it("when the template is filled as docs/verifier.md says, it is a closed production policy", () => {
    const template = JSON.parse(readFileSync(TEMPLATE, "utf8")) as {
      snp: { measurements: { name: string; value: string }[]; minimumTcb: Record<string, unknown> };
      jobCodeDigests?: string[];
    };
    template.snp.measurements = [{ name: "provenant-job 0.2.0 on OVMF edk2-stable202502", value: M }];
    template.snp.minimumTcb = { Genoa: FLOOR };
    template.jobCodeDigests = [J];
    const policy = parseVerifierPolicy(template);
    assert.deepEqual(policy.openness, { open: false, reasons: [] });
    assert.equal(policy.development, false);
    assert.deepEqual(policy.trustedRoots, []);
  });
});
