import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PolicyViolationError, ProvenantError } from "../errors.ts";
import {
  compareDriverVersions,
  DEFAULT_GPU_POLICY,
  gpuPolicyToJson,
  parseGpuPolicy,
  validateGpu,
  validateGpus,
  type GpuPolicy,
} from "./validate.ts";
import type { VerifiedGpu } from "./verify.ts";

const rim = { version: "x", digest: "0".repeat(64), signer: "s", rootFingerprint: "0".repeat(64) };
const gpu = (over: Partial<VerifiedGpu> = {}): VerifiedGpu =>
  ({
    arch: "hopper",
    driverVersion: "550.90.07",
    vbiosVersion: "96.00.9F.00.01",
    nonce: "00".repeat(32),
    fwid: null,
    measurements: { checked: 1, matched: 1, mismatched: [], skipped: [] },
    measurementDigest: "00".repeat(32),
    rootFingerprint: "00".repeat(32),
    rims: { driver: rim, vbios: rim },
    ocsp: { checked: [], missing: [] },
    ids: { project: null, projectSku: null, projectSkuMod: null, chipSku: null, chipSkuMod: null, leaf: "l" },
    nvdec0Status: null,
    featureFlags: null,
    ...over,
  }) as VerifiedGpu;

function codes(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof PolicyViolationError) return error.violations.map((v) => v.code);
    if (error instanceof ProvenantError) return [error.code];
    throw error;
  }
  return [];
}

describe("parseGpuPolicy", () => {
  it("when the section is omitted or empty, it is the default: not required, RIMs required, OCSP not", () => {
    for (const json of [undefined, null, {}]) {
      assert.deepEqual(gpuPolicyToJson(parseGpuPolicy(json)), {
        required: false,
        archs: null,
        minDriverVersion: null,
        requireRims: true,
        requireOcsp: false,
        trustedRoots: [],
      });
    }
  });

  it("when every field is set, it reads them, sorts and lower-cases, and the JSON form reads back to the same policy", () => {
    const json = {
      required: true,
      archs: ["hopper", "blackwell", "hopper"],
      minDriverVersion: "550.54.14",
      requireRims: false,
      requireOcsp: true,
      trustedRoots: ["AB".repeat(32), "01".repeat(32)],
    };
    const policy = parseGpuPolicy(json);
    const normal = gpuPolicyToJson(policy);
    assert.deepEqual(normal, {
      required: true,
      archs: ["blackwell", "hopper"],
      minDriverVersion: "550.54.14",
      requireRims: false,
      requireOcsp: true,
      trustedRoots: ["01".repeat(32), "ab".repeat(32)],
    });
    assert.deepEqual(gpuPolicyToJson(parseGpuPolicy(normal)), normal);
    assert.deepEqual(Object.keys(normal), [
      "required",
      "archs",
      "minDriverVersion",
      "requireRims",
      "requireOcsp",
      "trustedRoots",
    ]);
  });

  it("when fields are unknown or ill-typed, every one is listed as POLICY_INVALID", () => {
    const bad = {
      requird: true,
      archs: ["ampere"],
      minDriverVersion: "latest",
      requireRims: "yes",
      requireOcsp: 1,
      trustedRoots: ["nothex"],
      required: "no",
    };
    assert.deepEqual(
      codes(() => parseGpuPolicy(bad)),
      new Array(7).fill("POLICY_INVALID"),
    );
    assert.deepEqual(
      codes(() => parseGpuPolicy([])),
      ["POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() => parseGpuPolicy({ archs: [] })),
      ["POLICY_INVALID"],
    );
  });
});

describe("validateGpu", () => {
  it("when a GPU meets the default policy, it passes; without a VBIOS RIM it is GPU_RIM_MISSING", () => {
    assert.deepEqual(
      codes(() => validateGpu(gpu())),
      [],
    );
    assert.deepEqual(
      codes(() => validateGpu(gpu({ rims: { driver: rim, vbios: null } }))),
      ["GPU_RIM_MISSING"],
    );
    assert.deepEqual(
      codes(() => validateGpu(gpu({ rims: { driver: null, vbios: null } }), { requireRims: false })),
      [],
    );
  });

  it("when the architecture, driver and OCSP are all refused, every violation is listed", () => {
    const policy: GpuPolicy = { archs: ["blackwell"], minDriverVersion: "550.144.03", requireOcsp: true };
    const v = gpu({ ocsp: { checked: [], missing: ["device chain: BROM"] }, rims: { driver: null, vbios: rim } });
    assert.deepEqual(
      codes(() => validateGpu(v, policy)),
      ["POLICY_GPU", "POLICY_GPU", "GPU_RIM_MISSING", "POLICY_GPU"],
    );
  });

  it("when GPU evidence is required and the bundle has none, validateGpus says POLICY_GPU", () => {
    assert.deepEqual(
      codes(() => validateGpus([], { required: true })),
      ["POLICY_GPU"],
    );
    assert.deepEqual(
      codes(() => validateGpus([], DEFAULT_GPU_POLICY)),
      [],
    );
    assert.deepEqual(
      codes(() => validateGpus([gpu(), gpu({ arch: "blackwell" })], { archs: ["hopper"] })),
      ["POLICY_GPU"],
    );
  });

  it("when driver versions are compared, they are compared number by number", () => {
    assert.equal(compareDriverVersions("550.144.03", "550.90.07"), 1);
    assert.equal(compareDriverVersions("550.90.07", "550.90.07"), 0);
    assert.equal(compareDriverVersions("535.104", "535.104.05"), -1);
    assert.equal(compareDriverVersions("620.12", "575.57.08"), 1);
  });
});
