// The verifier's HTTP API (node:http, 127.0.0.1 by default): /healthz, /metrics (Prometheus text format 0.0.4),
// /bundles?status=… and /bundles/:digest for publishers who want to know whether their bundle was accepted and why,
// and POST /bundles/:digest/recheck (a bearer token from the environment) to re-check a bundle refused because its
// certificates could not be fetched. Every request is parsed inside the guard from its raw target (no URL parser
// that can throw), every query value is checked, and the server bounds headers, bodies, time and concurrency:
// one request cannot stop the service, and thousands cannot change its state.
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

import { sha256Hex } from "../../lib/x509/index.ts";
import { redactUrl } from "../chain/index.ts";
import { BUNDLE_STATUSES, type BundleRow, type BundleStatus, type Store } from "../store/index.ts";
import { startGuardedServer, type GuardedServer } from "./server.ts";

/** Publish latency buckets (seconds): bundle first seen → record confirmed. */
export const LATENCY_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];
/** Time-to-verdict buckets (seconds): bundle first seen → verdict stored (a certificate wait included). */
export const VERDICT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600];

class Histogram {
  readonly buckets: readonly number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = new Array<number>(buckets.length + 1).fill(0);
  }
  observe(seconds: number): void {
    const i = this.buckets.findIndex((b) => seconds <= b);
    this.counts[i === -1 ? this.buckets.length : i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
  render(name: string): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((bucket, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${name}_bucket{le="${bucket}"} ${cumulative}`);
    });
    cumulative += this.counts[this.buckets.length]!;
    lines.push(`${name}_bucket{le="+Inf"} ${cumulative}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

/** What the verification pool reports (offchain/pipeline/pool.ts). */
export interface PoolGauges {
  readonly size: number;
  readonly queued: number;
  readonly running: number;
  readonly busyMs: number;
}

export class Metrics {
  readonly latency = new Histogram(LATENCY_BUCKETS);
  readonly timeToVerdict = new Histogram(VERDICT_BUCKETS);
  /** Verdicts stored by this process, by result, and their reason codes (a verdict with two codes counts twice). */
  readonly verdicts = { accepted: 0, rejected: 0 };
  readonly verdictCodes = new Map<string, number>();
  rpcUp = 1;
  lastPollOk = 0;
  publishErrors = 0;
  /** Requests answered 503 because too many were in flight. */
  httpBusy = 0;
  pool: PoolGauges | undefined;
  /** Bundles waiting for certificates (an explicit, bounded wait). */
  waitingCertificates: () => number = () => 0;

  get latencyCount(): number {
    return this.latency.count;
  }

  observeLatency(ms: number): void {
    this.latency.observe(ms / 1000);
  }

  /** One stored verdict: its result, its codes, and how long after the bundle was first seen it came. */
  observeVerdict(ok: boolean, codes: readonly string[], ms: number): void {
    this.verdicts[ok ? "accepted" : "rejected"] += 1;
    for (const code of new Set(codes)) this.verdictCodes.set(code, (this.verdictCodes.get(code) ?? 0) + 1);
    this.timeToVerdict.observe(Math.max(0, ms) / 1000);
  }
}

export interface HealthState {
  ok: boolean;
  [key: string]: unknown;
}

/** Bounds on what a client can make the server hold or do. */
export interface HttpLimits {
  /** Requests being answered at once; more get 503 with Retry-After. */
  maxConcurrent: number;
  /** Open connections; more are closed by the server at once. */
  maxConnections: number;
  /** Longest request target (path and query), in bytes: 414 above. */
  maxUrlBytes: number;
  /** Largest header block, in bytes (node's maxHeaderSize): 431 above. */
  maxHeaderBytes: number;
  /** Most header lines read. */
  maxHeaders: number;
  /** Largest request body (only POST …/recheck takes one, and ignores it): 413 above. */
  maxBodyBytes: number;
  /** Time to receive the headers, and the whole request, before the connection is closed (408). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Idle time of a kept-alive connection, and of any socket, before it is closed. */
  keepAliveTimeoutMs: number;
  socketTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConcurrent: 64,
  maxConnections: 256,
  maxUrlBytes: 2048,
  maxHeaderBytes: 8192,
  maxHeaders: 64,
  maxBodyBytes: 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  socketTimeoutMs: 15_000,
};

export type RecheckOutcome = "queued" | "not-found" | "not-recheckable";

export interface ApiOptions {
  store: Store;
  metrics: Metrics;
  health: () => HealthState;
  /**
   * POST /bundles/:digest/recheck. `token` is the bearer token that authorises it (the service reads it from
   * PROVENANT_RECHECK_TOKEN); without one the endpoint answers 403 to everyone.
   */
  recheck?: { token: string | undefined; request: (digest: string) => RecheckOutcome };
  /**
   * GET /bundles/:digest/bundle for a bundle whose bytes the store did not keep (a verdict stored before bytes were
   * kept, or a refused bundle): read them again, e.g. from the repository it was seen in (the service's git mirror).
   * The answer is served only when its SHA-256 is the digest.
   */
  readBundle?: (row: BundleRow) => Promise<Uint8Array | undefined>;
  limits?: Partial<HttpLimits>;
}

const SECURITY_HEADERS = { "cache-control": "no-store", "x-content-type-options": "nosniff" };
/**
 * What readers re-verify a record with (a verdict, the bundle bytes, a policy) is public and read-only, and a page on
 * another origin (the explorer) reads it: any origin may, without credentials.
 */
const PUBLIC_READ = { "access-control-allow-origin": "*" };

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  type = "application/json",
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = type === "application/json" ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, { "content-type": type, ...SECURITY_HEADERS, ...headers });
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
    "# HELP provenant_bundles_waiting_certificates Bundles without a verdict yet because their certificates are being fetched.",
    "# TYPE provenant_bundles_waiting_certificates gauge",
    `provenant_bundles_waiting_certificates ${metrics.waitingCertificates()}`,
    "# HELP provenant_publish_queue_depth Accepted records waiting for publication.",
    "# TYPE provenant_publish_queue_depth gauge",
    `provenant_publish_queue_depth ${store.pendingCount()}`,
    "# HELP provenant_publish_latency_seconds Time from a bundle being first seen to its record confirmed onchain.",
    "# TYPE provenant_publish_latency_seconds histogram",
    ...metrics.latency.render("provenant_publish_latency_seconds"),
    "# HELP provenant_verdicts_total Verdicts stored by this process, by result.",
    "# TYPE provenant_verdicts_total counter",
    `provenant_verdicts_total{result="accepted"} ${metrics.verdicts.accepted}`,
    `provenant_verdicts_total{result="rejected"} ${metrics.verdicts.rejected}`,
    "# HELP provenant_verdict_codes_total Reason codes of the verdicts stored by this process.",
    "# TYPE provenant_verdict_codes_total counter",
    ...[...metrics.verdictCodes.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, n]) => `provenant_verdict_codes_total{code="${escapeLabel(code)}"} ${n}`),
    "# HELP provenant_time_to_verdict_seconds Time from a bundle being first seen to its verdict stored.",
    "# TYPE provenant_time_to_verdict_seconds histogram",
    ...metrics.timeToVerdict.render("provenant_time_to_verdict_seconds"),
  );
  const pool = metrics.pool;
  if (pool !== undefined)
    lines.push(
      "# HELP provenant_verification_queue_depth Bundles waiting for a verification worker or being verified.",
      "# TYPE provenant_verification_queue_depth gauge",
      `provenant_verification_queue_depth ${pool.queued + pool.running}`,
      "# HELP provenant_verification_workers Verification worker threads.",
      "# TYPE provenant_verification_workers gauge",
      `provenant_verification_workers ${pool.size}`,
      "# HELP provenant_verification_workers_busy Verification workers running a job now.",
      "# TYPE provenant_verification_workers_busy gauge",
      `provenant_verification_workers_busy ${pool.running}`,
      "# HELP provenant_verification_busy_seconds_total Time verification workers spent on bundles.",
      "# TYPE provenant_verification_busy_seconds_total counter",
      `provenant_verification_busy_seconds_total ${(pool.busyMs / 1000).toFixed(3)}`,
    );
  lines.push(
    "# HELP provenant_rpc_up 1 when the last chain call succeeded.",
    "# TYPE provenant_rpc_up gauge",
    `provenant_rpc_up ${metrics.rpcUp}`,
    "# HELP provenant_publish_errors_total Transient publication failures (retried).",
    "# TYPE provenant_publish_errors_total counter",
    `provenant_publish_errors_total ${metrics.publishErrors}`,
    "# HELP provenant_http_busy_total Requests answered 503 because too many were in flight.",
    "# TYPE provenant_http_busy_total counter",
    `provenant_http_busy_total ${metrics.httpBusy}`,
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
    // Each GPU the bundle carried (arch, driver, VBIOS, verified or not) and where the manifest says it ran.
    gpus: (row.details?.gpus as unknown[] | undefined) ?? [],
    runtime: row.details?.runtime ?? null,
    // The root the report chained to (never the bundle's unsigned provider label), the measurement and its name in
    // the policy, revocation; the job-code digest; warnings such as POLICY_OPEN. null / [] for older verdicts.
    evidence: row.details?.evidence ?? null,
    jobCodeDigest: row.details?.jobCodeDigest ?? null,
    warnings: (row.details?.warnings as unknown[] | undefined) ?? [],
    publication:
      row.txHash === null && row.status !== "published"
        ? null
        : { txHash: row.txHash, block: row.block, publishedAt: row.publishedAt },
    seenAt: row.seenAt,
    verifiedAt: row.verifiedAt,
    attempts: row.attempts,
    lastError: row.lastError,
    certificateAttempts: row.certAttempts,
    retryAt: row.retryAt,
    recheckRequestedAt: row.recheckAt,
    // Repository URLs may carry credentials (https://token@host/…): never serve them.
    files: store.sightingsOf(row.digest).map((f) => ({ ...f, repo: redactUrl(f.repo) })),
  };
}

