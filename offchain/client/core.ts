// The registry client SDK, browser-safe core: reads the ModelRegistry (DESIGN §5) through ethers v6 and answers
// the questions marketplaces and auditors ask ("is this model attested, by what, is it revoked, what is it built on?").
// Views are the authority (manifestsOf, recordOf); events only add details (evidence digests, TCB, block, tx) and are
// read in block ranges small enough for public Sapphire RPCs. Calls and events are encoded and decoded by ethers'
// Interface from the generated ABI (lib/registry/abi.ts), typed so that a view's name and arguments are checked.
// Nothing here touches node: modules; index.ts adds the Node-only part (deployments/<network>.json, known networks).
import { Interface, type FunctionFragment, type Provider } from "ethers";

import { FetchTransport, ProviderTransport, type RawLog, type Transport } from "./transport.ts";
import { MODEL_REGISTRY_ABI } from "../../lib/registry/abi.ts";
import {
  isAttestationKind,
  toRecordKind,
  type AttestationKind,
  type RegistryRecord,
} from "../../lib/registry/record.ts";
import { IoError, MalformedInputError, ProvenantError, UsageError } from "../../lib/errors.ts";

/** Public Sapphire nodes refuse eth_getLogs over more than 100 blocks. */
export const DEFAULT_LOG_RANGE = 100;
/** How many blocks a revocation search scans at most before giving up on the reason (the flag is still exact). */
export const DEFAULT_MAX_SCAN_BLOCKS = 20_000;
const PAGE_SIZE = 100;
const ZERO_HASH = "0".repeat(64);

/** One attestation as the chain knows it: declared once, in lib/registry/record.ts. */
export type { RecordKind, RegistryRecord } from "../../lib/registry/record.ts";

export interface LookupResult {
  modelHash: string;
  /** Newest first. Empty when the hash is not recorded (not an error). */
  records: RegistryRecord[];
}

export interface LineageStep {
  modelHash: string;
  records: RegistryRecord[];
  /** The parent named by this model's newest fine-tune record; null at the base model (or when unknown). */
  parentModelHash: string | null;
}

export type RegistryEvent =
  | { type: "recorded"; record: RegistryRecord }
  | { type: "revoked"; manifestDigest: string; reason: string; blockNumber: number; txHash: string };

export interface WatchOptions {
  /** First block to report; default: the block after the current head. */
  fromBlock?: number;
  intervalMs?: number;
  onError?: (error: ProvenantError) => void;
}

export interface ClientOptions {
  /** A JSON-RPC URL, or an ethers provider. One of them. */
  rpcUrl?: string;
  provider?: Provider;
  address: string;
  /** When set, the connected chain must have this id (CHAIN_MISMATCH otherwise). */
  chainId?: number;
  /** First block worth scanning for events (the deployment block). */
  fromBlock?: number;
  /** Blocks per eth_getLogs request; ≤ 100 for public Sapphire nodes. */
  logRange?: number;
  maxScanBlocks?: number;
  timeoutMs?: number;
}

/** A serving log's anchored checkpoint (`checkpointRoot`, `latestCheckpoint`, the CheckpointAnchored event). */
export interface AnchoredCheckpoint {
  /** Hex, without 0x. */
  logId: string;
  treeSize: number;
  /** The anchored RFC 6962 root (hex); null when this size was never anchored. */
  rootHash: string | null;
  /** The anchoring block's time; null when not anchored, or its event was not found within maxScanBlocks. */
  anchoredAt: Date | null;
  blockNumber: number | null;
  txHash: string | null;
}

/** When a record was revoked: the block time of its AttestationRevoked event. */
export interface RevocationTime {
  manifestDigest: string;
  /** recordOf(...).revoked: exact. */
  revoked: boolean;
  /** The revoking block's time; null when not revoked, or when the event was not found within maxScanBlocks. */
  revokedAt: Date | null;
  reason: string | null;
  blockNumber: number | null;
  txHash: string | null;
}

