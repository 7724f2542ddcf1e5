// The verifier's state in an embedded SQLite database (node:sqlite, WAL): every bundle seen, its verdict and
// reason codes, its publication (tx hash, block), the last processed commit of each repository and every repository
// entry that was refused. State only moves forward: a bundle's status never goes back (see STATUS_RANK), so a
// restart, a replayed poll or a force-push can never un-publish or re-publish anything. The one revision allowed is
// asked for explicitly: a bundle refused with SNP_CERT_UNAVAILABLE may be re-checked (`requestRecheck`) and its
// refusal replaced by a new verdict (`reviseVerdict`), still never going back to `seen`.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

import type { ErrorCode } from "../../lib/errors.ts";
import type { AttestationRecord } from "../../lib/registry/record.ts";

/** seen → accepted | rejected → published | failed. `failed` is terminal (a revert or a refused record). */
export type BundleStatus = "seen" | "accepted" | "rejected" | "published" | "failed";

export const BUNDLE_STATUSES: readonly BundleStatus[] = ["seen", "accepted", "rejected", "published", "failed"];

const STATUS_RANK: Record<BundleStatus, number> = { seen: 0, accepted: 1, rejected: 1, published: 2, failed: 2 };

export interface ReasonCode {
  code: ErrorCode;
  message: string;
}

export interface BundleRow {
  digest: string;
  status: BundleStatus;
  repo: string;
  commit: string;
  path: string;
  seenAt: string;
  verifiedAt: string | null;
  manifestDigest: string | null;
  modelHash: string | null;
  kind: string | null;
  errors: ReasonCode[];
  record: AttestationRecord | null;
  txHash: string | null;
  block: number | null;
  publishedAt: string | null;
  attempts: number;
  lastError: string | null;
  /** Certificate fetch attempts of a bundle that waits for its ASK/ARK (0 when it never waited). */
  certAttempts: number;
  /** When a waiting bundle is verified again (null when it does not wait). */
  retryAt: string | null;
  /** When a recheck was asked for and not yet done (null otherwise). */
  recheckAt: string | null;
  /**
   * What the verdict showed besides its codes, as JSON (the pipeline's verdictDetails: each GPU verified or not, the
   * manifest's runtime record); null for a verdict stored before this column existed or that had none.
   */
  details: Record<string, unknown> | null;
}

/** A verdict as setVerdict stores it and reviseVerdict replaces one: ok or not, its codes, what the bundle holds. */
export interface VerdictInput {
  ok: boolean;
  errors: ReasonCode[];
  manifestDigest?: string | undefined;
  modelHash?: string | undefined;
  kind?: string | undefined;
  record?: AttestationRecord | undefined;
  details?: Record<string, unknown> | undefined;
}

export interface RefusalRow {
  repo: string;
  commit: string;
  path: string;
  code: ErrorCode;
  reason: string;
  seenAt: string;
}

