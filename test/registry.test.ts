// ModelRegistry on the in-process Hardhat network: every function, revert (custom error and arguments) and event
// (with arguments), pagination edges, idempotent re-publish, roles, and ROFL mode against a SUBCALL mock.
import assert from "node:assert/strict";
import { afterEach, before, beforeEach, describe, it } from "node:test";

import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { ZeroHash, id as keccakId } from "ethers";
import type { ContractTransactionResponse, Log } from "ethers";

import {
  KIND_AUDIT,
  KIND_FINETUNE,
  attestation,
  connect,
  deployRegistry,
  installSubcallMock,
  randomHash,
} from "./registry-fixture.ts";
import type { AttestationInput, Connection, Registry, SubcallMock } from "./registry-fixture.ts";

const APP_ID = "0x00" + "c0ffee".repeat(6) + "4242";
const OTHER_APP_ID = "0x00" + "0badf0".repeat(6) + "0d0d";
const ZERO_APP_ID = "0x" + "00".repeat(21);
const MAX_UINT256 = (1n << 256n) - 1n;

let connection: Connection;
let admin: HardhatEthersSigner;
let publisher: HardhatEthersSigner;
let revoker: HardhatEthersSigner;
let stranger: HardhatEthersSigner;
let roflInstance: HardhatEthersSigner;
let registry: Registry;
let PUBLISHER_ROLE: string;
let REVOKER_ROLE: string;

/** Awaits `action` and asserts it reverts with custom error `name` and, when given, `args`. */
async function assertRevert(action: () => Promise<unknown>, name: string, args?: readonly unknown[]): Promise<void> {
  let thrown: unknown;
  try {
    await action();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown !== undefined, `expected a revert with ${name}, but the call succeeded`);
  const data = revertData(thrown);
  assert.ok(data !== undefined, `expected revert data for ${name}, got ${String(thrown)}`);
  const parsed = registry.interface.parseError(data);
  assert.ok(parsed !== null, `revert data ${data} is no error of the ABI`);
  assert.equal(parsed.name, name);
  if (args !== undefined) assert.deepEqual([...parsed.args], [...args]);
}

