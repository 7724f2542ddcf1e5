import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import type { CliIo } from "../lib/cli/index.ts";
import { commands } from "./cli.ts";
import { createBundleFactory, type BundleFactory } from "./testing/bundles.ts";

function capture(cwd: string): CliIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    isTty: false,
    env: {},
    cwd,
  };
  return io;
}

/** The simulator's clock and the verification time (--now): nothing here depends on the day the tests run. */
const NOW = "2026-11-21T12:00:00Z";
const verify = commands.find((c) => c.path.join(" ") === "bundle verify")!;
const run = commands.find((c) => c.path.join(" ") === "verifier run")!;

describe("provenant bundle verify / verifier run", () => {
  let f: BundleFactory;
  let dir: string;
  before(async () => {
    f = await createBundleFactory({ now: new Date(NOW) });
    dir = mkdtempSync(path.join(tmpdir(), "verifier-cli-"));
    writeFileSync(path.join(dir, "good.json"), f.make({ seed: "cli-good" }).bytes);
    writeFileSync(path.join(dir, "debug.json"), f.make({ seed: "cli-debug", variant: "debug" }).bytes);
    writeFileSync(path.join(dir, "policy.json"), JSON.stringify(f.policyJson));
    writeFileSync(path.join(dir, "bad-policy.json"), '{"acceptedKinds": []}');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("when the bundle holds, it exits 0 and prints the record as JSON", async () => {
    const io = capture(dir);
    assert.equal(await verify.run(["good.json", "--policy", "policy.json", "--now", NOW, "--json"], io), 0);
    const out = JSON.parse(io.out) as {
      ok: boolean;
      record: { kind: number };
      policyDigest: string;
      errors: unknown[];
    };
    assert.equal(out.ok, true);
    assert.equal(out.record.kind, 1);
    assert.match(out.policyDigest, /^[0-9a-f]{64}$/);
    assert.deepEqual(out.errors, []);
  });

  it("when the bundle is refused, it exits 1 with the codes", async () => {
    const io = capture(dir);
    assert.equal(await verify.run(["debug.json", "--policy", "policy.json", "--now", NOW, "--json"], io), 1);
    const out = JSON.parse(io.out) as { ok: boolean; errors: { code: string }[] };
    assert.equal(out.ok, false);
    assert.ok(out.errors.some((e) => e.code === "POLICY_DEBUG"));
    const plain = capture(dir);
    assert.equal(
      await verify.run(["good.json", "--now", NOW], plain),
      1,
      "the default policy does not trust the simulator",
    );
    assert.match(plain.err, /SNP_UNTRUSTED_ROOT/);
  });

  it("when the input is missing or the policy invalid, it exits 2 with a code (a bad policy file is unreadable input)", async () => {
    const io = capture(dir);
    assert.equal(await verify.run(["nope.json", "--json"], io), 2);
    assert.equal((JSON.parse(io.out) as { errors: { code: string }[] }).errors[0]?.code, "IO_ERROR");
    writeFileSync(path.join(dir, "bad-snp-policy.json"), '{"snp": {"allowDebug": "yes"}}');
    writeFileSync(path.join(dir, "not-json-policy.json"), "{snp:");
    for (const file of ["bad-policy.json", "bad-snp-policy.json", "not-json-policy.json"]) {
      const bad = capture(dir);
      assert.equal(await verify.run(["good.json", "--policy", file, "--json"], bad), 2, file);
      assert.equal((JSON.parse(bad.out) as { errors: { code: string }[] }).errors[0]?.code, "POLICY_INVALID", file);
    }
  });

  it("when verifier run lacks what it needs, it exits 2 with USAGE", async () => {
    for (const argv of [
      [],
      ["--repo", "x"],
      ["--repo", "x", "--rpc", "http://127.0.0.1:1", "--registry", "nope"],
      ["--repo", "x", "--rpc", "http://127.0.0.1:1", "--registry", `0x${"11".repeat(20)}`],
      ["--repo", "x", "--rpc", "u", "--registry", `0x${"11".repeat(20)}`, "--signer", "hsm"],
    ]) {
      const io = capture(dir);
      assert.equal(await run.run(argv, io), 2, argv.join(" "));
      assert.match(io.err, /USAGE/);
    }
  });

  it("when verifier run is given an invalid policy file, it exits 2 with POLICY_INVALID before starting", async () => {
    const io = capture(dir);
    const argv = ["--repo", "x", "--rpc", "http://127.0.0.1:1", "--registry", `0x${"11".repeat(20)}`];
    const code = await run.run([...argv, "--policy", "bad-policy.json"], {
      ...io,
      env: { PROVENANT_PRIVATE_KEY: `0x${"22".repeat(32)}` },
    });
    assert.equal(code, 2);
    assert.match(io.err, /^error POLICY_INVALID: /);
  });
});
