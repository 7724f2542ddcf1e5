// A bundle that does not carry its ASK/ARK: the verifier fetches them into its certificate cache (AMD's KDS
// through an injected fetch that serves the simulator's cert_chain at the KDS URL) and then verifies the bundle;
// while KDS cannot be reached, the bundle waits without a verdict (in the store, retried; the bound on that wait and
// the recheck are test/verifier-hostile.test.ts's) and is published once KDS answers.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import { createCertificateStore, kdsChainUrl } from "../lib/snp/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { startService } from "../offchain/service.ts";
import { createTestRepo } from "../offchain/testing/git.ts";
import { createTestWorld, tickingClock, waitFor, type TestWorld } from "../offchain/testing/world.ts";

const pem = (der: Uint8Array): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`;

/** The simulator's clock, and where the in-process service's clock starts (tickingClock). */
const NOW = new Date("2026-11-21T12:00:00Z");

describe("verifier service: certificates a bundle lacks", () => {
  let world: TestWorld;

  before(async () => {
    world = await createTestWorld("verifier-certs", { now: NOW });
  });
  after(async () => {
    await world.close();
  });

  /** A sound bundle whose evidence names only the VCEK, as a host without a certificate table would leave it. */
  function bundleWithoutChain(seed: string) {
    const made = world.factory.make({ seed, kind: "eval" });
    const { chain: _chain, ...cpu } = made.bundle.evidence.cpu;
    const bundle = { ...made.bundle, evidence: { ...made.bundle.evidence, cpu } };
    return { made, bytes: new TextEncoder().encode(JSON.stringify(bundle)) };
  }

  /** Starts a service on a repository holding one chainless bundle; `kds.up` says whether KDS answers. */
  async function start(seed: string, kds: { up: boolean }) {
    const repo = createTestRepo();
    const { made, bytes } = bundleWithoutChain(seed);
    repo.write("bundles/no-chain.provenance.json", bytes);
    repo.commitAndPush("a bundle without its chain");
    const requested: string[] = [];
    const { factory, registry, chain } = world;
    const certificates = createCertificateStore({
      cacheDir: path.join(world.work, `kds-${seed}`),
      minIntervalMs: 0,
      fetch: async (url) => {
        requested.push(url);
        if (!kds.up) throw Object.assign(new Error("getaddrinfo ENOTFOUND kdsintf.amd.com"), { code: "ENOTFOUND" });
        if (url === kdsChainUrl(factory.sim.product, "vcek"))
          return new Response(pem(factory.sim.askDer) + pem(factory.sim.arkDer), { status: 200 });
        return new Response("not found", { status: 404 });
      },
    });
    const service = await startService({
      repos: [repo.origin],
      rpcUrl: chain.url,
      registry: registry.address,
      policy: factory.policy,
      createSender: (provider) => createLocalSender(provider, registry.publisherKey),
      dataDir: path.join(world.work, `data-${seed}`),
      intervalMs: 200,
      maxWaitMs: 50,
      logger: pino({ level: "silent" }),
      certificates,
      certificateRetryMs: 300,
      now: tickingClock(NOW),
      // Enough attempts that the wait outlasts the outage below (the bound itself: test/verifier-hostile.test.ts).
      certificateAttempts: 1000,
    });
    const published = () =>
      waitFor("publication", () => {
        const r = service.store.listBundles()[0];
        return r?.status === "published" || r?.status === "rejected" || r?.status === "failed" ? r : undefined;
      });
    const stop = async () => {
      await service.stop();
      repo.cleanup();
    };
    return { service, made, requested, published, stop };
  }

  const manifestCount = async (modelHash: string) =>
    (await world.registry.contract.getFunction("manifestCount")(`0x${modelHash}`)) as bigint;

  it("when the bundle carries no ASK/ARK, it fetches them into the cache and publishes the bundle", async () => {
    const run = await start("no-chain-served", { up: true });
    try {
      const row = await run.published();
      assert.equal(row.status, "published", JSON.stringify(row.errors));
      assert.deepEqual(run.requested, [kdsChainUrl(world.factory.sim.product, "vcek")]);
      assert.equal(await manifestCount(run.made.modelHash), 1n);
    } finally {
      await run.stop();
    }
  });

  it("when the certificates cannot be had yet, the bundle waits without a verdict and is published once they can", async () => {
    const kds = { up: false };
    const run = await start("no-chain-later", kds);
    try {
      await waitFor("a failed fetch", () => (run.requested.length >= 2 ? true : undefined));
      const waiting = run.service.store.listBundles()[0];
      assert.equal(waiting?.status, "seen", "no verdict is stored while the certificates are missing");
      assert.equal(await manifestCount(run.made.modelHash), 0n);
      kds.up = true;
      const row = await run.published();
      assert.equal(row.status, "published", JSON.stringify(row.errors));
      assert.equal(await manifestCount(run.made.modelHash), 1n);
    } finally {
      await run.stop();
    }
  });
});
