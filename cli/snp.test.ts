import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import type { CliIo } from "../lib/cli/index.ts";
import { createSimulator } from "../lib/snp/index.ts";
import { parseVerifierPolicy, policyDigest } from "../offchain/pipeline/policy.ts";
import { commands, parseSnpVerifyPolicy } from "./snp.ts";

const data = fileURLToPath(new URL("../test/fixtures/snp/", import.meta.url));
const report = join(data, "milan-report-1.bin");
const vcek = join(data, "milan-report-1-vcek.der");
const keyDir = join(tmpdir(), "provenant-test-sim");
/** A fixed clock for the simulator and `--now`: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-21T00:00:00Z");
/** AMD's Milan cert_chain (ASK then ARK) from testdata, as a --chain file and as a pre-filled certificate cache. */
const chainPem =
  readFileSync(join(data, "milan-ask.pem"), "latin1") + readFileSync(join(data, "milan-ark.pem"), "latin1");
const work = mkdtempSync(join(tmpdir(), "snp-cli-chain-"));
const chainFile = join(work, "milan-chain.pem");
writeFileSync(chainFile, chainPem, "latin1");
const filledCache = mkdtempSync(join(tmpdir(), "snp-cli-kds-"));
writeFileSync(join(filledCache, "vcek-Milan-cert_chain.pem"), chainPem, "latin1");

async function run(path: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const command = commands.find((c) => c.path.join(" ") === path)!;
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTty: false, env: {}, cwd: process.cwd() };
  const code = await command.run(argv, io);
  return { code, out, err };
}

/** The real Milan report with its VCEK and AMD's cert_chain from the fixtures. */
const milanWithChain = [report, "--vcek", vcek, "--chain", chainFile];

