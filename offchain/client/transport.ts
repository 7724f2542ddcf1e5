// How the client reaches a node. For an RPC URL: raw JSON-RPC over fetch, where every request issued in the same
// tick goes out as one batch (flushed on a microtask, not a timer), so a lookup costs the round trips it needs and
// little else. For an ethers provider: its own methods. Errors carry ethers-like codes that toClientError maps.
import type { Provider } from "ethers";

export interface RawLog {
  topics: readonly string[];
  data: string;
  blockNumber: number;
  transactionHash: string;
  index: number;
}

export interface LogFilter {
  address: string;
  topics: (string | string[] | null)[];
  fromBlock: number;
  toBlock: number;
}

export interface Transport {
  chainId(): Promise<number>;
  code(address: string): Promise<string>;
  call(to: string, data: string): Promise<string>;
  blockNumber(): Promise<number>;
  blockTimestamp(block: number): Promise<number>;
  logs(filter: LogFilter): Promise<RawLog[]>;
  close(): void;
}

class RpcError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const hex = (n: number) => `0x${n.toString(16)}`;

interface Pending {
  method: string;
  params: unknown[];
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class FetchTransport implements Transport {
  readonly #url: string;
  readonly #timeoutMs: number;
  #queue: Pending[] = [];
  #id = 0;

  constructor(url: string, timeoutMs: number) {
    this.#url = url;
    this.#timeoutMs = timeoutMs;
  }

  request(method: string, params: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ method, params, resolve, reject });
      if (this.#queue.length === 1) queueMicrotask(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    const first = this.#id + 1;
    const bodies = batch.map((p) => ({ jsonrpc: "2.0", id: ++this.#id, method: p.method, params: p.params }));
    let replies: { id: number; result?: unknown; error?: { code?: number; message?: string; data?: unknown } }[];
    try {
      const response = await fetch(this.#url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(bodies.length === 1 ? bodies[0] : bodies),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const json = (await response.json()) as typeof replies | (typeof replies)[number];
      replies = Array.isArray(json) ? json : [json];
    } catch (error) {
      const failure = new RpcError("NETWORK_ERROR", `${this.#url}: ${(error as Error).message}`);
      for (const p of batch) p.reject(failure);
      return;
    }
    const byId = new Map(replies.map((r) => [r.id, r]));
    batch.forEach((p, i) => {
      const reply = byId.get(first + i);
      if (reply === undefined) p.reject(new RpcError("SERVER_ERROR", `no reply to ${p.method}`));
      else if (reply.error !== undefined) {
        const message = reply.error.message ?? "JSON-RPC error";
        const revert = reply.error.code === 3 || /revert/i.test(message);
        p.reject(new RpcError(revert ? "CALL_EXCEPTION" : "SERVER_ERROR", `${p.method}: ${message}`));
      } else p.resolve(reply.result);
    });
  }

  async chainId(): Promise<number> {
    return Number(BigInt((await this.request("eth_chainId", [])) as string));
  }
  async code(address: string): Promise<string> {
    return (await this.request("eth_getCode", [address, "latest"])) as string;
  }
  async call(to: string, data: string): Promise<string> {
    return (await this.request("eth_call", [{ to, data }, "latest"])) as string;
  }
  async blockNumber(): Promise<number> {
    return Number(BigInt((await this.request("eth_blockNumber", [])) as string));
  }
  async blockTimestamp(block: number): Promise<number> {
    const b = (await this.request("eth_getBlockByNumber", [hex(block), false])) as { timestamp?: string } | null;
    return b?.timestamp === undefined ? 0 : Number(BigInt(b.timestamp));
  }
  async logs(filter: LogFilter): Promise<RawLog[]> {
    const raw = (await this.request("eth_getLogs", [
      {
        address: filter.address,
        topics: filter.topics,
        fromBlock: hex(filter.fromBlock),
        toBlock: hex(filter.toBlock),
      },
    ])) as { topics: string[]; data: string; blockNumber: string; transactionHash: string; logIndex: string }[];
    return raw.map((l) => ({
      topics: l.topics,
      data: l.data,
      blockNumber: Number(BigInt(l.blockNumber)),
      transactionHash: l.transactionHash,
      index: Number(BigInt(l.logIndex)),
    }));
  }
  close(): void {}
}

export class ProviderTransport implements Transport {
  readonly #provider: Provider;
  constructor(provider: Provider) {
    this.#provider = provider;
  }
  async chainId(): Promise<number> {
    return Number((await this.#provider.getNetwork()).chainId);
  }
  code(address: string): Promise<string> {
    return this.#provider.getCode(address);
  }
  call(to: string, data: string): Promise<string> {
    return this.#provider.call({ to, data });
  }
  blockNumber(): Promise<number> {
    return this.#provider.getBlockNumber();
  }
  async blockTimestamp(block: number): Promise<number> {
    return (await this.#provider.getBlock(block))?.timestamp ?? 0;
  }
  async logs(filter: LogFilter): Promise<RawLog[]> {
    const logs = await this.#provider.getLogs(filter);
    return logs.map((l) => ({
      topics: l.topics,
      data: l.data,
      blockNumber: l.blockNumber,
      transactionHash: l.transactionHash,
      index: l.index,
    }));
  }
  close(): void {}
}
