// A bundle that does not carry its ASK/ARK: the verifier fetches them into its certificate cache (AMD's KDS
// through an injected fetch that serves the simulator's cert_chain at the KDS URL) and then verifies the bundle;
// without a source, the same bundle is refused with SNP_CERT_UNAVAILABLE, never a crash.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import { createCertificateStore, kdsChainUrl } from "../lib/snp/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { startService } from "../offchain/service.ts";
import { createTestRepo } from "../offchain/testing/git.ts";
import { createTestWorld, waitFor, type TestWorld } from "../offchain/testing/world.ts";

const pem = (der: Uint8Array): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`;

describe("verifier service: certificates a bundle lacks", () => {
  let world: TestWorld;

  before(async () => {
    world = await createTestWorld("verifier-certs");
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

  async function run(seed: string, fetchServes: boolean) {
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
        if (!fetchServes)
          throw Object.assign(new Error("getaddrinfo ENOTFOUND kdsintf.amd.com"), { code: "ENOTFOUND" });
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
    });
    try {
      const row = await waitFor("a verdict", () => {
        const r = service.store.listBundles()[0];
        return r !== undefined && r.status !== "seen" && r.status !== "accepted" ? r : undefined;
      });
      return { row, made, requested };
    } finally {
      await service.stop();
      repo.cleanup();
    }
  }

  it("when the bundle carries no ASK/ARK, it fetches them into the cache and publishes the bundle", async () => {
    const { row, made, requested } = await run("no-chain-served", true);
    assert.equal(row.status, "published", JSON.stringify(row.errors));
    assert.deepEqual(requested, [kdsChainUrl(world.factory.sim.product, "vcek")]);
    const recorded = (await world.registry.contract.getFunction("manifestCount")(`0x${made.modelHash}`)) as bigint;
    assert.equal(recorded, 1n);
  });

  it("when the certificates cannot be had, it refuses the bundle with SNP_CERT_UNAVAILABLE and stays up", async () => {
    const { row, made } = await run("no-chain-offline", false);
    assert.equal(row.status, "rejected");
    assert.deepEqual(
      row.errors.map((e) => e.code),
      ["SNP_CERT_UNAVAILABLE"],
    );
    const recorded = (await world.registry.contract.getFunction("manifestCount")(`0x${made.modelHash}`)) as bigint;
    assert.equal(recorded, 0n);
  });
});
