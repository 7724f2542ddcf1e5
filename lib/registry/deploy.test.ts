// deployRegistry on the in-process network: roles granted as asked, the record written, bad addresses refused; on a
// chain that is not a development chain (the same network with another chain id), the deployer gets no roles unless
// allowed, naming it is refused before anything is sent, and the admin delay defaults to 2 days.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { Contract } from "ethers";
import hre from "hardhat";

import { isProvenantError } from "../errors.ts";
import { MODEL_REGISTRY_ABI } from "./abi.ts";
import { DEFAULT_ADMIN_DELAY_SECONDS, deployRegistry } from "./deploy.ts";
import { toRoflAppIdBech32 } from "./rofl.ts";

const NOW = new Date("2026-11-21T12:00:00Z");

/** A fresh in-process chain that is not a development chain (chain id 4242 instead of 31337). */
async function productionLikeChain(): Promise<Awaited<ReturnType<typeof hre.network.create>>> {
  return hre.network.create({ network: "hardhat", override: { chainId: 4242 } });
}

async function hasRole(address: string, runner: Contract["runner"], role: string, account: string): Promise<boolean> {
  const registry = new Contract(address, MODEL_REGISTRY_ABI, runner);
  const roleId = (await registry.getFunction(role)()) as string;
  return (await registry.getFunction("hasRole")(roleId, account)) as boolean;
}

const isUsage = (error: unknown): boolean => isProvenantError(error) && error.code === "USAGE";

describe("deployRegistry", () => {
  it("when given a publisher and a directory, it grants the roles and writes <network>.json", async () => {
    const connection = await hre.network.create();
    const [deployer, publisher] = await connection.ethers.getSigners();
    const dir = await mkdtemp(path.join(tmpdir(), "provenant-deploy-unit-"));
    try {
      const deployment = await deployRegistry({
        signer: deployer,
        network: "unit",
        publisher: publisher.address,
        deploymentsDir: dir,
        now: () => NOW,
      });
      assert.deepEqual(JSON.parse(await readFile(path.join(dir, "unit.json"), "utf8")), deployment);
      assert.equal(deployment.chainId, 31337);
      assert.equal(deployment.development, true);
      assert.equal(deployment.adminDelaySeconds, 0);
      assert.equal(deployment.deployedAt, NOW.toISOString());
      assert.equal(deployment.deployer, deployer.address);
      assert.equal(deployment.revoker, deployer.address);
      const registry = new Contract(deployment.address, MODEL_REGISTRY_ABI, connection.ethers.provider);
      const role = (await registry.getFunction("PUBLISHER_ROLE")()) as string;
      assert.equal(await registry.getFunction("hasRole")(role, publisher.address), true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("when given a ROFL app id in bech32, it switches ROFL mode on with its bytes", async () => {
    const connection = await hre.network.create();
    const [deployer] = await connection.ethers.getSigners();
    const appId = "0x00" + "c0ffee".repeat(6) + "4242";
    const deployment = await deployRegistry({ signer: deployer, network: "unit", roflAppId: toRoflAppIdBech32(appId) });
    assert.equal(deployment.roflAppId, appId);
    const registry = new Contract(deployment.address, MODEL_REGISTRY_ABI, connection.ethers.provider);
    assert.equal(await registry.getFunction("roflAppId")(), appId);
  });

  it("when the chain is not a development chain, the deployer gets no roles and the admin delay is 2 days", async () => {
    const connection = await productionLikeChain();
    const [deployer, publisher] = await connection.ethers.getSigners();
    const deployment = await deployRegistry({ signer: deployer, network: "prod", publisher: publisher.address });
    assert.equal(deployment.chainId, 4242);
    assert.equal(deployment.development, false);
    assert.equal(deployment.publisher, publisher.address);
    assert.equal(deployment.revoker, null);
    assert.equal(deployment.adminDelaySeconds, DEFAULT_ADMIN_DELAY_SECONDS);
    const provider = connection.ethers.provider;
    const registry = new Contract(deployment.address, MODEL_REGISTRY_ABI, provider);
    assert.equal(await registry.getFunction("defaultAdminDelay")(), BigInt(DEFAULT_ADMIN_DELAY_SECONDS));
    assert.equal(await registry.getFunction("defaultAdmin")(), deployer.address);
    assert.equal(await hasRole(deployment.address, provider, "PUBLISHER_ROLE", publisher.address), true);
    assert.equal(await hasRole(deployment.address, provider, "PUBLISHER_ROLE", deployer.address), false);
    assert.equal(await hasRole(deployment.address, provider, "REVOKER_ROLE", deployer.address), false);
  });

  it("when the chain is not a development chain and the deployer is named publisher or revoker, it throws USAGE before sending anything", async () => {
    const connection = await productionLikeChain();
    const [deployer, other] = await connection.ethers.getSigners();
    const nonceBefore = await deployer.getNonce();
    for (const roles of [{ publisher: deployer.address }, { revoker: deployer.address, publisher: other.address }]) {
      await assert.rejects(deployRegistry({ signer: deployer, network: "prod", ...roles }), isUsage);
    }
    assert.equal(await deployer.getNonce(), nonceBefore);
  });

  it("when the chain is not a development chain and deployer roles are allowed, the deployer gets both by default", async () => {
    const connection = await productionLikeChain();
    const [deployer] = await connection.ethers.getSigners();
    const deployment = await deployRegistry({
      signer: deployer,
      network: "prod",
      allowDeployerRoles: true,
      adminDelaySeconds: 3600,
    });
    assert.equal(deployment.publisher, deployer.address);
    assert.equal(deployment.revoker, deployer.address);
    assert.equal(deployment.adminDelaySeconds, 3600);
    const provider = connection.ethers.provider;
    assert.equal(await hasRole(deployment.address, provider, "PUBLISHER_ROLE", deployer.address), true);
    assert.equal(await hasRole(deployment.address, provider, "REVOKER_ROLE", deployer.address), true);
  });

  it("when the admin delay is negative, fractional or past uint48, it throws USAGE before deploying", async () => {
    const connection = await hre.network.create();
    const [deployer] = await connection.ethers.getSigners();
    const nonceBefore = await deployer.getNonce();
    for (const adminDelaySeconds of [-1, 1.5, 2 ** 48, Number.NaN]) {
      await assert.rejects(deployRegistry({ signer: deployer, network: "unit", adminDelaySeconds }), isUsage);
    }
    assert.equal(await deployer.getNonce(), nonceBefore);
  });

  it("when the publisher is not an address, it throws USAGE before deploying", async () => {
    const connection = await hre.network.create();
    const [deployer] = await connection.ethers.getSigners();
    const nonceBefore = await deployer.getNonce();
    await assert.rejects(
      deployRegistry({ signer: deployer, network: "unit", publisher: "0x1234" }),
      (error: unknown) => isProvenantError(error) && error.code === "USAGE",
    );
    assert.equal(await deployer.getNonce(), nonceBefore);
  });
});