export interface RegistryClient {
  readonly address: string;
  readonly chainId: number;
  lookup(modelHash: string): Promise<LookupResult>;
  record(manifestDigest: string): Promise<RegistryRecord | null>;
  isRecorded(modelHash: string, manifestDigest: string): Promise<boolean>;
  lineage(modelHash: string, options?: { maxDepth?: number }): Promise<LineageStep[]>;
  watch(callback: (event: RegistryEvent) => void, options?: WatchOptions): { stop(): void };
  /** The checkpoint anchored for `logId` at exactly `treeSize` (rootHash null when none), with its anchoring time. */
  checkpointOf(logId: string, treeSize: number): Promise<AnchoredCheckpoint>;
  /** The newest anchored checkpoint of `logId`; null when it has none. */
  latestCheckpoint(logId: string): Promise<AnchoredCheckpoint | null>;
  /** The serving record (kind 3) that registered `logId` (`logOf`); null when the log is not registered. */
  servingRecordOf(logId: string): Promise<RegistryRecord | null>;
  /** Whether and when a record was revoked (the AttestationRevoked event's block time). */
  revocationTime(manifestDigest: string): Promise<RevocationTime>;
  close(): void;
}

// ---- The registry's views, typed from the generated `as const` ABI ----

type RegistryAbi = typeof MODEL_REGISTRY_ABI;
type ViewFunction = Extract<RegistryAbi[number], { type: "function"; stateMutability: "view" }>;
/** The name of a view of ModelRegistry: a misspelt or removed view does not compile. */
export type RegistryView = ViewFunction["name"];
type ViewOf<N extends RegistryView> = Extract<ViewFunction, { name: N }>;
/** What ethers' coder takes for a Solidity type (the types the views use). */
type ArgOf<T> = T extends `uint${string}` | `int${string}` ? bigint | number : T extends "bool" ? boolean : string;
/** What ethers' coder returns for a Solidity type. */
type ValueOf<T> = T extends `${infer E}[]`
  ? ValueOf<E>[]
  : T extends `uint${string}` | `int${string}`
    ? bigint
    : T extends "bool"
      ? boolean
      : string;
type SolidityTypeOf<P> = P extends { type: infer T } ? T : never;
/** Homomorphic over the ABI's parameter tuples, so that arity and order survive. */
type ToArgs<P extends readonly unknown[]> = { -readonly [K in keyof P]: ArgOf<SolidityTypeOf<P[K]>> };
type ToValues<P extends readonly unknown[]> = { -readonly [K in keyof P]: ValueOf<SolidityTypeOf<P[K]>> };
/** A view's argument list, checked against its inputs (count, order and types). */
export type RegistryViewArgs<N extends RegistryView> = ToArgs<ViewOf<N>["inputs"]>;
/** A view's decoded outputs, in order. */
export type RegistryViewResult<N extends RegistryView> = ToValues<ViewOf<N>["outputs"]>;

const registryInterface = new Interface(MODEL_REGISTRY_ABI);
const RECORDED_EVENT = registryInterface.getEvent("AttestationRecorded")!;
const RECORDED_TOPIC = RECORDED_EVENT.topicHash;
const REVOKED_TOPIC = registryInterface.getEvent("AttestationRevoked")!.topicHash;
const ANCHORED_EVENT = registryInterface.getEvent("CheckpointAnchored")!;
const ANCHORED_TOPIC = ANCHORED_EVENT.topicHash;

/** Fragments resolved once per view: a lookup makes several calls, and finding a fragment by name is not free. */
const viewFragments = new Map<RegistryView, FunctionFragment>();
function viewFragment(name: RegistryView): FunctionFragment {
  let fragment = viewFragments.get(name);
  if (fragment === undefined) {
    fragment = registryInterface.getFunction(name)!;
    viewFragments.set(name, fragment);
  }
  return fragment;
}

/** The eth_call data of a view. */
export function encodeRegistryView<N extends RegistryView>(name: N, args: RegistryViewArgs<N>): string {
  return registryInterface.encodeFunctionData(viewFragment(name), args);
}

/** A view's return data, decoded by its ABI; ethers throws BAD_DATA (→ REGISTRY_NOT_FOUND) when it does not fit. */
export function decodeRegistryView<N extends RegistryView>(name: N, data: string): RegistryViewResult<N> {
  return [...registryInterface.decodeFunctionResult(viewFragment(name), data)] as RegistryViewResult<N>;
}