function revertData(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === "object"; depth++) {
    const data = (current as { data?: unknown }).data;
    if (typeof data === "string" && data.startsWith("0x")) return data;
    current = (current as { error?: unknown; cause?: unknown }).error ?? (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Sends a transaction and returns the registry's events in its receipt, decoded. */
async function eventsOf(tx: Promise<ContractTransactionResponse>): Promise<{ name: string; args: unknown[] }[]> {
  const receipt = await (await tx).wait();
  assert.ok(receipt !== null);
  return receipt.logs.map((log: Log) => {
    const parsed = registry.interface.parseLog(log);
    assert.ok(parsed !== null);
    return { name: parsed.name, args: [...parsed.args] };
  });
}

function recordedArgs(item: AttestationInput): unknown[] {
  return [
    item.modelHash,
    item.manifestDigest,
    item.parentModelHash,
    BigInt(item.kind),
    item.measurementHash,
    item.policyDigest,
    item.reportedTcb,
  ];
}

/** `manifestsOf` as a plain array (ethers returns a Result). */
async function manifestsOf(modelHash: string, offset: bigint | number, limit: bigint | number): Promise<string[]> {
  return [...(await registry.manifestsOf(modelHash, offset, limit))];
}

async function latestTimestamp(): Promise<bigint> {
  const block = await connection.ethers.provider.getBlock("latest");
  assert.ok(block !== null);
  return BigInt(block.timestamp);
}

before(async () => {
  connection = await connect();
  [admin, publisher, revoker, stranger, roflInstance] = await connection.ethers.getSigners();
});

beforeEach(async () => {
  registry = await deployRegistry(connection, admin);
  PUBLISHER_ROLE = await registry.PUBLISHER_ROLE();
  REVOKER_ROLE = await registry.REVOKER_ROLE();
  await (await registry.grantRole(PUBLISHER_ROLE, publisher.address)).wait();
  await (await registry.grantRole(REVOKER_ROLE, revoker.address)).wait();
});

describe("ModelRegistry deployment and roles", () => {
  it("when deployed, it gives the admin only DEFAULT_ADMIN_ROLE and exposes the role ids and batch limit", async () => {
    const fresh = await deployRegistry(connection, admin);
    const adminRole = await fresh.DEFAULT_ADMIN_ROLE();
    assert.equal(adminRole, ZeroHash);
    assert.equal(await fresh.hasRole(adminRole, admin.address), true);
    assert.equal(await fresh.hasRole(PUBLISHER_ROLE, admin.address), false);
    assert.equal(await fresh.hasRole(REVOKER_ROLE, admin.address), false);
    assert.equal(await fresh.PUBLISHER_ROLE(), keccakId("PUBLISHER_ROLE"));
    assert.equal(await fresh.REVOKER_ROLE(), keccakId("REVOKER_ROLE"));
    assert.equal(await fresh.getRoleAdmin(PUBLISHER_ROLE), ZeroHash);
    assert.equal(await fresh.MAX_BATCH_SIZE(), 128n);
    assert.equal(await fresh.roflAppId(), ZERO_APP_ID);
  });

  it("when the admin address is zero, the constructor reverts with ModelRegistryZeroAdmin", async () => {
    const factory = await connection.ethers.getContractFactory(
      registry.interface.fragments as unknown as unknown[],
      (await import("../lib/registry/abi.ts")).MODEL_REGISTRY_BYTECODE,
      admin,
    );
    await assertRevert(() => factory.deploy("0x" + "00".repeat(20)), "ModelRegistryZeroAdmin", []);
  });

  it("when asked for interfaces, it supports IModelRegistry, IAccessControl and ERC-165 only", async () => {
    const ids = ["0x01ffc9a7", "0x7965db0b"];
    for (const id of ids) assert.equal(await registry.supportsInterface(id), true, id);
    assert.equal(await registry.supportsInterface(interfaceIdOfRegistry()), true);
    assert.equal(await registry.supportsInterface("0xffffffff"), false);
    assert.equal(await registry.supportsInterface("0x12345678"), false);
  });

  it("when a non-admin grants a role, it reverts with AccessControlUnauthorizedAccount", async () => {
    await assertRevert(
      () => registry.connect(stranger).grantRole(PUBLISHER_ROLE, stranger.address),
      "AccessControlUnauthorizedAccount",
      [stranger.address, ZeroHash],
    );
  });

  it("when the admin grants PUBLISHER_ROLE, it emits RoleGranted and the account can publish", async () => {
    const events = await eventsOf(registry.grantRole(PUBLISHER_ROLE, stranger.address));
    assert.deepEqual(events, [{ name: "RoleGranted", args: [PUBLISHER_ROLE, stranger.address, admin.address] }]);
    const item = attestation();
    await (await registry.connect(stranger).publish([item])).wait();
    assert.equal(await registry.isRecorded(item.modelHash, item.manifestDigest), true);
  });

  it("when an account renounces a role for another account, it reverts with AccessControlBadConfirmation", async () => {
    await assertRevert(
      () => registry.connect(stranger).renounceRole(PUBLISHER_ROLE, publisher.address),
      "AccessControlBadConfirmation",
      [],
    );
  });

  it("when the admin revokes PUBLISHER_ROLE, the former publisher can no longer publish", async () => {
    const events = await eventsOf(registry.revokeRole(PUBLISHER_ROLE, publisher.address));
    assert.deepEqual(events, [{ name: "RoleRevoked", args: [PUBLISHER_ROLE, publisher.address, admin.address] }]);
    await assertRevert(
      () => registry.connect(publisher).publish([attestation()]),
      "ModelRegistryUnauthorizedPublisher",
      [publisher.address],
    );
  });

  it("when a publisher renounces its role, it can no longer publish", async () => {
    await (await registry.connect(publisher).renounceRole(PUBLISHER_ROLE, publisher.address)).wait();
    assert.equal(await registry.hasRole(PUBLISHER_ROLE, publisher.address), false);
    await assertRevert(
      () => registry.connect(publisher).publish([attestation()]),
      "ModelRegistryUnauthorizedPublisher",
      [publisher.address],
    );
  });

  it("when the admin holds no PUBLISHER_ROLE, the admin cannot publish", async () => {
    await assertRevert(() => registry.connect(admin).publish([attestation()]), "ModelRegistryUnauthorizedPublisher", [
      admin.address,
    ]);
  });
});

describe("ModelRegistry.publish", () => {
  it("when a publisher publishes one fine-tune, it records it, emits AttestationRecorded and answers every lookup", async () => {
    const item = attestation();
    const events = await eventsOf(registry.connect(publisher).publish([item]));
    assert.deepEqual(events, [{ name: "AttestationRecorded", args: recordedArgs(item) }]);
    const publishedAt = await latestTimestamp();
    assert.equal(await registry.isRecorded(item.modelHash, item.manifestDigest), true);
    assert.equal(await registry.latestManifest(item.modelHash), item.manifestDigest);
    assert.equal(await registry.manifestCount(item.modelHash), 1n);
    assert.deepEqual(await manifestsOf(item.modelHash, 0, 10), [item.manifestDigest]);
    assert.deepEqual([...(await registry.recordOf(item.manifestDigest))], [item.modelHash, publishedAt, 1n, false]);
  });

  it("when an audit is published, it records kind 2 with a zero parent", async () => {
    const item = attestation({ kind: KIND_AUDIT, parentModelHash: ZeroHash });
    const events = await eventsOf(registry.connect(publisher).publish([item]));
    assert.deepEqual(events, [{ name: "AttestationRecorded", args: recordedArgs(item) }]);
    assert.equal((await registry.recordOf(item.manifestDigest))[2], 2n);
  });

  it("when several manifests are recorded for one model, they keep publication order and latest is the last", async () => {
    const modelHash = randomHash();
    const first = attestation({ modelHash });
    const second = attestation({ modelHash, kind: KIND_AUDIT, parentModelHash: ZeroHash });
    const third = attestation({ modelHash });
    await (await registry.connect(publisher).publish([first, second])).wait();
    await (await registry.connect(publisher).publish([third])).wait();
    assert.equal(await registry.manifestCount(modelHash), 3n);
    assert.equal(await registry.latestManifest(modelHash), third.manifestDigest);
    assert.deepEqual(await manifestsOf(modelHash, 0, 3), [
      first.manifestDigest,
      second.manifestDigest,
      third.manifestDigest,
    ]);
  });

  it("when a manifest is already recorded, publishing it again changes nothing and emits nothing", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    const before = [...(await registry.recordOf(item.manifestDigest))];
    const events = await eventsOf(registry.connect(publisher).publish([item]));
    assert.deepEqual(events, []);
    assert.deepEqual([...(await registry.recordOf(item.manifestDigest))], before);
    assert.equal(await registry.manifestCount(item.modelHash), 1n);
  });

  it("when a recorded manifest comes again for another model, it is skipped and keeps its first model", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    const moved = { ...item, modelHash: randomHash() };
    assert.deepEqual(await eventsOf(registry.connect(publisher).publish([moved])), []);
    assert.equal((await registry.recordOf(item.manifestDigest))[0], item.modelHash);
    assert.equal(await registry.isRecorded(moved.modelHash, item.manifestDigest), false);
    assert.equal(await registry.manifestCount(moved.modelHash), 0n);
  });

  it("when a batch mixes new and known manifests, it records only the new ones, in order", async () => {
    const known = attestation();
    await (await registry.connect(publisher).publish([known])).wait();
    const fresh1 = attestation({ modelHash: known.modelHash });
    const fresh2 = attestation();
    const events = await eventsOf(registry.connect(publisher).publish([fresh1, known, fresh2, fresh1]));
    assert.deepEqual(events, [
      { name: "AttestationRecorded", args: recordedArgs(fresh1) },
      { name: "AttestationRecorded", args: recordedArgs(fresh2) },
    ]);
    assert.deepEqual(await manifestsOf(known.modelHash, 0, 10), [known.manifestDigest, fresh1.manifestDigest]);
    assert.equal(await registry.manifestCount(fresh2.modelHash), 1n);
  });

  it("when a batch of MAX_BATCH_SIZE items is published, it records all of them", async () => {
    const items = Array.from({ length: 128 }, () => attestation());
    const events = await eventsOf(registry.connect(publisher).publish(items));
    assert.equal(events.length, 128);
    assert.equal(await registry.isRecorded(items[127].modelHash, items[127].manifestDigest), true);
  });

  it("when a batch is over MAX_BATCH_SIZE, it reverts with ModelRegistryBatchTooLarge(size, max)", async () => {
    const items = Array.from({ length: 129 }, () => attestation());
    await assertRevert(() => registry.connect(publisher).publish(items), "ModelRegistryBatchTooLarge", [129n, 128n]);
  });

  it("when the batch is empty, it reverts with ModelRegistryEmptyBatch", async () => {
    await assertRevert(() => registry.connect(publisher).publish([]), "ModelRegistryEmptyBatch", []);
  });

  const invalid: {
    when: string;
    item: Partial<AttestationInput>;
    error: string;
    args: (index: bigint) => unknown[];
  }[] = [
    { when: "a zero model hash", item: { modelHash: ZeroHash }, error: "ModelRegistryZeroModelHash", args: (i) => [i] },
    {
      when: "a zero manifest digest",
      item: { manifestDigest: ZeroHash },
      error: "ModelRegistryZeroManifestDigest",
      args: (i) => [i],
    },
    {
      when: "a zero measurement hash",
      item: { measurementHash: ZeroHash },
      error: "ModelRegistryZeroMeasurementHash",
      args: (i) => [i],
    },
    {
      when: "a zero policy digest",
      item: { policyDigest: ZeroHash },
      error: "ModelRegistryZeroPolicyDigest",
      args: (i) => [i],
    },
    { when: "kind 0", item: { kind: 0 }, error: "ModelRegistryUnknownKind", args: (i) => [i, 0n] },
    { when: "kind 3", item: { kind: 3 }, error: "ModelRegistryUnknownKind", args: (i) => [i, 3n] },
    { when: "kind 255", item: { kind: 255 }, error: "ModelRegistryUnknownKind", args: (i) => [i, 255n] },
    {
      when: "a fine-tune without parent",
      item: { kind: KIND_FINETUNE, parentModelHash: ZeroHash },
      error: "ModelRegistryMissingParent",
      args: (i) => [i],
    },
    {
      when: "an audit with a parent",
      item: { kind: KIND_AUDIT, parentModelHash: "0x" + "ab".repeat(32) },
      error: "ModelRegistryUnexpectedParent",
      args: (i) => [i, "0x" + "ab".repeat(32)],
    },
  ];
  for (const { when, item, error, args } of invalid) {
    it(`when item 2 of a batch has ${when}, it reverts with ${error} naming index 2 and records nothing`, async () => {
      const good = attestation();
      const items = [good, attestation(), attestation(item)];
      await assertRevert(() => registry.connect(publisher).publish(items), error, args(2n));
      assert.equal(await registry.isRecorded(good.modelHash, good.manifestDigest), false);
    });
  }

  it("when an invalid item repeats a recorded manifest, the batch still reverts (validation comes first)", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    await assertRevert(() => registry.connect(publisher).publish([{ ...item, kind: 9 }]), "ModelRegistryUnknownKind", [
      0n,
      9n,
    ]);
  });

  it("when a stranger publishes, it reverts with ModelRegistryUnauthorizedPublisher(account)", async () => {
    await assertRevert(
      () => registry.connect(stranger).publish([attestation()]),
      "ModelRegistryUnauthorizedPublisher",
      [stranger.address],
    );
  });
});

