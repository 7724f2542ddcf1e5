import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import type { CliIo } from "../cli/index.ts";
import { commands } from "./cli.ts";
import { createSimulator } from "./sim.ts";

const data = fileURLToPath(new URL("../../../shared/testdata/snp/", import.meta.url));
const report = join(data, "milan-report-1.bin");
const vcek = join(data, "milan-report-1-vcek.der");
const keyDir = join(tmpdir(), "provenant-test-sim");

async function run(path: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const command = commands.find((c) => c.path.join(" ") === path)!;
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTty: false, env: {}, cwd: process.cwd() };
  const code = await command.run(argv, io);
  return { code, out, err };
}

describe("provenant snp verify", () => {
  it("when given the real Milan report and VCEK, it exits 0 and prints every field as JSON", async () => {
    const { code, out } = await run("snp verify", [report, "--vcek", vcek, "--now", "2026-11-21T00:00:00Z", "--json"]);
    assert.equal(code, 0);
    const json = JSON.parse(out) as Record<string, unknown> & { report: Record<string, unknown> };
    assert.equal(json["ok"], true);
    assert.equal(json["product"], "Milan");
    assert.equal(json["version"], 3);
    assert.equal(json["signer"], "vcek");
    assert.deepEqual(json["errors"], []);
    assert.equal(json.report["hostData"], "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10");
  });

  it("when now is past the VCEK's validity, it exits 1 with SNP_CERT_EXPIRED", async () => {
    const { code, out } = await run("snp verify", [report, "--vcek", vcek, "--now", "2040-01-01T00:00:00Z", "--json"]);
    assert.equal(code, 1);
    assert.deepEqual(
      (JSON.parse(out) as { errors: { code: string }[] }).errors.map((e) => e.code),
      ["SNP_CERT_EXPIRED"],
    );
  });

  it("when the report file is missing or --vcek is absent, it exits 2", async () => {
    assert.equal((await run("snp verify", ["/nonexistent.bin", "--vcek", vcek, "--json"])).code, 2);
    assert.equal((await run("snp verify", [report])).code, 2);
  });

  it("when a simulator report is checked with the printed development policy, it exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "snp-cli-"));
    const policy = await run("sim policy", ["--key-dir", keyDir]);
    assert.equal(policy.code, 0);
    writeFileSync(join(dir, "policy.json"), policy.out);
    const sim = await createSimulator({ keyDir });
    writeFileSync(join(dir, "report.bin"), sim.signReport());
    writeFileSync(join(dir, "vcek.der"), sim.vcekDer);
    const pem = (der: Uint8Array) =>
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----\n`;
    writeFileSync(join(dir, "chain.pem"), pem(sim.askDer) + pem(sim.arkDer));
    const args = [join(dir, "report.bin"), "--vcek", join(dir, "vcek.der"), "--chain", join(dir, "chain.pem")];
    assert.equal((await run("snp verify", [...args, "--policy", join(dir, "policy.json")])).code, 0);
    writeFileSync(join(dir, "revoked.crl"), sim.crl([0x10001]));
    const revoked = await run("snp verify", [
      ...args,
      "--policy",
      join(dir, "policy.json"),
      "--crl",
      join(dir, "revoked.crl"),
      "--json",
    ]);
    assert.equal(revoked.code, 1);
    assert.equal((JSON.parse(revoked.out) as { errors: { code: string }[] }).errors[0]?.code, "SNP_CERT_REVOKED");
    const refused = await run("snp verify", [...args, "--json"]);
    assert.equal(refused.code, 1);
    assert.equal((JSON.parse(refused.out) as { errors: { code: string }[] }).errors[0]?.code, "SNP_UNTRUSTED_ROOT");
  });
});