/** Accepts 64 hex digits with or without `0x` or `sha256:`; returns the 0x form for the chain. */
export function toBytes32(value: string, name = "hash"): string {
  const hex = value.trim().replace(/^(0x|sha256:)/i, "");
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new MalformedInputError("HASH_MALFORMED", `${name} must be 64 hex digits (32 bytes), got '${value}'`, {
      details: { name, value },
    });
  }
  return `0x${hex.toLowerCase()}`;
}

/** 0x-prefixed bytes32 → lowercase hex without 0x. */
export function fromBytes32(value: string): string {
  return value.replace(/^0x/i, "").toLowerCase();
}

export function isHash(value: string): boolean {
  return /^(0x|sha256:)?[0-9a-fA-F]{64}$/i.test(value.trim());
}

/** recordOf's kind for a recorded manifest; anything but 1, 2 or 3 means the address is not a ModelRegistry. */
function toKindCode(kind: bigint | number): AttestationKind {
  const code = Number(kind);
  if (!isAttestationKind(code)) throw Object.assign(new Error(`unknown record kind ${code}`), { code: "BAD_DATA" });
  return code;
}

/** Maps an ethers failure to the SDK's codes; coded errors pass through. */
export function toClientError(error: unknown, address: string): ProvenantError {
  if (error instanceof ProvenantError) return error;
  const e = error as { code?: string; shortMessage?: string; message?: string };
  const message = e.shortMessage ?? e.message ?? String(error);
  if (e.code === "CALL_EXCEPTION" || e.code === "BAD_DATA") {
    return new IoError("REGISTRY_NOT_FOUND", `no ModelRegistry answers at ${address}: ${message}`, {
      cause: error,
      details: { address },
    });
  }
  return new IoError("RPC_UNAVAILABLE", `the RPC endpoint failed: ${message}`, { cause: error });
}

/** eth_chainId with a timeout, outside ethers, so that an unreachable URL fails once instead of retrying forever. */
async function probeChainId(rpcUrl: string, timeoutMs: number): Promise<number> {
  let response: Response;
  try {
    response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new IoError("RPC_UNAVAILABLE", `cannot reach the RPC endpoint ${rpcUrl}: ${(error as Error).message}`, {
      cause: error,
      details: { rpcUrl },
    });
  }
  const body = (await response.json().catch(() => null)) as { result?: string } | null;
  if (!response.ok || typeof body?.result !== "string") {
    throw new IoError("RPC_UNAVAILABLE", `${rpcUrl} did not answer eth_chainId (HTTP ${response.status})`, {
      details: { rpcUrl, status: response.status },
    });
  }
  return Number(BigInt(body.result));
}

/** Connects, checks the chain id and that a contract lives at `address`, and returns the client. */
export async function connectRegistryClient(options: ClientOptions): Promise<RegistryClient> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!/^0x[0-9a-fA-F]{40}$/.test(options.address)) {
    throw new MalformedInputError(
      "HASH_MALFORMED",
      `registry address must be 0x + 40 hex digits: '${options.address}'`,
    );
  }
  let transport: Transport;
  let chainId: number;
  if (options.provider !== undefined) {
    transport = new ProviderTransport(options.provider);
    try {
      chainId = await transport.chainId();
    } catch (error) {
      throw toClientError(error, options.address);
    }
  } else if (options.rpcUrl !== undefined) {
    chainId = await probeChainId(options.rpcUrl, timeoutMs);
    transport = new FetchTransport(options.rpcUrl, timeoutMs);
  } else {
    throw new UsageError("createRegistryClient needs rpcUrl or provider");
  }
  if (options.chainId !== undefined && options.chainId !== chainId) {
    throw new IoError(
      "CHAIN_MISMATCH",
      `the RPC endpoint serves chain ${chainId}, the registry deployment is on chain ${options.chainId}`,
      { details: { expected: options.chainId, actual: chainId } },
    );
  }
  let code: string;
  try {
    code = await transport.code(options.address);
  } catch (error) {
    throw toClientError(error, options.address);
  }
  if (code === "0x") {
    throw new IoError("REGISTRY_NOT_FOUND", `no contract at ${options.address} on chain ${chainId}`, {
      details: { address: options.address, chainId },
    });
  }
  return new Client(transport, options.address, chainId, options);
}

interface RecordView {
  modelHash: string;
  publishedAt: bigint;
  /** 0 when the manifest is not recorded. */
  kind: number;
  revoked: boolean;
}

