// End to end for step h (GPU evidence): a real chain (in-process Hardhat over HTTP), a real bare git repository, the
// verifier service in process on a ticking clock, bundles made with the SEV-SNP and GPU simulators. A bundle with sim
// GPU evidence is published with the combined measurementHash; evidence for another REPORT_DATA is GPU_NONCE_MISMATCH;
// the policy's gpu.required refuses a bundle without GPU evidence (POLICY_GPU). GET /bundles/:digest shows the GPUs.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import type { CliIo } from "../lib/cli/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { commands } from "../offchain/cli.ts";
import { measurementHashOf, parseVerifierPolicy } from "../offchain/pipeline/index.ts";
import { startService } from "../offchain/service.ts";
import { deployRegistry, startDevChain, type DeployedRegistry, type DevChain } from "../offchain/testing/chain.ts";
import { createTestRepo } from "../offchain/testing/git.ts";
import { createGpuBundleFactory, type GpuBundleFactory } from "../offchain/testing/gpu-bundles.ts";
import { tickingClock, waitFor } from "../offchain/testing/world.ts";

/** The service's clock starts here (tickingClock) and the bundles are minted at it. */
const NOW = new Date("2026-11-27T12:00:00Z");
const digestOf = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("verifier end to end with GPU evidence (step h)", () => {
  let chain: DevChain;
  let registry: DeployedRegistry;
  let f: GpuBundleFactory;
  let work = "";
  before(async () => {
    chain = await startDevChain();
    registry = await deployRegistry(chain.url);
    work = await mkdtemp(path.join(tmpdir(), "provenant-verifier-gpu-"));
    f = await createGpuBundleFactory({ now: NOW, keyDir: path.join(work, "keys") });
  });
  after(async () => {
    registry.provider.destroy();
    await chain.close();
    await rm(work, { recursive: true, force: true });
  });

  it("when bundle verify checks a GPU bundle offline, --json lists the GPU and the text names it; moved evidence exits 1", async () => {
    const verify = commands.find((c) => c.path.join(" ") === "bundle verify")!;
    const policyFile = path.join(work, "policy.json");
    await writeFile(policyFile, JSON.stringify(f.policyJson));
    const run = async (bytes: Uint8Array, json: boolean) => {
      const file = path.join(work, `${digestOf(bytes).slice(0, 12)}.provenance.json`);
      await writeFile(file, bytes);
      const out: string[] = [];
      const io: CliIo = { stdout: (t) => out.push(t), stderr: () => {}, isTty: false, env: {}, cwd: work };
      const argv = [file, "--policy", policyFile, "--now", NOW.toISOString(), "--no-crl", ...(json ? ["--json"] : [])];
      return { code: await verify.run(argv, io), out: out.join("") };
    };
    const good = f.make({ seed: "cli-good" });
    const printed = await run(good.bytes, true);
    assert.equal(printed.code, 0, printed.out);
    const result = JSON.parse(printed.out) as { gpus: { arch: string; verified: boolean }[] };
    assert.deepEqual(
      result.gpus.map((g) => [g.arch, g.verified]),
      [["hopper", true]],
    );
    assert.match(
      (await run(good.bytes, false)).out,
      /gpu 0 hopper, driver 570\.124\.06, VBIOS 96\.00\.9F\.00\.01, verified/,
    );
    const moved = await run(f.make({ seed: "cli-moved", gpus: ["other-nonce"] }).bytes, true);
    assert.equal(moved.code, 1);
    assert.equal((JSON.parse(moved.out) as { errors: { code: string }[] }).errors[0]?.code, "GPU_NONCE_MISMATCH");
  });

  it("when GPU bundles are pushed, the sound one is published with the combined measurementHash and the others are refused with their codes", async () => {
    const repo = createTestRepo();
    const good = f.make({ seed: "gpu-e2e-good" });
    const moved = f.make({ seed: "gpu-e2e-moved", gpus: ["other-nonce"] });
    const cpuOnly = f.make({ seed: "gpu-e2e-cpu", gpus: [] });
    repo.write("bundles/good.provenance.json", good.bytes);
    repo.write("bundles/moved.provenance.json", moved.bytes);
    repo.write("bundles/cpu.provenance.json", cpuOnly.bytes);
    repo.commitAndPush("gpu bundles");
    const policy = parseVerifierPolicy({ ...f.policyJson, gpu: { ...(f.policyJson.gpu as object), required: true } });
    const service = await startService({
      repos: [repo.origin],
      rpcUrl: chain.url,
      registry: registry.address,
      policy,
      createSender: (provider) => createLocalSender(provider, registry.publisherKey),
      dataDir: path.join(work, "data"),
      listen: { host: "127.0.0.1", port: 0 },
      intervalMs: 300,
      maxWaitMs: 100,
      workers: 1,
      logger: pino({ level: "silent" }),
      now: tickingClock(NOW),
    });
    try {
      const status = (bytes: Uint8Array) => service.store.getBundle(digestOf(bytes))?.status;
      await waitFor("verdicts and publication", () =>
        status(good.bytes) === "published" && status(moved.bytes) === "rejected" && status(cpuOnly.bytes) === "rejected"
          ? true
          : undefined,
      );
      const row = service.store.getBundle(digestOf(good.bytes))!;
      // The record onchain: measurementHash = SHA-256(MEASUREMENT ‖ the GPU's measurement-record digest).
      const gpuDigest = (row.details?.gpus as { measurementDigest: string }[])[0]!.measurementDigest;
      const expected = `0x${measurementHashOf(good.measurement, [gpuDigest])}`;
      assert.equal(row.record?.measurementHash, expected);
      const filter = registry.contract.filters.AttestationRecorded!(`0x${good.modelHash}`);
      const events = await registry.contract.queryFilter(filter);
      assert.equal(events.length, 1);
      assert.equal((events[0] as unknown as { args: { measurementHash: string } }).args.measurementHash, expected);

      const codes = (bytes: Uint8Array) => service.store.getBundle(digestOf(bytes))!.errors.map((e) => e.code);
      assert.deepEqual(codes(moved.bytes), ["GPU_NONCE_MISMATCH"]);
      assert.deepEqual(codes(cpuOnly.bytes), ["POLICY_GPU"]);

      // GET /bundles/:digest shows each GPU (arch, driver, VBIOS, verified or not) and the manifest's runtime record.
      const view = async (bytes: Uint8Array) =>
        (await (await fetch(`${service.apiUrl}/bundles/${digestOf(bytes)}`)).json()) as {
          gpus: { arch: string; driverVersion: string; vbiosVersion: string; verified: boolean }[];
          runtime: { gpuEvidence: { provider: string } | null } | null;
        };
      const shown = await view(good.bytes);
      assert.deepEqual(
        shown.gpus.map((g) => [g.arch, g.driverVersion, g.vbiosVersion, g.verified]),
        [["hopper", f.gpu.hopper.driverVersion, f.gpu.hopper.vbiosVersion, true]],
      );
      assert.equal(shown.runtime?.gpuEvidence?.provider, "sim");
      assert.deepEqual(
        (await view(moved.bytes)).gpus.map((g) => g.verified),
        [false],
      );
      assert.deepEqual((await view(cpuOnly.bytes)).gpus, []);
    } finally {
      await service.stop();
      repo.cleanup();
    }
  });
});
