// The committed ABI module must be exactly what scripts/export-abi.ts renders from the current compiled contract,
// so every TypeScript part talks to the contract that the Solidity source describes.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";

import hre from "hardhat";

import { ABI_MODULE_PATH, readCompilerInfo, readRegistryArtifact, toAbiModule } from "../../scripts/export-abi.ts";
import { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE } from "./abi.ts";

describe("lib/registry/abi.ts", () => {
  it("when compared with the compiled artifact, it is what `npm run abi` writes (run it after a contract change)", async () => {
    await hre.tasks.getTask("build").run({ quiet: true, noTests: true });
    const artifact = await readRegistryArtifact();
    assert.deepEqual(MODEL_REGISTRY_ABI, artifact.abi);
    assert.equal(MODEL_REGISTRY_BYTECODE, artifact.bytecode);
    assert.equal(
      await readFile(ABI_MODULE_PATH, "utf8"),
      await toAbiModule(artifact, await readCompilerInfo(artifact)),
    );
  });

  it("when read, it names the functions, events and errors of DESIGN §5 and the governance and checkpoint ones", () => {
    const names = new Set<string>(MODEL_REGISTRY_ABI.map((entry) => ("name" in entry ? entry.name : entry.type)));
    for (const name of [
      "publish",
      "revoke",
      "isRecorded",
      "latestManifest",
      "manifestsOf",
      "recordOf",
      "manifestCount",
      "roflAppId",
      "setRoflAppId",
      "proposeRoflAppId",
      "acceptRoflAppId",
      "cancelRoflAppId",
      "pendingRoflAppId",
      "anchorCheckpoint",
      "checkpointRoot",
      "latestCheckpoint",
      "defaultAdmin",
      "defaultAdminDelay",
      "beginDefaultAdminTransfer",
      "acceptDefaultAdminTransfer",
      "PUBLISHER_ROLE",
      "REVOKER_ROLE",
      "MAX_BATCH_SIZE",
      "AttestationRecorded",
      "AttestationRevoked",
      "RoflAppIdChanged",
      "RoflAppIdChangeScheduled",
      "RoflAppIdChangeCanceled",
      "CheckpointAnchored",
      "DefaultAdminTransferScheduled",
      "ModelRegistryUnauthorizedPublisher",
      "ModelRegistryZeroRoflAppId",
      "ModelRegistryRoflAppIdAlreadySet",
      "ModelRegistryRoflAppIdNotSet",
      "ModelRegistryRoflAppIdUnchanged",
      "ModelRegistryNoPendingRoflAppId",
      "ModelRegistryRoflAppIdChangeNotReady",
      "ModelRegistryZeroLogId",
      "ModelRegistryZeroRootHash",
      "ModelRegistryCheckpointNotNewer",
      "AccessControlEnforcedDefaultAdminRules",
      "AccessControlEnforcedDefaultAdminDelay",
      "AccessControlInvalidDefaultAdmin",
      "RoflOriginNotAuthorizedForApp",
    ]) {
      assert.ok(names.has(name), name);
    }
  });
});
