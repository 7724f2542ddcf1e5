// End to end for the verifier: a real chain (in-process Hardhat over HTTP), a real bare git repository, real SQLite,
// bundles made with the SEV-SNP simulator. The fault test kills the service with SIGKILL at random points and
// restarts it; PROVENANT_FAULT_BUNDLES sets how many bundles it processes (default 24 here; the 200 in the
// reliability run: PROVENANT_FAULT_BUNDLES=200 node --test test/verifier.test.ts).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type Server, type Socket, connect } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import { createLocalSender } from "../offchain/chain/index.ts";
import { startService, type RunningService } from "../offchain/service.ts";
import { createBundleFactory, type BundleFactory } from "../offchain/testing/bundles.ts";
import type { DeployedRegistry, DevChain } from "../offchain/testing/chain.ts";
import { createTestRepo, type TestRepo } from "../offchain/testing/git.ts";
import { createTestWorld, tickingClock, verifierRunArgs, waitFor, type TestWorld } from "../offchain/testing/world.ts";
import { Store } from "../offchain/store/index.ts";
import { createRng, fuzzSeed } from "./reliability/fuzz.ts";

const FAULT_BUNDLES = Number(process.env.PROVENANT_FAULT_BUNDLES ?? 24);
/** How many SIGKILLs at random points before the final clean run (PROVENANT_FAULT_KILLS). */
const FAULT_KILLS = Number(process.env.PROVENANT_FAULT_KILLS ?? Math.max(4, Math.ceil(FAULT_BUNDLES / 8)));
const ROOT = path.resolve(new URL("..", import.meta.url).pathname);
/** The in-process service's clock starts here (tickingClock) and its bundles are minted at it. */
const NOW = new Date("2026-11-21T12:00:00Z");

/** A TCP proxy in front of the chain that can be taken down and brought back (an RPC outage). */
async function startProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const up = async () => {
    server = createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    await new Promise<void>((r) => server!.listen(port, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
  };
  const down = async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  };
  await up();
  return { url: () => `http://127.0.0.1:${port}`, up, down };
}

