// deployRegistry on the in-process network: roles granted as asked, the record written, bad addresses refused.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { Contract } from "ethers";
import hre from "hardhat";

import { isProvenantError } from "../errors.ts";
import { MODEL_REGISTRY_ABI } from "./abi.ts";
import { deployRegistry } from "./deploy.ts";
import { toRoflAppIdBech32 } from "./rofl.ts";

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
      });
      assert.deepEqual(JSON.parse(await readFile(path.join(dir, "unit.json"), "utf8")), deployment);
      assert.equal(deployment.chainId, 31337);
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
