// scripts/deploy.ts end to end: start `hardhat node` on a free 127.0.0.1 port, deploy to it with
// `hardhat run scripts/deploy.ts --network localhost`, read deployments/localhost.json back and ask the contract.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { Contract, JsonRpcProvider, Wallet, getAddress } from "ethers";

import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import type { Deployment } from "../lib/registry/deploy.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const HARDHAT_CLI = path.join(ROOT, "node_modules/hardhat/dist/src/cli.js");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `hardhat node` and resolves once it accepts JSON-RPC. */
async function startNode(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HARDHAT_CLI, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hardhat node did not start:\n${output}`)), 120_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(`127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hardhat node exited with ${code}:\n${output}`));
    });
  });
  return child;
}

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(process.execPath, [HARDHAT_CLI, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, output);
  return output;
}

describe("scripts/deploy.ts", () => {
  let node: ChildProcess | undefined;
  let url = "";
  let dir = "";

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    dir = await mkdtemp(path.join(tmpdir(), "provenant-deploy-"));
    node = await startNode(port);
  });

  after(async () => {
    if (node !== undefined && node.exitCode === null) {
      const exited = new Promise((resolve) => node?.once("exit", resolve));
      node.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("when run against a hardhat node, it deploys, grants the roles and writes deployments/localhost.json", async () => {
    const publisher = Wallet.createRandom().address;
    const output = await run(["run", "scripts/deploy.ts", "--network", "localhost"], {
      ...process.env,
      PROVENANT_LOCALHOST_URL: url,
      PROVENANT_DEPLOYMENTS_DIR: dir,
      PROVENANT_PUBLISHER: publisher,
    });
    assert.match(output, /ModelRegistry deployed on localhost/);

    const deployment = JSON.parse(await readFile(path.join(dir, "localhost.json"), "utf8")) as Deployment;
    assert.equal(deployment.network, "localhost");
    assert.equal(deployment.chainId, 31337);
    assert.equal(deployment.publisher, getAddress(publisher));
    assert.equal(deployment.revoker, deployment.deployer);
    assert.match(deployment.compiler, /^solc 0\.8\.24\+commit\.e11b9ed9/);
    assert.match(deployment.txHash, /^0x[0-9a-f]{64}$/);

    const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true });
    try {
      const receipt = await provider.getTransactionReceipt(deployment.txHash);
      assert.ok(receipt !== null);
      assert.equal(receipt.contractAddress, deployment.address);
      assert.equal(receipt.blockNumber, deployment.block);
      assert.equal(getAddress(receipt.from), deployment.deployer);
      const registry = new Contract(deployment.address, MODEL_REGISTRY_ABI, provider);
      const publisherRole = (await registry.getFunction("PUBLISHER_ROLE")()) as string;
      const revokerRole = (await registry.getFunction("REVOKER_ROLE")()) as string;
      const adminRole = (await registry.getFunction("DEFAULT_ADMIN_ROLE")()) as string;
      assert.equal(await registry.getFunction("hasRole")(publisherRole, publisher), true);
      assert.equal(await registry.getFunction("hasRole")(publisherRole, deployment.deployer), false);
      assert.equal(await registry.getFunction("hasRole")(revokerRole, deployment.deployer), true);
      assert.equal(await registry.getFunction("hasRole")(adminRole, deployment.deployer), true);
      assert.equal(await registry.getFunction("manifestCount")(`0x${"11".repeat(32)}`), 0n);
    } finally {
      provider.destroy();
    }
  });
});
