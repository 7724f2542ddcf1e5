// ModelRegistry on the in-process Hardhat network: every function, revert (custom error and arguments) and event
// (with arguments), pagination edges, idempotent re-publish, roles and the admin rules, one-way ROFL mode against a
// SUBCALL mock, serving records (kind 3, which register their log) and anchored checkpoints (registered logs only).
// Time moves only through the chain's own clock.
import assert from "node:assert/strict";
import { afterEach, before, beforeEach, describe, it } from "node:test";

import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { ZeroAddress, ZeroHash, id as keccakId } from "ethers";
import type { ContractTransactionResponse, Log } from "ethers";

import {
  KIND_AUDIT,
  KIND_FINETUNE,
  KIND_SERVING,
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
const MAX_UINT64 = (1n << 64n) - 1n;
const TWO_DAYS = 2n * 24n * 60n * 60n;

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

/** A serving record (kind 3) for `logId`: the log id travels in `parentModelHash`. */
function serving(logId: string, overrides: Partial<AttestationInput> = {}): AttestationInput {
  return attestation({ kind: KIND_SERVING, parentModelHash: logId, ...overrides });
}

/** Publishes a serving record for a fresh log, which registers it; returns the log id and the record. */
async function registerLog(
  overrides: Partial<AttestationInput> = {},
): Promise<{ logId: string; item: AttestationInput }> {
  const logId = randomHash();
  const item = serving(logId, overrides);
  await (await registry.connect(publisher).publish([item])).wait();
  return { logId, item };
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

/** Makes the next block's timestamp exactly `timestamp` (the chain's clock, never the machine's). */
async function setNextBlockTimestamp(timestamp: bigint): Promise<void> {
  await connection.provider.request({ method: "evm_setNextBlockTimestamp", params: [Number(timestamp)] });
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
    assert.deepEqual([...(await fresh.pendingRoflAppId())], [ZERO_APP_ID, 0n]);
    assert.equal(await fresh.defaultAdmin(), admin.address);
    assert.equal(await fresh.owner(), admin.address);
    assert.equal(await fresh.defaultAdminDelay(), 0n);
  });

  it("when deployed with an admin delay, it reports that delay", async () => {
    const fresh = await deployRegistry(connection, admin, TWO_DAYS);
    assert.equal(await fresh.defaultAdminDelay(), TWO_DAYS);
    assert.equal(await fresh.defaultAdminDelayIncreaseWait(), 5n * 24n * 60n * 60n);
  });

  it("when the admin address is zero, the constructor reverts with ModelRegistryZeroAdmin", async () => {
    const factory = await connection.ethers.getContractFactory(
      registry.interface.fragments as unknown as unknown[],
      (await import("../lib/registry/abi.ts")).MODEL_REGISTRY_BYTECODE,
      admin,
    );
    await assertRevert(() => factory.deploy("0x" + "00".repeat(20), 0), "ModelRegistryZeroAdmin", []);
  });

  it("when asked for interfaces, it supports IModelRegistry, IAccessControl(DefaultAdminRules) and ERC-165 only", async () => {
    const ids = ["0x01ffc9a7", "0x7965db0b", "0x31498786"];
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

describe("ModelRegistry admin rules (AccessControlDefaultAdminRules)", () => {
  let governed: Registry;

  beforeEach(async () => {
    governed = await deployRegistry(connection, admin, TWO_DAYS);
  });

  it("when anyone grants or revokes DEFAULT_ADMIN_ROLE directly, it reverts with AccessControlEnforcedDefaultAdminRules", async () => {
    await assertRevert(
      () => governed.grantRole(ZeroHash, stranger.address),
      "AccessControlEnforcedDefaultAdminRules",
      [],
    );
    await assertRevert(
      () => governed.revokeRole(ZeroHash, admin.address),
      "AccessControlEnforcedDefaultAdminRules",
      [],
    );
  });

  it("when the admin starts a transfer, it emits DefaultAdminTransferScheduled(newAdmin, now + delay)", async () => {
    const at = (await latestTimestamp()) + 10n;
    await setNextBlockTimestamp(at);
    const events = await eventsOf(governed.beginDefaultAdminTransfer(stranger.address));
    assert.deepEqual(events, [{ name: "DefaultAdminTransferScheduled", args: [stranger.address, at + TWO_DAYS] }]);
    assert.deepEqual([...(await governed.pendingDefaultAdmin())], [stranger.address, at + TWO_DAYS]);
  });

  it("when the new admin accepts before the schedule, it reverts with AccessControlEnforcedDefaultAdminDelay(schedule)", async () => {
    await (await governed.beginDefaultAdminTransfer(stranger.address)).wait();
    const [, schedule] = await governed.pendingDefaultAdmin();
    await setNextBlockTimestamp(schedule);
    await assertRevert(
      () => governed.connect(stranger).acceptDefaultAdminTransfer(),
      "AccessControlEnforcedDefaultAdminDelay",
      [schedule],
    );
  });

  it("when another account accepts the transfer, it reverts with AccessControlInvalidDefaultAdmin(account)", async () => {
    await (await governed.beginDefaultAdminTransfer(stranger.address)).wait();
    await assertRevert(
      () => governed.connect(publisher).acceptDefaultAdminTransfer(),
      "AccessControlInvalidDefaultAdmin",
      [publisher.address],
    );
  });

  it("when the new admin accepts after the schedule, the role moves with RoleRevoked and RoleGranted", async () => {
    await (await governed.beginDefaultAdminTransfer(stranger.address)).wait();
    const [, schedule] = await governed.pendingDefaultAdmin();
    await setNextBlockTimestamp(schedule + 1n);
    const events = await eventsOf(governed.connect(stranger).acceptDefaultAdminTransfer());
    assert.deepEqual(events, [
      { name: "RoleRevoked", args: [ZeroHash, admin.address, stranger.address] },
      { name: "RoleGranted", args: [ZeroHash, stranger.address, stranger.address] },
    ]);
    assert.equal(await governed.defaultAdmin(), stranger.address);
    assert.equal(await governed.hasRole(ZeroHash, admin.address), false);
    assert.deepEqual([...(await governed.pendingDefaultAdmin())], [ZeroAddress, 0n]);
  });

  it("when the admin cancels a transfer, it emits DefaultAdminTransferCanceled and nothing is pending", async () => {
    await (await governed.beginDefaultAdminTransfer(stranger.address)).wait();
    assert.deepEqual(await eventsOf(governed.cancelDefaultAdminTransfer()), [
      { name: "DefaultAdminTransferCanceled", args: [] },
    ]);
    assert.deepEqual([...(await governed.pendingDefaultAdmin())], [ZeroAddress, 0n]);
  });

  it("when the admin shortens the delay, it emits DefaultAdminDelayChangeScheduled and waits the difference", async () => {
    const at = (await latestTimestamp()) + 10n;
    await setNextBlockTimestamp(at);
    assert.deepEqual(await eventsOf(governed.changeDefaultAdminDelay(3600)), [
      { name: "DefaultAdminDelayChangeScheduled", args: [3600n, at + TWO_DAYS - 3600n] },
    ]);
    assert.deepEqual([...(await governed.pendingDefaultAdminDelay())], [3600n, at + TWO_DAYS - 3600n]);
    assert.equal(await governed.defaultAdminDelay(), TWO_DAYS);
    assert.deepEqual(await eventsOf(governed.rollbackDefaultAdminDelay()), [
      { name: "DefaultAdminDelayChangeCanceled", args: [] },
    ]);
    assert.equal(await governed.defaultAdminDelay(), TWO_DAYS);
  });

  it("when a non-admin starts a transfer or changes the delay, it reverts with AccessControlUnauthorizedAccount", async () => {
    for (const action of [
      () => governed.connect(stranger).beginDefaultAdminTransfer(stranger.address),
      () => governed.connect(stranger).cancelDefaultAdminTransfer(),
      () => governed.connect(stranger).changeDefaultAdminDelay(0),
      () => governed.connect(stranger).rollbackDefaultAdminDelay(),
    ]) {
      await assertRevert(action, "AccessControlUnauthorizedAccount", [stranger.address, ZeroHash]);
    }
  });

  it("when the admin renounces without an announced transfer to zero, it reverts with AccessControlEnforcedDefaultAdminDelay(0)", async () => {
    await assertRevert(() => governed.renounceRole(ZeroHash, admin.address), "AccessControlEnforcedDefaultAdminDelay", [
      0n,
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

  it("when a serving record is published, it records kind 3 among the model's manifests and registers its log", async () => {
    const audit = attestation({ kind: KIND_AUDIT, parentModelHash: ZeroHash });
    const logId = randomHash();
    const item = serving(logId, { modelHash: audit.modelHash });
    assert.equal(await registry.logOf(logId), ZeroHash);
    const events = await eventsOf(registry.connect(publisher).publish([audit, item]));
    // The log id is the event's third topic: a receipt's log finds its serving record.
    assert.deepEqual(events, [
      { name: "AttestationRecorded", args: recordedArgs(audit) },
      {
        name: "AttestationRecorded",
        args: [item.modelHash, item.manifestDigest, logId, 3n, ...recordedArgs(item).slice(4)],
      },
    ]);
    const publishedAt = await latestTimestamp();
    assert.deepEqual([...(await registry.recordOf(item.manifestDigest))], [item.modelHash, publishedAt, 3n, false]);
    assert.equal(await registry.latestManifest(item.modelHash), item.manifestDigest);
    assert.deepEqual(await manifestsOf(item.modelHash, 0, 10), [audit.manifestDigest, item.manifestDigest]);
    assert.equal(await registry.logOf(logId), item.manifestDigest);
    assert.deepEqual([...(await registry.latestCheckpoint(logId))], [0n, ZeroHash, 0n]);
    assert.deepEqual(await eventsOf(registry.connect(publisher).publish([item])), []);
    assert.deepEqual(await eventsOf(registry.connect(revoker).revoke(item.manifestDigest, "serving key leaked")), [
      { name: "AttestationRevoked", args: [item.manifestDigest, "serving key leaked"] },
    ]);
    assert.equal((await registry.recordOf(item.manifestDigest))[3], true);
    // Revocation does not unregister: receipts issued before it can still be anchored; readers check recordOf.
    assert.equal(await registry.logOf(logId), item.manifestDigest);
  });

  it("when two serving records name one log, the first keeps it and the second is recorded without taking it", async () => {
    const logId = randomHash();
    const first = serving(logId);
    const second = serving(logId, { modelHash: first.modelHash });
    const third = serving(logId);
    await (await registry.connect(publisher).publish([first, second])).wait();
    await (await registry.connect(publisher).publish([third])).wait();
    assert.equal(await registry.logOf(logId), first.manifestDigest);
    assert.equal(await registry.manifestCount(first.modelHash), 2n);
    assert.equal((await registry.recordOf(third.manifestDigest))[2], 3n);
  });

  it("when a recorded serving manifest comes again naming another log, it is skipped and registers nothing", async () => {
    const { item } = await registerLog();
    const otherLog = randomHash();
    assert.deepEqual(await eventsOf(registry.connect(publisher).publish([{ ...item, parentModelHash: otherLog }])), []);
    assert.equal(await registry.logOf(otherLog), ZeroHash);
  });

  it("when a fine-tune's parent equals a log id, it registers no log", async () => {
    const logId = randomHash();
    await (await registry.connect(publisher).publish([attestation({ parentModelHash: logId })])).wait();
    assert.equal(await registry.logOf(logId), ZeroHash);
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
    { when: "kind 4", item: { kind: 4 }, error: "ModelRegistryUnknownKind", args: (i) => [i, 4n] },
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
    {
      when: "a serving record without a log id",
      item: { kind: KIND_SERVING, parentModelHash: ZeroHash },
      error: "ModelRegistryMissingLogId",
      args: (i) => [i],
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

  it("when the admin sets the first app id, it takes effect at once with RoflAppIdChanged(0, new)", async () => {
    assert.deepEqual(await eventsOf(registry.setRoflAppId(APP_ID)), [
      { name: "RoflAppIdChanged", args: [ZERO_APP_ID, APP_ID] },
    ]);
    assert.equal(await registry.roflAppId(), APP_ID);
  });

  it("when the first app id is zero, it reverts with ModelRegistryZeroRoflAppId", async () => {
    await assertRevert(() => registry.setRoflAppId(ZERO_APP_ID), "ModelRegistryZeroRoflAppId", []);
  });

  it("when an app id is set, setRoflAppId reverts with ModelRegistryRoflAppIdAlreadySet(current), zero included", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    for (const next of [OTHER_APP_ID, ZERO_APP_ID, APP_ID]) {
      await assertRevert(
        () => registry.setRoflAppId(next),
        next === ZERO_APP_ID ? "ModelRegistryZeroRoflAppId" : "ModelRegistryRoflAppIdAlreadySet",
        next === ZERO_APP_ID ? [] : [APP_ID],
      );
    }
    assert.equal(await registry.roflAppId(), APP_ID);
  });

  it("when a replacement is proposed, it emits RoflAppIdChangeScheduled(new, now + delay) and changes nothing yet", async () => {
    const governed = await deployRegistry(connection, admin, TWO_DAYS);
    await (await governed.setRoflAppId(APP_ID)).wait();
    const at = (await latestTimestamp()) + 10n;
    await setNextBlockTimestamp(at);
    assert.deepEqual(await eventsOf(governed.proposeRoflAppId(OTHER_APP_ID)), [
      { name: "RoflAppIdChangeScheduled", args: [OTHER_APP_ID, at + TWO_DAYS] },
    ]);
    assert.deepEqual([...(await governed.pendingRoflAppId())], [OTHER_APP_ID, at + TWO_DAYS]);
    assert.equal(await governed.roflAppId(), APP_ID);
  });

  it("when a replacement is accepted before its time, it reverts with ModelRegistryRoflAppIdChangeNotReady(effectiveAt, now)", async () => {
    const governed = await deployRegistry(connection, admin, TWO_DAYS);
    await (await governed.setRoflAppId(APP_ID)).wait();
    await (await governed.proposeRoflAppId(OTHER_APP_ID)).wait();
    const [, effectiveAt] = await governed.pendingRoflAppId();
    await setNextBlockTimestamp(effectiveAt - 1n);
    await assertRevert(() => governed.acceptRoflAppId(), "ModelRegistryRoflAppIdChangeNotReady", [
      effectiveAt,
      effectiveAt - 1n,
    ]);
    assert.equal(await governed.roflAppId(), APP_ID);
  });

  it("when a replacement is accepted at its time, it emits RoflAppIdChanged(previous, new) and nothing stays pending", async () => {
    const governed = await deployRegistry(connection, admin, TWO_DAYS);
    await (await governed.setRoflAppId(APP_ID)).wait();
    await (await governed.proposeRoflAppId(OTHER_APP_ID)).wait();
    const [, effectiveAt] = await governed.pendingRoflAppId();
    await setNextBlockTimestamp(effectiveAt);
    assert.deepEqual(await eventsOf(governed.acceptRoflAppId()), [
      { name: "RoflAppIdChanged", args: [APP_ID, OTHER_APP_ID] },
    ]);
    assert.equal(await governed.roflAppId(), OTHER_APP_ID);
    assert.deepEqual([...(await governed.pendingRoflAppId())], [ZERO_APP_ID, 0n]);
  });

  it("when a newer replacement is proposed, it emits RoflAppIdChangeCanceled(old) then RoflAppIdChangeScheduled(new)", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await registry.proposeRoflAppId(OTHER_APP_ID)).wait();
    const third = "0x00" + "abcdef".repeat(6) + "0303";
    const events = await eventsOf(registry.proposeRoflAppId(third));
    const at = await latestTimestamp();
    assert.deepEqual(events, [
      { name: "RoflAppIdChangeCanceled", args: [OTHER_APP_ID] },
      { name: "RoflAppIdChangeScheduled", args: [third, at] },
    ]);
  });

  it("when a pending replacement is cancelled, it emits RoflAppIdChangeCanceled(new) and can no longer be accepted", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await registry.proposeRoflAppId(OTHER_APP_ID)).wait();
    assert.deepEqual(await eventsOf(registry.cancelRoflAppId()), [
      { name: "RoflAppIdChangeCanceled", args: [OTHER_APP_ID] },
    ]);
    await assertRevert(() => registry.acceptRoflAppId(), "ModelRegistryNoPendingRoflAppId", []);
    await assertRevert(() => registry.cancelRoflAppId(), "ModelRegistryNoPendingRoflAppId", []);
    assert.equal(await registry.roflAppId(), APP_ID);
  });

  it("when a replacement is zero, the current id, or proposed with ROFL mode off, it reverts with its error", async () => {
    await assertRevert(() => registry.proposeRoflAppId(OTHER_APP_ID), "ModelRegistryRoflAppIdNotSet", []);
    await (await registry.setRoflAppId(APP_ID)).wait();
    await assertRevert(() => registry.proposeRoflAppId(ZERO_APP_ID), "ModelRegistryZeroRoflAppId", []);
    await assertRevert(() => registry.proposeRoflAppId(APP_ID), "ModelRegistryRoflAppIdUnchanged", [APP_ID]);
    assert.deepEqual([...(await registry.pendingRoflAppId())], [ZERO_APP_ID, 0n]);
  });

  it("when a non-admin sets, proposes, accepts or cancels, it reverts with AccessControlUnauthorizedAccount", async () => {
    for (const action of [
      () => registry.connect(publisher).setRoflAppId(APP_ID),
      () => registry.connect(publisher).proposeRoflAppId(APP_ID),
      () => registry.connect(publisher).acceptRoflAppId(),
      () => registry.connect(publisher).cancelRoflAppId(),
    ]) {
      await assertRevert(action, "AccessControlUnauthorizedAccount", [publisher.address, ZeroHash]);
    }
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

  it("when the app id is replaced, the new app's instance publishes and the old one is refused", async () => {
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    await (await subcall.setAuthorized(OTHER_APP_ID, stranger.address, true)).wait();
    await (await registry.proposeRoflAppId(OTHER_APP_ID)).wait();
    await (await registry.acceptRoflAppId()).wait();
    await (await registry.connect(stranger).publish([attestation()])).wait();
    await assertRevert(
      () => registry.connect(roflInstance).publish([attestation()]),
      "RoflOriginNotAuthorizedForApp",
      [],
    );
  });

  it("when ROFL mode is on, only an instance of the app anchors a checkpoint, PUBLISHER_ROLE alone is refused", async () => {
    const { logId } = await registerLog();
    await (await registry.setRoflAppId(APP_ID)).wait();
    await (await subcall.setAuthorized(APP_ID, roflInstance.address, true)).wait();
    await assertRevert(
      () => registry.connect(publisher).anchorCheckpoint(logId, 1, randomHash()),
      "RoflOriginNotAuthorizedForApp",
      [],
    );
    const rootHash = randomHash();
    assert.deepEqual(await eventsOf(registry.connect(roflInstance).anchorCheckpoint(logId, 1, rootHash)), [
      { name: "CheckpointAnchored", args: [logId, 1n, rootHash] },
    ]);
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

describe("ModelRegistry.anchorCheckpoint", () => {
  it("when a publisher anchors a registered log, it emits CheckpointAnchored(logId, treeSize, rootHash) and the views answer", async () => {
    const { logId, item } = await registerLog();
    const rootHash = randomHash();
    const events = await eventsOf(registry.connect(publisher).anchorCheckpoint(logId, 1000, rootHash));
    assert.deepEqual(events, [{ name: "CheckpointAnchored", args: [logId, 1000n, rootHash] }]);
    const anchoredAt = await latestTimestamp();
    assert.equal(await registry.checkpointRoot(logId, 1000), rootHash);
    assert.equal(await registry.checkpointRoot(logId, 999), ZeroHash);
    assert.deepEqual([...(await registry.latestCheckpoint(logId))], [1000n, rootHash, anchoredAt]);
    assert.equal(await registry.logOf(logId), item.manifestDigest);
  });

  it("when a log no serving record registered is anchored, it reverts with ModelRegistryUnknownLog(logId) and stores nothing", async () => {
    await registerLog();
    const logId = randomHash();
    await assertRevert(
      () => registry.connect(publisher).anchorCheckpoint(logId, 1, randomHash()),
      "ModelRegistryUnknownLog",
      [logId],
    );
    assert.deepEqual([...(await registry.latestCheckpoint(logId))], [0n, ZeroHash, 0n]);
    assert.equal(await registry.checkpointRoot(logId, 1), ZeroHash);
  });

  it("when a log's first checkpoint is anchored, it costs no more than a later one (the head exists already)", async () => {
    const { logId } = await registerLog();
    const gas: bigint[] = [];
    for (const size of [1000n, 2000n]) {
      const receipt = await (await registry.connect(publisher).anchorCheckpoint(logId, size, randomHash())).wait();
      assert.ok(receipt !== null);
      gas.push(receipt.gasUsed);
    }
    assert.ok(gas[0]! <= gas[1]! + 100n, `first ${gas[0]} vs later ${gas[1]}`);
    assert.ok(gas[0]! <= 60_000n, `first checkpoint ${gas[0]} gas`);
  });

  it("when later checkpoints are anchored, every size keeps its root and the latest is the largest", async () => {
    const { logId } = await registerLog();
    const roots = [randomHash(), randomHash(), randomHash()];
    const sizes = [1n, 64n, MAX_UINT64];
    for (const [i, size] of sizes.entries()) {
      await (await registry.connect(publisher).anchorCheckpoint(logId, size, roots[i]!)).wait();
    }
    const anchoredAt = await latestTimestamp();
    for (const [i, size] of sizes.entries()) assert.equal(await registry.checkpointRoot(logId, size), roots[i]);
    assert.deepEqual([...(await registry.latestCheckpoint(logId))], [MAX_UINT64, roots[2], anchoredAt]);
  });

  it("when nothing was anchored for a log, the views answer zero", async () => {
    const logId = randomHash();
    assert.deepEqual([...(await registry.latestCheckpoint(logId))], [0n, ZeroHash, 0n]);
    assert.equal(await registry.checkpointRoot(logId, 0), ZeroHash);
    assert.equal(await registry.logOf(logId), ZeroHash);
  });

  it("when the tree size is not larger than the latest, it reverts with ModelRegistryCheckpointNotNewer(logId, size, latest)", async () => {
    const { logId } = await registerLog();
    const p = registry.connect(publisher);
    await assertRevert(() => p.anchorCheckpoint(logId, 0, randomHash()), "ModelRegistryCheckpointNotNewer", [
      logId,
      0n,
      0n,
    ]);
    const rootHash = randomHash();
    await (await p.anchorCheckpoint(logId, 10, rootHash)).wait();
    for (const size of [10n, 9n, 0n]) {
      await assertRevert(() => p.anchorCheckpoint(logId, size, randomHash()), "ModelRegistryCheckpointNotNewer", [
        logId,
        size,
        10n,
      ]);
    }
    assert.equal(await registry.checkpointRoot(logId, 10), rootHash);
  });

  it("when the log id or the root is zero, it reverts with ModelRegistryZeroLogId / ModelRegistryZeroRootHash(logId, size)", async () => {
    const { logId } = await registerLog();
    await assertRevert(
      () => registry.connect(publisher).anchorCheckpoint(ZeroHash, 1, randomHash()),
      "ModelRegistryZeroLogId",
      [],
    );
    for (const log of [logId, randomHash()]) {
      await assertRevert(
        () => registry.connect(publisher).anchorCheckpoint(log, 7, ZeroHash),
        "ModelRegistryZeroRootHash",
        [log, 7n],
      );
    }
  });

  it("when a non-publisher anchors, it reverts with ModelRegistryUnauthorizedPublisher(account)", async () => {
    const { logId } = await registerLog();
    for (const account of [stranger, admin, revoker]) {
      await assertRevert(
        () => registry.connect(account).anchorCheckpoint(logId, 1, randomHash()),
        "ModelRegistryUnauthorizedPublisher",
        [account.address],
      );
    }
  });

  it("when two logs are anchored, each keeps its own sizes", async () => {
    const [{ logId: a }, { logId: b }] = [await registerLog(), await registerLog()];
    await (await registry.connect(publisher).anchorCheckpoint(a, 100, randomHash())).wait();
    await (await registry.connect(publisher).anchorCheckpoint(b, 1, randomHash())).wait();
    assert.equal((await registry.latestCheckpoint(a))[0], 100n);
    assert.equal((await registry.latestCheckpoint(b))[0], 1n);
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
    "anchorCheckpoint(bytes32,uint64,bytes32)",
    "setRoflAppId(bytes21)",
    "proposeRoflAppId(bytes21)",
    "acceptRoflAppId()",
    "cancelRoflAppId()",
    "roflAppId()",
    "pendingRoflAppId()",
    "isRecorded(bytes32,bytes32)",
    "latestManifest(bytes32)",
    "manifestCount(bytes32)",
    "manifestsOf(bytes32,uint256,uint256)",
    "recordOf(bytes32)",
    "checkpointRoot(bytes32,uint64)",
    "logOf(bytes32)",
    "latestCheckpoint(bytes32)",
  ];
  const id = names.reduce((acc, name) => acc ^ BigInt(keccakId(name).slice(0, 10)), 0n);
  return "0x" + id.toString(16).padStart(8, "0");
}
