// Anchoring of checkpoints: for every log of the data directory (the current one and those of earlier serving
// identities), the newest checkpoint not yet onchain is anchored with `anchorCheckpoint(logId, treeSize, rootHash)`
// once the log is registered (its serving record recorded; before that the contract says ModelRegistryUnknownLog).
// Only the newest is needed: an inclusion proof for an older leaf is given against any later anchored size. The chain
// is read before and after sending, so a retry after a crash or a lost receipt never anchors twice.
import { Interface } from "ethers";

import { ProvenantError } from "../lib/errors.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import { isTransient, type TxSender } from "../offchain/chain/index.ts";
import type { ReceiptLog } from "./log.ts";
import type { RegistryReader } from "./registry.ts";
import type { CheckpointRow, ServeStore } from "./store.ts";

const registryInterface = new Interface(MODEL_REGISTRY_ABI);

/** Explicit gas for one anchorCheckpoint (docs/contract.md: ~57,000 used; rofl-appd does not estimate). */
export const ANCHOR_GAS_LIMIT = 100_000n;

export interface LogAnchorState {
  logId: string;
  /** The serving record that registered the log; null while it is not registered (anchoring waits). */
  registeredBy: string | null;
  /** Newest checkpoint signed, and newest anchored (by this data directory or found onchain). */
  latestSize: number;
  anchoredSize: number;
  lastError: { code: string; message: string } | null;
}

export interface AnchorerOptions {
  log: ReceiptLog;
  store: ServeStore;
  reader: RegistryReader;
  sender: TxSender;
  registry: string;
  now: () => Date;
  /** Time between passes when nothing triggers one (retries, registration); default 5 s. */
  intervalMs?: number;
  onAnchored?: (row: CheckpointRow, result: { txHash: string | null; gasUsed: bigint | null }) => void;
  onError?: (logId: string, error: ProvenantError) => void;
}

export function encodeAnchor(logId: string, treeSize: number, rootHash: string): string {
  return registryInterface.encodeFunctionData("anchorCheckpoint", [`0x${logId}`, treeSize, `0x${rootHash}`]);
}

export class Anchorer {
  readonly #o: AnchorerOptions;
  readonly #states = new Map<string, LogAnchorState>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  anchors = 0;
  errors = 0;
  lastGasUsed: number | null = null;

  constructor(options: AnchorerOptions) {
    this.#o = options;
  }

  /** Per-log state for /healthz and the proof API's "pending" answers. */
  states(): LogAnchorState[] {
    return this.#o.log.logs.map((l) => this.#stateOf(l.row.logId));
  }

  #stateOf(logId: string): LogAnchorState {
    let state = this.#states.get(logId);
    if (state === undefined) {
      state = { logId, registeredBy: null, latestSize: 0, anchoredSize: 0, lastError: null };
      this.#states.set(logId, state);
    }
    state.latestSize = this.#o.store.latestCheckpoint(logId)?.treeSize ?? 0;
    state.anchoredSize = Math.max(state.anchoredSize, this.#o.store.latestAnchored(logId)?.treeSize ?? 0);
    return state;
  }

  /** Asks for a pass now (after a checkpoint); passes never overlap, a request during one runs one more. */
  trigger(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<void> {
    for (const { row } of this.#o.log.logs) {
      if (this.#stopped) return;
      const state = this.#stateOf(row.logId);
      const latest = this.#o.store.latestCheckpoint(row.logId);
      if (latest === undefined || latest.treeSize <= state.anchoredSize) continue;
      state.lastError = null;
      try {
        await this.#anchor(latest, state);
      } catch (error) {
        const coded = error instanceof ProvenantError ? error : undefined;
        this.errors += 1;
        state.lastError = { code: coded?.code ?? "INTERNAL", message: coded?.message ?? String(error) };
        if (coded !== undefined) this.#o.onError?.(row.logId, coded);
      }
    }
  }

  async #anchor(checkpoint: CheckpointRow, state: LogAnchorState): Promise<void> {
    const { reader, store } = this.#o;
    const afterRestart = checkpoint.logId !== this.#o.log.identity.logId;
    if (state.registeredBy === null) {
      state.registeredBy = await reader.logOf(checkpoint.logId);
      if (state.registeredBy === null) {
        state.lastError = {
          code: "NOT_FOUND",
          message: "the log is not registered yet: its serving record is not onchain",
        };
        return;
      }
    }
    // What is onchain already (a previous life of this data directory may have sent it before crashing).
    const onchain = await reader.latestCheckpoint(checkpoint.logId);
    if (onchain.treeSize >= checkpoint.treeSize) {
      await this.#reconcile(checkpoint, onchain.treeSize, state, afterRestart);
      return;
    }
    const data = encodeAnchor(checkpoint.logId, checkpoint.treeSize, checkpoint.rootHash);
    let result;
    try {
      result = await this.#o.sender.send({ to: this.#o.registry, data, gasLimit: ANCHOR_GAS_LIMIT });
    } catch (error) {
      // A revert or a lost answer: the chain says what happened; a transient error is retried at the next pass.
      if (!isTransient(error)) {
        const after = await reader.latestCheckpoint(checkpoint.logId);
        if (after.treeSize >= checkpoint.treeSize) {
          await this.#reconcile(checkpoint, after.treeSize, state, afterRestart);
          return;
        }
      }
      throw error;
    }
    store.markAnchored(checkpoint.logId, checkpoint.treeSize, {
      txHash: result.txHash,
      block: result.block,
      gasUsed: result.gasUsed === null ? null : Number(result.gasUsed),
      at: this.#o.now().toISOString(),
      afterRestart,
    });
    state.anchoredSize = checkpoint.treeSize;
    this.anchors += 1;
    if (result.gasUsed !== null) this.lastGasUsed = Number(result.gasUsed);
    this.#o.onAnchored?.(checkpoint, { txHash: result.txHash, gasUsed: result.gasUsed });
  }

  /** The chain has this size or a larger one: record ours as anchored if its root is the one onchain. */
  async #reconcile(checkpoint: CheckpointRow, onchainSize: number, state: LogAnchorState, afterRestart: boolean) {
    const root = await this.#o.reader.checkpointRoot(checkpoint.logId, checkpoint.treeSize);
    if (root === checkpoint.rootHash) {
      this.#o.store.markAnchored(checkpoint.logId, checkpoint.treeSize, {
        txHash: null,
        block: null,
        gasUsed: null,
        at: this.#o.now().toISOString(),
        afterRestart,
      });
      state.anchoredSize = checkpoint.treeSize;
      return;
    }
    // Another size is onchain (this store lost a checkpoint, or another writer anchors this log): never overwrite.
    state.anchoredSize = Math.max(state.anchoredSize, onchainSize);
    state.lastError = {
      code: "CHECKPOINT_INVALID",
      message: `the chain holds size ${onchainSize} for this log, and ${root === null ? "no root" : "another root"} at size ${checkpoint.treeSize}`,
    };
  }

  start(): void {
    const intervalMs = this.#o.intervalMs ?? 5_000;
    const tick = async (): Promise<void> => {
      await this.trigger();
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
