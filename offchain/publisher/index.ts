// Publishes accepted records to the registry in batches. Exactly once: before sending, every record is looked up
// onchain (`isRecorded`), so a restart after a send that landed marks it published instead of sending it again,
// and the contract itself skips a manifest it already holds. A batch that reverts is split so that one bad record
// cannot hold back the others; a record that reverts alone is marked failed with its reason. Transient RPC errors
// leave the records accepted and are retried by the caller with backoff and jitter (see `backoffDelay`).
import { Interface, type JsonRpcProvider } from "ethers";
import type { Logger } from "pino";

import { MODEL_REGISTRY_ABI } from "../../lib/registry/abi.ts";
import { IoError } from "../../lib/errors.ts";
import { isTransient, toChainError, type TxSender } from "../chain/index.ts";
import { registryContract } from "../chain/registry.ts";
import type { AttestationRecord } from "../../lib/registry/record.ts";
import type { Store } from "../store/index.ts";

export const REGISTRY_INTERFACE = new Interface(MODEL_REGISTRY_ABI);

/** Gas for an explicit limit when the sender cannot estimate (rofl-appd): measured on Hardhat, with headroom. */
export const GAS_BASE = 60_000n;
export const GAS_PER_RECORD = 160_000n;

export interface PublisherOptions {
  store: Store;
  provider: JsonRpcProvider;
  sender: TxSender;
  registry: string;
  /** Records per transaction (at most the contract's MAX_BATCH_SIZE, 128). */
  maxBatch?: number;
  /** How long the oldest accepted record may wait for a fuller batch. */
  maxWaitMs?: number;
  logger?: Logger;
  now?: () => number;
  /** Called with push-to-record latency for each record this publisher saw land. */
  onPublished?: (latencyMs: number, count: number) => void;
}

export interface PublishOutcome {
  published: number;
  alreadyRecorded: number;
  failed: number;
  txHashes: string[];
  gasUsed: bigint;
}

/**
 * Reverts that one record causes (IModelRegistry's per-item errors): the batch is split and that record fails for
 * good. Any other refusal (the signer lacks PUBLISHER_ROLE, the ROFL origin is not authorised, funds or gas ran
 * out, a revert that cannot be read) is not the records' fault: they stay accepted and are retried with backoff.
 */
const RECORD_LEVEL_ERRORS: ReadonlySet<string> = new Set([
  "ModelRegistryZeroModelHash",
  "ModelRegistryZeroManifestDigest",
  "ModelRegistryZeroMeasurementHash",
  "ModelRegistryZeroPolicyDigest",
  "ModelRegistryMissingParent",
  "ModelRegistryUnexpectedParent",
  "ModelRegistryUnknownKind",
  // A serving record (kind 3) without its log id in parentModelHash (the pipeline always sets it).
  "ModelRegistryMissingLogId",
]);

/** The registry's custom error named by a revert's data, wherever ethers, the node or rofl-appd put it. */
export function registryErrorName(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current !== null && typeof current === "object" && depth < 8; depth++) {
    const e = current as {
      data?: unknown;
      details?: { data?: unknown };
      info?: { error?: { data?: unknown } };
      error?: { data?: unknown };
      cause?: unknown;
    };
    for (const data of [e.data, e.details?.data, e.info?.error?.data, e.error?.data]) {
      if (typeof data !== "string" || !/^0x[0-9a-fA-F]{8}/.test(data)) continue;
      try {
        const parsed = REGISTRY_INTERFACE.parseError(data);
        if (parsed !== null) return parsed.name;
      } catch {
        // not one of the registry's errors
      }
    }
    current = e.cause ?? e.error;
  }
  return undefined;
}

export function toTuple(r: AttestationRecord): [string, string, string, string, string, bigint, number] {
  return [
    r.modelHash,
    r.manifestDigest,
    r.parentModelHash,
    r.measurementHash,
    r.policyDigest,
    BigInt(r.reportedTcb),
    r.kind,
  ];
}

