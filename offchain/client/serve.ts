// Serves the built explorer page (web/dist) on 127.0.0.1, its /config.json (networks and registry addresses from
// deployments/), /rpc, a same-origin forward to the local chain's JSON-RPC (local nodes send no CORS headers), and,
// with a verifier URL, /verifier/…, a same-origin forward of the verifier's read-only record endpoints (GET only, the
// paths the page reads, bounded answers): the page re-verifies what comes back against the chain anyway.
import { readdir, readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { IoError } from "../../lib/errors.ts";
import { DEFAULT_DEPLOYMENTS_DIR } from "./index.ts";
import { NETWORKS } from "./networks.ts";

export const DEFAULT_DIST_DIR = fileURLToPath(new URL("../../web/dist/", import.meta.url));

/** What the page reads from /config.json. */
export interface ExplorerConfig {
  defaultNetwork: string;
  /**
   * The verifier whose bundles and policies the page shows next to each record (re-verified against the chain in the
   * browser): "/verifier/" when `provenant explorer --verifier <url>` forwards to one; absent or null: none set.
   */
  verifierUrl?: string | null;
  /** A `provenant serve` API whose usage statements the page shows beside serving records; absent or null: none. */
  servingUrl?: string | null;
  networks: {
    name: string;
    label: string;
    rpcUrl: string;
    chainId: number;
    address: string | null;
    logRange: number;
  }[];
}

const LABELS: Record<string, string> = {
  localhost: "Local chain",
  "sapphire-localnet": "Sapphire localnet",
  "sapphire-testnet": "Sapphire testnet",
  sapphire: "Sapphire mainnet",
};

/** Builds the page config: the local chain through /rpc, Sapphire networks at their public endpoints. */
export async function explorerConfig(deploymentsDir = DEFAULT_DEPLOYMENTS_DIR): Promise<ExplorerConfig> {
  const deployed = new Map<string, { address: string; chainId: number }>();
  for (const file of await readdir(deploymentsDir).catch(() => [] as string[])) {
    if (!file.endsWith(".json")) continue;
    try {
      const d = JSON.parse(await readFile(path.join(deploymentsDir, file), "utf8")) as {
        address?: string;
        chainId?: number;
      };
      if (typeof d.address === "string" && typeof d.chainId === "number") {
        deployed.set(file.slice(0, -5), { address: d.address, chainId: d.chainId });
      }
    } catch {
      // An unreadable deployment file simply leaves that network without an address.
    }
  }
  const local = deployed.get("localhost") ?? deployed.get("hardhat");
  const networks: ExplorerConfig["networks"] = [
    {
      name: "localhost",
      label: LABELS.localhost!,
      rpcUrl: "/rpc",
      chainId: local?.chainId ?? 31337,
      address: local?.address ?? null,
      logRange: 10_000,
    },
  ];
  for (const name of ["sapphire-testnet", "sapphire"]) {
    const n = NETWORKS[name]!;
    networks.push({
      name,
      label: LABELS[name]!,
      rpcUrl: n.rpcUrl,
      chainId: n.chainId,
      address: deployed.get(name)?.address ?? null,
      logRange: n.logRange,
    });
  }
  return { defaultNetwork: "localhost", networks };
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
};

export interface ExplorerServer {
  url: string;
  close(): Promise<void>;
}

/** The verifier paths the page reads (details.ts): anything else is not forwarded. */
const VERIFIER_PATH =
  /^\/verifier\/(?:bundles\?manifest=[0-9a-f]{64}|bundles\/[0-9a-f]{64}(?:\/bundle)?|policies\/[0-9a-f]{64})$/;
/** Largest verifier answer forwarded: a bundle (16 MiB) and a little. */
const MAX_VERIFIER_FORWARD_BYTES = 16 * 1024 * 1024 + 1024;

/** GET `target` on the verifier and pass the answer on (status and JSON body), bounded in size and time. */
async function forwardToVerifier(verifierUrl: string, target: string, res: http.ServerResponse): Promise<void> {
  try {
    const upstream = await fetch(new URL(target, verifierUrl.endsWith("/") ? verifierUrl : `${verifierUrl}/`), {
      signal: AbortSignal.timeout(15_000),
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    if (body.length > MAX_VERIFIER_FORWARD_BYTES) throw new Error("answer too large");
    res.writeHead(upstream.status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(body);
  } catch {
    res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "VERIFIER_UNAVAILABLE" }));
  }
}

export async function serveExplorer(options: {
  port?: number;
  rpcUrl: string;
  /** The verifier's HTTP API, forwarded at /verifier/ (and named in /config.json). */
  verifierUrl?: string;
  /** A `provenant serve` API named in /config.json; the page reads it directly (its read endpoints allow CORS). */
  servingUrl?: string;
  distDir?: string;
  config?: ExplorerConfig;
}): Promise<ExplorerServer> {
  const distDir = path.resolve(options.distDir ?? DEFAULT_DIST_DIR);
  try {
    await readFile(path.join(distDir, "index.html"));
  } catch (error) {
    throw new IoError("IO_ERROR", `no built page in ${distDir}: run 'npm run web:build' first`, { cause: error });
  }
  const config = {
    ...(options.config ?? (await explorerConfig())),
    ...(options.verifierUrl === undefined ? {} : { verifierUrl: "/verifier/" }),
    ...(options.servingUrl === undefined ? {} : { servingUrl: options.servingUrl }),
  };
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      if (url.pathname === "/rpc" && req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        try {
          const upstream = await fetch(options.rpcUrl, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: Buffer.concat(chunks),
          });
          res.writeHead(upstream.status, { "content-type": "application/json" });
          res.end(Buffer.from(await upstream.arrayBuffer()));
        } catch {
          res.writeHead(502, { "content-type": "application/json" });
          res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: "chain unreachable" } }));
        }
        return;
      }
      if (url.pathname.startsWith("/verifier/") && options.verifierUrl !== undefined) {
        const target = `${url.pathname}${url.search}`;
        if ((req.method !== "GET" && req.method !== "HEAD") || !VERIFIER_PATH.test(target)) {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":"NOT_FOUND"}');
          return;
        }
        await forwardToVerifier(options.verifierUrl, target.slice("/verifier/".length), res);
        return;
      }
      if (url.pathname === "/config.json") {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify(config));
        return;
      }
      const file = path.resolve(distDir, `.${url.pathname === "/" ? "/index.html" : decodeURIComponent(url.pathname)}`);
      if (!file.startsWith(distDir + path.sep)) {
        res.writeHead(403).end();
        return;
      }
      try {
        const body = await readFile(file);
        res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
        res.end(body);
      } catch {
        res.writeHead(404).end("not found");
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
