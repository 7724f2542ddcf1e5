// An embedded development chain: Hardhat 3's in-process EDR network served as JSON-RPC over HTTP on 127.0.0.1,
// so that the verifier, the CLI and the explorer page talk to it exactly as they would to a remote node.
// Used by `npm start`, the test helpers (offchain/testing) and the benchmarks; it needs the `hardhat` dev dependency,
// so lib/registry/index.ts does not export it. Development only: the keys are Hardhat's public ones.
import http from "node:http";
import type { AddressInfo } from "node:net";

import { network } from "hardhat";

/** Hardhat's well-known development accounts (mnemonic "test test … junk"); never use them anywhere real. */
export const DEV_PRIVATE_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1d1706367c2e68ca870fc3fb9a804e8ab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
] as const;

export interface DevChain {
  /** http://127.0.0.1:<port> */
  url: string;
  chainId: number;
  close(): Promise<void>;
}

interface JsonRpcRequest {
  jsonrpc?: string;
  id?: number | string | null;
  method?: unknown;
  params?: unknown;
}

const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

/** Starts the in-process chain and its HTTP endpoint; `port` 0 picks a free one. */
export async function startDevChain(options: { port?: number } = {}): Promise<DevChain> {
  const connection = await network.create({ network: "hardhat" });
  const provider = connection.provider;

  async function answer(request: JsonRpcRequest): Promise<unknown> {
    const id = request.id ?? null;
    if (typeof request.method !== "string") {
      return { jsonrpc: "2.0", id, error: { code: -32600, message: "invalid request" } };
    }
    try {
      const params = Array.isArray(request.params) ? request.params : [];
      const result = await provider.request({ method: request.method, params });
      return { jsonrpc: "2.0", id, result };
    } catch (error) {
      const e = error as { code?: number; message?: string; data?: unknown };
      return {
        jsonrpc: "2.0",
        id,
        error: {
          code: typeof e.code === "number" ? e.code : -32603,
          message: e.message ?? String(error),
          data: e.data,
        },
      };
    }
  }

  const server = http.createServer((req, res) => {
    if (req.method !== "POST") {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on("end", () => {
      void (async () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }));
          return;
        }
        // ethers batches requests: answer arrays in order, one at a time, as a node would.
        const reply = Array.isArray(body)
          ? await Promise.all(body.map((r) => answer(r as JsonRpcRequest)))
          : await answer(body as JsonRpcRequest);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(reply));
      })();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const chainId = Number(await provider.request({ method: "eth_chainId", params: [] }));

  return {
    url: `http://127.0.0.1:${port}`,
    chainId,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await connection.close();
    },
  };
}