/** Full-jitter exponential backoff: a random delay in [base·2^attempt / 2, base·2^attempt], capped. */
export function backoffDelay(
  attempt: number,
  baseMs = 500,
  maxMs = 30_000,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export class Publisher {
  readonly #o: Required<Omit<PublisherOptions, "logger" | "onPublished">> &
    Pick<PublisherOptions, "logger" | "onPublished">;
  readonly #registry;
  #stopping = false;
  /** Record manifest digest (0x…) → the store's key for it (the verdict's manifest digest). */
  readonly #keys = new Map<string, string>();

  constructor(options: PublisherOptions) {
    this.#o = {
      maxBatch: 64,
      maxWaitMs: 2_000,
      now: () => Date.now(),
      ...options,
    };
    if (this.#o.maxBatch < 1 || this.#o.maxBatch > 128) throw new RangeError("maxBatch must be 1..128");
    this.#registry = registryContract(options.registry, options.provider);
  }

  /** Asks in-flight work to stop after the current transaction (graceful shutdown). */
  stop(): void {
    this.#stopping = true;
  }

  /** True when a batch is full or its oldest record has waited long enough. */
  isDue(): boolean {
    const pending = this.#o.store.pendingRecords(this.#o.maxBatch);
    if (pending.length === 0) return false;
    if (pending.length >= this.#o.maxBatch) return true;
    const oldest = Date.parse(pending[0]!.seenAt);
    return this.#o.now() - oldest >= this.#o.maxWaitMs;
  }

  /**
   * Publishes one batch of pending records. Throws a transient coded error (RPC_UNAVAILABLE) when the chain cannot
   * be reached; the records stay accepted and the next call picks them up again.
   */
  async publishBatch(): Promise<PublishOutcome> {
    const outcome: PublishOutcome = { published: 0, alreadyRecorded: 0, failed: 0, txHashes: [], gasUsed: 0n };
    const pending = this.#o.store.pendingRecords(this.#o.maxBatch);
    if (pending.length === 0) return outcome;
    this.#keys.clear(); // only this batch's keys are needed: the map stays bounded by maxBatch
    for (const p of pending) this.#keys.set(p.record.manifestDigest, p.manifestDigest);
    const seenAt = new Map(pending.map((p) => [p.record.manifestDigest, Date.parse(p.seenAt)]));
    const toSend = await this.#dropRecorded(
      pending.map((p) => p.record),
      outcome,
    );
    if (toSend.length > 0 && !this.#stopping) await this.#send(toSend, outcome, seenAt);
    return outcome;
  }

  /** Marks records already onchain as published (with the tx that recorded them) and returns the others. */
  async #dropRecorded(records: AttestationRecord[], outcome: PublishOutcome): Promise<AttestationRecord[]> {
    let flags: boolean[];
    try {
      flags = await Promise.all(
        records.map((r) => this.#registry.getFunction("isRecorded")(r.modelHash, r.manifestDigest) as Promise<boolean>),
      );
    } catch (error) {
      throw toChainError(error, "isRecorded");
    }
    const remaining: AttestationRecord[] = [];
    for (const [i, record] of records.entries()) {
      if (flags[i] !== true) {
        remaining.push(record);
        continue;
      }
      const where = await this.#findRecordingTx(record.manifestDigest);
      outcome.alreadyRecorded += this.#o.store.markPublished([this.#key(record)], where.txHash, where.block);
      this.#o.logger?.info({ manifestDigest: record.manifestDigest, ...where }, "already recorded onchain");
    }
    return remaining;
  }

  #key(record: AttestationRecord): string {
    return this.#keys.get(record.manifestDigest) ?? record.manifestDigest;
  }

  /**
   * The transaction that recorded a manifest, from its AttestationRecorded event. `fromBlock` keeps the query within
   * the block ranges public RPCs accept when the send is known to be recent (rofl-appd returns no tx hash).
   */
  async #findRecordingTx(
    manifestDigest: string,
    fromBlock = 0,
  ): Promise<{ txHash: string | null; block: number | null }> {
    try {
      const filter = this.#registry.filters.AttestationRecorded!(null, manifestDigest);
      const logs = await this.#registry.queryFilter(filter, fromBlock, "latest");
      const log = logs[0];
      return log === undefined
        ? { txHash: null, block: null }
        : { txHash: log.transactionHash, block: log.blockNumber };
    } catch {
      return { txHash: null, block: null }; // the record is onchain either way; the tx hash is a convenience
    }
  }

  async #gasLimit(data: string, count: number): Promise<bigint> {
    const fallback = GAS_BASE + GAS_PER_RECORD * BigInt(count);
    if (this.#o.sender.kind === "rofl" || this.#o.sender.address === undefined) return fallback;
    try {
      const estimate = await this.#o.provider.estimateGas({
        from: this.#o.sender.address,
        to: this.#o.registry,
        data,
      });
      return (estimate * 12n) / 10n + 10_000n;
    } catch (error) {
      // A revert in estimation is a revert: no gas is spent finding out again. The batch gets split by the caller.
      throw toChainError(error, "estimating gas");
    }
  }

  async #send(records: AttestationRecord[], outcome: PublishOutcome, seenAt: Map<string, number>): Promise<void> {
    const digests = records.map((r) => r.manifestDigest);
    const data = REGISTRY_INTERFACE.encodeFunctionData("publish", [records.map(toTuple)]);
    const log = this.#o.logger?.child({ batch: records.length });
    try {
      const gasLimit = await this.#gasLimit(data, records.length);
      const sentAfter = this.#o.sender.kind === "rofl" ? await this.#o.provider.getBlockNumber() : 0;
      const sent = await this.#o.sender.send({ to: this.#o.registry, data, gasLimit });
      let { txHash, block } = sent;
      if (txHash === null) ({ txHash, block } = await this.#findRecordingTx(digests[0]!, sentAfter));
      const count = this.#o.store.markPublished(
        records.map((r) => this.#key(r)),
        txHash,
        block,
      );
      outcome.published += count;
      if (txHash !== null) outcome.txHashes.push(txHash);
      outcome.gasUsed += sent.gasUsed ?? 0n;
      const now = this.#o.now();
      for (const d of digests) this.#o.onPublished?.(now - (seenAt.get(d) ?? now), 1);
      log?.info({ txHash, block, gasUsed: sent.gasUsed?.toString(), records: count }, "batch published");
    } catch (error) {
      if (isTransient(error)) {
        this.#o.store.noteAttempt(
          records.map((r) => this.#key(r)),
          error instanceof Error ? error.message : String(error),
        );
        throw error;
      }
      const reason = registryErrorName(error);
      if (reason === undefined || !RECORD_LEVEL_ERRORS.has(reason)) {
        const message = `publish refused (${reason ?? (error instanceof Error ? error.message : String(error))})`;
        this.#o.store.noteAttempt(
          records.map((r) => this.#key(r)),
          message,
        );
        throw new IoError("PUBLISH_FAILED", `${message}; the records stay accepted and are retried`, { cause: error });
      }
      // Some of the batch may have landed meanwhile (an unclear answer): never send those again.
      const rest = await this.#dropRecorded(records, outcome);
      if (rest.length === 0) return;
      if (rest.length > 1) {
        // Split the batch: the bad record is found in log2(n) rounds and the others still go through.
        log?.warn({ err: error, reason }, "batch refused; splitting");
        const half = Math.ceil(rest.length / 2);
        await this.#send(rest.slice(0, half), outcome, seenAt);
        await this.#send(rest.slice(half), outcome, seenAt);
        return;
      }
      // One record refused on its own for a reason of its own: it fails for good with that reason.
      records = rest;
      const coded = toChainError(error, "publish");
      outcome.failed += this.#o.store.markFailed(
        records.map((r) => this.#key(r)),
        { code: coded.code, message: coded.message },
      );
      log?.error({ manifestDigest: digests[0], code: coded.code }, "record refused by the chain");
    }
  }
}