describe("verifier service, end to end", () => {
  let chain: DevChain;
  let registry: DeployedRegistry;
  /** Minted at the machine's clock, which the child `provenant verifier run` of the fault test reads. */
  let factory: BundleFactory;
  /** Minted at NOW, for the in-process service that runs on tickingClock(NOW). */
  let fixed: BundleFactory;
  let repo: TestRepo;
  let work: string;
  let world: TestWorld;
  before(async () => {
    world = await createTestWorld("verifier-e2e", { now: new Date() });
    ({ chain, registry, factory, work } = world);
    fixed = await createBundleFactory({ now: NOW });
  });
  after(async () => {
    await world.close();
  });

  const isRecorded = (modelHash: string, manifestDigest: string): Promise<boolean> =>
    registry.contract.getFunction("isRecorded")(`0x${modelHash}`, `0x${manifestDigest}`) as Promise<boolean>;

  it("when bundles are pushed, it publishes the sound ones once, stores the others with codes and survives junk and an RPC outage", async () => {
    repo = createTestRepo();
    const proxy = await startProxy(Number(new URL(chain.url).port));
    const good = fixed.make({ seed: "e2e-good" });
    const audit = fixed.make({ seed: "e2e-audit", kind: "eval" });
    const debug = fixed.make({ seed: "e2e-debug", variant: "debug" });
    // the same manifest in another file with other bytes (re-serialised) and the same bytes twice
    const reserialised = new TextEncoder().encode(JSON.stringify(good.bundle, null, 1));
    repo.write("bundles/good.provenance.json", good.bytes);
    repo.write("bundles/copy/good.provenance.json", good.bytes);
    repo.write("bundles/good-pretty.provenance.json", reserialised);
    repo.write("bundles/audit.provenance.json", audit.bytes);
    repo.write("bundles/debug.provenance.json", debug.bytes);
    repo.write("bundles/garbage.provenance.json", Buffer.from([0xff, 0x00, 0x13, 0x37]));
    repo.symlink("bundles/link.provenance.json", "/etc/passwd");
    repo.write("bundles/huge.provenance.json", Buffer.alloc(fixed.policy.maxBundleBytes + 1, 0x20));
    repo.commitAndPush("bundles");

    const logs: string[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => void (logs.push(line), process.env.E2E_DEBUG && process.stderr.write(line)) },
    );
    const dataDir = path.join(work, "data-e2e");
    const service: RunningService = await startService({
      repos: [repo.origin],
      rpcUrl: proxy.url(),
      registry: registry.address,
      policy: fixed.policy,
      createSender: (provider) => createLocalSender(provider, registry.publisherKey),
      dataDir,
      listen: { host: "127.0.0.1", port: 0 },
      intervalMs: 300,
      maxWaitMs: 100,
      logger,
      now: tickingClock(NOW),
    });
    try {
      await waitFor("publication", () => (service.store.countByStatus().published === 3 ? true : undefined));
      assert.equal(
        await isRecorded(good.modelHash, service.store.getBundle(digestOf(good.bytes))!.manifestDigest!),
        true,
      );
      const goodRow = service.store.getBundle(digestOf(good.bytes))!;
      assert.equal(goodRow.status, "published");
      assert.ok(goodRow.txHash?.startsWith("0x"));
      assert.equal(service.store.sightingsOf(goodRow.digest).length, 2);
      assert.equal(service.store.getBundle(digestOf(reserialised))?.txHash, goodRow.txHash);
      assert.equal(await registry.contract.getFunction("manifestCount")(`0x${good.modelHash}`), 1n);
      const [, , kind] = (await registry.contract.getFunction("recordOf")(`0x${goodRow.manifestDigest}`)) as [
        string,
        bigint,
        bigint,
      ];
      assert.equal(kind, 1n);
      const debugRow = service.store.getBundle(digestOf(debug.bytes))!;
      assert.equal(debugRow.status, "rejected");
      assert.ok(debugRow.errors.some((e) => e.code === "POLICY_DEBUG"));
      assert.equal(await isRecorded(debug.modelHash, debugRow.manifestDigest!), false);
      const garbage = service.store
        .listBundles({ status: "rejected" })
        .find((r) => r.path.endsWith("garbage.provenance.json"));
      assert.equal(garbage?.errors[0]?.code, "BUNDLE_MALFORMED");
      const refused = Object.fromEntries(service.store.listRefusals().map((r) => [r.path, r.code]));
      assert.equal(refused["bundles/link.provenance.json"], "REPO_ENTRY_REFUSED");
      assert.equal(refused["bundles/huge.provenance.json"], "BUNDLE_TOO_LARGE");
      const api = service.apiUrl!;
      const view = (await (await fetch(`${api}/bundles/${debugRow.digest}`)).json()) as { errors: { code: string }[] };
      assert.ok(view.errors.some((e) => e.code === "POLICY_DEBUG"));

      // RPC outage: bundles pushed while the chain is unreachable wait, then go through when it is back.
      await proxy.down();
      const late = fixed.make({ seed: "e2e-late" });
      repo.write("bundles/late.provenance.json", late.bytes);
      repo.commitAndPush("late");
      await waitFor("accepted while down", () =>
        service.store.getBundle(digestOf(late.bytes))?.status === "accepted" ? true : undefined,
      );
      // Two more failed publication attempts: the second one began after the bundle was accepted, so it held it.
      const failed = await publishErrors(api);
      await waitFor("publication attempts during the outage", async () =>
        (await publishErrors(api)) >= failed + 2 ? true : undefined,
      );
      assert.equal(service.store.getBundle(digestOf(late.bytes))?.status, "accepted");
      assert.equal((await fetch(`${api}/healthz`)).status, 503);
      await proxy.up();
      await waitFor("published after outage", () =>
        service.store.getBundle(digestOf(late.bytes))?.status === "published" ? true : undefined,
      );

      // A force-push that rewrites history: the new bundle is found, nothing already done is repeated.
      const { git } = await import("../offchain/testing/git.ts");
      git(repo.work, ["reset", "--quiet", "--hard", "HEAD~1"]);
      const rewritten = fixed.make({ seed: "e2e-rewritten" });
      repo.write("bundles/rewritten.provenance.json", rewritten.bytes);
      repo.commitAndPush("rewritten", { force: true });
      await waitFor("published after force-push", () =>
        service.store.getBundle(digestOf(rewritten.bytes))?.status === "published" ? true : undefined,
      );
      assert.equal(await registry.contract.getFunction("manifestCount")(`0x${late.modelHash}`), 1n);
      assert.ok(
        logs.every((l) => !l.includes(registry.publisherKey.slice(2))),
        "no key material in logs",
      );
    } finally {
      await service.stop();
      await proxy.down();
      repo.cleanup();
    }
  });

  it(`when the service is killed with SIGKILL at random points over ${FAULT_BUNDLES} bundles, every accepted bundle ends up onchain exactly once`, async () => {
    const faultRepo = createTestRepo();
    const made = Array.from({ length: FAULT_BUNDLES }, (_, i) => factory.make({ seed: `fault-${i}` }));
    // a few commits, so that kills land between and during them
    const perCommit = Math.max(1, Math.ceil(made.length / 4));
    for (let i = 0; i < made.length; i += perCommit) {
      made.slice(i, i + perCommit).forEach((m, j) => faultRepo.write(`bundles/f-${i + j}.provenance.json`, m.bytes));
      faultRepo.commitAndPush(`batch ${i}`);
    }
    const dataDir = path.join(work, "data-fault");
    const start = (): ChildProcess =>
      spawn(
        process.execPath,
        verifierRunArgs(world, faultRepo.origin, dataDir, [
          "--interval",
          "0.2",
          "--max-wait",
          "0.1",
          "--max-batch",
          "8",
          "--listen",
          "off",
        ]),
        {
          cwd: ROOT,
          env: { ...process.env, PROVENANT_PRIVATE_KEY: registry.publisherKey, PROVENANT_LOG_LEVEL: "warn" },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
    /** The store's counts by status, as text ("" before the database exists): changes as the service works. */
    const snapshot = (): string => {
      let store: Store | undefined;
      try {
        store = new Store({ dataDir });
        return JSON.stringify(store.countByStatus());
      } catch {
        return "";
      } finally {
        store?.close();
      }
    };
    const published = (): number => (JSON.parse(snapshot() || "{}") as { published?: number }).published ?? 0;
    // The kill moments come from a seeded generator: PROVENANT_FUZZ_SEED replays the same choices.
    const rng = createRng(fuzzSeed("verifier fault test"));
    let kills = 0;
    const deadline = performance.now() + 120_000;
    try {
      for (;;) {
        const before = snapshot();
        const child = start();
        const exited = new Promise((r) => child.once("exit", r));
        try {
          // Kill only once this life has done some work (a verdict or a publication), however slowly Node starts,
          // then at a random moment within 1.2 s: every kill lands mid-work.
          // (A generous bound: on a 2-core machine running other suites, Node, ethers and git can take a while.)
          await waitFor(
            "the restarted verifier to make progress",
            () => (snapshot() !== before || published() === FAULT_BUNDLES ? true : undefined),
            120_000,
          );
          await new Promise((r) => setTimeout(r, rng() * 1_200));
        } finally {
          child.kill("SIGKILL");
          await exited;
        }
        kills++;
        if (kills >= FAULT_KILLS || published() === FAULT_BUNDLES || performance.now() > deadline) break;
      }
      // a last clean run to finish whatever is left
      if (published() < FAULT_BUNDLES) {
        const child = start();
        await waitFor("all published", () => (published() === FAULT_BUNDLES ? true : undefined), 90_000);
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
    } finally {
      faultRepo.cleanup();
    }
    assert.ok(kills >= 1, `killed ${kills} times`);
    const store = new Store({ dataDir });
    try {
      assert.equal(store.countByStatus().published, FAULT_BUNDLES);
      const filter = registry.contract.filters.AttestationRecorded!();
      const events = await registry.contract.queryFilter(filter, 0, "latest");
      for (const m of made) {
        assert.equal(await registry.contract.getFunction("manifestCount")(`0x${m.modelHash}`), 1n);
        const row = store.getBundle(digestOf(m.bytes))!;
        const matching = events.filter((e) => "args" in e && e.args[1] === `0x${row.manifestDigest}`);
        assert.equal(matching.length, 1, "exactly one AttestationRecorded event per manifest");
      }
    } finally {
      store.close();
    }
  });
});

/** provenant_publish_errors_total from the service's /metrics: failed (retried) publication attempts. */
async function publishErrors(api: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  const match = /^provenant_publish_errors_total (\d+)$/m.exec(text);
  if (match === null) throw new Error("no provenant_publish_errors_total in /metrics");
  return Number(match[1]);
}

function digestOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
