import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { BUNDLE_MEDIA_TYPE, writeBundle, type GpuEvidence, type ProvenanceBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../../lib/dsse/index.ts";
import { createGpuSimulator, gpuNonceFor, type GpuSimulator } from "../../lib/gpu/index.ts";
import { buildEvalStatement, buildOmsStatement, type RuntimeInfo, type Statement } from "../../lib/intoto/index.ts";
import type { ModelHash } from "../../lib/oms/types.ts";
import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../../lib/snp/index.ts";
import { measurementHashOf, parseVerifierPolicy, policyDigest, verifyBundle, type VerifierPolicy } from "./index.ts";
import { VerificationPool } from "./pool.ts";

/** The simulators' clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-27T12:00:00Z");
const codes = (v: { errors: { code: string }[] }): string[] => v.errors.map((e) => e.code).sort();
const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");
const b64 = (b: Uint8Array | string): string => Buffer.from(b).toString("base64");

interface GpuBundleOptions {
  seed?: string;
  /** GPU entries to carry: "good" (for this bundle's REPORT_DATA), "other-nonce" (for another REPORT_DATA). */
  gpus?: ("good" | "other-nonce" | "no-rims")[];
  /** The runtime record the manifest carries: default one naming exactly the carried GPU evidence. */
  runtime?: RuntimeInfo | null | ((carried: string[]) => RuntimeInfo);
  /** Drop these GPU entries from the bundle after the manifest named them. */
  dropAfterSigning?: boolean;
}

describe("pipeline step h: GPU evidence", () => {
  let dir = "";
  let snp: Awaited<ReturnType<typeof createSimulator>>;
  let gpu: GpuSimulator;
  let blackwell: GpuSimulator;
  /** A development policy trusting both simulators (`provenant sim policy --gpu`). */
  let policyJson: Record<string, unknown>;
  let policy: VerifierPolicy;
  const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const spki = k.publicKey.export({ format: "der", type: "spki" });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-pipeline-gpu-"));
    snp = await createSimulator({ now: NOW, keyDir: dir });
    gpu = createGpuSimulator({ now: NOW, keyDir: dir });
    blackwell = createGpuSimulator({ now: NOW, keyDir: dir, arch: "blackwell" });
    policyJson = {
      snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
      trustedRoots: [snp.rootFingerprint],
      gpu: { trustedRoots: gpu.trustedRoots },
      development: true,
    };
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

  function sign(statement: Statement) {
    return signEnvelope(new TextEncoder().encode(JSON.stringify(statement)), INTOTO_PAYLOAD_TYPE, k.privateKey);
  }

  /** A real audit bundle like the enclave job writes with `--gpu-evidence sim`, and the report's MEASUREMENT. */
  function make(options: GpuBundleOptions = {}, sim: GpuSimulator = gpu) {
    const seed = options.seed ?? "gpu";
    const nonce = Buffer.from(sha256(`nonce-${seed}`), "hex");
    const reportData = Buffer.concat([createHash("sha256").update(spki).digest(), nonce]);
    const report = Buffer.from(snp.signReport({ reportData }));
    const entries: GpuEvidence[] = (options.gpus ?? ["good"]).map((kind) => {
      const forData = kind === "other-nonce" ? Buffer.alloc(64, 3) : reportData;
      const e = sim.bundleEntry(gpuNonceFor(new Uint8Array(forData)));
      return {
        type: "nvidia-spdm",
        arch: sim.arch,
        evidence: b64(e.evidence as Uint8Array),
        certChain: e.certChainPem as string,
        ...(kind === "no-rims" ? {} : { rims: e.rims.map((r) => b64(r)) }),
      };
    });
    const carried = entries.map((e) => sha256(Buffer.from(e.evidence, "base64")));
    const runtime =
      options.runtime === null
        ? undefined
        : typeof options.runtime === "function"
          ? options.runtime(carried)
          : (options.runtime ?? {
              backend: "cpu" as const,
              devices: [],
              driverVersion: carried.length > 0 ? sim.driverVersion : null,
              gpuEvidence:
                carried.length > 0
                  ? { provider: "sim" as const, environment: "sim" as const, devToolsMode: false, evidence: carried }
                  : null,
            });
    const file = sha256(`model-${seed}`);
    const root = sha256(Buffer.from(file, "hex"));
    const hash = {
      rootDigest: root,
      method: "files",
      files: [{ name: "model.gguf", digest: file, size: 1 }],
      resources: [{ name: "model.gguf", algorithm: "sha256", digest: file }],
      modelName: "tuned",
      ignorePaths: [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
      allowSymlinks: false,
      totalBytes: 1,
    } as ModelHash;
    const manifest = buildEvalStatement({
      model: { name: "tuned", rootDigest: root },
      suite: { name: "suite", digest: sha256(`suite-${seed}`) },
      harness: { name: "provenant", version: "0.1.0", digest: sha256("harness") },
      metrics: [{ name: "accuracy", value: 0.5, sampleSize: 10 }],
      startedOn: new Date("2026-11-27T10:00:00Z"),
      finishedOn: new Date("2026-11-27T11:00:00Z"),
      ...(runtime === undefined ? {} : { runtime }),
    });
    const evidence = snp.evidence("vcek");
    const bundle: ProvenanceBundle = {
      mediaType: BUNDLE_MEDIA_TYPE,
      envelopes: [sign(manifest), sign(buildOmsStatement("tuned", hash))],
      signer: { publicKey: b64(spki) },
      nonce: nonce.toString("hex"),
      evidence: {
        cpu: {
          type: "sev-snp",
          report: b64(report),
          vcek: b64(evidence.vcek),
          ...(evidence.chain === undefined ? {} : { chain: evidence.chain.map((c) => b64(c)) }),
          provider: "sim",
        },
        ...(entries.length === 0 || options.dropAfterSigning === true ? {} : { gpu: entries }),
      },
    };
    return { bytes: writeBundle(bundle), measurement: report.subarray(0x90, 0x90 + 48), carried, entries, bundle };
  }

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
    const verdict = verifyBundle(make({ seed: "blackwell" }, blackwell).bytes, { policy, now: NOW });
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