describe("ModelRegistry lookups", () => {
  it("when nothing is recorded for a model, lookups answer zero, empty and false", async () => {
    const modelHash = randomHash();
    const digest = randomHash();
    assert.equal(await registry.isRecorded(modelHash, digest), false);
    assert.equal(await registry.latestManifest(modelHash), ZeroHash);
    assert.equal(await registry.manifestCount(modelHash), 0n);
    assert.deepEqual(await manifestsOf(modelHash, 0, 10), []);
    assert.deepEqual([...(await registry.recordOf(digest))], [ZeroHash, 0n, 0n, false]);
    assert.equal(await registry.isRecorded(ZeroHash, ZeroHash), false);
  });

  it("when a manifest is recorded for one model, isRecorded is false for any other model", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    assert.equal(await registry.isRecorded(randomHash(), item.manifestDigest), false);
    assert.equal(await registry.isRecorded(item.modelHash, randomHash()), false);
  });

  it("when paginating, offsets and limits at and past the edges are safe", async () => {
    const modelHash = randomHash();
    const items = Array.from({ length: 5 }, () => attestation({ modelHash }));
    await (await registry.connect(publisher).publish(items)).wait();
    const all = items.map((item) => item.manifestDigest);
    assert.deepEqual(await manifestsOf(modelHash, 0, 5), all);
    assert.deepEqual(await manifestsOf(modelHash, 0, 2), all.slice(0, 2));
    assert.deepEqual(await manifestsOf(modelHash, 2, 2), all.slice(2, 4));
    assert.deepEqual(await manifestsOf(modelHash, 4, 2), all.slice(4));
    assert.deepEqual(await manifestsOf(modelHash, 3, 100), all.slice(3));
    assert.deepEqual(await manifestsOf(modelHash, 5, 1), []);
    assert.deepEqual(await manifestsOf(modelHash, 6, 1), []);
    assert.deepEqual(await manifestsOf(modelHash, 0, 0), []);
    assert.deepEqual(await manifestsOf(modelHash, 1, MAX_UINT256), all.slice(1));
    assert.deepEqual(await manifestsOf(modelHash, MAX_UINT256, MAX_UINT256), []);
    assert.deepEqual(await manifestsOf(modelHash, MAX_UINT256, 1), []);
  });

  it("when two models share the low 176 bits of their hashes, each keeps its own records", async () => {
    // The registry keys models by the low 176 bits of their hash inside a record; this forces the probe path.
    const low = "11".repeat(22);
    const a = attestation({ modelHash: "0x" + "aa".repeat(10) + low });
    const b = attestation({ modelHash: "0x" + "bb".repeat(10) + low });
    const zeroLow = attestation({ modelHash: "0x" + "cc".repeat(10) + "00".repeat(22) });
    await (await registry.connect(publisher).publish([a, b, zeroLow])).wait();
    for (const item of [a, b, zeroLow]) {
      assert.equal((await registry.recordOf(item.manifestDigest))[0], item.modelHash);
      assert.equal(await registry.isRecorded(item.modelHash, item.manifestDigest), true);
      assert.equal(await registry.manifestCount(item.modelHash), 1n);
    }
    assert.equal(await registry.isRecorded(a.modelHash, b.manifestDigest), false);
    assert.equal(await registry.isRecorded(b.modelHash, a.manifestDigest), false);
    const later = attestation({ modelHash: b.modelHash });
    await (await registry.connect(publisher).publish([later])).wait();
    assert.equal((await registry.recordOf(later.manifestDigest))[0], b.modelHash);
    assert.deepEqual(await manifestsOf(b.modelHash, 0, 5), [b.manifestDigest, later.manifestDigest]);
  });
});