interface RecordedEvent {
  modelHash: string;
  manifestDigest: string;
  parentModelHash: string | null;
  kind: number;
  measurementHash: string;
  policyDigest: string;
  reportedTcb: bigint;
  blockNumber: number;
  txHash: string;
  logIndex: number;
}

class Client implements RegistryClient {
  readonly address: string;
  readonly chainId: number;
  readonly #transport: Transport;
  readonly #fromBlock: number;
  readonly #logRange: number;
  readonly #maxScanBlocks: number;
  readonly #blockTimes = new Map<number, number>();

  constructor(transport: Transport, address: string, chainId: number, options: ClientOptions) {
    this.#transport = transport;
    this.address = address;
    this.chainId = chainId;
    this.#fromBlock = options.fromBlock ?? 0;
    this.#logRange = Math.max(1, options.logRange ?? DEFAULT_LOG_RANGE);
    this.#maxScanBlocks = options.maxScanBlocks ?? DEFAULT_MAX_SCAN_BLOCKS;
  }

  close(): void {
    this.#transport.close();
  }

  /** One eth_call of a registry view, encoded and decoded by its ABI. */
  async #view<N extends RegistryView>(name: N, args: RegistryViewArgs<N>): Promise<RegistryViewResult<N>> {
    return decodeRegistryView(name, await this.#transport.call(this.address, encodeRegistryView(name, args)));
  }

