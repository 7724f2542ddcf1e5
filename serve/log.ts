// The receipt log of `provenant serve`: issues receipts (seq, prevReceipt, DSSE by S, a leaf of the RFC 6962 tree of
// S's log, committed before it is returned), closes epochs (a usage statement leaf, then a C2SP checkpoint signed by
// S, fsync'd before it is anchored), and at start recovers the logs of earlier serving identities of the same data
// directory, whose keys died with their process: their unsigned tail gets a checkpoint and a usage statement signed by
// the successor key. Seq numbers are reserved ahead in durable commits, so that none is issued twice even after an OS
// crash loses the last receipts' commits (docs/serving.md, Durability). One serial section orders every tree change.
import type { KeyObject } from "node:crypto";

import { MerkleTree, type Hash } from "../lib/merkle/index.ts";
import {
  MAX_USAGE_CLIENTS,
  OTHER_CLIENTS,
  ZERO_DIGEST,
  buildReceiptStatement,
  buildUsageStatement,
  encodeStatement,
  leafHashOfPayload,
  servingCheckpointText,
  sha256Hex,
  signServingCheckpoint,
  signStatementPayload,
  signStatementPayloadAsync,
  type Meters,
  type ReceiptInput,
  type ReceiptObject,
} from "../lib/receipt/index.ts";
import { IoError } from "../lib/errors.ts";
import type { CheckpointRow, LogRow, ServeStore } from "./store.ts";

export interface ServingIdentity {
  logId: string;
  privateKey: KeyObject;
  spki: Uint8Array;
  servingManifest: string;
  modelRoot: string;
  modelName: string;
  /** The serving bundle (GET /v1/attestation). */
  bundle: Uint8Array;
  startedAt: Date;
}

export interface EpochPolicy {
  maxReceipts: number;
  maxSeconds: number;
}

/** What an answer gives the log: its receipt's fields (lib/receipt) but those the log fills (model, log, seq, chain). */
export type IssueInput = Pick<
  ReceiptInput,
  "operation" | "salt" | "request" | "response" | "promptTokens" | "completionTokens" | "clientKeyId"
>;

export interface LogState {
  row: LogRow;
  tree: MerkleTree;
}

const toHex = (hash: Hash): string => Buffer.from(hash).toString("hex");

/**
 * Seq numbers reserved by one durable commit: the reservation's fsync is paid once per this many receipts, and a
 * crash leaves at most this many seq numbers unused (a gap in the seq, never a reuse).
 */
export const SEQ_RESERVATION = 1024;

export class ReceiptLog {
  readonly store: ServeStore;
  readonly identity: ServingIdentity;
  readonly #now: () => Date;
  readonly #epoch: EpochPolicy;
  readonly #reservation: number;
  readonly #logs = new Map<string, LogState>();
  #serial: Promise<unknown> = Promise.resolve();
  #nextSeq: number;
  /** No seq at or above this is handed out before the store durably reserves more (the store's mark, in memory). */
  #reservedThrough: number;
  #closed = false;
  #prevReceipt: string;
  #prevUsage: string;
  /** The current epoch: where its receipts start in this log, when it started, how many receipts it has. */
  #epochFrom = 0;
  #epochStart: Date;
  #epochReceipts = 0;
  /** Called after each checkpoint is stored (the anchorer listens). */
  onCheckpoint: (checkpoint: CheckpointRow) => void = () => {};
  /** Called when an epoch triggered by a receipt count fails to close (it is retried by the next trigger). */
  onError: (error: unknown) => void = () => {};
  /** Receipts issued by this process (for /metrics). */
  issued = 0;

  private constructor(
    store: ServeStore,
    identity: ServingIdentity,
    epoch: EpochPolicy,
    now: () => Date,
    reservation: number,
  ) {
    this.store = store;
    this.identity = identity;
    this.#epoch = epoch;
    this.#reservation = reservation;
    this.#now = now;
    const last = store.lastReceipt();
    this.#nextSeq = ReceiptLog.firstSeqOf(store);
    this.#reservedThrough = store.reservedThrough();
    this.#prevReceipt = last?.digest ?? ZERO_DIGEST;
    this.#prevUsage = store.lastUsage()?.digest ?? ZERO_DIGEST;
    this.#epochStart = identity.startedAt;
  }

  /**
   * The seq the next log's first receipt takes (its serving statement's log.firstSeq): after the data directory's
   * last receipt on disk and at or above the reserved mark, since a crashed life may have returned receipts up to it
   * that an OS crash then lost.
   */
  static firstSeqOf(store: ServeStore): number {
    const last = store.lastReceipt();
    return Math.max(last === undefined ? 0 : last.seq + 1, store.reservedThrough());
  }