/** The request target split into a path and its query, or the status that refuses it. */
export function parseTarget(
  raw: string | undefined,
  maxBytes: number,
): { path: string; query: URLSearchParams } | { status: 400 | 414; error: string } {
  if (raw === undefined || raw.length === 0 || raw.charCodeAt(0) !== 0x2f /* / */)
    return { status: 400, error: "BAD_REQUEST: the request target must be an absolute path" };
  if (raw.length > maxBytes) return { status: 414, error: `URI_TOO_LONG: more than ${maxBytes} bytes` };
  const q = raw.indexOf("?");
  const path = q === -1 ? raw : raw.slice(0, q);
  // URLSearchParams never throws: bad percent-escapes are kept as text, and then fail the value checks below.
  return { path, query: new URLSearchParams(q === -1 ? "" : raw.slice(q + 1)) };
}

/** An integer query value in [min, max], its default when absent, or an error text. */
function integerParam(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number | string {
  const values = query.getAll(name);
  if (values.length === 0) return fallback;
  const text = values[0]!;
  if (values.length > 1 || !/^\d{1,10}$/.test(text) || Number(text) < min || Number(text) > max)
    return `${name} must be one integer from ${min} to ${max}`;
  return Number(text);
}

const DIGEST = /^\/bundles\/(?:0x)?([0-9a-fA-F]{64})(\/recheck)?$/;
const BUNDLE_BYTES = /^\/bundles\/(?:0x)?([0-9a-fA-F]{64})\/bundle$/;
const POLICY = /^\/policies\/(?:0x)?([0-9a-fA-F]{64})$/;
const HEX64 = /^(?:0x)?([0-9a-fA-F]{64})$/;

/**
 * GET /bundles/:digest/bundle: the bundle's bytes exactly as the verifier read them (kept in the store, or read again
 * through `readBundle`), never re-serialised, so that SHA-256 of the answer is the digest and a reader can check the
 * manifest against the chain. 404 for a bundle the store does not know or whose bytes cannot be had.
 */
function handleBundleBytes(options: ApiOptions, res: ServerResponse, digest: string): void {
  const row = options.store.getBundle(digest);
  if (row === undefined) return send(res, 404, { error: "NOT_FOUND" }, "application/json", PUBLIC_READ);
  const sendBytes = (bytes: Uint8Array | undefined): void => {
    if (bytes === undefined || sha256Hex(bytes) !== digest)
      return send(
        res,
        404,
        { error: "NOT_FOUND", message: "the bundle's bytes are no longer held" },
        "application/json",
        PUBLIC_READ,
      );
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(bytes.length),
      ...SECURITY_HEADERS,
      ...PUBLIC_READ,
    });
    res.end(bytes);
  };
  const kept = options.store.bundleBytes(digest);
  if (kept !== undefined || options.readBundle === undefined) return sendBytes(kept);
  // Read again (bounded like every request: maxConcurrent, the request timeout); anything thrown is a plain 500.
  options.readBundle(row).then(sendBytes, () => send(res, 500, { error: "INTERNAL" }));
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Constant-time comparison of a presented bearer token with the configured one (digests of equal length). */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