  async #call<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw toClientError(error, this.address);
    }
  }

  async isRecorded(modelHash: string, manifestDigest: string): Promise<boolean> {
    const model = toBytes32(modelHash, "modelHash");
    const manifest = toBytes32(manifestDigest, "manifestDigest");
    return this.#call(async () => (await this.#view("isRecorded", [model, manifest]))[0]);
  }

  async #manifestsOf(model: string): Promise<string[]> {
    const digests: string[] = [];
    for (let offset = 0; ; offset += PAGE_SIZE) {
      const [page] = await this.#view("manifestsOf", [model, offset, PAGE_SIZE]);
      digests.push(...page);
      if (page.length < PAGE_SIZE) return digests;
    }
  }

  async #recordOf(manifest: string): Promise<RecordView> {
    const [modelHash, publishedAt, kind, revoked] = await this.#view("recordOf", [manifest]);
    return { modelHash, publishedAt, kind: Number(kind), revoked };
  }

  async lookup(modelHash: string): Promise<LookupResult> {
    const model = toBytes32(modelHash, "modelHash");
    return this.#call(async () => {
      // The list and the head go out together: one round trip.
      const [manifests, latest] = await Promise.all([this.#manifestsOf(model), this.#transport.blockNumber()]);
      if (manifests.length === 0) return { modelHash: fromBytes32(model), records: [] };
      const topics = [RECORDED_TOPIC, model];
      let views: RecordView[];
      let events: Map<string, RecordedEvent>;
      if (this.#isShortHistory(latest)) {
        // One round trip: the views and the single getLogs go out together (ethers batches them).
        [views, events] = await Promise.all([
          Promise.all(manifests.map((m) => this.#recordOf(m))),
          this.#recordedEvents(topics, latest, []),
        ]);
      } else {
        views = await Promise.all(manifests.map((m) => this.#recordOf(m)));
        events = await this.#recordedEvents(
          topics,
          latest,
          views.map((v) => v.publishedAt),
        );
      }
      const records = await Promise.all(
        manifests.map((m, i) => this.#assemble(m, views[i]!, events.get(fromBytes32(m)) ?? null, latest)),
      );
      // Newest first: by publication time, then by position in the registry's list (later = newer).
      const order = new Map(manifests.map((m, i) => [fromBytes32(m), i]));
      records.sort(
        (a, b) =>
          b.publishedAt.getTime() - a.publishedAt.getTime() ||
          order.get(b.manifestDigest)! - order.get(a.manifestDigest)!,
      );
      return { modelHash: fromBytes32(model), records };
    });
  }

  async record(manifestDigest: string): Promise<RegistryRecord | null> {
    const manifest = toBytes32(manifestDigest, "manifestDigest");
    return this.#call(async () => {
      const view = await this.#recordOf(manifest);
      if (fromBytes32(view.modelHash) === ZERO_HASH) return null;
      const latest = await this.#transport.blockNumber();
      const events = await this.#recordedEvents([RECORDED_TOPIC, null, manifest], latest, [view.publishedAt]);
      return this.#assemble(manifest, view, events.get(fromBytes32(manifest)) ?? null, latest);
    });
  }

  async lineage(modelHash: string, options: { maxDepth?: number } = {}): Promise<LineageStep[]> {
    const maxDepth = options.maxDepth ?? 32;
    const steps: LineageStep[] = [];
    const seen = new Set<string>();
    let current: string | null = fromBytes32(toBytes32(modelHash, "modelHash"));
    while (current !== null && !seen.has(current) && steps.length < maxDepth) {
      seen.add(current);
      const { records } = await this.lookup(current);
      // The newest fine-tune record that names a parent decides; revoked ones still tell the history.
      const parent =
        records.find((r) => r.kind === "finetune" && r.parentModelHash !== null && !r.revoked)?.parentModelHash ??
        records.find((r) => r.kind === "finetune" && r.parentModelHash !== null)?.parentModelHash ??
        null;
      steps.push({ modelHash: current, records, parentModelHash: parent });
      current = parent;
    }
    return steps;
  }

  watch(callback: (event: RegistryEvent) => void, options: WatchOptions = {}): { stop(): void } {
    const intervalMs = options.intervalMs ?? 2_000;
    let next: number | null = options.fromBlock ?? null;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      try {
        const head = await this.#transport.blockNumber();
        if (next === null) next = head + 1;
        if (head >= next) {
          const logs = await this.#scan({ topics: [[RECORDED_TOPIC, REVOKED_TOPIC]] }, next, head);
          for (const log of logs) {
            if (stopped) return;
            const event = await this.#toEvent(log, head);
            if (event !== null) callback(event);
          }
          next = head + 1;
        }
      } catch (error) {
        options.onError?.(toClientError(error, this.address));
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return {
      stop() {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
      },
    };
  }

  async #toEvent(log: RawLog, latest: number): Promise<RegistryEvent | null> {
    if (log.topics[0] === REVOKED_TOPIC) {
      const parsed = registryInterface.parseLog(log);
      if (parsed === null) return null;
      return {
        type: "revoked",
        manifestDigest: fromBytes32(parsed.args[0] as string),
        reason: String(parsed.args[1]),
        blockNumber: log.blockNumber,
        txHash: log.transactionHash,
      };
    }
    const event = toRecordedEvent(log);
    if (event === null) return null;
    const view = await this.#recordOf(toBytes32(event.manifestDigest));
    return { type: "recorded", record: await this.#assemble(toBytes32(event.manifestDigest), view, event, latest) };
  }

  async #assemble(
    manifest: string,
    view: RecordView,
    event: RecordedEvent | null,
    latest: number,
  ): Promise<RegistryRecord> {
    let revocation: { reason: string; txHash: string } | null = null;
    if (view.revoked) revocation = await this.#revocation(manifest, event?.blockNumber ?? this.#fromBlock, latest);
    return {
      modelHash: fromBytes32(view.modelHash),
      manifestDigest: fromBytes32(manifest),
      parentModelHash: event?.parentModelHash ?? null,
      kind: toRecordKind(toKindCode(view.kind)),
      kindCode: toKindCode(view.kind),
      publishedAt: new Date(Number(view.publishedAt) * 1000),
      revoked: view.revoked,
      revocationReason: revocation?.reason ?? null,
      revokedInTx: revocation?.txHash ?? null,
      measurementHash: event?.measurementHash ?? null,
      policyDigest: event?.policyDigest ?? null,
      reportedTcb: event?.reportedTcb ?? null,
      blockNumber: event?.blockNumber ?? null,
      txHash: event?.txHash ?? null,
    };
  }

  async #revocation(
    manifest: string,
    from: number,
    latest: number,
  ): Promise<{ reason: string; txHash: string; blockNumber: number } | null> {
    const to = Math.min(latest, from + this.#maxScanBlocks - 1);
    const logs = await this.#scan({ topics: [REVOKED_TOPIC, manifest] }, from, to);
    const log = logs.at(-1);
    if (log === undefined) return null;
    const parsed = registryInterface.parseLog(log);
    return parsed === null
      ? null
      : { reason: String(parsed.args[1]), txHash: log.transactionHash, blockNumber: log.blockNumber };
  }

  async revocationTime(manifestDigest: string): Promise<RevocationTime> {
    const manifest = toBytes32(manifestDigest, "manifestDigest");
    return this.#call(async () => {
      const none = { reason: null, blockNumber: null, txHash: null, revokedAt: null };
      const view = await this.#recordOf(manifest);
      if (!view.revoked) return { manifestDigest: fromBytes32(manifest), revoked: false, ...none };
      const latest = await this.#transport.blockNumber();
      // The revocation comes after the record: scan from the record's block (found around its publishedAt).
      const events = await this.#recordedEvents([RECORDED_TOPIC, null, manifest], latest, [view.publishedAt]);
      const from = events.get(fromBytes32(manifest))?.blockNumber ?? this.#fromBlock;
      const found = await this.#revocation(manifest, from, latest);
      if (found === null) return { manifestDigest: fromBytes32(manifest), revoked: true, ...none };
      return {
        manifestDigest: fromBytes32(manifest),
        revoked: true,
        reason: found.reason,
        blockNumber: found.blockNumber,
        txHash: found.txHash,
        revokedAt: new Date((await this.#blockTime(found.blockNumber)) * 1000),
      };
    });
  }

  async checkpointOf(logId: string, treeSize: number): Promise<AnchoredCheckpoint> {
    const log = toBytes32(logId, "logId");
    if (!Number.isSafeInteger(treeSize) || treeSize < 0)
      throw new MalformedInputError("MERKLE_INVALID", `a tree size is a non-negative integer, got ${treeSize}`);
    return this.#call(async () => {
      const [[root], [latestSize, , latestAt], latest] = await Promise.all([
        this.#view("checkpointRoot", [log, treeSize]),
        this.#view("latestCheckpoint", [log]),
        this.#transport.blockNumber(),
      ]);
      const base = { logId: fromBytes32(log), treeSize };
      if (fromBytes32(root) === ZERO_HASH)
        return { ...base, rootHash: null, anchoredAt: null, blockNumber: null, txHash: null };
      // The anchoring event gives the block (and tx); the newest checkpoint's time is in storage as well.
      const event = await this.#anchoredEvent(log, treeSize, latest);
      const anchoredAt =
        Number(latestSize) === treeSize
          ? new Date(Number(latestAt) * 1000)
          : event === null
            ? null
            : new Date((await this.#blockTime(event.blockNumber)) * 1000);
      return {
        ...base,
        rootHash: fromBytes32(root),
        anchoredAt,
        blockNumber: event?.blockNumber ?? null,
        txHash: event?.txHash ?? null,
      };
    });
  }

  async latestCheckpoint(logId: string): Promise<AnchoredCheckpoint | null> {
    const log = toBytes32(logId, "logId");
    return this.#call(async () => {
      const [size] = await this.#view("latestCheckpoint", [log]);
      return size === 0n ? null : this.checkpointOf(logId, Number(size));
    });
  }

  async servingRecordOf(logId: string): Promise<RegistryRecord | null> {
    const log = toBytes32(logId, "logId");
    return this.#call(async () => {
      const [manifest] = await this.#view("logOf", [log]);
      return fromBytes32(manifest) === ZERO_HASH ? null : this.record(manifest);
    });
  }

  /**
   * The CheckpointAnchored event of (logId, treeSize): topic1 is the log, so a scan over the deployment's blocks
   * (bounded like the other scans: maxScanBlocks × 10 from fromBlock, newest blocks first when longer) finds it.
   */
  async #anchoredEvent(
    log: string,
    treeSize: number,
    latest: number,
  ): Promise<{ blockNumber: number; txHash: string } | null> {
    const span = this.#maxScanBlocks * 10;
    const from = Math.max(this.#fromBlock, latest - span + 1);
    for (const l of await this.#scan({ topics: [ANCHORED_TOPIC, log] }, from, latest)) {
      try {
        const args = registryInterface.decodeEventLog(ANCHORED_EVENT, l.data, l.topics);
        if (Number(args.getValue("treeSize") as bigint) === treeSize)
          return { blockNumber: l.blockNumber, txHash: l.transactionHash };
      } catch {
        // not decodable: not the registry's event
      }
    }
    return null;
  }

  /**
   * AttestationRecorded events for the topics, keyed by manifest digest. A short history is scanned whole; a long
   * one only around the blocks whose timestamps equal the records' publishedAt (found by binary search), so that a
   * lookup on a years-old Sapphire registry costs a few dozen requests, not thousands.
   */
  async #recordedEvents(
    topics: (string | null)[],
    latest: number,
    publishedAt: bigint[],
  ): Promise<Map<string, RecordedEvent>> {
    const ranges: [number, number][] = [];
    if (this.#isShortHistory(latest) || publishedAt.length === 0) {
      ranges.push([this.#fromBlock, Math.min(latest, this.#fromBlock + this.#maxScanBlocks * 10)]);
    } else {
      for (const at of new Set(publishedAt)) ranges.push(await this.#blocksAt(Number(at), latest));
    }
    const result = new Map<string, RecordedEvent>();
    for (const [from, to] of ranges) {
      for (const log of await this.#scan({ topics }, from, to)) {
        const event = toRecordedEvent(log);
        if (event !== null) result.set(event.manifestDigest, event);
      }
    }
    return result;
  }

  #isShortHistory(latest: number): boolean {
    return latest - this.#fromBlock + 1 <= this.#logRange * 4;
  }

  async #blockTime(block: number): Promise<number> {
    const cached = this.#blockTimes.get(block);
    if (cached !== undefined) return cached;
    const time = await this.#transport.blockTimestamp(block);
    this.#blockTimes.set(block, time);
    return time;
  }

  /** The first block in [fromBlock, latest+1] whose timestamp is ≥ `time`. */
  async #firstBlockAtOrAfter(time: number, latest: number): Promise<number> {
    let lo = this.#fromBlock;
    let hi = latest + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await this.#blockTime(mid)) >= time) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  async #blocksAt(time: number, latest: number): Promise<[number, number]> {
    const first = await this.#firstBlockAtOrAfter(time, latest);
    const last = (await this.#firstBlockAtOrAfter(time + 1, latest)) - 1;
    return [Math.min(first, latest), Math.max(Math.min(last, latest), Math.min(first, latest))];
  }

  /** eth_getLogs over [from, to] in windows of logRange blocks, a few windows at a time, in block order. */
  async #scan(filter: { topics: (string | string[] | null)[] }, from: number, to: number): Promise<RawLog[]> {
    const windows: [number, number][] = [];
    for (let start = from; start <= to; start += this.#logRange) {
      windows.push([start, Math.min(to, start + this.#logRange - 1)]);
    }
    const logs: RawLog[] = [];
    const parallel = 4;
    for (let i = 0; i < windows.length; i += parallel) {
      const batch = await Promise.all(
        windows
          .slice(i, i + parallel)
          .map(([fromBlock, toBlock]) =>
            this.#transport.logs({ ...filter, address: this.address, fromBlock, toBlock }),
          ),
      );
      for (const page of batch) logs.push(...page);
    }
    return logs;
  }
}

/** An AttestationRecorded log decoded by the ABI; null when it is another event or does not decode. */
function toRecordedEvent(log: RawLog): RecordedEvent | null {
  if (log.topics[0] !== RECORDED_TOPIC) return null;
  let args;
  try {
    args = registryInterface.decodeEventLog(RECORDED_EVENT, log.data, log.topics);
  } catch {
    return null;
  }
  const parent = fromBytes32(args.getValue("parentModelHash") as string);
  return {
    modelHash: fromBytes32(args.getValue("modelHash") as string),
    manifestDigest: fromBytes32(args.getValue("manifestDigest") as string),
    parentModelHash: parent === ZERO_HASH ? null : parent,
    kind: Number(args.getValue("kind") as bigint),
    measurementHash: fromBytes32(args.getValue("measurementHash") as string),
    policyDigest: fromBytes32(args.getValue("policyDigest") as string),
    reportedTcb: args.getValue("reportedTcb") as bigint,
    blockNumber: log.blockNumber,
    txHash: log.transactionHash,
    logIndex: log.index,
  };
}

/** JSON form of a record (bigint → decimal string, Date → ISO). */
export function recordToJson(record: RegistryRecord): Record<string, unknown> {
  return {
    ...record,
    publishedAt: record.publishedAt.toISOString(),
    reportedTcb: record.reportedTcb === null ? null : record.reportedTcb.toString(),
  };
}