  /** The predecessor a new serving statement names: the data directory's last receipt, if any. */
  static predecessorOf(store: ServeStore): { logId: string; lastSeq: number; lastReceipt: string } | undefined {
    const last = store.lastReceipt();
    return last === undefined ? undefined : { logId: last.logId, lastSeq: last.seq, lastReceipt: last.digest };
  }

  /**
   * Registers the new serving identity as a log, rebuilds every log's tree from the store, and recovers each earlier
   * log that is not closed yet (one durable transaction per log): a checkpoint over all its leaves signed by the new
   * key, and a usage statement for its unmetered receipts as a leaf of the new log.
   */
  static async open(
    store: ServeStore,
    identity: ServingIdentity,
    options: { epoch: EpochPolicy; now: () => Date; /** Default SEQ_RESERVATION. */ seqReservation?: number },
  ): Promise<ReceiptLog> {
    store.transaction(
      () =>
        store.insertLog({
          logId: identity.logId,
          publicKey: identity.spki,
          servingManifest: identity.servingManifest,
          modelRoot: identity.modelRoot,
          modelName: identity.modelName,
          startedAt: identity.startedAt.toISOString(),
          bundle: identity.bundle,
        }),
      { durable: true },
    );
    const log = new ReceiptLog(store, identity, options.epoch, options.now, options.seqReservation ?? SEQ_RESERVATION);
    for (const row of store.logs())
      log.#logs.set(row.logId, { row, tree: new MerkleTree(store.leafHashes(row.logId)) });
    for (const state of log.#logs.values()) {
      if (state.row.logId !== identity.logId && state.row.closedAt === null) await log.#recover(state);
    }
    return log;
  }

  get current(): LogState {
    return this.#logs.get(this.identity.logId)!;
  }

  /** Every log of the data directory, oldest first. */
  get logs(): LogState[] {
    return [...this.#logs.values()].sort((a, b) => a.row.ordinal - b.row.ordinal);
  }

  logState(logId: string): LogState | undefined {
    return this.#logs.get(logId);
  }

  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Runs `body` after everything queued before it: the one order of tree changes. */
  #inOrder<T>(body: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(body, body);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Issues the receipt of one answer: builds it with the next seq and prevReceipt, signs it with S (on this thread: a
   * P-256 signature takes about 0.1 ms, less than a hop to libuv's thread pool and back costs a waiting client),
   * commits it and appends it to the tree; resolves once it is committed (synchronous=NORMAL: it survives the process
   * dying; an OS crash may lose it, never its seq). Before the seq passes the reserved mark, the next
   * SEQ_RESERVATION seq numbers are reserved in a durable commit. SERVE_STORE_FAILED when the store cannot take it
   * (nothing is returned then, and the seq is taken by the next receipt); SERVE_UNAVAILABLE after close().
   */
  async issue(input: IssueInput): Promise<ReceiptObject> {
    const object = await this.#inOrder(async () => {
      if (this.#closed) throw new IoError("SERVE_UNAVAILABLE", "the receipt log is closed");
      const state = this.current;
      const seq = this.#nextSeq;
      if (seq >= this.#reservedThrough) {
        this.store.reserveThrough(seq + this.#reservation);
        this.#reservedThrough = seq + this.#reservation;
      }
      const statement = buildReceiptStatement({
        modelRoot: this.identity.modelRoot,
        servingManifest: this.identity.servingManifest,
        logId: this.identity.logId,
        operation: input.operation,
        salt: input.salt,
        request: input.request,
        response: input.response,
        promptTokens: input.promptTokens,
        completionTokens: input.completionTokens,
        clientKeyId: input.clientKeyId,
        seq,
        prevReceipt: this.#prevReceipt,
        issuedAt: this.#now(),
      });
      const payload = encodeStatement(statement);
      const envelope = signStatementPayload(payload, this.identity.privateKey, this.identity.logId);
      const digest = sha256Hex(payload);
      const leafHash = leafHashOfPayload(payload);
      const leafIndex = state.tree.size;
      this.#commit(() =>
        this.store.insertLeaf({
          logId: this.identity.logId,
          leafIndex,
          kind: "receipt",
          digest,
          leafHash,
          envelope: JSON.stringify(envelope),
          seq,
          issuedAt: statement.predicate.issuedAt,
          promptTokens: input.promptTokens,
          completionTokens: input.completionTokens,
          clientKeyId: input.clientKeyId,
        }),
      );
      state.tree.append(leafHash);
      this.#nextSeq = seq + 1;
      this.#prevReceipt = digest;
      this.#epochReceipts += 1;
      this.issued += 1;
      return {
        envelope,
        digest,
        salt: Buffer.from(input.salt).toString("hex"),
        seq,
        logId: this.identity.logId,
        leafIndex,
      } satisfies ReceiptObject;
    });
    if (this.#epochReceipts >= this.#epoch.maxReceipts)
      void this.closeEpoch().catch((error: unknown) => this.onError(error));
    return object;
  }

  /** The reserved mark in force (no seq at or above it has been handed out). */
  get reservedThrough(): number {
    return this.#reservedThrough;
  }

  /**
   * At a clean stop, after the last receipt: lowers the reserved mark to the next seq in a durable commit (which also
   * makes every receipt before it durable), so that the next life goes on without a gap; later issue() calls are
   * refused. A crash skips this, and the next life starts at the reserved mark instead.
   */
  close(): Promise<void> {
    return this.#inOrder(async () => {
      if (this.#closed) return;
      this.#closed = true;
      if (this.#nextSeq < this.#reservedThrough) {
        this.store.reserveThrough(this.#nextSeq);
        this.#reservedThrough = this.#nextSeq;
      }
    });
  }

  #commit(body: () => void, durable = false): void {
    try {
      this.store.transaction(body, { durable });
    } catch (error) {
      throw new IoError("SERVE_STORE_FAILED", `the receipt store refused a write: ${String(error)}`, { cause: error });
    }
  }