describe("ModelRegistry.revoke", () => {
  it("when a revoker revokes a recorded manifest, it emits AttestationRevoked and lookups show it revoked", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    const [, publishedAt] = await registry.recordOf(item.manifestDigest);
    const events = await eventsOf(registry.connect(revoker).revoke(item.manifestDigest, "signing key leaked"));
    assert.deepEqual(events, [{ name: "AttestationRevoked", args: [item.manifestDigest, "signing key leaked"] }]);
    assert.deepEqual([...(await registry.recordOf(item.manifestDigest))], [item.modelHash, publishedAt, 1n, true]);
    assert.equal(await registry.isRecorded(item.modelHash, item.manifestDigest), true);
    assert.equal(await registry.latestManifest(item.modelHash), item.manifestDigest);
  });

  it("when a revoked manifest is published again, it stays revoked and nothing is emitted", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    await (await registry.connect(revoker).revoke(item.manifestDigest, "bad")).wait();
    assert.deepEqual(await eventsOf(registry.connect(publisher).publish([item])), []);
    assert.equal((await registry.recordOf(item.manifestDigest))[3], true);
  });

  it("when a manifest is revoked twice, it reverts with ModelRegistryAlreadyRevoked(digest)", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    await (await registry.connect(revoker).revoke(item.manifestDigest, "")).wait();
    await assertRevert(
      () => registry.connect(revoker).revoke(item.manifestDigest, "again"),
      "ModelRegistryAlreadyRevoked",
      [item.manifestDigest],
    );
  });

  it("when the manifest is unknown, it reverts with ModelRegistryUnknownManifest(digest)", async () => {
    const digest = randomHash();
    await assertRevert(() => registry.connect(revoker).revoke(digest, "x"), "ModelRegistryUnknownManifest", [digest]);
    await assertRevert(() => registry.connect(revoker).revoke(ZeroHash, "x"), "ModelRegistryUnknownManifest", [
      ZeroHash,
    ]);
  });

  it("when a publisher or the admin without REVOKER_ROLE revokes, it reverts with AccessControlUnauthorizedAccount", async () => {
    const item = attestation();
    await (await registry.connect(publisher).publish([item])).wait();
    for (const account of [publisher, admin, stranger]) {
      await assertRevert(
        () => registry.connect(account).revoke(item.manifestDigest, "x"),
        "AccessControlUnauthorizedAccount",
        [account.address, REVOKER_ROLE],
      );
    }
  });
});

