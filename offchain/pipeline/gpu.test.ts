import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { measurementHashInputs, measurementHashOfBundle, readBundle } from "../../lib/bundle/index.ts";
import type { GpuSimulator } from "../../lib/gpu/index.ts";
import { createGpuBundleFactory, type GpuBundleFactory, type GpuBundleOptions } from "../testing/gpu-bundles.ts";
import { measurementHashOf, parseVerifierPolicy, policyDigest, verifyBundle, type VerifierPolicy } from "./index.ts";
import { VerificationPool } from "./pool.ts";

/** The simulators' clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-27T12:00:00Z");
const codes = (v: { errors: { code: string }[] }): string[] => v.errors.map((e) => e.code).sort();
const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

describe("pipeline step h: GPU evidence", () => {
  let dir = "";
  let f: GpuBundleFactory;
  let gpu: GpuSimulator;
  /** A development policy trusting both simulators (`provenant sim policy --gpu`). */
  let policyJson: Record<string, unknown>;
  let policy: VerifierPolicy;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-pipeline-gpu-"));
    f = await createGpuBundleFactory({ now: NOW, keyDir: dir });
    gpu = f.gpu.hopper;
    policyJson = f.policyJson;
    policy = parseVerifierPolicy(policyJson);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const withPolicy = (extra: Record<string, unknown>, gpuExtra: Record<string, unknown> = {}): VerifierPolicy =>
    parseVerifierPolicy({
      ...policyJson,
      ...extra,
      gpu: { ...(policyJson.gpu as Record<string, unknown>), ...gpuExtra },
    });

  const make = (options: GpuBundleOptions = {}) => {
    const made = f.make(options);
    return { ...made, entries: made.bundle.evidence.gpu ?? [] };
  };

  it("when a bundle carries sim GPU evidence for its REPORT_DATA, it is accepted, shows the GPU, and the record's measurementHash covers the GPU", () => {
    const made = make({ seed: "accepted" });
    const verdict = verifyBundle(made.bytes, { policy, now: NOW });
    assert.deepEqual(verdict.errors, []);
    assert.equal(verdict.ok, true);
    const shown = verdict.gpus?.[0];
    assert.equal(verdict.gpus?.length, 1);
    assert.equal(shown?.verified, true);
    assert.equal(shown?.arch, "hopper");
    assert.equal(shown?.driverVersion, gpu.driverVersion);
    assert.equal(shown?.vbiosVersion, gpu.vbiosVersion);
    assert.deepEqual(shown?.root, { kind: "development", fingerprint: gpu.deviceRootFingerprint });
    assert.deepEqual(shown?.rims, { driver: gpu.driverVersion, vbios: gpu.vbiosVersion });
    assert.equal(verdict.runtime?.gpuEvidence?.provider, "sim");
    // SHA-256(MEASUREMENT ‖ measurement-record digest), the digest being SHA-256 of the signed record [45, 45 + L1).
    const evidence = Buffer.from(made.entries[0]!.evidence, "base64");
    const recordLength = evidence[42]! | (evidence[43]! << 8) | (evidence[44]! << 16);
    const recordDigest = sha256(evidence.subarray(45, 45 + recordLength));
    assert.equal(shown?.measurementDigest, recordDigest);
    const expected = createHash("sha256")
      .update(made.measurement)
      .update(Buffer.from(recordDigest, "hex"))
      .digest("hex");
    assert.equal(verdict.record?.measurementHash, `0x${expected}`);
    assert.equal(measurementHashOf(made.measurement, [recordDigest]), expected);
  });

  it("when an auditor recomputes the measurementHash from the bundle's bytes alone (lib/bundle), it equals the record's", () => {
    for (const gpus of [[], ["good"], ["good", "good"]] as "good"[][]) {
      const made = make({ seed: `audit-${gpus.length}`, gpus });
      const verdict = verifyBundle(made.bytes, { policy, now: NOW });
      assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
      assert.equal(verdict.record?.measurementHash, `0x${measurementHashOfBundle(readBundle(made.bytes))}`);
      assert.equal(measurementHashInputs(readBundle(made.bytes)).gpuMeasurementRecords.length, gpus.length);
    }
  });

  it("when a bundle carries no GPU, the measurementHash stays SHA-256(MEASUREMENT) and the verdict shows no GPU", () => {
    const made = make({ seed: "cpu-only", gpus: [] });
    const verdict = verifyBundle(made.bytes, { policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    assert.equal(verdict.gpus, undefined);
    assert.equal(verdict.record?.measurementHash, `0x${sha256(made.measurement)}`);
    assert.equal(measurementHashOf(made.measurement), sha256(made.measurement));
  });

  it("when two GPUs are carried, both are verified and folded into the measurementHash in bundle order", () => {
    const made = make({ seed: "two", gpus: ["good", "good"] });
    const verdict = verifyBundle(made.bytes, { policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    const digests = verdict.gpus!.map((g) => g.measurementDigest!);
    assert.equal(digests.length, 2);
    assert.equal(verdict.record?.measurementHash, `0x${measurementHashOf(made.measurement, digests)}`);
  });

  it("when a GPU's evidence was made for another REPORT_DATA, it is GPU_NONCE_MISMATCH and nothing is recorded", () => {
    const verdict = verifyBundle(make({ seed: "moved", gpus: ["other-nonce"] }).bytes, { policy, now: NOW });
    assert.deepEqual(codes(verdict), ["GPU_NONCE_MISMATCH"]);
    assert.equal(verdict.record, undefined);
    assert.equal(verdict.gpus?.[0]?.verified, false);
    assert.equal(verdict.gpus?.[0]?.error?.code, "GPU_NONCE_MISMATCH");
    assert.match(verdict.errors[0]!.message, /^evidence\.gpu\[0\]: /);
  });

  it("when the first of two GPUs does not verify, both are shown with the versions their evidence names", () => {
    const verdict = verifyBundle(make({ seed: "moved-two", gpus: ["other-nonce", "good"] }).bytes, {
      policy,
      now: NOW,
    });
    assert.deepEqual(codes(verdict), ["GPU_NONCE_MISMATCH"]);
    assert.deepEqual(
      verdict.gpus?.map((g) => [g.index, g.verified, g.driverVersion, g.vbiosVersion, g.error?.code ?? null]),
      [
        [0, false, gpu.driverVersion, gpu.vbiosVersion, "GPU_NONCE_MISMATCH"],
        [1, false, gpu.driverVersion, gpu.vbiosVersion, null],
      ],
    );
  });

  it("when the policy does not name the simulator's GPU roots, it is GPU_UNTRUSTED_ROOT", () => {
    const strict = parseVerifierPolicy({ ...policyJson, gpu: {} });
    assert.deepEqual(codes(verifyBundle(make({ seed: "root" }).bytes, { policy: strict, now: NOW })), [
      "GPU_UNTRUSTED_ROOT",
    ]);
  });

  it("when the policy requires a GPU and the bundle carries none, it is POLICY_GPU", () => {
    const verdict = verifyBundle(make({ seed: "none", gpus: [] }).bytes, {
      policy: withPolicy({}, { required: true }),
      now: NOW,
    });
    assert.deepEqual(codes(verdict), ["POLICY_GPU"]);
  });

  it("when the GPU's architecture is not allowed or its driver is below the minimum, it is POLICY_GPU for each", () => {
    const made = make({ seed: "policy" });
    assert.deepEqual(codes(verifyBundle(made.bytes, { policy: withPolicy({}, { archs: ["blackwell"] }), now: NOW })), [
      "POLICY_GPU",
    ]);
    assert.deepEqual(
      codes(verifyBundle(made.bytes, { policy: withPolicy({}, { minDriverVersion: "580.0.0" }), now: NOW })),
      ["POLICY_GPU"],
    );
    assert.equal(
      verifyBundle(made.bytes, {
        policy: withPolicy({}, { archs: ["hopper"], minDriverVersion: "570.124.06" }),
        now: NOW,
      }).ok,
      true,
    );
    const both = verifyBundle(made.bytes, {
      policy: withPolicy({}, { archs: ["blackwell"], minDriverVersion: "600" }),
      now: NOW,
    });
    assert.deepEqual(codes(both), ["POLICY_GPU", "POLICY_GPU"]);
  });

  it("when a Blackwell GPU is carried, it verifies under its own DICE profile", () => {
    const verdict = verifyBundle(make({ seed: "blackwell", arch: "blackwell" }).bytes, { policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    assert.equal(verdict.gpus?.[0]?.arch, "blackwell");
  });

  it("when RIMs are required (the default) and a GPU comes without them, it is GPU_RIM_MISSING; requireRims false accepts it", () => {
    const made = make({ seed: "rimless", gpus: ["no-rims"] });
    assert.deepEqual(codes(verifyBundle(made.bytes, { policy, now: NOW })), ["GPU_RIM_MISSING"]);
    assert.equal(verifyBundle(made.bytes, { policy: withPolicy({}, { requireRims: false }), now: NOW }).ok, true);
  });

  it("when GPU evidence is dropped from or added to a bundle after K signed it, it is STATEMENT_GPU_UNVERIFIED", () => {
    const dropped = make({ seed: "dropped", dropAfterSigning: true });
    assert.deepEqual(codes(verifyBundle(dropped.bytes, { policy, now: NOW })), ["STATEMENT_GPU_UNVERIFIED"]);
    const added = make({
      seed: "added",
      runtime: { backend: "cpu", devices: [], driverVersion: null, gpuEvidence: null },
    });
    assert.deepEqual(codes(verifyBundle(added.bytes, { policy, now: NOW })), ["STATEMENT_GPU_UNVERIFIED"]);
    // A manifest from before the runtime record names nothing: its GPU evidence is verified and accepted.
    assert.equal(verifyBundle(make({ seed: "legacy", runtime: null }).bytes, { policy, now: NOW }).ok, true);
  });

  it("when the GPUs were in devtools mode, only a development policy accepts the bundle (POLICY_GPU otherwise)", () => {
    const devtools = make({
      seed: "devtools",
      runtime: (carried) => ({
        backend: "cuda",
        devices: ["NVIDIA H100"],
        driverVersion: gpu.driverVersion,
        gpuEvidence: { provider: "nvml", environment: "prod", devToolsMode: true, evidence: carried },
      }),
    });
    assert.equal(verifyBundle(devtools.bytes, { policy, now: NOW }).ok, true);
    const production = withPolicy({ development: false });
    assert.deepEqual(codes(verifyBundle(devtools.bytes, { policy: production, now: NOW })), ["POLICY_GPU"]);
  });

  it("when a manifest says it ran on CUDA without GPU evidence, it is a warning, or STATEMENT_GPU_UNVERIFIED when GPUs are required", () => {
    const made = make({
      seed: "cuda-no-evidence",
      gpus: [],
      runtime: { backend: "cuda", devices: ["NVIDIA H100 80GB HBM3"], driverVersion: "570.124.06", gpuEvidence: null },
    });
    const lax = verifyBundle(made.bytes, { policy, now: NOW });
    assert.equal(lax.ok, true, JSON.stringify(lax.errors));
    assert.ok(lax.warnings?.some((w) => w.code === "STATEMENT_GPU_UNVERIFIED"));
    const strict = verifyBundle(made.bytes, { policy: withPolicy({}, { required: true }), now: NOW });
    assert.deepEqual(codes(strict), ["POLICY_GPU", "STATEMENT_GPU_UNVERIFIED"]);
  });

  it("when the policy says requireGpuEvidence, it reads as gpu.required (one digest); contradicting gpu.required or a bad gpu section is POLICY_INVALID", () => {
    const old = parseVerifierPolicy({ requireGpuEvidence: true });
    const current = parseVerifierPolicy({ gpu: { required: true } });
    assert.equal(old.gpu.required, true);
    assert.equal(policyDigest(old), policyDigest(current));
    assert.equal(
      policyDigest(parseVerifierPolicy({ requireGpuEvidence: false })),
      policyDigest(parseVerifierPolicy({})),
    );
    assert.equal("requireGpuEvidence" in parseVerifierPolicy({}).json, false);
    for (const bad of [
      { requireGpuEvidence: true, gpu: { required: false } },
      { requireGpuEvidence: "yes" },
      { gpu: { required: "yes" } },
      { gpu: { archs: ["ampere"] } },
      { gpu: { trustedRoots: ["zz"] } },
      { gpu: { bogus: 1 } },
    ]) {
      assert.throws(() => parseVerifierPolicy(bad), { code: "POLICY_INVALID" }, JSON.stringify(bad));
    }
    // A development GPU root opens the policy, as a development ARK does.
    const reasons = parseVerifierPolicy({ gpu: { trustedRoots: gpu.trustedRoots } }).openness.reasons;
    assert.ok(reasons.some((r) => r.field === "gpu.trustedRoots"));
  });

  it("when the verifier's worker pool verifies a GPU bundle, its verdict and record are the pipeline's", async () => {
    const pool = new VerificationPool({ policy, size: 1 });
    try {
      await pool.ready();
      const made = make({ seed: "pool" });
      const inWorker = await pool.verify(made.bytes, { now: NOW });
      const inline = verifyBundle(made.bytes, { policy, now: NOW });
      assert.equal(inWorker.ok, true, JSON.stringify(inWorker.errors));
      assert.deepEqual(inWorker.record, inline.record);
      assert.deepEqual(inWorker.gpus, inline.gpus);
      const moved = await pool.verify(make({ seed: "pool-moved", gpus: ["other-nonce"] }).bytes, { now: NOW });
      assert.deepEqual(codes(moved), ["GPU_NONCE_MISMATCH"]);
    } finally {
      await pool.close();
    }
  });
});
