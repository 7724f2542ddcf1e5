import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  createGpuSimulator,
  gpuNonceFor,
  gpuPolicyToJson,
  parseGpuPolicy,
  validateGpus,
  verifyGpuEvidence,
} from "./index.ts";

const now = new Date("2026-11-27T00:00:00Z");
const reportData = new Uint8Array(64).map((_, i) => 255 - i);
const nonce = gpuNonceFor(reportData);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProvenantError) return error.code;
    throw error;
  }
  return "OK";
}

describe("the GPU simulator end to end through verifyGpuEvidence", () => {
  for (const arch of ["hopper", "blackwell"] as const) {
    it(`when a simulated ${arch} GPU signs for a CPU report's nonce, a policy naming its roots verifies every step`, () => {
      const sim = createGpuSimulator({ now, arch });
      const policy = parseGpuPolicy({ trustedRoots: sim.trustedRoots, archs: [arch], minDriverVersion: "550" });
      const v = verifyGpuEvidence(sim.bundleEntry(nonce), { expectedNonce: nonce, now, policy });
      assert.equal(v.arch, arch);
      assert.equal(v.driverVersion, sim.driverVersion);
      assert.equal(v.vbiosVersion, sim.vbiosVersion);
      assert.equal(v.nonce, Buffer.from(nonce).toString("hex"));
      assert.equal(v.fwid, Buffer.from(sim.fwid).toString("hex"));
      assert.equal(v.rootFingerprint, sim.deviceRootFingerprint);
      assert.equal(v.rims.driver?.version, sim.driverVersion);
      assert.equal(v.rims.vbios?.version, sim.vbiosVersion);
      assert.equal(v.measurements.mismatched.length, 0);
      assert.equal(v.measurements.checked, 32);
      assert.doesNotThrow(() => validateGpus([v], { ...policy, required: true }));
      // The same evidence for another CPU report is refused: the nonce binds it.
      const otherNonce = gpuNonceFor(new Uint8Array(64));
      assert.equal(
        code(() => verifyGpuEvidence(sim.bundleEntry(nonce), { expectedNonce: otherNonce, now, policy })),
        "GPU_NONCE_MISMATCH",
      );
    });
  }

  it("when the simulated evidence uses the NVDAOD opaque format with an unknown field, it still verifies", () => {
    const sim = createGpuSimulator({ now, arch: "blackwell" });
    const entry = sim.bundleEntry(nonce, {
      opaqueFormat: "nvdaod",
      extraOpaque: [{ type: 37, value: Uint8Array.of(0, 0) }],
    });
    const v = verifyGpuEvidence(entry, { expectedNonce: nonce, now, policy: { trustedRoots: sim.trustedRoots } });
    assert.equal(v.evidence.opaque.format, "nvdaod");
  });

  it("when the policy does not name the simulator's roots, nothing it signs is trusted", () => {
    const sim = createGpuSimulator({ now });
    assert.equal(
      code(() => verifyGpuEvidence(sim.bundleEntry(nonce), { expectedNonce: nonce, now })),
      "GPU_UNTRUSTED_ROOT",
    );
    const deviceOnly = { trustedRoots: [sim.deviceRootFingerprint] };
    assert.equal(
      code(() => verifyGpuEvidence(sim.bundleEntry(nonce), { expectedNonce: nonce, now, policy: deviceOnly })),
      "GPU_UNTRUSTED_ROOT",
    );
  });

  it("when the claimed architecture disagrees with the chain, it is GPU_CHAIN_INVALID", () => {
    const sim = createGpuSimulator({ now, arch: "blackwell" });
    const entry = { ...sim.bundleEntry(nonce), arch: "hopper" as const };
    assert.equal(
      code(() => verifyGpuEvidence(entry, { expectedNonce: nonce, now, policy: { trustedRoots: sim.trustedRoots } })),
      "GPU_CHAIN_INVALID",
    );
  });

  it("when more than a driver and a VBIOS RIM are given, it is GPU_RIM_INVALID before any RIM is verified", () => {
    const sim = createGpuSimulator({ now });
    const entry = sim.bundleEntry(nonce);
    // The third RIM's signer has expired: were it verified first, the answer would be GPU_CERT_EXPIRED.
    const expired = sim.makeRim({ kind: "driver", signerNotAfter: new Date(now.getTime() - 86_400_000) });
    const verify = (rims: readonly (string | Uint8Array)[]) =>
      code(() =>
        verifyGpuEvidence(
          { ...entry, rims },
          { expectedNonce: nonce, now, policy: { trustedRoots: sim.trustedRoots } },
        ),
      );
    assert.equal(verify([expired]), "GPU_CERT_EXPIRED");
    assert.equal(verify([...entry.rims, expired]), "GPU_RIM_INVALID");
    assert.equal(verify(entry.rims), "OK");
  });

  it("when two simulators share a key directory, they share their roots; the certificates follow `now`", () => {
    const dir = mkdtempSync(join(tmpdir(), "provenant-gpu-sim-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const a = createGpuSimulator({ now, keyDir: dir });
    const later = new Date(now.getTime() + 400 * 86_400_000);
    const b = createGpuSimulator({ now: later, keyDir: dir });
    assert.deepEqual(a.trustedRoots, b.trustedRoots);
    const policy = gpuPolicyToJson({ trustedRoots: b.trustedRoots });
    assert.equal(policy.trustedRoots.length, 2);
    const v = verifyGpuEvidence(b.bundleEntry(nonce), {
      expectedNonce: nonce,
      now: later,
      policy: parseGpuPolicy(policy),
    });
    assert.equal(v.rootFingerprint, a.deviceRootFingerprint);
  });
});
