import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, readdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { measurementHashOfBundle } from "../lib/bundle/index.ts";
import type { CliIo } from "../lib/cli/index.ts";
import { createGpuSimulator, gpuNonceFor, parseGpuEvidence, verifyGpuEvidence } from "../lib/gpu/index.ts";
import { runtimeOf } from "../lib/intoto/index.ts";
import { createSimulator } from "../lib/snp/index.ts";
import { parseVerifierPolicy, verifyBundle } from "../offchain/pipeline/index.ts";
import { simGpuProvider } from "./attest/gpu.ts";
import { commands } from "./cli.ts";
import { runAuditJob } from "./job.ts";
import { writeTinyModel } from "./model/tiny.ts";
import { checkBundleOffline, REPORT_DATA_OFFSET, testProvider } from "./testing.ts";

/** The simulators' clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-27T12:00:00Z");

/** True while node-llama-cpp's CUDA packages are the empty stubs of the default install (package.json overrides). */
async function cudaIsStubbed(): Promise<boolean> {
  const pkg = new URL("../node_modules/@node-llama-cpp/linux-x64-cuda/package.json", import.meta.url);
  const json = JSON.parse(await readFile(pkg, "utf8").catch(() => "{}")) as { name?: string };
  return json.name !== "@node-llama-cpp/linux-x64-cuda";
}

function capture(cwd: string): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t) => out.push(t), stderr: (t) => err.push(t), isTty: false, env: {}, cwd },
    out,
    err,
  };
}

const audit = commands.find((c) => c.path.join(" ") === "job audit")!;

describe("GPU in the enclave job", () => {
  let dir = "";
  let model = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-gpu-job-"));
    ({ model } = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 5 }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when an audit collects sim GPU evidence, the bundle carries it for gpuNonceFor(REPORT_DATA) and the signed statement records the runtime", async () => {
    const keyDir = join(dir, "gpu-keys");
    const result = await runAuditJob({
      model,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      gpuEvidence: simGpuProvider({ now: NOW, keyDir }),
      threads: 1,
      cwd: dir,
      out: join(dir, "sim-gpu.provenance.json"),
    });
    const checked = await checkBundleOffline(await readFile(result.bundlePath), { "tiny.gguf": model });
    const gpus = checked.bundle.evidence.gpu ?? [];
    assert.equal(gpus.length, 1);
    const gpu = gpus[0]!;
    assert.equal(gpu.type, "nvidia-spdm");
    assert.equal(gpu.arch, "hopper");
    assert.equal(gpu.rims?.length, 2);
    const report = Buffer.from(checked.bundle.evidence.cpu.report, "base64");
    const reportData = new Uint8Array(report.subarray(REPORT_DATA_OFFSET, REPORT_DATA_OFFSET + 64));
    const evidence = new Uint8Array(Buffer.from(gpu.evidence, "base64"));
    assert.deepEqual(parseGpuEvidence(evidence).request.nonce, gpuNonceFor(reportData));
    // What the job bundled verifies under the simulator's roots, with its RIMs, for that nonce.
    const sim = createGpuSimulator({ now: NOW, keyDir });
    const verified = verifyGpuEvidence(
      {
        evidence,
        certChainPem: gpu.certChain,
        arch: gpu.arch,
        rims: gpu.rims!.map((r) => Buffer.from(r, "base64").toString("utf8")),
      },
      { expectedNonce: gpuNonceFor(reportData), now: NOW, policy: { trustedRoots: sim.trustedRoots } },
    );
    assert.equal(verified.driverVersion, sim.driverVersion);
    // The verifier's pipeline (step h) accepts it under a policy that trusts both simulators, and records the GPU.
    const snp = await createSimulator({ now: NOW });
    const policy = parseVerifierPolicy({
      trustedRoots: [snp.rootFingerprint],
      gpu: { trustedRoots: [...sim.trustedRoots] },
      development: true,
    });
    const verdict = verifyBundle(await readFile(result.bundlePath), { policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    assert.equal(verdict.gpus?.[0]?.verified, true);
    assert.equal(verdict.record?.measurementHash, `0x${measurementHashOfBundle(checked.bundle)}`);
    assert.deepEqual(runtimeOf(checked.manifest.statement), {
      backend: "cpu",
      devices: [],
      driverVersion: sim.driverVersion,
      gpuEvidence: {
        provider: "sim",
        environment: "sim",
        devToolsMode: false,
        evidence: [createHash("sha256").update(evidence).digest("hex")],
      },
    });
  });

  it("when an audit runs without GPU evidence, the statement records a CPU run with none", async () => {
    const result = await runAuditJob({
      model,
      suite: "builtin:mc",
      provider: testProvider(NOW),
      threads: 1,
      cwd: dir,
      out: join(dir, "cpu.provenance.json"),
    });
    const checked = await checkBundleOffline(await readFile(result.bundlePath), { "tiny.gguf": model });
    assert.equal(checked.bundle.evidence.gpu, undefined);
    assert.deepEqual(runtimeOf(checked.manifest.statement), {
      backend: "cpu",
      devices: [],
      driverVersion: null,
      gpuEvidence: null,
    });
  });

  it("when --gpu is asked where node-llama-cpp has no CUDA, job audit exits 2 with CUDA_UNAVAILABLE before attesting and writes no bundle", async (t) => {
    if (!(await cudaIsStubbed())) return t.skip("node-llama-cpp's CUDA build is installed here (npm run gpu:enable)");
    const cwd = await mkdtemp(join(dir, "gpu-"));
    const { io, out } = capture(cwd);
    const code = await audit.run(["--model", model, "--suite", "builtin:mc", "--threads", "1", "--gpu", "--json"], io);
    assert.equal(code, 2);
    const printed = JSON.parse(out.join("")) as { ok: boolean; errors: { code: string; message: string }[] };
    assert.equal(printed.ok, false);
    assert.equal(printed.errors[0]?.code, "CUDA_UNAVAILABLE");
    assert.match(printed.errors[0]!.message, /gpu:enable/);
    assert.deepEqual(await readdir(join(cwd, "bundles")).catch(() => []), []);
  });

  it("when --gpu-evidence nvml runs where NVML is absent, job audit exits 2 with GPU_UNAVAILABLE and writes no bundle", async () => {
    const cwd = await mkdtemp(join(dir, "nvml-"));
    const { io, out } = capture(cwd);
    const argv = ["--model", model, "--suite", "builtin:mc", "--threads", "1", "--gpu-evidence", "nvml"];
    const code = await audit.run([...argv, "--nvml-library", join(dir, "absent", "libnvidia-ml.so.1"), "--json"], io);
    assert.equal(code, 2);
    assert.equal((JSON.parse(out.join("")) as { errors: { code: string }[] }).errors[0]?.code, "GPU_UNAVAILABLE");
    assert.deepEqual(await readdir(join(cwd, "bundles")).catch(() => []), []);
  });

  it("when GPU flags are misused, job audit exits 2 with USAGE before any work", async () => {
    for (const extra of [
      ["--gpu-evidence", "nvtrust"],
      ["--gpu-rims", "none"],
      ["--gpu-devtools"],
      ["--nvml-library", "/x.so"],
    ]) {
      const { io, out } = capture(dir);
      const code = await audit.run(["--model", model, "--suite", "builtin:mc", ...extra, "--json"], io);
      assert.equal(code, 2, extra.join(" "));
      assert.equal((JSON.parse(out.join("")) as { errors: { code: string }[] }).errors[0]?.code, "USAGE");
    }
  });
});