/** Schema migrations, applied in order inside a transaction; a version is never edited once released. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE bundles (
     digest TEXT PRIMARY KEY,
     status TEXT NOT NULL,
     repo TEXT NOT NULL, commit_sha TEXT NOT NULL, path TEXT NOT NULL,
     seen_at TEXT NOT NULL, verified_at TEXT,
     manifest_digest TEXT, model_hash TEXT, kind TEXT,
     errors TEXT NOT NULL DEFAULT '[]', record TEXT,
     tx_hash TEXT, block INTEGER, published_at TEXT,
     attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
   CREATE INDEX bundles_status ON bundles(status, seen_at);
   CREATE INDEX bundles_manifest ON bundles(manifest_digest);
   CREATE TABLE sightings (
     repo TEXT NOT NULL, commit_sha TEXT NOT NULL, path TEXT NOT NULL, digest TEXT NOT NULL, seen_at TEXT NOT NULL,
     PRIMARY KEY (repo, path, digest));
   CREATE TABLE repos (repo TEXT PRIMARY KEY, last_commit TEXT NOT NULL, updated_at TEXT NOT NULL);
   CREATE TABLE refusals (
     repo TEXT NOT NULL, commit_sha TEXT NOT NULL, path TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL,
     seen_at TEXT NOT NULL, PRIMARY KEY (repo, path, code, reason));`,
  `CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // A bundle waiting for its certificates is `seen` with a retry time and an attempt count; rechecks are queued.
  `ALTER TABLE bundles ADD COLUMN cert_attempts INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE bundles ADD COLUMN retry_at TEXT;
   ALTER TABLE bundles ADD COLUMN recheck_at TEXT;
   CREATE INDEX bundles_retry ON bundles(retry_at) WHERE retry_at IS NOT NULL;
   CREATE INDEX bundles_recheck ON bundles(recheck_at) WHERE recheck_at IS NOT NULL;`,
  // What a verdict shows besides its codes (GPUs verified or not, the runtime record), for GET /bundles/:digest.
  `ALTER TABLE bundles ADD COLUMN details TEXT;`,
  // The exact bytes of every accepted bundle and each policy the service ran with, served back so that readers can
  // re-verify a record (GET /bundles/:digest/bundle, GET /policies/:digest). Content-addressed: never rewritten.
  `CREATE TABLE bundle_bytes (digest TEXT PRIMARY KEY, bytes BLOB NOT NULL);
   CREATE TABLE policies (digest TEXT PRIMARY KEY, json TEXT NOT NULL, first_used_at TEXT NOT NULL);`,
  // Refused bundles and repository entries by reason code, kept current by triggers on every change of a bundle's
  // status or codes and every refusal, so that /metrics (unauthenticated) reads a few rows instead of every refused
  // row: with 100,000 refused bundles that took 0.5-1.3 s of the event loop per request, and refusals only grow.
  // Filled once from the rows already there. /refusals reads the newest refusals through an index, not a sort.
  `CREATE TABLE rejection_counts (code TEXT PRIMARY KEY, n INTEGER NOT NULL);
   INSERT INTO rejection_counts (code, n)
     SELECT code, SUM(n) FROM (
       SELECT json_extract(e.value, '$.code') AS code, COUNT(*) AS n FROM bundles b, json_each(b.errors) e
       WHERE b.status IN ('rejected', 'failed') AND code IS NOT NULL GROUP BY code
       UNION ALL SELECT code, COUNT(*) AS n FROM refusals GROUP BY code)
     GROUP BY code;
   CREATE TRIGGER bundles_codes_out AFTER UPDATE OF status, errors ON bundles
     WHEN OLD.status IN ('rejected', 'failed') BEGIN
       UPDATE rejection_counts SET n = n - (SELECT COUNT(*) FROM json_each(OLD.errors) e
                                             WHERE json_extract(e.value, '$.code') = rejection_counts.code)
       WHERE code IN (SELECT json_extract(value, '$.code') FROM json_each(OLD.errors));
     END;
   CREATE TRIGGER bundles_codes_in AFTER UPDATE OF status, errors ON bundles
     WHEN NEW.status IN ('rejected', 'failed') BEGIN
       INSERT INTO rejection_counts (code, n)
         SELECT json_extract(value, '$.code') AS code, COUNT(*) FROM json_each(NEW.errors)
         WHERE code IS NOT NULL GROUP BY code
       ON CONFLICT(code) DO UPDATE SET n = n + excluded.n;
     END;
   CREATE TRIGGER refusals_codes AFTER INSERT ON refusals BEGIN
       INSERT INTO rejection_counts (code, n) VALUES (NEW.code, 1) ON CONFLICT(code) DO UPDATE SET n = n + 1;
     END;
   CREATE INDEX refusals_seen ON refusals(seen_at);`,
];

export interface StoreOptions {
  /** A directory (the database is `verifier.sqlite` in it) or ":memory:". */
  dataDir: string;
  now?: () => Date;
}

type Row = Record<string, unknown>;

export class Store {
  readonly db: DatabaseSync;
  readonly #now: () => Date;

  constructor(options: StoreOptions) {
    this.#now = options.now ?? (() => new Date());
    if (options.dataDir === ":memory:") {
      this.db = new DatabaseSync(":memory:");
    } else {
      mkdirSync(options.dataDir, { recursive: true });
      this.db = new DatabaseSync(path.join(options.dataDir, "verifier.sqlite"));
      this.db.exec("PRAGMA journal_mode = WAL");
    }
    // FULL: a record marked published survives a power cut as surely as the transaction that made it.
    this.db.exec("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON");
    this.#migrate();
  }