function handleRecheck(options: ApiOptions, req: IncomingMessage, res: ServerResponse, digest: string): void {
  const token = options.recheck?.token;
  if (options.recheck === undefined || token === undefined || token === "")
    return send(res, 403, { error: "FORBIDDEN", message: "rechecks are disabled: PROVENANT_RECHECK_TOKEN is not set" });
  const header = req.headers.authorization;
  const match = typeof header === "string" ? /^Bearer ([\x21-\x7e]{1,512})$/.exec(header) : null;
  if (match === null)
    return send(
      res,
      401,
      { error: "UNAUTHORIZED", message: "Authorization: Bearer <token> required" },
      "application/json",
      { "www-authenticate": 'Bearer realm="provenant"' },
    );
  if (!tokenMatches(match[1]!, token)) return send(res, 403, { error: "FORBIDDEN", message: "wrong token" });
  const outcome = options.recheck.request(digest);
  if (outcome === "not-found") return send(res, 404, { error: "NOT_FOUND" });
  if (outcome === "not-recheckable")
    return send(res, 409, {
      error: "NOT_RECHECKABLE",
      message: "only a bundle refused or waiting with SNP_CERT_UNAVAILABLE can be re-checked",
      status: options.store.getBundle(digest)?.status,
    });
  return send(res, 202, { digest, recheck: "queued" });
}

