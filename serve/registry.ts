// What `provenant serve` asks the registry, with plain eth_calls of its views (no event scans, so a check every few
// seconds stays cheap on a long chain): does the model have a non-revoked record of the required kind, is the serving
// record recorded or revoked, is the log registered, what is anchored. The monitor repeats the check every interval and
// closes the gate (MODEL_REVOKED, SERVE_REGISTRY_STALE) that every request passes; revocation is final, as onchain.
import { Contract, type JsonRpcProvider } from "ethers";

import { IoError, ProvenantError, type ErrorCode } from "../lib/errors.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import type { RequireKind } from "../lib/receipt/index.ts";
import { toChainError } from "../offchain/chain/index.ts";
import { connectRegistryClient } from "../offchain/client/core.ts";

const ZERO = `0x${"0".repeat(64)}`;
/** Most records of one model looked at per check (newest first); a model with more is judged on these. */
export const MAX_RECORDS_SCANNED = 1024;
const PAGE = 64;

const KINDS: Readonly<Record<RequireKind, readonly number[]>> = { audit: [2], finetune: [1], any: [1, 2] };
const KIND_NAMES: Readonly<Record<number, string>> = { 1: "finetune", 2: "audit", 3: "serving" };

export interface RecordView {
  modelHash: string;
  publishedAt: number;
  kind: number;
  revoked: boolean;
}

export interface Admission {
  status: "admitted" | "revoked" | "not-recorded";
  /** The newest non-revoked record of a required kind (admitted), else null. */
  manifestDigest: string | null;
  kind: string | null;
  /** Revoked records of a required kind seen (newest first, at most 16): why a model is "revoked". */
  revoked: string[];
}

const hex = (value: string): string => value.replace(/^0x/, "").toLowerCase();
const bytes32 = (value: string): string => `0x${hex(value)}`;

/** The registry's views for the server. Every failure is RPC_UNAVAILABLE or REGISTRY_NOT_FOUND. */
export class RegistryReader {
  readonly address: string;
  readonly provider: JsonRpcProvider;
  readonly #contract: Contract;
  /** Kinds never change and revocation is final: both are cached per manifest. */
  readonly #kinds = new Map<string, number>();
  readonly #revoked = new Set<string>();

  constructor(provider: JsonRpcProvider, address: string) {
    this.provider = provider;
    this.address = address;
    this.#contract = new Contract(address, MODEL_REGISTRY_ABI, provider);
  }

  async #call<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      const coded = toChainError(error, what);
      // A view that reverts or returns nothing: the address holds no registry.
      if (coded.code === "PUBLISH_REVERTED")
        throw new IoError("REGISTRY_NOT_FOUND", `${what}: no ModelRegistry answers at ${this.address}`, {
          cause: error,
        });
      throw coded;
    }
  }

  async record(manifestDigest: string): Promise<RecordView | null> {
    const digest = hex(manifestDigest);
    const r = (await this.#call("recordOf", () => this.#contract.getFunction("recordOf")(bytes32(digest)))) as [
      string,
      bigint,
      bigint,
      boolean,
    ];
    if (hex(r[0]) === hex(ZERO)) return null;
    const view = { modelHash: hex(r[0]), publishedAt: Number(r[1]), kind: Number(r[2]), revoked: r[3] };
    this.#kinds.set(digest, view.kind);
    if (view.revoked) this.#revoked.add(digest);
    return view;
  }

  /**
   * Whether `modelRoot` has a non-revoked record of the required kind: newest first, at most MAX_RECORDS_SCANNED
   * records, re-reading only those that could still answer (a known serving record or a revoked one is skipped).
   */
  async admission(modelRoot: string, require: RequireKind): Promise<Admission> {
    const model = bytes32(modelRoot);
    const wanted = KINDS[require];
    const count = Number(await this.#call("manifestCount", () => this.#contract.getFunction("manifestCount")(model)));
    const revoked: string[] = [];
    let seen = 0;
    for (let end = count; end > 0 && seen < MAX_RECORDS_SCANNED; end -= PAGE) {
      const offset = Math.max(0, end - PAGE);
      const page = (
        (await this.#call("manifestsOf", () =>
          this.#contract.getFunction("manifestsOf")(model, offset, end - offset),
        )) as string[]
      )
        .map(hex)
        .reverse();
      seen += page.length;
      const candidates = page.filter((d) => {
        const kind = this.#kinds.get(d);
        return kind === undefined || wanted.includes(kind);
      });
      const views = await Promise.all(
        candidates.map(async (d) =>
          this.#revoked.has(d)
            ? { digest: d, view: { kind: this.#kinds.get(d)!, revoked: true } }
            : { digest: d, view: await this.record(d) },
        ),
      );
      for (const { digest, view } of views) {
        if (view === null || !wanted.includes(view.kind)) continue;
        if (!view.revoked) return { status: "admitted", manifestDigest: digest, kind: KIND_NAMES[view.kind]!, revoked };
        if (revoked.length < 16) revoked.push(digest);
      }
    }
    return { status: revoked.length > 0 ? "revoked" : "not-recorded", manifestDigest: null, kind: null, revoked };
  }

  /** The serving record that registered a log (`logOf`), or null while the log is not registered. */
  async logOf(logId: string): Promise<string | null> {
    const r = (await this.#call("logOf", () => this.#contract.getFunction("logOf")(bytes32(logId)))) as string;
    return hex(r) === hex(ZERO) ? null : hex(r);
  }

  async latestCheckpoint(logId: string): Promise<{ treeSize: number; rootHash: string; anchoredAt: number }> {
    const r = (await this.#call("latestCheckpoint", () =>
      this.#contract.getFunction("latestCheckpoint")(bytes32(logId)),
    )) as [bigint, string, bigint];
    return { treeSize: Number(r[0]), rootHash: hex(r[1]), anchoredAt: Number(r[2]) };
  }

  /** The root anchored at exactly `treeSize`, or null. */
  async checkpointRoot(logId: string, treeSize: number): Promise<string | null> {
    const r = (await this.#call("checkpointRoot", () =>
      this.#contract.getFunction("checkpointRoot")(bytes32(logId), treeSize),
    )) as string;
    return hex(r) === hex(ZERO) ? null : hex(r);
  }

  /** The reason given to revoke() (the SDK scans the AttestationRevoked event); null when it cannot be read. */
  async revocationReason(manifestDigest: string): Promise<string | null> {
    try {
      const client = await connectRegistryClient({ provider: this.provider, address: this.address, timeoutMs: 5_000 });
      try {
        return (await client.record(manifestDigest))?.revocationReason ?? null;
      } finally {
        client.close();
      }
    } catch {
      return null;
    }
  }
}

