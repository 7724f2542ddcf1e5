import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import type { CliIo } from "../lib/cli/index.ts";
import { createGpuSimulator } from "../lib/gpu/index.ts";
import { commands, readGpuPolicyFile } from "./gpu.ts";

const data = fileURLToPath(new URL("../test/fixtures/gpu/", import.meta.url));
const report = join(data, "hopperAttestationReport.txt");
const chain = join(data, "hopperCertChain.txt");
const driverRim = join(data, "NV_GPU_DRIVER_GH100_550.144.03.xml");
const NONCE = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
const NOW = "2026-11-27T00:00:00Z";
const work = mkdtempSync(join(tmpdir(), "provenant-gpu-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));
const file = (name: string, content: string | Uint8Array) => {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
};
const noRims = file("no-rims.json", JSON.stringify({ requireRims: false }));

async function run(argv: string[]): Promise<{ code: number; json: Record<string, unknown>; out: string; err: string }> {
  const command = commands.find((c) => c.path.join(" ") === "gpu verify")!;
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTty: false, env: {}, cwd: process.cwd() };
  const code = await command.run(argv, io);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out) as Record<string, unknown>;
  } catch {
    // text output
  }
  return { code, json, out, err };
}
const codes = (json: Record<string, unknown>) => (json["errors"] as { code: string }[]).map((e) => e.code);

describe("provenant gpu verify with the real H100 vectors", () => {
  it("when the report, chain and nonce are given and RIMs are not required, it exits 0 with the JSON fields", async () => {
    const { code, json } = await run([
      report,
      "--chain",
      chain,
      "--nonce",
      NONCE,
      "--now",
      NOW,
      "--policy",
      noRims,
      "--json",
    ]);
    assert.equal(code, 0);
    assert.deepEqual(json, {
      ok: true,
      arch: "hopper",
      driverVersion: "550.90.07",
      vbiosVersion: "96.00.9F.00.01",
      nonce: NONCE,
      fwid: "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d",
      measurements: { checked: 0, matched: 0, mismatched: [] },
      errors: [],
    });
  });

  it("when the default policy applies (RIMs required), it exits 1 with GPU_RIM_MISSING", async () => {
    const { code, json } = await run([report, "--chain", chain, "--now", NOW, "--json"]);
    assert.equal(code, 1);
    assert.deepEqual(codes(json), ["GPU_RIM_MISSING"]);
    assert.equal(json["arch"], "hopper");
  });

  it("when the nonce differs, it exits 1 with GPU_NONCE_MISMATCH", async () => {
    const other = `${NONCE.slice(0, 63)}0`;
    const { code, json } = await run([
      report,
      "--chain",
      chain,
      "--nonce",
      other,
      "--now",
      NOW,
      "--policy",
      noRims,
      "--json",
    ]);
    assert.equal(code, 1);
    assert.deepEqual(codes(json), ["GPU_NONCE_MISMATCH"]);
  });

  it("when the driver RIM of another version is given, it exits 1 with GPU_RIM_VERSION_MISMATCH", async () => {
    const { code, json } = await run([
      report,
      "--chain",
      chain,
      "--rim",
      driverRim,
      "--now",
      "2025-09-01T00:00:00Z",
      "--json",
    ]);
    assert.equal(code, 1);
    assert.deepEqual(codes(json), ["GPU_RIM_VERSION_MISMATCH"]);
  });

  it("when the evidence is truncated, it exits 2 with GPU_MALFORMED and text output goes to stderr", async () => {
    const short = file("short.txt", "11e001ff00");
    const { code, json } = await run([short, "--chain", chain, "--now", NOW, "--json"]);
    assert.equal(code, 2);
    assert.deepEqual(codes(json), ["GPU_MALFORMED"]);
    const text = await run([short, "--chain", chain, "--now", NOW]);
    assert.equal(text.code, 2);
    assert.match(text.err, /error GPU_MALFORMED/);
  });

  it("when usage is wrong (no --chain, a bad --nonce, an extra argument, a missing file), it exits 2", async () => {
    assert.equal((await run([report, "--json"])).code, 2);
    assert.deepEqual(codes((await run([report, "--chain", chain, "--nonce", "abc", "--json"])).json), ["USAGE"]);
    assert.equal((await run([report, "extra", "--chain", chain, "--json"])).code, 2);
    assert.deepEqual(codes((await run([join(work, "nope"), "--chain", chain, "--json"])).json), ["IO_ERROR"]);
  });
});

