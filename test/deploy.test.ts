// scripts/deploy.ts end to end: start `hardhat node` on a free 127.0.0.1 port, deploy to it with
// `hardhat run scripts/deploy.ts --network localhost`, read deployments/localhost.json back and ask the contract.
// Once on a development chain (31337: the deployer may hold roles), once on a node started with another chain id
// (the deployer gets no roles unless PROVENANT_ALLOW_DEPLOYER_ROLES says so, the admin delay defaults to 2 days).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
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

/** Starts `hardhat node` (with `chainId`, when given) and resolves once it accepts JSON-RPC. */
async function startNode(port: number, chainId?: number): Promise<ChildProcess> {
  const args = [HARDHAT_CLI, "node", "--hostname", "127.0.0.1", "--port", String(port)];
  if (chainId !== undefined) args.push("--chain-id", String(chainId));
  const child = spawn(process.execPath, args, {
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

async function runWithCode(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [HARDHAT_CLI, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, output };
}

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { code, output } = await runWithCode(args, env);
  assert.equal(code, 0, output);
  return output;
}

async function stopNode(node: ChildProcess | undefined): Promise<void> {
  if (node !== undefined && node.exitCode === null) {
    const exited = new Promise((resolve) => node.once("exit", resolve));
    node.kill("SIGTERM");
    await exited;
  }
}

/** Whether `account` holds `role` (a role constant's name) in the registry at `address`. */
async function hasRole(provider: JsonRpcProvider, address: string, role: string, account: string): Promise<boolean> {
  const registry = new Contract(address, MODEL_REGISTRY_ABI, provider);
  const roleId = (await registry.getFunction(role)()) as string;
  return (await registry.getFunction("hasRole")(roleId, account)) as boolean;
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
    await stopNode(node);
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
    assert.equal(deployment.development, true);
    assert.equal(deployment.adminDelaySeconds, 0);
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

describe("scripts/deploy.ts on a chain that is not a development chain", () => {
  let node: ChildProcess | undefined;
  let url = "";
  let dir = "";
  let provider: JsonRpcProvider;
  let deployer = "";
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
    ...process.env,
    PROVENANT_LOCALHOST_URL: url,
    PROVENANT_DEPLOYMENTS_DIR: dir,
    PROVENANT_PUBLISHER: "",
    PROVENANT_REVOKER: "",
    PROVENANT_ALLOW_DEPLOYER_ROLES: "",
    PROVENANT_ADMIN_DELAY: "",
    PROVENANT_ROFL_APP_ID: "",
    ...extra,
  });
  const deploy = ["run", "scripts/deploy.ts", "--network", "localhost"];

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    dir = await mkdtemp(path.join(tmpdir(), "provenant-deploy-prod-"));
    node = await startNode(port, 4242);
    provider = new JsonRpcProvider(url, undefined, { staticNetwork: true });
    deployer = getAddress(((await provider.send("eth_accounts", [])) as string[])[0]!);
  });

  after(async () => {
    provider.destroy();
    await stopNode(node);
    await rm(dir, { recursive: true, force: true });
  });

  it("when the deployer is named publisher or revoker, it exits 2 with USAGE and deploys nothing", async () => {
    const nonce = await provider.getTransactionCount(deployer);
    for (const extra of [{ PROVENANT_PUBLISHER: deployer }, { PROVENANT_REVOKER: deployer }]) {
      const { code, output } = await runWithCode(deploy, env(extra));
      assert.equal(code, 2, output);
      assert.match(output, /USAGE: refusing to give the deployer/);
    }
    const { code, output } = await runWithCode(deploy, env({ PROVENANT_ALLOW_DEPLOYER_ROLES: "yes" }));
    assert.equal(code, 2, output);
    assert.equal(await provider.getTransactionCount(deployer), nonce);
    await assert.rejects(access(path.join(dir, "localhost.json")));
  });

  it("when no roles are named, it deploys with a 2-day admin delay and gives the deployer no role", async () => {
    const output = await run(deploy, env({}));
    assert.match(output, /publisher none, revoker none/);
    assert.match(output, /nobody can publish yet/);
    const deployment = JSON.parse(await readFile(path.join(dir, "localhost.json"), "utf8")) as Deployment;
    assert.equal(deployment.chainId, 4242);
    assert.equal(deployment.development, false);
    assert.equal(deployment.deployer, deployer);
    assert.equal(deployment.publisher, null);
    assert.equal(deployment.revoker, null);
    assert.equal(deployment.adminDelaySeconds, 172_800);
    const registry = new Contract(deployment.address, MODEL_REGISTRY_ABI, provider);
    assert.equal(await registry.getFunction("defaultAdmin")(), deployer);
    assert.equal(await registry.getFunction("defaultAdminDelay")(), 172_800n);
    assert.equal(await hasRole(provider, deployment.address, "PUBLISHER_ROLE", deployer), false);
    assert.equal(await hasRole(provider, deployment.address, "REVOKER_ROLE", deployer), false);
  });

  it("when PROVENANT_ALLOW_DEPLOYER_ROLES=1, the deployer gets both roles and PROVENANT_ADMIN_DELAY sets the delay", async () => {
    await run(deploy, env({ PROVENANT_ALLOW_DEPLOYER_ROLES: "1", PROVENANT_ADMIN_DELAY: "3600" }));
    const deployment = JSON.parse(await readFile(path.join(dir, "localhost.json"), "utf8")) as Deployment;
    assert.equal(deployment.publisher, deployer);
    assert.equal(deployment.revoker, deployer);
    assert.equal(deployment.adminDelaySeconds, 3600);
    assert.equal(await hasRole(provider, deployment.address, "PUBLISHER_ROLE", deployer), true);
    assert.equal(await hasRole(provider, deployment.address, "REVOKER_ROLE", deployer), true);
  });
});
