// The verifier as it runs inside ROFL: `--signer rofl` against a stand-in rofl-appd on a unix socket that signs and
// submits like the real one (documented request and CBOR CallResult response) with a key that holds PUBLISHER_ROLE.
// The container image itself cannot be built here (no container runtime, no network); this checks the app's side.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { encode as encodeCbor } from "cborg";
import { JsonRpcProvider, Wallet } from "ethers";

import { Store } from "../offchain/store/index.ts";
import type { BundleFactory } from "../offchain/testing/bundles.ts";
import type { DeployedRegistry, DevChain } from "../offchain/testing/chain.ts";
import { createTestRepo } from "../offchain/testing/git.ts";
import { createTestWorld, verifierRunArgs, waitFor, type TestWorld } from "../offchain/testing/world.ts";

const ROOT = path.resolve(new URL("..", import.meta.url).pathname);

describe("verifier with the rofl-appd signer", () => {
  let chain: DevChain;
  let registry: DeployedRegistry;
  let factory: BundleFactory;
  let work: string;
  let world: TestWorld;
  before(async () => {
    // The service is a child `provenant verifier run`, which reads the machine's clock: mint the simulator's VCEK at it.
    world = await createTestWorld("verifier-rofl", { now: new Date() });
    ({ chain, registry, factory, work } = world);
  });
  after(async () => {
    await world.close();
  });

  it("when run with --signer rofl, it publishes through sign-submit with an explicit gas limit", async () => {
    const provider = new JsonRpcProvider(chain.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    const appKey = new Wallet(registry.publisherKey, provider);
    const requests: { gas_limit: number }[] = [];
    const socketPath = path.join(work, "rofl-appd.sock");
    const appd = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        void (async () => {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            tx: { kind: string; data: { gas_limit: number; to: string; value: number; data: string } };
          };
          requests.push(body.tx.data);
          let result: unknown;
          try {
            const tx = await appKey.sendTransaction({
              to: `0x${body.tx.data.to}`,
              data: `0x${body.tx.data.data}`,
              gasLimit: body.tx.data.gas_limit,
            });
            const receipt = await tx.wait();
            result =
              receipt?.status === 1
                ? { ok: new Uint8Array(0) }
                : { fail: { module: "evm", code: 8, message: "reverted: " } };
          } catch {
            result = { fail: { module: "evm", code: 8, message: "reverted: " } };
          }
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ data: Buffer.from(encodeCbor(result)).toString("hex") }));
        })();
      });
    });
    await new Promise<void>((r) => appd.listen(socketPath, r));
    const repo = createTestRepo();
    const made = factory.make({ seed: "rofl-1" });
    repo.write("bundles/rofl.provenance.json", made.bytes);
    repo.commitAndPush("bundle");
    const dataDir = path.join(work, "data");
    const child = spawn(
      process.execPath,
      verifierRunArgs(world, repo.origin, dataDir, [
        "--signer",
        "rofl",
        "--rofl-socket",
        socketPath,
        "--interval",
        "0.3",
        "--listen",
        "off",
      ]),
      { cwd: ROOT, env: { ...process.env, PROVENANT_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "inherit"] },
    );
    try {
      await waitFor("publication through rofl-appd", async () => {
        const recorded = (await registry.contract.getFunction("manifestCount")(`0x${made.modelHash}`)) as bigint;
        return recorded === 1n ? true : undefined;
      });
      // graceful stop on SIGTERM, then the store says published with the tx found from the event
      child.kill("SIGTERM");
      const code = await new Promise((r) => child.once("exit", r));
      assert.equal(code, 0);
      const store = new Store({ dataDir });
      const row = store.listBundles({ status: "published" })[0];
      store.close();
      assert.ok(row?.txHash?.startsWith("0x"));
      assert.ok((requests[0]?.gas_limit ?? 0) > 100_000, "explicit gas limit");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      appd.close();
      provider.destroy();
      repo.cleanup();
    }
  });
});