describe("ModelRegistry ROFL mode", () => {
  let subcall: SubcallMock;
  let snapshot: string;

  // The mock's storage would outlive a test at the fixed precompile address: each test starts from a snapshot.
  beforeEach(async () => {
    snapshot = (await connection.provider.request({ method: "evm_snapshot", params: [] })) as string;
    subcall = await installSubcallMock(connection);
  });

  afterEach(async () => {
    await connection.provider.request({ method: "evm_revert", params: [snapshot] });
  });

  it("when the admin sets the app id, it emits RoflAppIdChanged(previous, new) each time", async () => {
    assert.deepEqual(await eventsOf(registry.setRoflAppId(APP_ID)), [
      { name: "RoflAppIdChanged", args: [ZERO_APP_ID, APP_ID] },
    ]);
    assert.equal(await registry.roflAppId(), APP_ID);
    assert.deepEqual(await eventsOf(registry.setRoflAppId(OTHER_APP_ID)), [
      { name: "RoflAppIdChanged", args: [APP_ID, OTHER_APP_ID] },
    ]);
    assert.deepEqual(await eventsOf(registry.setRoflAppId(ZERO_APP_ID)), [
      { name: "RoflAppIdChanged", args: [OTHER_APP_ID, ZERO_APP_ID] },
    ]);
    assert.equal(await registry.roflAppId(), ZERO_APP_ID);
  });

  it("when a non-admin sets the app id, it reverts with AccessControlUnauthorizedAccount", async () => {
    await assertRevert(() => registry.connect(publisher).setRoflAppId(APP_ID), "AccessControlUnauthorizedAccount", [
      publisher.address,
      ZeroHash,
    ]);
  });

  it("when an app id is set, an authorized instance of that app publishes without PUBLISHER_ROLE", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    assert.equal(await registry.hasRole(PUBLISHER_ROLE, roflInstance.address), false);
    const item = attestation();
    const events = await eventsOf(registry.connect(roflInstance).publish([item]));
    assert.deepEqual(events, [{ name: "AttestationRecorded", args: recordedArgs(item) }]);
  });

  it("when an app id is set, a PUBLISHER_ROLE holder that is no instance of the app is refused", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await assertRevert(() => registry.connect(publisher).publish([attestation()]), "RoflOriginNotAuthorizedForApp", []);
  });

  it("when the origin is an instance of another app, it is refused", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(OTHER_APP_ID, roflInstance.address, true)).wait();
    await assertRevert(
      () => registry.connect(roflInstance).publish([attestation()]),
      "RoflOriginNotAuthorizedForApp",
      [],
    );
  });

  it("when the instance loses its authorization, it is refused again", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    await (await registry.connect(roflInstance).publish([attestation()])).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, false)).wait();
    await assertRevert(
      () => registry.connect(roflInstance).publish([attestation()]),
      "RoflOriginNotAuthorizedForApp",
      [],
    );
  });

  it("when the app id is cleared, publishing needs PUBLISHER_ROLE again and the ROFL instance is refused", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    await (await registry.setRoflAppId(ZERO_APP_ID)).wait();
    await (await registry.connect(publisher).publish([attestation()])).wait();
    await assertRevert(
      () => registry.connect(roflInstance).publish([attestation()]),
      "ModelRegistryUnauthorizedPublisher",
      [roflInstance.address],
    );
  });

  it("when the mock is asked directly, it answers like the precompile (status 0, CBOR true/false)", async () => {
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    const coder = connection.ethers.AbiCoder.defaultAbiCoder();
    const ask = async (method: string, body: string, from: string): Promise<unknown[]> => {
      const data = coder.encode(["string", "bytes"], [method, body]);
      const answer = await connection.ethers.provider.call({ to: subcall.target as string, data, from });
      return [...coder.decode(["uint64", "bytes"], answer)];
    };
    const body = "0x55" + APP_ID.slice(2);
    assert.deepEqual(await ask("rofl.IsAuthorizedOrigin", body, roflInstance.address), [0n, "0xf5"]);
    assert.deepEqual(await ask("rofl.IsAuthorizedOrigin", body, stranger.address), [0n, "0xf4"]);
    assert.notEqual((await ask("rofl.IsAuthorizedOrigin", "0x54" + APP_ID.slice(2), roflInstance.address))[0], 0n);
    assert.notEqual((await ask("rofl.OriginApp", "0xf6", roflInstance.address))[0], 0n);
  });
});

