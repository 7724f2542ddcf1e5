// The verifier's HTTP API (node:http, 127.0.0.1 by default): /healthz, /metrics (Prometheus text format 0.0.4),
// /bundles?status=… and /bundles/:digest for publishers who want to know whether their bundle was accepted and why.
// Read-only: it reads the store and in-memory gauges, never changes state.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { redactUrl } from "../chain/index.ts";
import { BUNDLE_STATUSES, type BundleStatus, type Store } from "../store/index.ts";

/** Publish latency buckets (seconds): bundle first seen → record confirmed. */
export const LATENCY_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

export class Metrics {
  readonly latencyCounts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  latencySum = 0;
  latencyCount = 0;
  rpcUp = 1;
  lastPollOk = 0;
  publishErrors = 0;

  observeLatency(ms: number): void {
    const seconds = ms / 1000;
    const i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
    this.latencyCounts[i === -1 ? LATENCY_BUCKETS.length : i]! += 1;
    this.latencySum += seconds;
    this.latencyCount += 1;
  }
}

export interface HealthState {
  ok: boolean;
  [key: string]: unknown;
}

export interface ApiOptions {
  store: Store;
  metrics: Metrics;
  health: () => HealthState;
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = type === "application/json" ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
  res.end(text);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Renders the Prometheus exposition text. */
export function renderMetrics(store: Store, metrics: Metrics): string {
  const counts = store.countByStatus();
  const seen = Object.values(counts).reduce((a, b) => a + b, 0);
  const lines: string[] = [
    "# HELP provenant_bundles_seen_total Distinct bundles (by content digest) found in watched repositories.",
    "# TYPE provenant_bundles_seen_total counter",
    `provenant_bundles_seen_total ${seen}`,
    "# HELP provenant_bundles_accepted_total Bundles that passed verification (published or not yet).",
    "# TYPE provenant_bundles_accepted_total counter",
    `provenant_bundles_accepted_total ${counts.accepted + counts.published + counts.failed}`,
    "# HELP provenant_bundles_rejected_total Bundles and repository entries refused, by reason code.",
    "# TYPE provenant_bundles_rejected_total counter",
  ];
  for (const [code, n] of Object.entries(store.rejectionsByCode()).sort())
    lines.push(`provenant_bundles_rejected_total{code="${escapeLabel(code)}"} ${n}`);
  lines.push(
    "# HELP provenant_bundles_published_total Bundles whose record is onchain.",
    "# TYPE provenant_bundles_published_total counter",
    `provenant_bundles_published_total ${counts.published}`,
    "# HELP provenant_bundles Bundles by current status.",
    "# TYPE provenant_bundles gauge",
    ...BUNDLE_STATUSES.map((s) => `provenant_bundles{status="${s}"} ${counts[s]}`),
    "# HELP provenant_publish_queue_depth Accepted records waiting for publication.",
    "# TYPE provenant_publish_queue_depth gauge",
    `provenant_publish_queue_depth ${store.pendingCount()}`,
    "# HELP provenant_publish_latency_seconds Time from a bundle being first seen to its record confirmed onchain.",
    "# TYPE provenant_publish_latency_seconds histogram",
  );
  let cumulative = 0;
  LATENCY_BUCKETS.forEach((bucket, i) => {
    cumulative += metrics.latencyCounts[i]!;
    lines.push(`provenant_publish_latency_seconds_bucket{le="${bucket}"} ${cumulative}`);
  });
  cumulative += metrics.latencyCounts[LATENCY_BUCKETS.length]!;
  lines.push(
    `provenant_publish_latency_seconds_bucket{le="+Inf"} ${cumulative}`,
    `provenant_publish_latency_seconds_sum ${metrics.latencySum}`,
    `provenant_publish_latency_seconds_count ${metrics.latencyCount}`,
    "# HELP provenant_rpc_up 1 when the last chain call succeeded.",
    "# TYPE provenant_rpc_up gauge",
    `provenant_rpc_up ${metrics.rpcUp}`,
    "# HELP provenant_publish_errors_total Transient publication failures (retried).",
    "# TYPE provenant_publish_errors_total counter",
    `provenant_publish_errors_total ${metrics.publishErrors}`,
    "",
  );
  return lines.join("\n");
}

function bundleView(store: Store, digest: string) {
  const row = store.getBundle(digest);
  if (row === undefined) return undefined;
  return {
    digest: row.digest,
    status: row.status,
    manifestDigest: row.manifestDigest,
    modelHash: row.modelHash,
    kind: row.kind,
    errors: row.errors,
    record: row.record,
    publication:
      row.txHash === null && row.status !== "published"
        ? null
        : { txHash: row.txHash, block: row.block, publishedAt: row.publishedAt },
    seenAt: row.seenAt,
    verifiedAt: row.verifiedAt,
    attempts: row.attempts,
    lastError: row.lastError,
    // Repository URLs may carry credentials (https://token@host/…): never serve them.
    files: store.sightingsOf(row.digest).map((f) => ({ ...f, repo: redactUrl(f.repo) })),
  };
}

export function handleRequest(options: ApiOptions, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, { error: "method not allowed" });
  const url = new URL(req.url ?? "/", "http://localhost");
  try {
    if (url.pathname === "/healthz") {
      const health = options.health();
      return send(res, health.ok ? 200 : 503, health);
    }
    if (url.pathname === "/metrics")
      return send(res, 200, renderMetrics(options.store, options.metrics), "text/plain; version=0.0.4; charset=utf-8");
    if (url.pathname === "/bundles") {
      const status = url.searchParams.get("status");
      if (status !== null && !(BUNDLE_STATUSES as readonly string[]).includes(status))
        return send(res, 400, { error: `status must be one of ${BUNDLE_STATUSES.join(", ")}` });
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get("limit") ?? 100) || 100));
      const offset = Math.max(0, Number(url.searchParams.get("offset") ?? 0) || 0);
      const rows = options.store.listBundles({
        ...(status === null ? {} : { status: status as BundleStatus }),
        limit,
        offset,
      });
      return send(res, 200, {
        bundles: rows.map((r) => ({
          digest: r.digest,
          status: r.status,
          path: r.path,
          manifestDigest: r.manifestDigest,
          modelHash: r.modelHash,
          errors: r.errors.map((e) => e.code),
          txHash: r.txHash,
        })),
        limit,
        offset,
      });
    }
    if (url.pathname === "/refusals")
      return send(res, 200, {
        refusals: options.store.listRefusals(200).map((r) => ({ ...r, repo: redactUrl(r.repo) })),
      });
    const match = /^\/bundles\/(?:0x)?([0-9a-fA-F]{64})$/.exec(url.pathname);
    if (match !== null) {
      const view = bundleView(options.store, match[1]!.toLowerCase());
      return view === undefined ? send(res, 404, { error: "NOT_FOUND" }) : send(res, 200, view);
    }
    return send(res, 404, { error: "NOT_FOUND" });
  } catch (error) {
    return send(res, 500, { error: "INTERNAL", message: error instanceof Error ? error.message : String(error) });
  }
}

export async function startApi(
  options: ApiOptions,
  listen: { host: string; port: number },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => handleRequest(options, req, res));
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${address.address}:${address.port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Parses "host:port" (IPv4 or [IPv6]); the default host is 127.0.0.1. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (m === null) throw new RangeError(`--listen expects host:port, got ${text}`);
  const port = Number(m[3]);
  if (port > 65535) throw new RangeError(`port out of range: ${port}`);
  return { host: m[1] || m[2] || "127.0.0.1", port };
}
