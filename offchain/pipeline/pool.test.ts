import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { waitFor } from "../testing/world.ts";
import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { makeHostileBundle } from "../testing/hostile.ts";
import { parseVerifierPolicy, verifyBundle } from "./index.ts";
import { VerificationAbortedError, VerificationPool } from "./pool.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const codes = (v: { errors: { code: string }[] }): string[] => v.errors.map((e) => e.code).sort();

describe("verification pool", () => {
  let f: BundleFactory;
  let pool: VerificationPool;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
    pool = new VerificationPool({ policy: f.policy, size: 2 });
    await pool.ready();
  });
  after(async () => {
    await pool.close();
  });

  it("when bundles are verified in workers, the verdicts are the pipeline's, and the pool counts its work", async () => {
    const made = Array.from({ length: 12 }, (_, i) =>
      f.make({ seed: `pool-${i}`, ...(i % 4 === 3 ? { variant: "debug" as const } : {}) }),
    );
    const verdicts = await Promise.all(made.map((m) => pool.verify(m.bytes, { now: NOW })));
    for (const [i, m] of made.entries()) {
      const inline = verifyBundle(m.bytes, { policy: f.policy, now: NOW });
      assert.deepEqual(codes(verdicts[i]!), codes(inline));
      assert.equal(verdicts[i]!.ok, i % 4 !== 3);
      assert.deepEqual(verdicts[i]!.record, inline.record, "same policy digest and record");
    }
    // More jobs than workers: each busy worker holds one more, and the counts say so while they wait.
    const burst = made.map((m) => pool.verify(m.bytes, { now: NOW }));
    assert.equal(pool.running, 2);
    assert.equal(pool.queued, 10);
    assert.deepEqual((await Promise.all(burst)).map(codes), verdicts.map(codes));
    assert.ok(pool.completed >= 24);
    assert.ok(pool.busyMs > 0);
    assert.equal(pool.queued + pool.running, 0);
  });

  it("when the chain lacks its ARK, the verdict names the cert_chain to fetch, and with it supplied the bundle passes", async () => {
    // One worker, so that the chain it is given below is the one it remembers afterwards.
    const pool = new VerificationPool({ policy: f.policy, size: 1 });
    after(() => pool.close());
    const askOnly = makeHostileBundle(f.sim, { seed: "ask-only", chain: "ask" });
    const first = await pool.verify(askOnly.bytes, { now: NOW });
    assert.deepEqual(codes(first), ["SNP_CERT_UNAVAILABLE"]);
    assert.deepEqual(first.certificatesNeeded, { product: f.sim.product, signer: "vcek" });
    const chains = [{ product: f.sim.product, signer: "vcek" as const, chain: [f.sim.askDer, f.sim.arkDer] }];
    const second = await pool.verify(askOnly.bytes, { now: NOW, chains });
    assert.deepEqual(codes(second), []);
    // The worker keeps the chain: an ARK-only bundle of the same product now gets its ASK without a round trip.
    const arkOnly = makeHostileBundle(f.sim, { seed: "ark-only", chain: "ark" });
    assert.deepEqual(codes(await pool.verify(arkOnly.bytes, { now: NOW })), []);
    // Sent once: a job that names the same chain again does not clone it to the worker, which still has it.
    assert.deepEqual(codes(await pool.verify(askOnly.bytes, { now: NOW, chains })), []);
    const fresh = new VerificationPool({ policy: f.policy, size: 1 });
    after(() => fresh.close());
    assert.deepEqual((await fresh.verify(arkOnly.bytes, { now: NOW })).certificatesNeeded, {
      product: f.sim.product,
      signer: "vcek",
    });
  });
});

describe("verification pool: hostile bundles within a permissive policy", () => {
  let f: BundleFactory;
  // 255 envelopes of 15 junk signatures before the real one: ~8,000 P-384 verifications, seconds of work.
  let slow: Uint8Array;
  let permissive: ReturnType<typeof parseVerifierPolicy>;
  before(async () => {
    f = await createBundleFactory({ now: NOW });
    permissive = parseVerifierPolicy({ ...f.policyJson, maxEnvelopes: 256, maxSignaturesPerEnvelope: 16 });
    slow = makeHostileBundle(f.sim, { seed: "slow", extraEnvelopes: 253, junkSignatures: 15 }).bytes;
  });

  it("when the pool closes while a worker verifies a hostile bundle, it does not wait for it", async () => {
    const pool = new VerificationPool({ policy: permissive, size: 1 });
    await pool.ready();
    // Outcomes are taken at once, so that the rejections on close are never unhandled.
    const settle = (p: Promise<unknown>) =>
      p.then(
        () => "verdict",
        (e: unknown) => e,
      );
    const job = settle(pool.verify(slow, { now: NOW }));
    const queued = settle(pool.verify(f.make({ seed: "queued" }).bytes, { now: NOW }));
    await waitFor("the job to run", () => (pool.running === 1 ? true : undefined), 10_000);
    const started = performance.now();
    await pool.close();
    const ms = performance.now() - started;
    assert.ok((await job) instanceof VerificationAbortedError);
    assert.ok((await queued) instanceof VerificationAbortedError);
    assert.ok(ms < 2_000, `close took ${ms.toFixed(0)} ms`);
    await assert.rejects(pool.verify(slow, { now: NOW }), VerificationAbortedError);
  });

  it("when a job runs past its time limit, it is refused with BUNDLE_TOO_COMPLEX and the pool goes on", async () => {
    const pool = new VerificationPool({ policy: permissive, size: 1, timeoutMs: 300 });
    try {
      await pool.ready();
      // The second job is handed to the busy worker behind the slow one (prefetch): it must not share its fate.
      const [v, behind] = await Promise.all([
        pool.verify(slow, { now: NOW }),
        pool.verify(f.make({ seed: "behind-timeout" }).bytes, { now: NOW }),
      ]);
      assert.deepEqual(codes(v), ["BUNDLE_TOO_COMPLEX"]);
      assert.match(v.errors[0]!.message, /did not finish within 300 ms/);
      assert.equal(behind.ok, true, JSON.stringify(behind.errors));
      const next = await pool.verify(f.make({ seed: "after-timeout" }).bytes, { now: NOW });
      assert.equal(next.ok, true, JSON.stringify(next.errors));
      assert.equal(pool.queued + pool.running, 0);
    } finally {
      await pool.close();
    }
  });
});
