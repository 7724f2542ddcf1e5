// `provenant lookup` and `provenant audit` run in-process against a local chain: JSON output, exit codes, and an
// audit of a simulator bundle that the pipeline accepts and the chain records (then revokes). The simulator mints at
// a fixed date and audit checks at that date (--now): nothing here depends on the day the tests run.
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { hashModel } from "../lib/oms/index.ts";
import { commands } from "../offchain/client/cli.ts";
import { verifyBundle } from "../offchain/pipeline/index.ts";
import { createBundleFactory, type MadeBundle } from "../offchain/testing/bundles.ts";
import { digestOf, makeTestBundle, runCli, startLookupFixture, type LookupFixture } from "./lookup-fixture.ts";

const NOW = new Date("2026-11-21T12:00:00Z");

const run = (argv: string[]) => runCli(commands, argv);

const codes = (json: Record<string, unknown>) => (json.errors as { code: string }[]).map((e) => e.code);

describe("provenant lookup and audit", () => {
  let f: LookupFixture;
  let conn: string[];
  let work: string;
  let made: MadeBundle;
  let bundleFile: string;
  let policyFile: string;
  let auditArgs: string[];

  before(async () => {
    f = await startLookupFixture();
    conn = ["--rpc", f.chain.url, "--registry", f.address];
    work = await mkdtemp(path.join(tmpdir(), "provenant-lookup-cli-"));
    const factory = await createBundleFactory({ keyDir: path.join(work, "sim"), now: NOW });
    made = factory.make({ seed: "audit me", kind: "eval" });
    bundleFile = path.join(work, "audit.provenance.json");
    await writeFile(bundleFile, made.bytes);
    policyFile = path.join(work, "policy.json");
    await writeFile(policyFile, JSON.stringify(factory.policyJson));
    const verdict = verifyBundle(made.bytes, { policy: factory.policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    const r = verdict.record!;
    await f.publish([{ ...r, reportedTcb: BigInt(r.reportedTcb) }]);
    auditArgs = ["--policy", policyFile, "--now", NOW.toISOString(), ...conn, "--json"];
  });
  after(async () => f.close());

  it("when a hash is recorded, lookup --json prints its records newest first", async () => {
    const { code, json } = await run(["lookup", f.fineTunedModel, ...conn, "--json"]);
    assert.equal(code, 0);
    assert.equal(json.ok, true);
    assert.equal(json.recorded, true);
    const records = json.records as { kind: string; manifestDigest: string }[];
    assert.deepEqual(
      records.map((r) => r.kind),
      ["audit", "finetune"],
    );
  });

  it("when a hash is unknown, lookup says not recorded and exits 0", async () => {
    const { code, out } = await run(["lookup", digestOf("unknown"), ...conn]);
    assert.equal(code, 0);
    assert.match(out, /not recorded/);
    const revoked = await run(["lookup", f.revokedModel, ...conn]);
    assert.match(revoked.out, /REVOKED \(evaluation harness was tampered with\)/);
  });

  it("when given a model path, lookup hashes it the OMS way first", async () => {
    const file = path.join(work, "model.bin");
    await writeFile(file, "weights");
    const { code, json } = await run(["lookup", file, ...conn, "--json"]);
    assert.equal(code, 0);
    assert.equal(json.modelHash, (await hashModel(file)).rootDigest);
    assert.equal(json.recorded, false);
  });

  it("when the hash is malformed or the RPC unreachable, lookup exits 2 with the code", async () => {
    const malformed = await run(["lookup", "abc123", ...conn, "--json"]);
    assert.equal(malformed.code, 2);
    assert.deepEqual(codes(malformed.json), ["HASH_MALFORMED"]);
    const down = await run(["lookup", digestOf("x"), "--rpc", "http://127.0.0.1:9", "--registry", f.address, "--json"]);
    assert.equal(down.code, 2);
    assert.deepEqual(codes(down.json), ["RPC_UNAVAILABLE"]);
    const nowhere = await run(["lookup", digestOf("x"), "--rpc", f.chain.url, "--registry", `0x${"11".repeat(20)}`]);
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.err, /REGISTRY_NOT_FOUND/);
  });

  it("when a recorded bundle is audited, every check holds and it exits 0", async () => {
    const { code, json } = await run(["audit", bundleFile, ...auditArgs]);
    assert.equal(code, 0, JSON.stringify(json));
    const checks = json.checks as { name: string; ok: boolean }[];
    assert.ok(checks.length >= 9);
    assert.ok(checks.every((c) => c.ok));
    assert.equal(json.modelHash, made.modelHash);
  });

  it("when the audit's policy is open, the pipeline's warnings go to stderr and into --json, and nothing fails", async () => {
    // The factory's development policy trusts the simulator's root and pins no measurement: open, POLICY_OPEN.
    const { code, json, err } = await run(["audit", bundleFile, ...auditArgs]);
    assert.equal(code, 0, JSON.stringify(json));
    const warnings = (json.warnings as { code: string }[]).map((w) => w.code);
    assert.ok(warnings.includes("POLICY_OPEN"), JSON.stringify(json.warnings));
    assert.match(err, /^warning POLICY_OPEN: /m);
    const text = await run(["audit", bundleFile, ...auditArgs.filter((a) => a !== "--json")]);
    assert.equal(text.code, 0);
    assert.match(text.err, /^warning POLICY_OPEN: /m);
    assert.match(text.out, /audit: every check holds/);
  });

  it("when audit is given --now outside the simulator VCEK's validity, the pipeline refuses the bundle", async () => {
    const late = ["--policy", policyFile, "--now", "2040-01-01T00:00:00Z", ...conn, "--json"];
    const { code, json } = await run(["audit", bundleFile, ...late]);
    assert.equal(code, 1);
    const failed = (json.checks as { name: string; ok: boolean; code?: string }[]).filter((c) => !c.ok);
    assert.deepEqual(
      failed.map((c) => [c.name, c.code]),
      [["offline pipeline accepts the bundle", "SNP_CERT_EXPIRED"]],
    );
    const bad = await run(["audit", bundleFile, "--now", "yesterday", ...conn, "--json"]);
    assert.equal(bad.code, 2);
    assert.deepEqual(codes(bad.json), ["USAGE"]);
  });

  it("when the manifest payload has a duplicate key, audit reads it strictly and refuses it (exit 2)", async () => {
    // JSON.parse would take the last "subject"; the strict reader every reader shares refuses the payload.
    const made = await makeTestBundle(digestOf("duplicate key"), {
      payload: (json) => json.replace('"subject":', '"subject":[],"subject":'),
    });
    const file = path.join(work, "duplicate.provenance.json");
    await writeFile(file, made.bytes);
    const { code, json } = await run(["audit", file, ...auditArgs]);
    assert.equal(code, 2, JSON.stringify(json));
    assert.deepEqual(codes(json), ["BUNDLE_MALFORMED"]);
  });

  it("when the audited bundle's record is revoked, audit exits 1 naming the failed check", async () => {
    const { json: before } = await run(["audit", bundleFile, ...auditArgs]);
    await f.revoke(before.manifestDigest as string, "key compromised");
    const { code, json } = await run(["audit", bundleFile, ...auditArgs]);
    assert.equal(code, 1);
    const failed = (json.checks as { name: string; ok: boolean }[]).filter((c) => !c.ok).map((c) => c.name);
    assert.deepEqual(failed, ["not revoked"]);
  });

  it("when the bundle is not recorded or the policy differs, audit exits 1", async () => {
    const fresh = await createRegistryFixtureFree();
    const { code, json } = await run([
      "audit",
      bundleFile,
      "--policy",
      policyFile,
      "--now",
      NOW.toISOString(),
      ...fresh,
      "--json",
    ]);
    assert.equal(code, 1);
    assert.ok(codes(json).includes("NOT_FOUND"));
  });

  it("when the bundle is malformed, audit exits 2 with BUNDLE_MALFORMED", async () => {
    const bad = path.join(work, "bad.json");
    await writeFile(bad, "{}");
    const { code, json } = await run(["audit", bad, ...conn, "--json"]);
    assert.equal(code, 2);
    assert.deepEqual(codes(json), ["BUNDLE_MALFORMED"]);
  });

  it("when the audit's policy file is invalid, it exits 2 with POLICY_INVALID before reading the chain", async () => {
    const badPolicy = path.join(work, "bad-policy.json");
    await writeFile(badPolicy, '{"snp": {"vmpl": "zero"}, "extra": 1}');
    const { code, json } = await run(["audit", bundleFile, "--policy", badPolicy, ...conn, "--json"]);
    assert.equal(code, 2);
    assert.ok(codes(json).length > 0 && codes(json).every((c) => c === "POLICY_INVALID"), JSON.stringify(json));
  });

  it("when lookup or audit gets an extra argument, it exits 2 with USAGE", async () => {
    for (const argv of [
      ["lookup", digestOf("x"), digestOf("y"), ...conn, "--json"],
      ["audit", bundleFile, "second.json", ...conn, "--json"],
      ["lookup", ...conn, "--json"],
    ]) {
      const { code, json } = await run(argv);
      assert.equal(code, 2, argv.join(" "));
      assert.deepEqual(codes(json), ["USAGE"], argv.join(" "));
    }
  });

  /** Same chain, a second registry with nothing in it. */
  async function createRegistryFixtureFree(): Promise<string[]> {
    const { ContractFactory, Wallet, NonceManager } = await import("ethers");
    const { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE } = await import("../lib/registry/abi.ts");
    const { DEV_PRIVATE_KEYS } = await import("../lib/registry/dev-chain.ts");
    const signer = new NonceManager(new Wallet(DEV_PRIVATE_KEYS[1], f.provider));
    const c = await new ContractFactory(MODEL_REGISTRY_ABI as never, MODEL_REGISTRY_BYTECODE, signer).deploy(
      await signer.getAddress(),
      0, // admin delay (s)
    );
    await c.waitForDeployment();
    return ["--rpc", f.chain.url, "--registry", await c.getAddress()];
  }
});