/** Answers one request; never throws (anything unexpected is a 500 without internals). */
export function handleRequest(options: ApiOptions, req: IncomingMessage, res: ServerResponse): void {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  try {
    const target = parseTarget(req.url, limits.maxUrlBytes);
    if ("status" in target) return send(res, target.status, { error: target.error });
    const { path, query } = target;
    const method = req.method ?? "";
    const declared = req.headers["content-length"];
    const bodyBytes = declared === undefined ? 0 : Number(declared);
    if (!Number.isSafeInteger(bodyBytes) || bodyBytes > limits.maxBodyBytes)
      return send(res, 413, { error: "PAYLOAD_TOO_LARGE" }, "application/json", { connection: "close" });

    const digestMatch = DIGEST.exec(path);
    if (digestMatch?.[2] !== undefined) {
      if (method !== "POST")
        return send(res, 405, { error: "METHOD_NOT_ALLOWED" }, "application/json", { allow: "POST" });
      // The body (ignored) is read first, bounded by maxBodyBytes and the request timeout: the request stays in
      // flight, and counts against maxConcurrent, for as long as a slow client takes to send it.
      let received = 0;
      req.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > limits.maxBodyBytes) {
          send(res, 413, { error: "PAYLOAD_TOO_LARGE" }, "application/json", { connection: "close" });
          req.destroy();
        }
      });
      req.on("end", () => {
        if (res.headersSent) return;
        try {
          handleRecheck(options, req, res, digestMatch[1]!.toLowerCase());
        } catch {
          send(res, 500, { error: "INTERNAL" });
        }
      });
      return;
    }
    if (method !== "GET" && method !== "HEAD")
      return send(res, 405, { error: "METHOD_NOT_ALLOWED" }, "application/json", { allow: "GET, HEAD" });

    if (path === "/healthz") {
      const health = options.health();
      return send(res, health.ok ? 200 : 503, health);
    }
    if (path === "/metrics")
      return send(res, 200, renderMetrics(options.store, options.metrics), "text/plain; version=0.0.4; charset=utf-8");
    if (path === "/bundles") {
      const status = query.getAll("status");
      const manifest = query.getAll("manifest");
      if (status.length > 1 || (status.length === 1 && !(BUNDLE_STATUSES as readonly string[]).includes(status[0]!)))
        return send(res, 400, { error: `status must be one of ${BUNDLE_STATUSES.join(", ")}` });
      const limit = integerParam(query, "limit", 100, 1, 1000);
      const offset = integerParam(query, "offset", 0, 0, 1_000_000_000);
      if (typeof limit === "string") return send(res, 400, { error: limit });
      if (typeof offset === "string") return send(res, 400, { error: offset });
      // ?manifest=<digest>: the bundles that carry a record's manifest (how a reader finds a record's bundle).
      const manifestDigest = manifest.length === 1 ? HEX64.exec(manifest[0]!)?.[1]?.toLowerCase() : undefined;
      if (manifest.length > 1 || (manifest.length === 1 && manifestDigest === undefined))
        return send(res, 400, { error: "manifest must be one 64-hex manifest digest" });
      const page = { ...(status.length === 0 ? {} : { status: status[0] as BundleStatus }), limit, offset };
      const rows =
        manifestDigest === undefined
          ? options.store.listBundles(page)
          : options.store.bundlesOfManifest(manifestDigest, page);
      return send(
        res,
        200,
        {
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
        },
        "application/json",
        manifestDigest === undefined ? {} : PUBLIC_READ,
      );
    }
    if (path === "/refusals")
      return send(res, 200, {
        refusals: options.store.listRefusals(200).map((r) => ({ ...r, repo: redactUrl(r.repo) })),
      });
    if (digestMatch !== null) {
      const view = bundleView(options.store, digestMatch[1]!.toLowerCase());
      return view === undefined
        ? send(res, 404, { error: "NOT_FOUND" }, "application/json", PUBLIC_READ)
        : send(res, 200, view, "application/json", PUBLIC_READ);
    }
    const bytesMatch = BUNDLE_BYTES.exec(path);
    if (bytesMatch !== null) return handleBundleBytes(options, res, bytesMatch[1]!.toLowerCase());
    const policyMatch = POLICY.exec(path);
    if (policyMatch !== null) {
      // The canonical text whose SHA-256 is the digest: a reader checks it against a record's policyDigest.
      const json = options.store.policyJson(policyMatch[1]!.toLowerCase());
      return json === undefined
        ? send(res, 404, { error: "NOT_FOUND" }, "application/json", PUBLIC_READ)
        : send(res, 200, json, "application/json; charset=utf-8", PUBLIC_READ);
    }
    return send(res, 404, { error: "NOT_FOUND" });
  } catch {
    // Internals (SQL errors, stack traces) are not served; the service keeps running.
    return send(res, 500, { error: "INTERNAL" });
  }
}

export async function startApi(options: ApiOptions, listen: { host: string; port: number }): Promise<GuardedServer> {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  return startGuardedServer({
    limits,
    listen,
    handle: (req, res) => handleRequest(options, req, res),
    busy: (_req, res) => {
      options.metrics.httpBusy += 1;
      send(res, 503, { error: "BUSY" }, "application/json", { "retry-after": "1", connection: "close" });
    },
  });
}

/** Parses "host:port" (IPv4 or [IPv6]); the default host is 127.0.0.1. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (m === null) throw new RangeError(`--listen expects host:port, got ${text}`);
  const port = Number(m[3]);
  if (port > 65535) throw new RangeError(`port out of range: ${port}`);
  return { host: m[1] || m[2] || "127.0.0.1", port };
}
