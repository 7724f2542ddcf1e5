// The main job as a test: the same flow as `npm start -- --once` (embedded chain, deploy, watched repository, the
// tiny model audited by `provenant job audit` in the simulator, pushed, verified, published, looked up), then a
// bundle from a guest launched with DEBUG allowed, pushed to the same repository: the verifier must refuse it with
// POLICY_DEBUG and it must never reach the chain.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { createRegistryClient, type RegistryClient } from "../offchain/client/index.ts";
import { policyDigest } from "../offchain/pipeline/policy.ts";
import { parseVerifierPolicy } from "../offchain/pipeline/policy.ts";
import { createBundleFactory } from "../offchain/testing/bundles.ts";
import { waitFor } from "../offchain/testing/world.ts";
import { createSimulator } from "../lib/snp/index.ts";
import { readBundle, findManifest, manifestDigestOf } from "../lib/bundle/index.ts";
import { runDemo, type DemoResult } from "../scripts/demo.ts";

const HEX64 = /^[0-9a-f]{64}$/;

function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8" }).trim();
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Commits `bytes` as bundles/<name> in a fresh clone of the watched repository and pushes it. */
async function pushBundle(workDir: string, repo: string, name: string, bytes: Uint8Array): Promise<void> {
  const clone = path.join(workDir, `push-${name}`);
  git(workDir, ["clone", "--quiet", repo, clone]);
  await mkdir(path.join(clone, "bundles"), { recursive: true });
  await writeFile(path.join(clone, "bundles", name), bytes);
  git(clone, ["add", "bundles"]);
  git(clone, ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "--quiet", "-m", name]);
  git(clone, ["push", "--quiet", "origin", "HEAD"]);
}

describe("end to end: npm start --once, and a refused bundle", { timeout: 300_000 }, () => {
  let workDir: string;
  let demo: DemoResult;
  let client: RegistryClient;

  before(async () => {
    workDir = await mkdtemp(path.join(os.tmpdir(), "provenant-e2e-"));
    demo = await runDemo({ once: true, finetune: false, workDir, chainPort: 0, log: () => {} });
    client = await createRegistryClient({ rpcUrl: demo.rpcUrl, address: demo.registry });
  });

  after(async () => {
    client?.close();
    await demo?.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  it("when the audit bundle is pushed, its record is onchain with the policy's digest and the summary says so", async () => {
    assert.match(demo.modelHash, HEX64);
    assert.match(demo.manifestDigest, HEX64);
    assert.match(demo.txHash, /^0x[0-9a-f]{64}$/);
    assert.ok(demo.latencyMs > 0 && demo.latencyMs < 60_000, `latency ${demo.latencyMs}`);

    const { records } = await client.lookup(demo.modelHash);
    assert.equal(records.length, 1);
    const record = records[0]!;
    assert.equal(record.manifestDigest, demo.manifestDigest);
    assert.equal(record.kind, "audit");
    assert.equal(record.revoked, false);
    assert.equal(record.parentModelHash, null);
    assert.equal(record.txHash, demo.txHash);

    const simulator = await createSimulator();
    // The demo's policy: the simulator's root, serving statements accepted too, development (it pins no image).
    const expectedPolicy = parseVerifierPolicy({
      trustedRoots: [simulator.rootFingerprint],
      acceptedKinds: ["eval", "finetune", "serving"],
      development: true,
    });
    assert.equal(record.policyDigest, policyDigest(expectedPolicy));
  });

  it("when the pushed bundle is read back from the repository, its manifest digest is the one recorded", async () => {
    const clone = path.join(workDir, "check");
    git(workDir, ["clone", "--quiet", demo.watchedRepo, clone]);
    const files = git(clone, ["ls-files", "bundles"])
      .split("\n")
      .filter((f) => f.endsWith(".provenance.json"));
    assert.equal(files.length, 1);
    assert.ok(files[0]!.includes(demo.manifestDigest.slice(0, 16)), files[0]);
    const bytes = execFileSync("git", ["show", `HEAD:${files[0]}`], { cwd: clone });
    const bundle = readBundle(new Uint8Array(bytes));
    assert.equal(manifestDigestOf(findManifest(bundle).envelope), demo.manifestDigest);
    assert.equal(bundle.evidence.cpu.provider, "sim");
  });

  it("when a bundle from a debug-enabled guest is pushed, it is refused with POLICY_DEBUG and never published", async () => {
    assert.ok(demo.apiUrl !== null, "the verifier API is listening");
    // The demo's verifier reads the machine's clock: mint the simulator's VCEK at that clock.
    const factory = await createBundleFactory({ now: new Date() });
    const debug = factory.make({ seed: "e2e-debug", kind: "eval", variant: "debug" });
    const manifestDigest = manifestDigestOf(findManifest(debug.bundle).envelope);
    const digest = execFileSync("sha256sum", { input: debug.bytes }).toString().slice(0, 64);
    await pushBundle(workDir, demo.watchedRepo, "debug-guest.provenance.json", debug.bytes);

    const view = await waitFor(
      "the verifier's verdict on the debug bundle",
      async () => {
        const { status, body } = await getJson(`${demo.apiUrl}/bundles/${digest}`);
        return status === 200 && body.status !== "seen" ? body : undefined;
      },
      60_000,
    );
    assert.equal(view.status, "rejected");
    const codes = (view.errors as { code: string }[]).map((e) => e.code);
    assert.ok(codes.includes("POLICY_DEBUG"), `codes: ${codes.join(", ")}`);

    // Then a sound bundle, pushed after the verdict: once it is onchain, the publisher has run since the refusal,
    // and the refused record must still be absent (no sleep standing in for "a few more polls").
    const sound = factory.make({ seed: "e2e-after-debug", kind: "eval" });
    await pushBundle(workDir, demo.watchedRepo, "after-debug.provenance.json", sound.bytes);
    const soundManifest = manifestDigestOf(findManifest(sound.bundle).envelope);
    await waitFor(
      "the sound bundle onchain",
      async () => ((await client.isRecorded(sound.modelHash, soundManifest)) ? true : undefined),
      60_000,
    );
    assert.equal(await client.isRecorded(debug.modelHash, manifestDigest), false);
    assert.deepEqual((await client.lookup(debug.modelHash)).records, []);
    // The publisher marks its batch published once the receipt is in, which may follow the record by a moment.
    const metrics = await waitFor("the metrics to count both publications", async () => {
      const text = await (await fetch(`${demo.apiUrl}/metrics`)).text();
      return /provenant_bundles_published_total 2\b/.test(text) ? text : undefined;
    });
    assert.match(metrics, /provenant_bundles_rejected_total\{code="POLICY_DEBUG"\} 1/);
    assert.match(metrics, /provenant_bundles\{status="rejected"\} 1/);
    assert.match(metrics, /provenant_bundles\{status="published"\} 2/);
  });
});
