import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ProvenantError, PolicyViolationError } from "../errors.ts";
import { createGpuSimulator } from "./sim.ts";
import { createGpuVerifier, verifyGpuEvidence } from "./verify.ts";

const DAY = 86_400_000;
const now = new Date("2026-11-27T00:00:00Z");
const sim = createGpuSimulator({ now });
const nonce = new Uint8Array(32).fill(11);
const entry = sim.bundleEntry(nonce);
const verifier = createGpuVerifier();
const policy = { trustedRoots: sim.trustedRoots };

const verify = (ocsp: Uint8Array[], extra: { requireOcsp?: boolean } = {}) =>
  verifyGpuEvidence({ ...entry, ocsp }, { expectedNonce: nonce, now, policy: { ...policy, ...extra }, verifier });

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProvenantError) return error.code;
    throw error;
  }
  return "OK";
}

const allGood = () => [
  sim.ocspResponse("device", 1),
  sim.ocspResponse("device", 2),
  sim.ocspResponse("device", 3),
  sim.ocspResponse("rim", 0),
  sim.ocspResponse("rim", 1),
  sim.ocspResponse("rim", 2),
];

describe("bundled OCSP responses", () => {
  it("when every certificate below the roots (device leaf excepted) has a good response, requireOcsp passes", () => {
    const v = verify(allGood(), { requireOcsp: true });
    assert.deepEqual(v.ocsp.missing, []);
    assert.equal(v.ocsp.checked.length, 3 + 3 + 3);
  });

  it("when a response is missing and the policy requires OCSP, it is POLICY_GPU naming the certificate", () => {
    const some = allGood().slice(1);
    assert.throws(
      () => verify(some, { requireOcsp: true }),
      (e: unknown) =>
        e instanceof PolicyViolationError &&
        e.violations.length === 1 &&
        e.code === "POLICY_GPU" &&
        /GSP BROM/.test(e.message),
    );
    assert.equal(
      code(() => verify(some)),
      "OK",
    );
  });

  it("when a response says revoked or unknown, it is GPU_CERT_REVOKED even without requireOcsp", () => {
    assert.equal(
      code(() => verify([sim.ocspResponse("device", 2, { status: "revoked" })])),
      "GPU_CERT_REVOKED",
    );
    assert.equal(
      code(() => verify([sim.ocspResponse("rim", 0, { status: "unknown" })])),
      "GPU_CERT_REVOKED",
    );
  });

  it("when a response is not current at now or has no nextUpdate, it is GPU_CERT_EXPIRED", () => {
    const stale = sim.ocspResponse("device", 1, {
      thisUpdate: new Date(now.getTime() - 10 * DAY),
      nextUpdate: new Date(now.getTime() - DAY),
    });
    const future = sim.ocspResponse("device", 1, { thisUpdate: new Date(now.getTime() + DAY) });
    const open = sim.ocspResponse("device", 1, { nextUpdate: null });
    for (const r of [stale, future, open])
      assert.equal(
        code(() => verify([r])),
        "GPU_CERT_EXPIRED",
      );
  });

  it("when a delegated responder marked for OCSP signing signs, it is accepted; without that purpose it is GPU_CHAIN_INVALID", () => {
    const v = verify([sim.ocspResponse("device", 2, { delegated: "ocsp-signing" })]);
    assert.ok(v.ocsp.checked.some((s) => /Provisioner/.test(s)));
    assert.equal(
      code(() => verify([sim.ocspResponse("device", 2, { delegated: "no-eku" })])),
      "GPU_CHAIN_INVALID",
    );
  });

  it("when a certificate below the one in question signs the response, it is GPU_CHAIN_INVALID", () => {
    assert.equal(
      code(() => verify([sim.ocspResponse("device", 2, { signerIndex: 1 })])),
      "GPU_CHAIN_INVALID",
    );
  });

  it("when a response names another simulator's certificate, it does not count", () => {
    const other = createGpuSimulator({ now });
    const v = verify([other.ocspResponse("device", 1)]);
    assert.equal(v.ocsp.checked.length, 0);
  });

  it("when a response is not DER OCSP, it is GPU_MALFORMED", () => {
    for (const bytes of [
      new Uint8Array(0),
      Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x00, 0x00),
      Uint8Array.of(0x30, 0x80),
    ]) {
      assert.equal(
        code(() => verify([bytes])),
        "GPU_MALFORMED",
      );
    }
    assert.equal(
      code(() => verify(new Array(33).fill(allGood()[0]!))),
      "GPU_MALFORMED",
    );
  });
});
