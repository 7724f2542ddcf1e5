// The registry client SDK, browser-safe core: reads the ModelRegistry (DESIGN §5) through ethers v6 and answers
// the questions marketplaces and auditors ask ("is this model attested, by what, is it revoked, what is it built on?").
// Views are the authority (manifestsOf, recordOf); events only add details (evidence digests, TCB, block, tx) and are
// read in block ranges small enough for public Sapphire RPCs. Nothing here touches node: modules (see node.ts).
import { Interface, type Provider } from "ethers";

import { FetchTransport, ProviderTransport, type RawLog, type Transport } from "./transport.ts";
import { MODEL_REGISTRY_ABI } from "../../lib/registry/abi.ts";
import { IoError, MalformedInputError, ProvenantError, UsageError } from "../../lib/errors.ts";

/** Public Sapphire nodes refuse eth_getLogs over more than 100 blocks. */
export const DEFAULT_LOG_RANGE = 100;
/** How many blocks a revocation search scans at most before giving up on the reason (the flag is still exact). */
export const DEFAULT_MAX_SCAN_BLOCKS = 20_000;
const PAGE_SIZE = 100;
const ZERO_HASH = "0".repeat(64);

export type RecordKind = "finetune" | "audit";

/** One attestation as the chain knows it. Digests are lowercase hex without 0x, like lib/oms root digests. */
export interface RegistryRecord {
  modelHash: string;
  manifestDigest: string;
  /** The base model of a fine-tune; null for audits and base models. */
  parentModelHash: string | null;
  kind: RecordKind;
  kindCode: number;
  /** When the registry stored it (recordOf publishedAt, seconds → Date). */
  publishedAt: Date;
  revoked: boolean;
  /** The reason given to revoke(); null when not revoked or not found within maxScanBlocks. */
  revocationReason: string | null;
  revokedInTx: string | null;
  /** From the AttestationRecorded event; null only when the event could not be read. */
  measurementHash: string | null;
  policyDigest: string | null;
  reportedTcb: bigint | null;
  blockNumber: number | null;
  txHash: string | null;
}

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

export interface RegistryClient {
  readonly address: string;
  readonly chainId: number;
  lookup(modelHash: string): Promise<LookupResult>;
  record(manifestDigest: string): Promise<RegistryRecord | null>;
  isRecorded(modelHash: string, manifestDigest: string): Promise<boolean>;
  lineage(modelHash: string, options?: { maxDepth?: number }): Promise<LineageStep[]>;
  watch(callback: (event: RegistryEvent) => void, options?: WatchOptions): { stop(): void };
  close(): void;
}

const registryInterface = new Interface(MODEL_REGISTRY_ABI as unknown as string[]);
const RECORDED_TOPIC = registryInterface.getEvent("AttestationRecorded")!.topicHash;
const REVOKED_TOPIC = registryInterface.getEvent("AttestationRevoked")!.topicHash;
/** Selectors of the views the client reads, taken from MODEL_REGISTRY_ABI so that they follow the contract. */
const SELECTORS = {
  isRecorded: registryInterface.getFunction("isRecorded")!.selector,
  manifestsOf: registryInterface.getFunction("manifestsOf")!.selector,
  recordOf: registryInterface.getFunction("recordOf")!.selector,
};

/**
 * The views take only bytes32 and uint256 arguments and return static words (or one bytes32[]), so the client
 * encodes and decodes them directly: a lookup is latency-bound, and ethers' generic coder costs more than the call.
 */
function encodeCall(selector: string, args: (string | number)[]): string {
  return (
    selector +
    args.map((a) => (typeof a === "number" ? a.toString(16) : a.replace(/^0x/, "")).padStart(64, "0")).join("")
  );
}

function toWords(hex: string): string[] {
  const body = hex.replace(/^0x/, "");
  if (body.length % 64 !== 0)
    throw Object.assign(new Error(`return data of ${body.length / 2} bytes`), { code: "BAD_DATA" });
  const words: string[] = [];
  for (let i = 0; i < body.length; i += 64) words.push(body.slice(i, i + 64));
  return words;
}

function wordAt(words: string[], index: number): string {
  const word = words[index];
  if (word === undefined) throw Object.assign(new Error("short return data"), { code: "BAD_DATA" });
  return word;
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

function kindName(code: number): RecordKind {
  return code === 2 ? "audit" : "finetune";
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

  /** One eth_call of a registry view; the raw return data as 64-hex words. */
  async #view(selector: string, args: (string | number)[]): Promise<string[]> {
    return toWords(await this.#transport.call(this.address, encodeCall(selector, args)));
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
    return this.#call(
      async () => BigInt(`0x${wordAt(await this.#view(SELECTORS.isRecorded, [model, manifest]), 0)}`) !== 0n,
    );
  }

  async #manifestsOf(model: string): Promise<string[]> {
    const digests: string[] = [];
    for (let offset = 0; ; offset += PAGE_SIZE) {
      // ABI: bytes32[] return = offset word, length word, then the items.
      const words = await this.#view(SELECTORS.manifestsOf, [model, offset, PAGE_SIZE]);
      const start = Number(BigInt(`0x${wordAt(words, 0)}`)) / 32;
      const length = Number(BigInt(`0x${wordAt(words, start)}`));
      const page = Array.from({ length }, (_, i) => `0x${wordAt(words, start + 1 + i)}`);
      digests.push(...page);
      if (page.length < PAGE_SIZE) return digests;
    }
  }

  async #recordOf(manifest: string): Promise<RecordView> {
    const w = await this.#view(SELECTORS.recordOf, [manifest]);
    return {
      modelHash: `0x${wordAt(w, 0)}`,
      publishedAt: BigInt(`0x${wordAt(w, 1)}`),
      kind: Number(BigInt(`0x${wordAt(w, 2)}`)),
      revoked: BigInt(`0x${wordAt(w, 3)}`) !== 0n,
    };
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
      kind: kindName(view.kind),
      kindCode: view.kind,
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
  ): Promise<{ reason: string; txHash: string } | null> {
    const to = Math.min(latest, from + this.#maxScanBlocks - 1);
    const logs = await this.#scan({ topics: [REVOKED_TOPIC, manifest] }, from, to);
    const log = logs.at(-1);
    if (log === undefined) return null;
    const parsed = registryInterface.parseLog(log);
    return parsed === null ? null : { reason: String(parsed.args[1]), txHash: log.transactionHash };
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

function toRecordedEvent(log: RawLog): RecordedEvent | null {
  // AttestationRecorded: three indexed bytes32 topics, then kind, measurementHash, policyDigest, reportedTcb as words.
  if (log.topics[0] !== RECORDED_TOPIC || log.topics.length !== 4) return null;
  const data = toWords(log.data);
  if (data.length !== 4) return null;
  const parent = fromBytes32(log.topics[3]!);
  return {
    modelHash: fromBytes32(log.topics[1]!),
    manifestDigest: fromBytes32(log.topics[2]!),
    parentModelHash: parent === ZERO_HASH ? null : parent,
    kind: Number(BigInt(`0x${data[0]}`)),
    measurementHash: data[1]!.toLowerCase(),
    policyDigest: data[2]!.toLowerCase(),
    reportedTcb: BigInt(`0x${data[3]}`),
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
