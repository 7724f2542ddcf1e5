// Issue 13, against a real in-process service (real git, real SQLite, the in-process Hardhat chain, a real HTTP
// server that answers like AMD's KDS): every bundle reaches a verdict or an explicit, bounded wait, and no bundle
// holds up the ones pushed after it (ASK-only chains, a report whose CPUID names another product, KDS down then a
// recheck); a tree too large for a buffered git listing; a shutdown while a worker verifies a hostile bundle.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import { createCertificateStore } from "../lib/snp/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { parseVerifierPolicy, type VerifierPolicy } from "../offchain/pipeline/index.ts";
import { startService, type RunningService, type ServiceOptions } from "../offchain/service.ts";
import { createTestRepo, type TestRepo } from "../offchain/testing/git.ts";
import { makeHostileBundle, pushHugeTree } from "../offchain/testing/hostile.ts";
import { startFakeKds, type FakeKds } from "../offchain/testing/kds.ts";
import { createTestWorld, tickingClock, waitFor, type TestWorld } from "../offchain/testing/world.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const TOKEN = "recheck-token-for-tests-0123456789";
const digestOf = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const codes = (row: { errors: { code: string }[] } | undefined): string[] => (row?.errors ?? []).map((e) => e.code);

describe("verifier service: hostile pushes", () => {
  let world: TestWorld;
  let kds: FakeKds;
  before(async () => {
    world = await createTestWorld("verifier-hostile", { now: NOW });
    const sim = world.factory.sim;
    kds = await startFakeKds({ chains: [{ product: sim.product, chain: [sim.askDer, sim.arkDer] }] });
  });
  after(async () => {
    await kds.close();
    await world.close();
  });

  let counter = 0;
  async function start(
    repo: TestRepo,
    extra: Partial<ServiceOptions> = {},
    dataDir = path.join(world.work, `data-${counter++}`),
  ): Promise<RunningService> {
    return await startService({
      repos: [repo.origin],
      rpcUrl: world.chain.url,
      registry: world.registry.address,
      policy: world.factory.policy,
      createSender: (provider) => createLocalSender(provider, world.registry.publisherKey),
      dataDir,
      listen: { host: "127.0.0.1", port: 0 },
      intervalMs: 200,
      maxWaitMs: 50,
      logger: pino({ level: process.env.E2E_DEBUG ? "info" : "silent" }),
      now: tickingClock(NOW),
      certificates: createCertificateStore({
        cacheDir: path.join(world.work, `kds-${counter++}`),
        kdsBaseUrl: kds.url,
        minIntervalMs: 0,
        timeoutMs: 2_000,
      }),
      certificateRetryMs: 300,
      certificateAttempts: 3,
      workers: 2,
      recheckToken: TOKEN,
      ...extra,
    });
  }
  const status = (service: RunningService, bytes: Uint8Array) => service.store.getBundle(digestOf(bytes));
  const settled = (service: RunningService, bytes: Uint8Array, timeoutMs = 30_000) =>
    waitFor(
      "a verdict",
      () => {
        const row = status(service, bytes);
        return row !== undefined && row.status !== "seen" && row.status !== "accepted" ? row : undefined;
      },
      timeoutMs,
    );

  it("when KDS is down, an ASK-only bundle gets SNP_CERT_UNAVAILABLE within its bounded wait, later bundles are published, and a recheck publishes it once KDS answers", async () => {
    const repo = createTestRepo();
    kds.mode = "down";
    const service = await start(repo);
    try {
      const askOnly = makeHostileBundle(world.factory.sim, { seed: "ask-only-down", chain: "ask" });
      repo.write("bundles/ask-only.provenance.json", askOnly.bytes);
      repo.commitAndPush("an ASK-only bundle");
      // Pushed after it, in a later commit: must not wait for it.
      const later = world.factory.make({ seed: "after-ask-only", kind: "eval" });
      repo.write("bundles/later.provenance.json", later.bytes);
      const head = repo.commitAndPush("a sound bundle after it");
      const published = await settled(service, later.bytes);
      assert.equal(published.status, "published", JSON.stringify(published.errors));
      const waiting = status(service, askOnly.bytes);
      assert.ok(waiting?.status === "seen" || codes(waiting).includes("SNP_CERT_UNAVAILABLE"));
      await waitFor("the repository's commit", () =>
        service.store.lastCommit(repo.origin) === head ? true : undefined,
      );

      // 3 attempts 300 ms apart: a final verdict in well under the 30 s allowed.
      const refused = await settled(service, askOnly.bytes);
      assert.equal(refused.status, "rejected");
      assert.deepEqual(codes(refused), ["SNP_CERT_UNAVAILABLE"]);
      assert.equal(refused.certAttempts, 3);
      assert.match(refused.errors[0]!.message, /recheck/);
      const metrics = await (await fetch(`${service.apiUrl}/metrics`)).text();
      assert.match(metrics, /^provenant_verdict_codes_total\{code="SNP_CERT_UNAVAILABLE"\} 1$/m);
      assert.match(metrics, /^provenant_time_to_verdict_seconds_count [1-9]/m);

      // The recheck needs the token; with it, and KDS back, the bundle is published.
      const url = `${service.apiUrl}/bundles/${refused.digest}/recheck`;
      assert.equal((await fetch(url, { method: "POST" })).status, 401);
      assert.equal((await fetch(url, { method: "POST", headers: { authorization: "Bearer nope" } })).status, 403);
      kds.mode = "up";
      const asked = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(asked.status, 202);
      await waitFor("the recheck", () => (status(service, askOnly.bytes)?.recheckAt === null ? true : undefined));
      const row = await settled(service, askOnly.bytes);
      assert.equal(row.status, "published", JSON.stringify(row.errors));
      const count = (await world.registry.contract.getFunction("manifestCount")(`0x${askOnly.modelHash}`)) as bigint;
      assert.equal(count, 1n);
      const again = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(again.status, 409, "a published bundle is not re-checkable");
    } finally {
      kds.mode = "up";
      await service.stop();
      repo.cleanup();
    }
  });

  it("when KDS answers, ASK-only and ARK-only bundles get the missing half over HTTP and are published; a CPUID naming another product is refused with SNP_PRODUCT_MISMATCH", async () => {
    const repo = createTestRepo();
    const service = await start(repo);
    try {
      const sim = world.factory.sim;
      const askOnly = makeHostileBundle(sim, { seed: "ask-only-up", chain: "ask" });
      const arkOnly = makeHostileBundle(sim, { seed: "ark-only-up", chain: "ark" });
      const other = sim.product === "Genoa" ? { family: 0x19, model: 0x01 } : { family: 0x19, model: 0x11 };
      const lying = makeHostileBundle(sim, {
        seed: "cpuid-other-product",
        chain: "none",
        reportFields: { cpuid: { ...other, stepping: 1 } },
      });
      repo.write("bundles/ask.provenance.json", askOnly.bytes);
      repo.write("bundles/ark.provenance.json", arkOnly.bytes);
      repo.write("bundles/lying.provenance.json", lying.bytes);
      repo.commitAndPush("partial chains");
      for (const b of [askOnly, arkOnly]) {
        const row = await settled(service, b.bytes);
        assert.equal(row.status, "published", JSON.stringify(row.errors));
      }
      const refused = await settled(service, lying.bytes);
      assert.deepEqual(codes(refused), ["SNP_PRODUCT_MISMATCH"]);
      assert.ok(kds.requests.some((p) => p === `/vcek/v1/${sim.product}/cert_chain`));
    } finally {
      await service.stop();
      repo.cleanup();
    }
  });

  it("when a commit adds 18,000 long-named files under docs/ (ls-tree over 64 MiB), polls keep working and a later bundle is published", async () => {
    const repo = createTestRepo();
    repo.write("README.md", "a repository");
    repo.commitAndPush("first");
    pushHugeTree(repo, { dir: "docs", files: 18_000, pathBytes: 3800 });
    const service = await start(repo);
    try {
      await waitFor("a poll", async () => {
        const health = (await (await fetch(`${service.apiUrl}/healthz`)).json()) as { lastPollAt: string | null };
        return health.lastPollAt === null ? undefined : health;
      });
      const health = (await (await fetch(`${service.apiUrl}/healthz`)).json()) as { lastPollError: string | null };
      assert.equal(health.lastPollError, null);
      const good = world.factory.make({ seed: "after-huge-tree" });
      repo.write("bundles/good.provenance.json", good.bytes);
      repo.commitAndPush("a bundle after the huge tree");
      const row = await settled(service, good.bytes);
      assert.equal(row.status, "published", JSON.stringify(row.errors));
      assert.deepEqual(
        service.store.listRefusals().filter((r) => r.code === "REPO_UNREADABLE"),
        [],
      );
    } finally {
      await service.stop();
      repo.cleanup();
    }
  });

  it("when stopped while a worker verifies a hostile bundle, it stops at once, and after a restart the bundle gets its verdict", async () => {
    // A permissive policy lets a bundle of 64 envelopes with 16 signatures each through the bounds: seconds of work.
    const permissive: VerifierPolicy = parseVerifierPolicy({
      ...world.factory.policyJson,
      maxEnvelopes: 256,
      maxSignaturesPerEnvelope: 16,
    });
    const slow = makeHostileBundle(world.factory.sim, {
      seed: "slow-shutdown",
      extraEnvelopes: 62,
      junkSignatures: 15,
    });
    const repo = createTestRepo();
    repo.write("bundles/slow.provenance.json", slow.bytes);
    const head = repo.commitAndPush("a slow bundle");
    const dataDir = path.join(world.work, "data-shutdown");
    const first = await start(repo, { policy: permissive, workers: 1, verifyTimeoutMs: 600_000 }, dataDir);
    await waitFor("the worker to start on it", () => (first.metrics.pool!.running === 1 ? true : undefined));
    const started = performance.now();
    await first.stop();
    const ms = performance.now() - started;
    // Verifying this bundle takes the worker seconds (printed below); stopping takes at most a poll in flight.
    assert.ok(ms < 5_000, `stop took ${ms.toFixed(0)} ms`);
    const store = (await import("../offchain/store/index.ts")).Store;
    const peek = new store({ dataDir });
    try {
      assert.equal(peek.getBundle(digestOf(slow.bytes))?.status, "seen", "no verdict from an aborted verification");
      assert.notEqual(peek.lastCommit(repo.origin), head, "the commit is read again after the restart");
    } finally {
      peek.close();
    }
    const restarted = performance.now();
    const second = await start(repo, { policy: permissive, workers: 1, verifyTimeoutMs: 600_000 }, dataDir);
    try {
      const row = await settled(second, slow.bytes, 120_000);
      console.log(
        `stop: ${ms.toFixed(0)} ms; the bundle's verdict after the restart: ${(performance.now() - restarted).toFixed(0)} ms`,
      );
      assert.equal(row.status, "published", JSON.stringify(row.errors));
    } finally {
      await second.stop();
      repo.cleanup();
    }
  });
});
