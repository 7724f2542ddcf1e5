import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import koffi from "koffi";

import { ProvenantError } from "../../lib/errors.ts";
import {
  createGpuSimulator,
  gpuNonceFor,
  parseGpuEvidence,
  verifyGpuEvidence,
  type GpuSimulator,
} from "../../lib/gpu/index.ts";
import { simGpuProvider, type GpuCollection } from "./gpu.ts";
import { nvmlGpuProvider, nvmlRuntimeInfo } from "./gpu-nvml.ts";
import { directoryRimSource, rimIdsFor, serviceRimSource } from "./gpu-rims.ts";

const NOW = new Date("2026-11-27T12:00:00Z");
const run = promisify(execFile);

async function codeOf(promise: Promise<unknown>): Promise<ProvenantError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error;
  }
  return assert.fail("expected a coded error");
}

/** REPORT_DATA stand-in: the job's nonce derivation is what matters here. */
const REPORT_DATA = new Uint8Array(64).map((_, i) => i);
const NONCE = gpuNonceFor(REPORT_DATA);

describe("GPU evidence providers", () => {
  let dir: string;
  let sim: GpuSimulator;
  let libPath: string | undefined;
  let set: (key: string, value: string) => void = () => {};
  let calls: (what: string) => number = () => 0;
  let lastNonce: (index: number) => Buffer = () => Buffer.alloc(0);
  let buildSkip: string | false = false;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-fake-nvml-"));
    sim = createGpuSimulator({ now: NOW, keyDir: join(dir, "keys") });
    // The fake NVML (fake-nvml.c), built into this test's temporary directory and loaded by path.
    const source = fileURLToPath(new URL("./fake-nvml.c", import.meta.url));
    const out = join(dir, "libnvidia-ml.so.1");
    try {
      await run("cc", ["-shared", "-fPIC", "-O1", "-o", out, source], { timeout: 60_000 });
      libPath = out;
    } catch (error) {
      buildSkip = `no C compiler to build the fake NVML (cc: ${(error as Error).message.split("\n")[0]})`;
      return;
    }
    const lib = koffi.load(libPath);
    const setFn = lib.func("void fake_nvml_set(const char *key, const char *value)");
    const callsFn = lib.func("int fake_nvml_calls(const char *what)");
    const nonceFn = lib.func("int fake_nvml_last_nonce(unsigned int index, _Out_ uint8_t *out)");
    set = (key, value) => setFn(key, value);
    calls = (what) => callsFn(what) as number;
    lastNonce = (index) => {
      const out = Buffer.alloc(32);
      nonceFn(index, out);
      return out;
    };
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The fake's defaults (CC on, production, one Hopper GPU) with `overrides`, answering from `gpuDir`. */
  async function configure(
    gpuDir: string,
    overrides: Record<string, string> = {},
    evidence: (i: number) => Uint8Array = () => sim.signEvidence({ nonce: NONCE }),
  ): Promise<void> {
    const count = Number(overrides.count ?? "1");
    for (let i = 0; i < count; i++) {
      await writeFile(join(gpuDir, `gpu${i}.bin`), evidence(i));
      await writeFile(join(gpuDir, `chain${i}.pem`), sim.certChainPem);
    }
    const settings = { cc: "1", devtools: "0", environment: "2", count: "1", arch: "9", fail: "", dir: gpuDir };
    for (const [key, value] of Object.entries({ ...settings, ...overrides })) set(key, value);
  }

  async function gpuDir(): Promise<string> {
    return mkdtemp(join(dir, "gpus-"));
  }

  it("when CC is on, the nvml provider returns every GPU's report for the derived nonce, with its chain, and shuts NVML down", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    await configure(await gpuDir(), { count: "2" });
    const before = calls("shutdown");
    const collection = await nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE);
    assert.equal(collection.provider, "nvml");
    assert.equal(collection.gpus.length, 2);
    assert.deepEqual(collection.devices, ["Fake NVIDIA H100 0", "Fake NVIDIA H100 1"]);
    assert.equal(collection.driverVersion, "570.124.06");
    assert.equal(collection.environment, "prod");
    assert.equal(collection.devToolsMode, false);
    for (const [i, gpu] of collection.gpus.entries()) {
      // NVML was handed our nonce, and the report it returned carries it.
      assert.deepEqual(lastNonce(i), Buffer.from(NONCE));
      assert.deepEqual(Buffer.from(parseGpuEvidence(gpu.evidence).request.nonce), Buffer.from(NONCE));
      assert.equal(gpu.arch, "hopper");
      assert.equal(gpu.certChainPem, sim.certChainPem);
      // What was collected verifies, bound to REPORT_DATA through the nonce (the simulator's roots trusted here).
      const verified = verifyGpuEvidence(
        { evidence: gpu.evidence, certChainPem: gpu.certChainPem, arch: gpu.arch },
        {
          expectedNonce: gpuNonceFor(REPORT_DATA),
          now: NOW,
          policy: { requireRims: false, trustedRoots: sim.trustedRoots },
        },
      );
      assert.equal(verified.driverVersion, sim.driverVersion);
    }
    assert.equal(calls("shutdown"), before + 1);
  });

  it("when CC is off, or the state cannot be read, it is GPU_CC_OFF and NVML is still shut down", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    await configure(d, { cc: "0" });
    const before = calls("shutdown");
    const off = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(off.code, "GPU_CC_OFF");
    assert.equal(calls("shutdown"), before + 1);
    await configure(d, { fail: "nvmlSystemGetConfComputeState:3" });
    const unsupported = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(unsupported.code, "GPU_CC_OFF");
    assert.equal(unsupported.details?.nvmlReturnName, "NVML_ERROR_NOT_SUPPORTED");
  });

  it("when the GPUs are in devtools mode (or the simulated CC environment), it refuses unless allowed, and records it when allowed", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    await configure(d, { devtools: "1" });
    assert.equal(
      (await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE))).code,
      "GPU_CC_OFF",
    );
    await configure(d, { environment: "1" });
    assert.equal(
      (await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE))).code,
      "GPU_CC_OFF",
    );
    await configure(d, { devtools: "1" });
    const allowed = await nvmlGpuProvider({ libraryPath: libPath!, rims: null, allowDevTools: true }).collect(NONCE);
    assert.equal(allowed.devToolsMode, true);
  });

  it("when NVML sees no GPU or a GPU that cannot attest, it is GPU_UNAVAILABLE", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    await configure(d, { count: "0" });
    assert.equal(
      (await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE))).code,
      "GPU_UNAVAILABLE",
    );
    await configure(d, { arch: "7" });
    const ampere = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(ampere.code, "GPU_UNAVAILABLE");
    assert.match(ampere.message, /Ampere/);
    await configure(d, { fail: "nvmlInit_v2:9" });
    const noDriver = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(noDriver.code, "GPU_UNAVAILABLE");
    assert.equal(noDriver.details?.nvmlReturnName, "NVML_ERROR_DRIVER_NOT_LOADED");
  });

  it("when an NVML call fails, it is GPU_ATTESTATION_FAILED naming the function and the NVML return code", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    for (const [fn, ret, name] of [
      ["nvmlDeviceGetConfComputeGpuAttestationReport", "10", "NVML_ERROR_TIMEOUT"],
      ["nvmlDeviceGetConfComputeGpuCertificate", "15", "NVML_ERROR_GPU_IS_LOST"],
      ["nvmlDeviceGetHandleByIndex_v2", "4", "NVML_ERROR_NO_PERMISSION"],
      ["nvmlDeviceGetCount_v2", "999", "NVML_ERROR_UNKNOWN"],
    ] as const) {
      await configure(d, { fail: `${fn}:${ret}` });
      const error = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
      assert.equal(error.code, "GPU_ATTESTATION_FAILED", fn);
      assert.equal(error.details?.function, fn);
      assert.equal(error.details?.nvmlReturnName, name);
    }
  });

  it("when a report is too large for NVML's buffer, or carries another nonce, it is GPU_ATTESTATION_FAILED", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    await configure(d, {}, () => new Uint8Array(0x2001));
    const big = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(big.code, "GPU_ATTESTATION_FAILED");
    assert.equal(big.details?.nvmlReturnName, "NVML_ERROR_INSUFFICIENT_SIZE");
    await configure(d, {}, () => sim.signEvidence({ nonce: new Uint8Array(32).fill(9) }));
    const stale = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims: null }).collect(NONCE));
    assert.equal(stale.code, "GPU_ATTESTATION_FAILED");
    assert.equal(stale.details?.expected, Buffer.from(NONCE).toString("hex"));
    // With a RIM source too: the report is checked before its RIMs are named from it or fetched for it.
    const rims = directoryRimSource(await mkdtemp(join(dir, "no-rims-")));
    const staleWithRims = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims }).collect(NONCE));
    assert.equal(staleWithRims.code, "GPU_ATTESTATION_FAILED");
    assert.equal(staleWithRims.details?.expected, Buffer.from(NONCE).toString("hex"));
    await configure(d, {}, () => new Uint8Array(200).fill(0x11));
    const garbage = await codeOf(nvmlGpuProvider({ libraryPath: libPath!, rims }).collect(NONCE));
    assert.equal(garbage.code, "GPU_ATTESTATION_FAILED");
  });

  it("when the NVML library is absent, it is GPU_UNAVAILABLE (collection and runtime info alike)", async () => {
    const missing = join(dir, "no-such-dir", "libnvidia-ml.so.1");
    const error = await codeOf(nvmlGpuProvider({ libraryPath: missing, rims: null }).collect(NONCE));
    assert.equal(error.code, "GPU_UNAVAILABLE");
    assert.equal(error.details?.library, missing);
    assert.equal(await nvmlRuntimeInfo(missing), null);
  });

  it("when RIMs come from a directory, the provider bundles the driver and VBIOS RIM nvtrust names for each GPU", async (t) => {
    if (buildSkip !== false) return t.skip(buildSkip);
    const d = await gpuDir();
    await configure(d);
    const rimDir = await mkdtemp(join(dir, "rims-"));
    const ids = rimIdsFor(parseGpuEvidence(sim.signEvidence({ nonce: NONCE })), "hopper");
    assert.deepEqual(ids, { driver: "NV_GPU_DRIVER_GH100_570.124.06", vbios: "NV_GPU_VBIOS_1010_0200_882_96009F0001" });
    const driverRim = sim.makeRim({ kind: "driver" });
    await writeFile(join(rimDir, `${ids.driver}.xml`), driverRim);
    const missing = await codeOf(
      nvmlGpuProvider({ libraryPath: libPath!, rims: directoryRimSource(rimDir) }).collect(NONCE),
    );
    assert.equal(missing.code, "GPU_ATTESTATION_FAILED");
    assert.equal(missing.details?.vbios, ids.vbios);
    const vbiosRim = sim.makeRim({ kind: "vbios" });
    await writeFile(join(rimDir, `${ids.vbios}.swidtag`), vbiosRim);
    const collection = await nvmlGpuProvider({ libraryPath: libPath!, rims: directoryRimSource(rimDir) }).collect(
      NONCE,
    );
    assert.deepEqual(collection.gpus[0]!.rims, [driverRim, vbiosRim]);
    // With both RIMs, the default GPU policy (requireRims) accepts what was collected.
    const gpu = collection.gpus[0]!;
    const verified = verifyGpuEvidence(
      { evidence: gpu.evidence, certChainPem: gpu.certChainPem, rims: gpu.rims },
      { expectedNonce: NONCE, now: NOW, policy: { trustedRoots: sim.trustedRoots } },
    );
    assert.equal(verified.rims.driver?.version, sim.driverVersion);
    assert.equal(verified.rims.vbios?.version, sim.vbiosVersion);
  });

  it("when a RIM file in the directory is larger than a RIM may be, it is GPU_ATTESTATION_FAILED from its size, unread", async () => {
    const rimDir = await mkdtemp(join(dir, "big-rims-"));
    const id = "NV_GPU_DRIVER_GH100_570.124.06";
    // Sparse: 3 GiB on paper, nothing on disk; reading it whole is what must not happen.
    await writeFile(join(rimDir, `${id}.xml`), "");
    await truncate(join(rimDir, `${id}.xml`), 3 * 1024 ** 3);
    const error = await codeOf(directoryRimSource(rimDir).get(id));
    assert.equal(error.code, "GPU_ATTESTATION_FAILED");
    assert.match(error.message, /is 3221225472 bytes, over a RIM's 1048576/);
  });

  it("when RIMs come from NVIDIA's service, each is fetched once, checked against its sha256, bounded, and cached", async () => {
    const cacheDir = await mkdtemp(join(dir, "rim-cache-"));
    const xml = sim.makeRim({ kind: "driver" });
    const id = "NV_GPU_DRIVER_GH100_570.124.06";
    const requested: string[] = [];
    const answer = (body: string, status = 200) => new Response(body, { status });
    const good = JSON.stringify({
      id,
      rim: Buffer.from(xml).toString("base64"),
      sha256: createHash("sha256").update(xml).digest("hex"),
    });
    const fake: typeof fetch = async (url) => {
      requested.push(String(url));
      return answer(good);
    };
    const source = serviceRimSource({ baseUrl: "https://rim.example/v1/rim/", cacheDir, fetch: fake });
    assert.equal(await source.get(id), xml);
    assert.equal(await source.get(id), xml);
    assert.deepEqual(requested, [`https://rim.example/v1/rim/${id}`]);
    assert.deepEqual(await readdir(cacheDir), [`${id}.xml`]);

    const other = (body: string, status = 200) =>
      serviceRimSource({
        baseUrl: "https://rim.example/v1/rim/",
        cacheDir: join(cacheDir, "other"),
        fetch: async () => answer(body, status),
      });
    const wrongSha = JSON.stringify({ id, rim: Buffer.from(xml).toString("base64"), sha256: "00".repeat(32) });
    assert.equal((await codeOf(other(wrongSha).get(id))).code, "GPU_ATTESTATION_FAILED");
    assert.equal((await codeOf(other("{}", 404).get(id))).code, "GPU_ATTESTATION_FAILED");
    assert.equal((await codeOf(other("not json").get(id))).code, "GPU_ATTESTATION_FAILED");
    const huge = JSON.stringify({ id, rim: "A".repeat(3 * 1024 * 1024) });
    assert.equal((await codeOf(other(huge).get(id))).code, "GPU_ATTESTATION_FAILED");
    const down = serviceRimSource({
      cacheDir: join(cacheDir, "down"),
      fetch: async () => {
        throw new TypeError("fetch failed");
      },
    });
    assert.equal((await codeOf(down.get(id))).code, "GPU_ATTESTATION_FAILED");
    assert.equal((await codeOf(down.get("../etc/passwd"))).code, "GPU_ATTESTATION_FAILED");
  });

  it("when the sim provider collects, every GPU carries the nonce and verifies under the simulator's roots with its RIMs", async () => {
    const collection: GpuCollection = await simGpuProvider({ now: NOW, keyDir: join(dir, "keys"), count: 2 }).collect(
      NONCE,
    );
    assert.equal(collection.provider, "sim");
    assert.equal(collection.gpus.length, 2);
    for (const gpu of collection.gpus) {
      const verified = verifyGpuEvidence(
        { evidence: gpu.evidence, certChainPem: gpu.certChainPem, arch: gpu.arch, rims: gpu.rims },
        { expectedNonce: NONCE, now: NOW, policy: { trustedRoots: sim.trustedRoots } },
      );
      assert.equal(verified.arch, "hopper");
    }
  });
});
