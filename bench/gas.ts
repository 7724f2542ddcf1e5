// Gas used by ModelRegistry on Hardhat's in-process EDR network (Shanghai rules, like Sapphire's EVM): one publish of
// one record, batches of 10 and 100 records for new models, a batch of 100 second manifests for known models, a
// revoke, a serving record (kind 3: it registers its log), and anchorCheckpoint on that log (its first checkpoint, a
// later one, and one at a 2^40-receipt tree: the cost must not depend on the epoch size, nor on being the first).
// Per-record figures are the whole transaction's gasUsed (21,000 base and calldata included) divided by the batch
// size. Digests are deterministic and gas too, so one run is enough. Writes bench/results/gas.json.
// Usage: node bench/gas.ts
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus, platform, release } from "node:os";
import { fileURLToPath } from "node:url";

import { MODEL_REGISTRY_COMPILER } from "../lib/registry/abi.ts";
import { KIND_SERVING, attestation, connect, deployRegistry } from "../test/registry-fixture.ts";
import type { AttestationInput } from "../test/registry-fixture.ts";

/** The figures the issues ask for (gas), with their ceilings; anchorGas is per checkpoint, whatever the epoch size. */
const TARGETS = {
  publishSingle: 125_000,
  perRecordBatch100: 100_000,
  perRecordExistingModel: 80_000,
  anchorGas: 60_000,
} as const;

const connection = await connect();
const [admin, publisher, revoker] = await connection.ethers.getSigners();
const registry = await deployRegistry(connection, admin);
await (await registry.grantRole(await registry.PUBLISHER_ROLE(), publisher.address)).wait();
await (await registry.grantRole(await registry.REVOKER_ROLE(), revoker.address)).wait();
const asPublisher = registry.connect(publisher);

async function publishGas(items: AttestationInput[]): Promise<number> {
  const receipt = await (await asPublisher.publish(items)).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("publish failed");
  return Number(receipt.gasUsed);
}

// Deterministic digests (SHA-256 of a counter), so that calldata, and with it the figures, repeat exactly.
let counter = 0;
const digest = (): string => `0x${createHash("sha256").update(`provenant bench ${counter++}`).digest("hex")}`;
const record = (modelHash = digest()): AttestationInput =>
  attestation({
    modelHash,
    manifestDigest: digest(),
    parentModelHash: digest(),
    measurementHash: digest(),
    policyDigest: digest(),
  });
const newModels = (n: number): AttestationInput[] => Array.from({ length: n }, () => record());

// Warm-up: the very first publish is no different (no global counters), but keep the measured ones typical.
await publishGas(newModels(1));
const publishSingle = await publishGas(newModels(1));
const perRecordBatch10 = (await publishGas(newModels(10))) / 10;
const batch100 = newModels(100);
const perRecordBatch100 = (await publishGas(batch100)) / 100;
const perRecordExistingModel = (await publishGas(batch100.map((item) => record(item.modelHash)))) / 100;
const existingModelSingle = await publishGas([record(batch100[0].modelHash)]);
const republishBatch100 = (await publishGas(batch100)) / 100;
const revokeReceipt = await (
  await registry.connect(revoker).revoke(batch100[1].manifestDigest, "signing key compromised")
).wait();
const revoke = Number(revokeReceipt?.gasUsed ?? 0);

// A serving record registers its log (logId in parentModelHash): for a model already recorded, as `provenant serve`
// requires, and for a model the registry has not seen (two more fresh slots).
const logId = digest();
const servingRecord = (modelHash: string, log: string): AttestationInput => ({
  ...record(modelHash),
  parentModelHash: log,
  kind: KIND_SERVING,
});
const publishServing = await publishGas([servingRecord(batch100[2].modelHash, logId)]);
const publishServingNewModel = await publishGas([servingRecord(digest(), digest())]);

// Checkpoints of that log: the first (it updates the head its serving record created), then later ones.
async function anchorGas(logId: string, treeSize: bigint): Promise<number> {
  const receipt = await (await asPublisher.anchorCheckpoint(logId, treeSize, digest())).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("anchorCheckpoint failed");
  return Number(receipt.gasUsed);
}
const anchorGasFirst = await anchorGas(logId, 1_000n);
const anchorGasLater = await anchorGas(logId, 2_000n);
const anchorGasLargeTree = await anchorGas(logId, 1n << 40n);

const result = {
  publishSingle,
  perRecordBatch10: Math.round(perRecordBatch10),
  perRecordBatch100: Math.round(perRecordBatch100),
  perRecordExistingModel: Math.round(perRecordExistingModel),
  existingModelSingle,
  perRecordRepublishBatch100: Math.round(republishBatch100),
  revoke,
  publishServing,
  publishServingNewModel,
  anchorGas: Math.max(anchorGasFirst, anchorGasLater, anchorGasLargeTree),
  anchorGasFirst,
  anchorGasLater,
  anchorGasLargeTree,
  targets: TARGETS,
  conditions: `Hardhat ${connection.networkName} network (EDR, hardfork shanghai), solc ${MODEL_REGISTRY_COMPILER.version}, optimizer runs ${MODEL_REGISTRY_COMPILER.optimizer.runs}; whole-transaction gasUsed, per record = tx gas / batch size`,
  machine: `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${platform()} ${release()}, Node ${process.version}`,
  date: new Date().toISOString(),
};

const rows: [string, number, number | undefined][] = [
  ["publishSingle (1 record, whole tx)", result.publishSingle, TARGETS.publishSingle],
  ["perRecordBatch10 (new models)", result.perRecordBatch10, undefined],
  ["perRecordBatch100 (new models)", result.perRecordBatch100, TARGETS.perRecordBatch100],
  ["perRecordExistingModel (batch of 100)", result.perRecordExistingModel, TARGETS.perRecordExistingModel],
  ["existingModelSingle (1 record, whole tx)", result.existingModelSingle, undefined],
  ["perRecordRepublishBatch100 (all known)", result.perRecordRepublishBatch100, undefined],
  ["revoke (whole tx)", result.revoke, undefined],
  ["publishServing (kind 3, known model)", result.publishServing, undefined],
  ["publishServingNewModel (kind 3, new model)", result.publishServingNewModel, undefined],
  ["anchorGas (worst of the three below)", result.anchorGas, TARGETS.anchorGas],
  ["anchorGasFirst (log's first checkpoint)", result.anchorGasFirst, TARGETS.anchorGas],
  ["anchorGasLater (next epoch, +1,000)", result.anchorGasLater, TARGETS.anchorGas],
  ["anchorGasLargeTree (2^40 receipts)", result.anchorGasLargeTree, TARGETS.anchorGas],
];
console.log(`${"measurement".padEnd(44)}${"gas".padStart(10)}${"target".padStart(10)}  ok`);
for (const [name, gas, target] of rows) {
  const ok = target === undefined ? "" : gas <= target ? "yes" : "NO";
  console.log(
    `${name.padEnd(44)}${gas.toLocaleString("en-US").padStart(10)}${(target?.toLocaleString("en-US") ?? "").padStart(10)}  ${ok}`,
  );
}
const out = fileURLToPath(new URL("./results/gas.json", import.meta.url));
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`wrote ${out}`);
await connection.close();