describe("ModelRegistry without a SUBCALL precompile", () => {
  it("when ROFL mode is on and no precompile answers, publish reverts", async () => {
    const bare = await connect();
    const [owner] = await bare.ethers.getSigners();
    const local = await deployRegistry(bare, owner);
    await (await local.grantRole(await local.PUBLISHER_ROLE(), owner.address)).wait();
    await (await local.setRoflAppId(APP_ID)).wait();
    await assert.rejects(async () => (await local.publish([attestation()])).wait());
  });
});

/** ERC-165 id of IModelRegistry: the XOR of its function selectors. */
function interfaceIdOfRegistry(): string {
  const names = [
    "PUBLISHER_ROLE()",
    "REVOKER_ROLE()",
    "MAX_BATCH_SIZE()",
    "publish((bytes32,bytes32,bytes32,bytes32,bytes32,uint64,uint8)[])",
    "revoke(bytes32,string)",
    "setRoflAppId(bytes21)",
    "roflAppId()",
    "isRecorded(bytes32,bytes32)",
    "latestManifest(bytes32)",
    "manifestCount(bytes32)",
    "manifestsOf(bytes32,uint256,uint256)",
    "recordOf(bytes32)",
  ];
  const id = names.reduce((acc, name) => acc ^ BigInt(keccakId(name).slice(0, 10)), 0n);
  return "0x" + id.toString(16).padStart(8, "0");
}