  get schemaVersion(): number {
    return Number((this.db.prepare("PRAGMA user_version").get() as Row).user_version);
  }

  #migrate(): void {
    const current = this.schemaVersion;
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[version] as string);
        this.db.exec(`PRAGMA user_version = ${version + 1}`);
      });
    }
  }

  /** Runs `body` in one IMMEDIATE transaction; rolls back on throw. */
  transaction<T>(body: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  #stamp(): string {
    return this.#now().toISOString();
  }

  // Repositories ----------------------------------------------------------------------------------------------

  lastCommit(repo: string): string | undefined {
    const row = this.db.prepare("SELECT last_commit FROM repos WHERE repo = ?").get(repo) as Row | undefined;
    return row === undefined ? undefined : String(row.last_commit);
  }

  setLastCommit(repo: string, commit: string): void {
    this.db
      .prepare(
        `INSERT INTO repos (repo, last_commit, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(repo) DO UPDATE SET last_commit = excluded.last_commit, updated_at = excluded.updated_at`,
      )
      .run(repo, commit, this.#stamp());
  }

  // Bundles -------------------------------------------------------------------------------------------------

  /**
   * Records that `digest` was found at repo/commit/path. Returns true when the bundle itself is new (never seen in
   * any file), false when it is a known bundle seen again (pushed twice, or the same bytes in another file).
   */
  recordSighting(repo: string, commit: string, filePath: string, digest: string): boolean {
    const now = this.#stamp();
    this.db
      .prepare("INSERT OR IGNORE INTO sightings (repo, commit_sha, path, digest, seen_at) VALUES (?, ?, ?, ?, ?)")
      .run(repo, commit, filePath, digest, now);
    const result = this.db
      .prepare(
        "INSERT OR IGNORE INTO bundles (digest, status, repo, commit_sha, path, seen_at) VALUES (?, 'seen', ?, ?, ?, ?)",
      )
      .run(digest, repo, commit, filePath, now);
    return Number(result.changes) === 1;
  }

  /** Stores the verdict of a bundle in status `seen`; a bundle already judged keeps its verdict. */
  setVerdict(digest: string, verdict: VerdictInput): boolean {
    const result = this.db
      .prepare(
        `UPDATE bundles SET status = ?, verified_at = ?, errors = ?, manifest_digest = ?, model_hash = ?, kind = ?,
           record = ?, details = ?, retry_at = NULL, recheck_at = NULL WHERE digest = ? AND status = 'seen'`,
      )
      .run(...this.#verdictValues(verdict), digest);
    return Number(result.changes) === 1;
  }

  /** The values of a verdict's columns, in the order setVerdict and reviseVerdict bind them (status … details). */
  #verdictValues(verdict: VerdictInput): (string | null)[] {
    const status: BundleStatus = verdict.ok ? "accepted" : "rejected";
    return [
      status,
      this.#stamp(),
      JSON.stringify(verdict.errors),
      verdict.manifestDigest ?? null,
      verdict.modelHash ?? null,
      verdict.kind ?? null,
      verdict.record === undefined ? null : JSON.stringify(verdict.record),
      verdict.details === undefined ? null : JSON.stringify(verdict.details),
    ];
  }

  /**
   * One more attempt of a bundle's bounded wait for its certificates: it stays `seen`, is verified again at
   * `retryAt`, and the attempt count is returned (the caller stores SNP_CERT_UNAVAILABLE once it reaches its bound).
   */
  noteCertificateWait(digest: string, retryAt: Date, reason: string): number {
    const row = this.db
      .prepare(
        `UPDATE bundles SET cert_attempts = cert_attempts + 1, retry_at = ?, recheck_at = NULL, last_error = ?
         WHERE digest = ? AND status = 'seen' RETURNING cert_attempts`,
      )
      .get(retryAt.toISOString(), `SNP_CERT_UNAVAILABLE: ${reason}`, digest) as Row | undefined;
    return row === undefined ? 0 : Number(row.cert_attempts);
  }

  /** Waiting bundles whose retry time has come, earliest first. */
  dueForRetry(now: Date, limit: number): BundleRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM bundles WHERE status = 'seen' AND retry_at IS NOT NULL AND retry_at <= ?
         ORDER BY retry_at, digest LIMIT ?`,
      )
      .all(now.toISOString(), limit) as Row[];
    return rows.map(toBundleRow);
  }

  /** Bundles waiting for their certificates (an explicit, bounded wait). */
  waitingCount(): number {
    const row = this.db
      .prepare("SELECT COUNT(*) AS n FROM bundles WHERE status = 'seen' AND retry_at IS NOT NULL")
      .get() as Row;
    return Number(row.n);
  }

  /**
   * Asks for a bundle refused with SNP_CERT_UNAVAILABLE to be verified again (or a waiting one to be tried now).
   * Any other bundle is not re-checkable: a verdict stands.
   */
  requestRecheck(digest: string): "queued" | "not-found" | "not-recheckable" {
    const row = this.getBundle(digest);
    if (row === undefined) return "not-found";
    const stamp = this.#stamp();
    if (row.status === "seen" && row.retryAt !== null) {
      this.db
        .prepare("UPDATE bundles SET retry_at = ?, recheck_at = ? WHERE digest = ? AND status = 'seen'")
        .run(stamp, stamp, digest);
      return "queued";
    }
    if (row.status !== "rejected" || !row.errors.some((e) => e.code === "SNP_CERT_UNAVAILABLE"))
      return "not-recheckable";
    this.db.prepare("UPDATE bundles SET recheck_at = ? WHERE digest = ? AND status = 'rejected'").run(stamp, digest);
    return "queued";
  }

  /** Refused bundles with a recheck asked for, oldest request first. */
  dueRechecks(limit: number): BundleRow[] {
    const rows = this.db
      .prepare(
        "SELECT * FROM bundles WHERE status = 'rejected' AND recheck_at IS NOT NULL ORDER BY recheck_at, digest LIMIT ?",
      )
      .all(limit) as Row[];
    return rows.map(toBundleRow);
  }

  /**
   * Replaces the refusal of a bundle whose recheck was asked for by its new verdict (accepted or still rejected).
   * The only change of a stored verdict, and only from `rejected` with a pending recheck.
   */
  reviseVerdict(digest: string, verdict: VerdictInput): boolean {
    const result = this.db
      .prepare(
        `UPDATE bundles SET status = ?, verified_at = ?, errors = ?, manifest_digest = COALESCE(?, manifest_digest),
           model_hash = COALESCE(?, model_hash), kind = COALESCE(?, kind), record = ?,
           details = COALESCE(?, details), recheck_at = NULL
         WHERE digest = ? AND status = 'rejected' AND recheck_at IS NOT NULL`,
      )
      .run(...this.#verdictValues(verdict), digest);
    return Number(result.changes) === 1;
  }

  /** Marks every accepted bundle with one of these manifest digests as published (forward only). */
  markPublished(manifestDigests: readonly string[], txHash: string | null, block: number | null): number {
    let changed = 0;
    const now = this.#stamp();
    const statement = this.db.prepare(
      `UPDATE bundles SET status = 'published', tx_hash = ?, block = ?, published_at = ?
       WHERE manifest_digest = ? AND status = 'accepted'`,
    );
    this.transaction(() => {
      for (const m of manifestDigests) changed += Number(statement.run(txHash, block, now, m).changes);
    });
    return changed;
  }

  /** Marks accepted bundles with these manifest digests as failed for good, with a reason. */
  markFailed(manifestDigests: readonly string[], reason: ReasonCode): number {
    let changed = 0;
    const statement = this.db.prepare(
      `UPDATE bundles SET status = 'failed', last_error = ?, errors = ?
       WHERE manifest_digest = ? AND status = 'accepted'`,
    );
    this.transaction(() => {
      for (const m of manifestDigests)
        changed += Number(statement.run(`${reason.code}: ${reason.message}`, JSON.stringify([reason]), m).changes);
    });
    return changed;
  }

  /** Counts a transient failure on these manifests; they stay accepted and are retried. */
  noteAttempt(manifestDigests: readonly string[], error: string): void {
    const statement = this.db.prepare(
      "UPDATE bundles SET attempts = attempts + 1, last_error = ? WHERE manifest_digest = ? AND status = 'accepted'",
    );
    this.transaction(() => {
      for (const m of manifestDigests) statement.run(error, m);
    });
  }

  /** Accepted bundles waiting for publication, one per manifest digest, oldest first. */
  pendingRecords(limit: number): { manifestDigest: string; record: AttestationRecord; seenAt: string }[] {
    const rows = this.db
      .prepare(
        `SELECT manifest_digest, MIN(record) AS record, MIN(seen_at) AS seen_at FROM bundles
         WHERE status = 'accepted' GROUP BY manifest_digest ORDER BY MIN(seen_at), manifest_digest LIMIT ?`,
      )
      .all(limit) as Row[];
    return rows.map((r) => ({
      manifestDigest: String(r.manifest_digest),
      record: JSON.parse(String(r.record)) as AttestationRecord,
      seenAt: String(r.seen_at),
    }));
  }

  pendingCount(): number {
    const row = this.db
      .prepare("SELECT COUNT(DISTINCT manifest_digest) AS n FROM bundles WHERE status = 'accepted'")
      .get() as Row;
    return Number(row.n);
  }

  getBundle(digest: string): BundleRow | undefined {
    const row = this.db.prepare("SELECT * FROM bundles WHERE digest = ?").get(digest) as Row | undefined;
    return row === undefined ? undefined : toBundleRow(row);
  }

  listBundles(options: { status?: BundleStatus; limit?: number; offset?: number } = {}): BundleRow[] {
    const limit = options.limit ?? 100;
    const offset = options.offset ?? 0;
    const rows = (
      options.status === undefined
        ? this.db.prepare("SELECT * FROM bundles ORDER BY seen_at DESC, digest LIMIT ? OFFSET ?").all(limit, offset)
        : this.db
            .prepare("SELECT * FROM bundles WHERE status = ? ORDER BY seen_at DESC, digest LIMIT ? OFFSET ?")
            .all(options.status, limit, offset)
    ) as Row[];
    return rows.map(toBundleRow);
  }

  /**
   * Bundles whose manifest is `manifestDigest` (hex), published first, then oldest first; with `status`, only those
   * in it (filtered before the page is cut, so that a page is never short of rows that match).
   */
  bundlesOfManifest(
    manifestDigest: string,
    options: { status?: BundleStatus; limit?: number; offset?: number } = {},
  ): BundleRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM bundles WHERE manifest_digest = ? AND (? IS NULL OR status = ?)
         ORDER BY CASE status WHEN 'published' THEN 0 WHEN 'accepted' THEN 1 ELSE 2 END, seen_at, digest
         LIMIT ? OFFSET ?`,
      )
      .all(
        manifestDigest,
        options.status ?? null,
        options.status ?? null,
        options.limit ?? 100,
        options.offset ?? 0,
      ) as Row[];
    return rows.map(toBundleRow);
  }

  // Bundle bytes and policies (what readers re-verify a record with) ----------------------------------------

  /**
   * Keeps the exact bytes of a bundle under its digest (hex SHA-256 of the bytes). Content-addressed, so a second
   * call for the same digest changes nothing. The service keeps the bytes of every bundle it accepts.
   */
  keepBundleBytes(digest: string, bytes: Uint8Array): void {
    this.db.prepare("INSERT OR IGNORE INTO bundle_bytes (digest, bytes) VALUES (?, ?)").run(digest, bytes);
  }

  /** The kept bytes of a bundle, exactly as they were read from the repository; undefined when not kept. */
  bundleBytes(digest: string): Uint8Array | undefined {
    const row = this.db.prepare("SELECT bytes FROM bundle_bytes WHERE digest = ?").get(digest) as Row | undefined;
    return row === undefined ? undefined : new Uint8Array(row.bytes as Uint8Array);
  }

  /**
   * Keeps a policy the service runs with: `json` is the RFC 8785 canonical text of its normalised form, whose
   * SHA-256 is `digest` (the policyDigest of every record it admits). The first use is kept.
   */
  keepPolicy(digest: string, json: string): void {
    this.db
      .prepare("INSERT OR IGNORE INTO policies (digest, json, first_used_at) VALUES (?, ?, ?)")
      .run(digest, json, this.#stamp());
  }

  /** The canonical JSON text of a policy this service ran with; undefined when it never ran with that digest. */
  policyJson(digest: string): string | undefined {
    const row = this.db.prepare("SELECT json FROM policies WHERE digest = ?").get(digest) as Row | undefined;
    return row === undefined ? undefined : String(row.json);
  }

  sightingsOf(digest: string): { repo: string; commit: string; path: string; seenAt: string }[] {
    const rows = this.db
      .prepare("SELECT * FROM sightings WHERE digest = ? ORDER BY seen_at, path")
      .all(digest) as Row[];
    return rows.map((r) => ({
      repo: String(r.repo),
      commit: String(r.commit_sha),
      path: String(r.path),
      seenAt: String(r.seen_at),
    }));
  }

  countByStatus(): Record<BundleStatus, number> {
    const counts = Object.fromEntries(BUNDLE_STATUSES.map((s) => [s, 0])) as Record<BundleStatus, number>;
    for (const row of this.db.prepare("SELECT status, COUNT(*) AS n FROM bundles GROUP BY status").all() as Row[]) {
      counts[row.status as BundleStatus] = Number(row.n);
    }
    return counts;
  }

  /**
   * Rejections per reason code (a bundle with two codes counts under both) and refused repository entries: read from
   * the counts the triggers keep (schema version 6), never from every refused row.
   */
  rejectionsByCode(): Record<string, number> {
    const counts: Record<string, number> = {};
    const rows = this.db.prepare("SELECT code, n FROM rejection_counts WHERE n > 0").all() as Row[];
    for (const row of rows) counts[String(row.code)] = Number(row.n);
    return counts;
  }

  // Refused repository entries ------------------------------------------------------------------------------

  recordRefusal(repo: string, commit: string, filePath: string, code: ErrorCode, reason: string): boolean {
    const result = this.db
      .prepare(
        "INSERT OR IGNORE INTO refusals (repo, commit_sha, path, code, reason, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(repo, commit, filePath, code, reason, this.#stamp());
    return Number(result.changes) === 1;
  }

  listRefusals(limit = 100): RefusalRow[] {
    const rows = this.db.prepare("SELECT * FROM refusals ORDER BY seen_at DESC LIMIT ?").all(limit) as Row[];
    return rows.map((r) => ({
      repo: String(r.repo),
      commit: String(r.commit_sha),
      path: String(r.path),
      code: r.code as ErrorCode,
      reason: String(r.reason),
      seenAt: String(r.seen_at),
    }));
  }
}

/** True when moving from `from` to `to` goes forward (the only moves the store makes). */
export function isForward(from: BundleStatus, to: BundleStatus): boolean {
  return STATUS_RANK[to] > STATUS_RANK[from];
}

function toBundleRow(r: Row): BundleRow {
  return {
    digest: String(r.digest),
    status: r.status as BundleStatus,
    repo: String(r.repo),
    commit: String(r.commit_sha),
    path: String(r.path),
    seenAt: String(r.seen_at),
    verifiedAt: r.verified_at === null ? null : String(r.verified_at),
    manifestDigest: r.manifest_digest === null ? null : String(r.manifest_digest),
    modelHash: r.model_hash === null ? null : String(r.model_hash),
    kind: r.kind === null ? null : String(r.kind),
    errors: JSON.parse(String(r.errors)) as ReasonCode[],
    record: r.record === null ? null : (JSON.parse(String(r.record)) as AttestationRecord),
    txHash: r.tx_hash === null ? null : String(r.tx_hash),
    block: r.block === null ? null : Number(r.block),
    publishedAt: r.published_at === null ? null : String(r.published_at),
    attempts: Number(r.attempts),
    lastError: r.last_error === null ? null : String(r.last_error),
    certAttempts: Number(r.cert_attempts ?? 0),
    retryAt: r.retry_at === null || r.retry_at === undefined ? null : String(r.retry_at),
    recheckAt: r.recheck_at === null || r.recheck_at === undefined ? null : String(r.recheck_at),
    details:
      r.details === null || r.details === undefined ? null : (JSON.parse(String(r.details)) as Record<string, unknown>),
  };
}