  /** Whether the epoch is due by time (at least one receipt, and maxSeconds since it started). */
  epochDue(): boolean {
    return (
      this.#epochReceipts > 0 && this.#now().getTime() - this.#epochStart.getTime() >= this.#epoch.maxSeconds * 1000
    );
  }

  get epochReceipts(): number {
    return this.#epochReceipts;
  }

  /**
   * Closes the epoch if it has receipts: a usage statement over its receipts (signed by S) is appended as a leaf, then
   * the checkpoint of the tree including it is signed (C2SP note) and stored, in one transaction. Returns the
   * checkpoint, or undefined for an empty epoch.
   */
  closeEpoch(): Promise<CheckpointRow | undefined> {
    return this.#inOrder(async () => {
      if (this.#epochReceipts === 0) return undefined;
      const state = this.current;
      const end = this.#now();
      const checkpoint = await this.#meterAndCheckpoint({
        metered: state,
        leafLog: state,
        fromSize: this.#epochFrom,
        periodStart: this.#epochStart,
        periodEnd: end,
        recovery: false,
      });
      this.#epochFrom = state.tree.size;
      this.#epochStart = end;
      this.#epochReceipts = 0;
      if (checkpoint !== undefined) this.onCheckpoint(checkpoint);
      return checkpoint;
    });
  }

  /**
   * The usage statement of the receipts of `metered` among leaves [fromSize, size) as a leaf of `leafLog`, then the
   * checkpoint(s): of `leafLog` over its new size, and of `metered` when it is another log (a recovery).
   */
  async #meterAndCheckpoint(args: {
    metered: LogState;
    leafLog: LogState;
    fromSize: number;
    periodStart: Date;
    periodEnd: Date;
    recovery: boolean;
  }): Promise<CheckpointRow | undefined> {
    const { metered, leafLog } = args;
    const treeSize = metered.tree.size;
    const aggregate = this.store.aggregate(metered.row.logId, args.fromSize, treeSize, MAX_USAGE_CLIENTS);
    const createdAt = this.#now().toISOString();
    const rows: CheckpointRow[] = [];
    let usageLeaf: { payload: Uint8Array; envelope: string; digest: string } | undefined;
    if (aggregate.count > 0) {
      const meters = (input: number, output: number, requests: number): Meters => ({
        "gen_ai.usage.input_tokens": input,
        "gen_ai.usage.output_tokens": output,
        requests,
      });
      const kept = aggregate.clients.slice(0, MAX_USAGE_CLIENTS);
      const rest = aggregate.clients.slice(MAX_USAGE_CLIENTS);
      const clients = kept.map((c) => ({
        clientKeyId: c.clientKeyId,
        meters: meters(c.inputTokens, c.outputTokens, c.count),
      }));
      if (rest.length > 0) {
        // The LIMIT query returned one extra row: the overflow is everything not kept, recomputed from the totals.
        const keptSum = kept.reduce((s, c) => ({ n: s.n + c.count, i: s.i + c.inputTokens, o: s.o + c.outputTokens }), {
          n: 0,
          i: 0,
          o: 0,
        });
        clients.push({
          clientKeyId: OTHER_CLIENTS,
          meters: meters(
            aggregate.inputTokens - keptSum.i,
            aggregate.outputTokens - keptSum.o,
            aggregate.count - keptSum.n,
          ),
        });
      }
      clients.sort((a, b) => (a.clientKeyId < b.clientKeyId ? -1 : a.clientKeyId > b.clientKeyId ? 1 : 0));
      const periodStart =
        aggregate.firstIssuedAt !== null && Date.parse(aggregate.firstIssuedAt) < args.periodStart.getTime()
          ? new Date(aggregate.firstIssuedAt)
          : args.periodStart;
      const statement = buildUsageStatement({
        modelName: metered.row.modelName,
        modelRoot: metered.row.modelRoot,
        logId: metered.row.logId,
        servingManifest: metered.row.servingManifest,
        period: { start: periodStart, end: args.periodEnd < periodStart ? periodStart : args.periodEnd },
        receipts: {
          fromSize: args.fromSize,
          treeSize,
          rootHash: toHex(metered.tree.root(treeSize)),
          count: aggregate.count,
          firstSeq: aggregate.firstSeq!,
          lastSeq: aggregate.lastSeq!,
        },
        meters: meters(aggregate.inputTokens, aggregate.outputTokens, aggregate.count),
        clients,
        prevUsage: this.#prevUsage,
        recovery: args.recovery,
      });
      const payload = encodeStatement(statement);
      const envelope = await signStatementPayloadAsync(payload, this.identity.privateKey, this.identity.logId);
      usageLeaf = { payload, envelope: JSON.stringify(envelope), digest: sha256Hex(payload) };
    }
    const leafHash = usageLeaf === undefined ? undefined : leafHashOfPayload(usageLeaf.payload);
    const leafIndex = leafLog.tree.size;
    const checkpointOf = (state: LogState, size: number, root: Hash, recovery: boolean): CheckpointRow => {
      const text = servingCheckpointText(state.row.logId, size, root);
      return {
        logId: state.row.logId,
        treeSize: size,
        rootHash: toHex(root),
        note: signServingCheckpoint(text, this.identity.privateKey),
        signerLogId: this.identity.logId,
        createdAt,
        recovery,
        anchorTx: null,
        anchorBlock: null,
        anchorGas: null,
        anchoredAt: null,
        anchoredAfterRestart: false,
      };
    };
    // The usage leaf goes into the live tree first (the checkpoint signs the root that includes it); a failed commit
    // rebuilds the tree from the store, so memory never holds a leaf that disk does not. The commit is durable: the
    // checkpoint is anchored next, and the chain must never hold a root over leaves an OS crash could take back.
    if (usageLeaf !== undefined && leafHash !== undefined) leafLog.tree.append(leafHash);
    const leafLogSize = leafLog.tree.size;
    if (leafLogSize > 0 && leafLogSize > (this.store.latestCheckpoint(leafLog.row.logId)?.treeSize ?? 0))
      rows.push(checkpointOf(leafLog, leafLogSize, leafLog.tree.root(), false));
    if (metered !== leafLog && treeSize > (this.store.latestCheckpoint(metered.row.logId)?.treeSize ?? 0))
      rows.push(checkpointOf(metered, treeSize, metered.tree.root(treeSize), true));
    try {
      this.#commit(() => {
        if (usageLeaf !== undefined && leafHash !== undefined) {
          this.store.insertLeaf({
            logId: leafLog.row.logId,
            leafIndex,
            kind: "usage",
            digest: usageLeaf.digest,
            leafHash,
            envelope: usageLeaf.envelope,
            seq: null,
            issuedAt: createdAt,
            promptTokens: null,
            completionTokens: null,
            clientKeyId: null,
          });
          this.store.insertUsage({
            digest: usageLeaf.digest,
            meteredLogId: metered.row.logId,
            leafLogId: leafLog.row.logId,
            leafIndex,
            fromSize: args.fromSize,
            treeSize,
            periodEnd: args.periodEnd.toISOString(),
            createdAt,
          });
        }
        for (const row of rows) this.store.insertCheckpoint(row);
        if (args.recovery) this.store.closeLog(metered.row.logId, this.identity.logId, createdAt);
      }, true);
    } catch (error) {
      leafLog.tree = new MerkleTree(this.store.leafHashes(leafLog.row.logId));
      throw error;
    }
    if (usageLeaf !== undefined) this.#prevUsage = usageLeaf.digest;
    if (args.recovery) metered.row = { ...metered.row, closedAt: createdAt, successor: this.identity.logId };
    return rows[0];
  }

  /** Recovery of an earlier log whose key is gone (see the class comment); its checkpoints are then anchored. */
  async #recover(state: LogState): Promise<void> {
    const last = this.store.lastUsageOf(state.row.logId);
    const fromSize = last?.treeSize ?? 0;
    await this.#meterAndCheckpoint({
      metered: state,
      leafLog: this.current,
      fromSize,
      periodStart: last === undefined ? new Date(state.row.startedAt) : new Date(last.periodEnd),
      periodEnd: this.#now(),
      recovery: true,
    });
    // The successor's own epoch starts after the recovery leaves it carries.
    this.#epochFrom = this.current.tree.size;
  }

  /** Waits for everything queued (receipts, epochs) to finish. */
  async settle(): Promise<void> {
    await this.#inOrder(async () => undefined);
  }
}