describe("provenant gpu verify with the simulator", () => {
  const now = new Date(NOW);
  const sim = createGpuSimulator({ now, arch: "blackwell" });
  const nonce = new Uint8Array(32).fill(0x42);
  const nonceHex = Buffer.from(nonce).toString("hex");
  const evidence = file("sim-evidence.bin", sim.signEvidence({ nonce }));
  const pem = file("sim-chain.pem", sim.certChainPem);
  const driver = file("sim-driver.xml", sim.makeRim({ kind: "driver" }));
  const vbios = file("sim-vbios.xml", sim.makeRim({ kind: "vbios" }));
  const policy = file("sim-policy.json", JSON.stringify({ snp: {}, gpu: { trustedRoots: sim.trustedRoots } }));
  const ocsp = file("sim-ocsp.der", sim.ocspResponse("device", 1));

  it("when raw evidence, both RIMs, an OCSP response and a verifier policy naming its roots are given, it exits 0", async () => {
    const args = [evidence, "--chain", pem, "--rim", driver, "--rim", vbios, "--ocsp", ocsp, "--nonce", nonceHex];
    const { code, json } = await run([...args, "--now", NOW, "--policy", policy, "--json"]);
    assert.equal(code, 0, JSON.stringify(json));
    assert.equal(json["arch"], "blackwell");
    assert.deepEqual(json["measurements"], { checked: 32, matched: 32, mismatched: [] });
    const text = await run([...args, "--now", NOW, "--policy", policy]);
    assert.match(text.out, /^OK blackwell GPU GB100 A01 GSP FMC LF/);
  });

  it("when a measured block differs from the RIMs, it exits 1 and lists the index", async () => {
    const changed = file(
      "sim-changed.bin",
      sim.signEvidence({ nonce, measurements: new Map([[30, new Uint8Array(48)]]) }),
    );
    const args = [changed, "--chain", pem, "--rim", driver, "--rim", vbios, "--now", NOW, "--policy", policy, "--json"];
    const { code, json } = await run(args);
    assert.equal(code, 1);
    assert.deepEqual(codes(json), ["GPU_MEASUREMENT_MISMATCH"]);
    assert.deepEqual(json["measurements"], { checked: 32, matched: 31, mismatched: [30] });
  });

  it("when a policy file is bad, it exits 2 with POLICY_INVALID, as every policy file does", async () => {
    const bad = file("bad-policy.json", JSON.stringify({ gpu: { archs: ["ampere"] } }));
    const { code, json } = await run([evidence, "--chain", pem, "--now", NOW, "--policy", bad, "--json"]);
    assert.equal(code, 2);
    assert.deepEqual(codes(json), ["POLICY_INVALID"]);
  });

  it("when the policy file is a verifier policy without a gpu section, the defaults apply; bad JSON is POLICY_INVALID", () => {
    assert.equal(readGpuPolicyFile(Buffer.from(JSON.stringify({ snp: {}, trustedRoots: [] }))).requireRims, true);
    assert.throws(
      () => readGpuPolicyFile(Buffer.from("{")),
      (e: { code?: string }) => e.code === "POLICY_INVALID",
    );
    assert.throws(
      () => readGpuPolicyFile(Buffer.from('{"requireRim": false}')),
      (e: { code?: string }) => e.code === "POLICY_INVALID",
    );
  });
});