describe("provenant snp verify", () => {
  it("when given the real Milan report, VCEK and chain, it exits 0 and prints every field as JSON", async () => {
    const { code, out } = await run("snp verify", [...milanWithChain, "--now", "2026-11-21T00:00:00Z", "--json"]);
    assert.equal(code, 0);
    const json = JSON.parse(out) as Record<string, unknown> & { report: Record<string, unknown> };
    assert.equal(json["ok"], true);
    assert.equal(json["product"], "Milan");
    assert.equal(json["version"], 3);
    assert.equal(json["signer"], "vcek");
    assert.deepEqual(json["errors"], []);
    assert.equal(json.report["hostData"], "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10");
  });

  it("when --chain is absent and --cache-dir holds the cert_chain, it verifies from the cache", async () => {
    const args = [report, "--vcek", vcek, "--cache-dir", filledCache, "--offline", "--json"];
    const ok = await run("snp verify", [...args, "--now", "2026-11-21T00:00:00Z"]);
    assert.equal(ok.code, 0, ok.out);
    assert.equal((JSON.parse(ok.out) as { rootFingerprint: string }).rootFingerprint.slice(0, 8), "69d063b4");
  });

  it("when --chain is absent and no cache holds the chain, it exits 1 with SNP_CERT_UNAVAILABLE and no stack trace", async () => {
    const empty = mkdtempSync(join(tmpdir(), "snp-cli-kds-"));
    const args = [report, "--vcek", vcek, "--cache-dir", empty, "--offline", "--now", "2026-11-21T00:00:00Z"];
    const asJson = await run("snp verify", [...args, "--json"]);
    assert.equal(asJson.code, 1);
    assert.deepEqual(
      (JSON.parse(asJson.out) as { errors: { code: string }[] }).errors.map((e) => e.code),
      ["SNP_CERT_UNAVAILABLE"],
    );
    const text = await run("snp verify", args);
    assert.equal(text.code, 1);
    assert.match(text.err, /^error SNP_CERT_UNAVAILABLE: /);
    assert.doesNotMatch(text.err, /\n\s+at /);
  });

  it("when now is past the VCEK's validity, it exits 1 with SNP_CERT_EXPIRED", async () => {
    const { code, out } = await run("snp verify", [...milanWithChain, "--now", "2040-01-01T00:00:00Z", "--json"]);
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
    const sim = await createSimulator({ keyDir, now: NOW });
    writeFileSync(join(dir, "report.bin"), sim.signReport());
    writeFileSync(join(dir, "vcek.der"), sim.vcekDer);
    const pem = (der: Uint8Array) =>
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE-----\n`;
    writeFileSync(join(dir, "chain.pem"), pem(sim.askDer) + pem(sim.arkDer));
    const args = [
      join(dir, "report.bin"),
      ...["--vcek", join(dir, "vcek.der"), "--chain", join(dir, "chain.pem"), "--now", NOW.toISOString()],
    ];
    assert.equal((await run("snp verify", [...args, "--policy", join(dir, "policy.json")])).code, 0);
    writeFileSync(join(dir, "revoked.crl"), sim.crl({ revoked: [0x10001] }));
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

  it("when the policy file is invalid in any way, it exits 2 with POLICY_INVALID (never 1)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "snp-cli-policy-"));
    const cases: Record<string, string> = {
      "not-json.json": "{snp:",
      "array.json": "[]",
      "unknown-top.json": '{"snp": {}, "trusted": []}',
      "bad-snp.json": '{"snp": {"allowDebug": "no"}}',
      "bad-root.json": '{"trustedRoots": ["zz"]}',
      "bare-unknown.json": '{"allowDebug": false, "debugg": true}',
      "bare-bad.json": '{"vmpl": 9}',
    };
    for (const [name, text] of Object.entries(cases)) {
      writeFileSync(join(dir, name), text);
      const asJson = await run("snp verify", [report, "--vcek", vcek, "--policy", join(dir, name), "--json"]);
      assert.equal(asJson.code, 2, name);
      const errors = (JSON.parse(asJson.out) as { errors: { code: string }[] }).errors;
      assert.ok(errors.length > 0 && errors.every((e) => e.code === "POLICY_INVALID"), name);
      const text2 = await run("snp verify", [report, "--vcek", vcek, "--policy", join(dir, name)]);
      assert.equal(text2.code, 2, name);
      assert.match(text2.err, /^error POLICY_INVALID: /, name);
    }
  });

  it("when the policy is a verifier policy or a bare SNP policy, both parsers read it with the same meaning", () => {
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const root = "ab".repeat(32);
    const full = parseSnpVerifyPolicy(bytes({ snp: { vmpl: 2, allowDebug: true }, trustedRoots: [root] }));
    assert.deepEqual(full.trustedRoots, [root]);
    assert.equal(full.snp.vmpl, 2);
    const bare = parseSnpVerifyPolicy(bytes({ vmpl: 2, allowDebug: true }));
    assert.deepEqual(bare, { snp: full.snp, trustedRoots: [] });
    // {} and a verifier-only file are verifier policies: the defaults of the verifier's parser.
    assert.deepEqual(parseSnpVerifyPolicy(bytes({})).snp, parseVerifierPolicy({}).snp);
    assert.deepEqual(parseSnpVerifyPolicy(bytes({ requireGpuEvidence: true })).trustedRoots, []);
  });

  it("when sim policy prints a policy, it is the verifier parser's normalised form and parses back to the same digest", async () => {
    const printed = await run("sim policy", ["--key-dir", keyDir]);
    assert.equal(printed.code, 0);
    const json = JSON.parse(printed.out) as { trustedRoots: string[]; development: boolean };
    const sim = await createSimulator({ keyDir });
    const expected = parseVerifierPolicy({
      trustedRoots: [sim.rootFingerprint],
      acceptedKinds: ["eval", "finetune", "serving"],
      development: true,
    });
    assert.equal(json.development, true, "a development policy says so");
    assert.deepEqual(json, expected.json);
    assert.equal(policyDigest(parseVerifierPolicy(json)), policyDigest(expected));
  });

  it("when sim policy --gpu prints a policy, it also trusts the GPU simulator's device and RIM roots", async () => {
    const printed = await run("sim policy", ["--gpu", "--key-dir", keyDir]);
    assert.equal(printed.code, 0);
    const json = JSON.parse(printed.out) as { gpu: { trustedRoots: string[] }; development: boolean };
    const { createGpuSimulator } = await import("../lib/gpu/index.ts");
    const gpu = createGpuSimulator({ now: new Date("2026-11-27T00:00:00Z"), keyDir });
    assert.deepEqual(json.gpu.trustedRoots, [...gpu.trustedRoots].sort());
    assert.equal(json.development, true);
    assert.deepEqual(parseVerifierPolicy(json).json, json, "the parser's normalised form");
  });

  it("when an argument is extra or a flag unknown, it exits 2 with USAGE", async () => {
    const extra = await run("snp verify", [report, "extra.bin", "--vcek", vcek, "--json"]);
    assert.equal(extra.code, 2);
    assert.equal((JSON.parse(extra.out) as { errors: { code: string }[] }).errors[0]?.code, "USAGE");
    const unknown = await run("snp verify", [report, "--vcek", vcek, "--bogus"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /^error USAGE: /);
    const badNow = await run("snp verify", [report, "--vcek", vcek, "--now", "yesterday"]);
    assert.equal(badNow.code, 2);
    assert.equal((await run("sim policy", ["stray"])).code, 2);
    assert.equal((await run("sim policy", ["--product", "Naples"])).code, 2);
  });
});