export type GateStatus = "serving" | "revoked" | "not-recorded" | "stale";

export interface GateState {
  status: GateStatus;
  /** The code every request gets while the gate is closed. */
  code: ErrorCode | null;
  message: string | null;
  since: string;
}

export interface MonitorOptions {
  reader: RegistryReader;
  modelRoot: string;
  require: RequireKind;
  servingManifest: string;
  logId: string;
  intervalMs: number;
  /** Without a successful check for this long, requests are refused (SERVE_REGISTRY_STALE): fail closed. */
  staleAfterMs: number;
  now: () => Date;
  onChange?: (state: GateState) => void;
  onError?: (error: ProvenantError) => void;
}

/**
 * Checks the registry every interval and keeps the gate: open while the model has a non-revoked record of the
 * required kind and the serving record (once recorded) is not revoked; closed for good at a revocation; closed while
 * the registry cannot be read for longer than `staleAfterMs` (the host must not be able to hide a revocation by
 * cutting the RPC).
 */
export class RegistryMonitor {
  readonly #options: MonitorOptions;
  #state: GateState;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;
  readonly #created: Date;
  lastOk: Date | null = null;
  lastError: { code: ErrorCode; message: string } | null = null;
  admission: Admission | null = null;
  servingRecorded = false;
  servingRevoked = false;
  logRegistered = false;
  checks = 0;
  checkFailures = 0;

  constructor(options: MonitorOptions) {
    this.#options = options;
    this.#created = options.now();
    this.#state = { status: "serving", code: null, message: null, since: this.#created.toISOString() };
  }

  get state(): GateState {
    return this.#state;
  }

  /** The refusal every request gets now, or null when the gate is open. */
  gate(): { code: ErrorCode; message: string } | null {
    if (this.#state.status === "serving") {
      // Before the first successful check, staleness counts from the monitor's creation.
      const age = this.#options.now().getTime() - (this.lastOk ?? this.#created).getTime();
      if (age > this.#options.staleAfterMs)
        this.#set("stale", "SERVE_REGISTRY_STALE", `the registry has not been read for ${Math.round(age / 1000)} s`);
    }
    return this.#state.code === null ? null : { code: this.#state.code, message: this.#state.message ?? "" };
  }

  #set(status: GateStatus, code: ErrorCode | null, message: string | null): void {
    if (this.#state.status === "revoked") return; // final
    if (this.#state.status === status && this.#state.message === message) return;
    this.#state = { status, code, message, since: this.#options.now().toISOString() };
    this.#options.onChange?.(this.#state);
  }

  /** One check (serialised); updates the gate. Throws nothing: failures count toward staleness. */
  check(): Promise<void> {
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #check(): Promise<void> {
    const { reader, modelRoot, require, servingManifest, logId } = this.#options;
    this.checks += 1;
    try {
      const [admission, serving, registered] = await Promise.all([
        reader.admission(modelRoot, require),
        reader.record(servingManifest),
        reader.logOf(logId),
      ]);
      this.admission = admission;
      this.servingRecorded = serving !== null;
      this.servingRevoked = serving?.revoked === true;
      this.logRegistered = registered !== null;
      this.lastOk = this.#options.now();
      this.lastError = null;
      if (this.servingRevoked) {
        const reason = await reader.revocationReason(servingManifest);
        this.#set(
          "revoked",
          "MODEL_REVOKED",
          `the serving record ${servingManifest} was revoked${reason === null ? "" : `: ${reason}`}`,
        );
      } else if (admission.status === "revoked") {
        const reason = await reader.revocationReason(admission.revoked[0]!);
        this.#set(
          "revoked",
          "MODEL_REVOKED",
          `every ${require === "any" ? "audit or fine-tune" : require} record of model ${modelRoot} is revoked ` +
            `(${admission.revoked[0]}${reason === null ? "" : `: ${reason}`})`,
        );
      } else if (admission.status === "not-recorded") {
        this.#set("not-recorded", "MODEL_NOT_RECORDED", `model ${modelRoot} has no ${require} record in the registry`);
      } else this.#set("serving", null, null);
    } catch (error) {
      this.checkFailures += 1;
      const coded =
        error instanceof ProvenantError ? error : new IoError("RPC_UNAVAILABLE", String(error), { cause: error });
      this.lastError = { code: coded.code, message: coded.message };
      this.#options.onError?.(coded);
      this.gate();
    }
  }

  start(): void {
    const tick = async (): Promise<void> => {
      await this.check();
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), this.#options.intervalMs);
    };
    this.#timer = setTimeout(() => void tick(), this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
