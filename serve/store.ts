// The serving log's state in node:sqlite (WAL): every serving identity (log) this data directory had, every leaf of
// every log (receipts and usage statements, with their signed envelopes), checkpoints with their anchoring, the usage
// chain, and the seq reservation. Commits run with synchronous=NORMAL (a committed receipt survives the process dying,
// an OS crash may lose the last ones); the few commits that must survive an OS crash too (a seq reservation, a
// checkpoint before it is anchored, a new log) are `durable`: synchronous=FULL, the WAL fsync'd at that commit.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";

import { IoError } from "../lib/errors.ts";

export interface LogRow {
  logId: string;
  ordinal: number;
  publicKey: Uint8Array;
  servingManifest: string;
  modelRoot: string;
  modelName: string;
  startedAt: string;
  bundle: Uint8Array;
  /** Set when a later serving identity of this data directory recovered the log (its key S is gone). */
  closedAt: string | null;
  successor: string | null;
}

export type LeafKind = "receipt" | "usage";

export interface LeafRow {
  logId: string;
  leafIndex: number;
  kind: LeafKind;
  digest: string;
  leafHash: Uint8Array;
  envelope: string;
  seq: number | null;
  issuedAt: string;
  promptTokens: number | null;
  completionTokens: number | null;
  clientKeyId: string | null;
}

export interface CheckpointRow {
  logId: string;
  treeSize: number;
  rootHash: string;
  note: string;
  /** The log whose key signed the note: the log itself, or its successor after a restart. */
  signerLogId: string;
  createdAt: string;
  recovery: boolean;
  anchorTx: string | null;
  anchorBlock: number | null;
  anchorGas: number | null;
  anchoredAt: string | null;
  /** Anchored by a later serving identity of this data directory (after a restart). */
  anchoredAfterRestart: boolean;
}

export interface UsageRow {
  digest: string;
  ordinal: number;
  meteredLogId: string;
  leafLogId: string;
  leafIndex: number;
  fromSize: number;
  treeSize: number;
  periodEnd: string;
  createdAt: string;
}

export interface EpochAggregate {
  count: number;
  firstSeq: number | null;
  lastSeq: number | null;
  inputTokens: number;
  outputTokens: number;
  firstIssuedAt: string | null;
  clients: { clientKeyId: string; count: number; inputTokens: number; outputTokens: number }[];
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE logs (
     log_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL UNIQUE, public_key BLOB NOT NULL,
     serving_manifest TEXT NOT NULL, model_root TEXT NOT NULL, model_name TEXT NOT NULL, started_at TEXT NOT NULL,
     bundle BLOB NOT NULL, closed_at TEXT, successor TEXT);
   CREATE TABLE leaves (
     log_id TEXT NOT NULL, leaf_index INTEGER NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
     leaf_hash BLOB NOT NULL, envelope TEXT NOT NULL, seq INTEGER UNIQUE, issued_at TEXT NOT NULL,
     prompt_tokens INTEGER, completion_tokens INTEGER, client_key_id TEXT,
     PRIMARY KEY (log_id, leaf_index));
   CREATE TABLE checkpoints (
     log_id TEXT NOT NULL, tree_size INTEGER NOT NULL, root_hash TEXT NOT NULL, note TEXT NOT NULL,
     signer_log_id TEXT NOT NULL, created_at TEXT NOT NULL, recovery INTEGER NOT NULL DEFAULT 0,
     anchor_tx TEXT, anchor_block INTEGER, anchor_gas INTEGER, anchored_at TEXT,
     anchored_after_restart INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (log_id, tree_size));
   CREATE TABLE usage (
     digest TEXT PRIMARY KEY, ordinal INTEGER NOT NULL UNIQUE, metered_log_id TEXT NOT NULL,
     leaf_log_id TEXT NOT NULL, leaf_index INTEGER NOT NULL, from_size INTEGER NOT NULL, tree_size INTEGER NOT NULL,
     period_end TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE INDEX usage_metered ON usage(metered_log_id, ordinal);`,
  // The seq reservation (docs/serving.md, Durability): no seq at or above `seq_reserved_through` was ever handed out.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
];

type Row = Record<string, SQLInputValue>;

const bytes = (value: SQLInputValue): Uint8Array => new Uint8Array(value as Uint8Array);
const text = (value: SQLInputValue): string => value as string;
const maybeText = (value: SQLInputValue): string | null => (value === null ? null : (value as string));
const maybeNumber = (value: SQLInputValue): number | null => (value === null ? null : Number(value));
const flag = (value: SQLInputValue): boolean => Number(value) === 1;

/**
 * A row reader for one table: each field of T read from its snake_case column (`leafIndex` from `leaf_index`) by its
 * converter. The one mapping of columns to fields, so that a table's reader cannot drift from its interface.
 */
function rowReader<T>(fields: { [K in keyof T]-?: (value: SQLInputValue) => T[K] }): (r: Row) => T {
  const columns = Object.entries(fields as Record<string, (value: SQLInputValue) => unknown>).map(
    ([field, convert]) => [field, field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), convert] as const,
  );
  return (r) => {
    const out: Record<string, unknown> = {};
    for (const [field, column, convert] of columns) {
      const value = r[column];
      if (value === undefined) throw new IoError("SERVE_STORE_FAILED", `the store has no column ${column}`);
      out[field] = convert(value);
    }
    return out as T;
  };
}

const toLog = rowReader<LogRow>({
  logId: text,
  ordinal: Number,
  publicKey: bytes,
  servingManifest: text,
  modelRoot: text,
  modelName: text,
  startedAt: text,
  bundle: bytes,
  closedAt: maybeText,
  successor: maybeText,
});

const toLeaf = rowReader<LeafRow>({
  logId: text,
  leafIndex: Number,
  kind: (value) => text(value) as LeafKind,
  digest: text,
  leafHash: bytes,
  envelope: text,
  seq: maybeNumber,
  issuedAt: text,
  promptTokens: maybeNumber,
  completionTokens: maybeNumber,
  clientKeyId: maybeText,
});

const toCheckpoint = rowReader<CheckpointRow>({
  logId: text,
  treeSize: Number,
  rootHash: text,
  note: text,
  signerLogId: text,
  createdAt: text,
  recovery: flag,
  anchorTx: maybeText,
  anchorBlock: maybeNumber,
  anchorGas: maybeNumber,
  anchoredAt: maybeText,
  anchoredAfterRestart: flag,
});

const toUsage = rowReader<UsageRow>({
  digest: text,
  ordinal: Number,
  meteredLogId: text,
  leafLogId: text,
  leafIndex: Number,
  fromSize: Number,
  treeSize: Number,
  periodEnd: text,
  createdAt: text,
});

export class ServeStore {
  readonly db: DatabaseSync;
  readonly file: string;
  /** The journal mode in force: "wal" normally; anything else and every commit is synchronous=FULL. */
  journalMode = "wal";
  #insertLeaf: StatementSync | undefined;

  private constructor(file: string) {
    this.file = file;
    this.db = new DatabaseSync(file);
  }

  /**
   * Opens (or creates) `<dataDir>/serve.sqlite`. WAL with synchronous=NORMAL: a commit is in the WAL file (the OS
   * holds it: a process crash or SIGKILL loses nothing committed) but not fsync'd until a durable commit or a WAL
   * checkpoint. Where WAL is refused (a file system without shared memory), every commit is synchronous=FULL.
   */
  static async open(dataDir: string): Promise<ServeStore> {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (error) {
      throw new IoError("SERVE_STORE_FAILED", `cannot create the data directory ${dataDir}: ${String(error)}`, {
        cause: error,
      });
    }
    const file = path.join(dataDir, "serve.sqlite");
    let store: ServeStore;
    try {
      store = new ServeStore(file);
      const mode = store.db.prepare("PRAGMA journal_mode = WAL").get() as Row;
      store.journalMode = String(mode.journal_mode).toLowerCase();
      store.db.exec(`PRAGMA synchronous = ${store.#normal}; PRAGMA busy_timeout = 5000`);
      store.#migrate();
    } catch (error) {
      throw new IoError("SERVE_STORE_FAILED", `cannot open ${file}: ${String(error)}`, { cause: error });
    }
    return store;
  }

  /** The synchronous level of ordinary commits: NORMAL in WAL mode (see open), FULL otherwise. */
  get #normal(): "NORMAL" | "FULL" {
    return this.journalMode === "wal" ? "NORMAL" : "FULL";
  }

  #migrate(): void {
    const version = Number((this.db.prepare("PRAGMA user_version").get() as Row).user_version);
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  /**
   * Runs `body` in one transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on a throw). `durable`: the commit is
   * synchronous=FULL, i.e. SQLite fsyncs the WAL at this commit (sqlite.org/pragma.html#pragma_synchronous), which
   * makes it, and every commit before it (WAL frames are appended in order), survive an OS crash or power loss.
   */
  transaction<T>(body: () => T, options: { durable?: boolean } = {}): T {
    const durable = options.durable === true && this.#normal !== "FULL";
    if (durable) this.db.exec("PRAGMA synchronous = FULL");
    try {
      this.db.exec("BEGIN IMMEDIATE");
      let result: T;
      try {
        result = body();
        this.db.exec("COMMIT");
      } catch (error) {
        this.db.exec("ROLLBACK");
        throw error;
      }
      return result;
    } finally {
      if (durable) this.db.exec(`PRAGMA synchronous = ${this.#normal}`);
    }
  }

  async close(): Promise<void> {
    // Closing the last connection checkpoints the WAL into the database file, with fsyncs.
    this.db.close();
  }

  // ── the seq reservation ──

  /** No seq at or above this was ever handed out (0 when nothing was reserved yet). */
  reservedThrough(): number {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'seq_reserved_through'").get() as Row | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  /**
   * Sets the reserved mark, in a durable commit of its own: raised before any seq at or above the old mark is handed
   * out, lowered to the next seq at a clean shutdown. SERVE_STORE_FAILED when the store refuses it.
   */
  reserveThrough(through: number): void {
    try {
      this.transaction(
        () =>
          this.db
            .prepare(
              `INSERT INTO meta (key, value) VALUES ('seq_reserved_through', ?)
               ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
            )
            .run(through),
        { durable: true },
      );
    } catch (error) {
      throw new IoError("SERVE_STORE_FAILED", `cannot reserve seq numbers: ${String(error)}`, { cause: error });
    }
  }

  // ── logs ──

  insertLog(log: Omit<LogRow, "ordinal" | "closedAt" | "successor">): LogRow {
    const ordinal = Number((this.db.prepare("SELECT COALESCE(MAX(ordinal), -1) + 1 AS n FROM logs").get() as Row).n);
    this.db
      .prepare(
        `INSERT INTO logs (log_id, ordinal, public_key, serving_manifest, model_root, model_name, started_at, bundle)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        log.logId,
        ordinal,
        log.publicKey,
        log.servingManifest,
        log.modelRoot,
        log.modelName,
        log.startedAt,
        log.bundle,
      );
    return { ...log, ordinal, closedAt: null, successor: null };
  }

  closeLog(logId: string, successor: string, at: string): void {
    this.db.prepare("UPDATE logs SET closed_at = ?, successor = ? WHERE log_id = ?").run(at, successor, logId);
  }

  logs(): LogRow[] {
    return (this.db.prepare("SELECT * FROM logs ORDER BY ordinal").all() as Row[]).map(toLog);
  }

  log(logId: string): LogRow | undefined {
    const row = this.db.prepare("SELECT * FROM logs WHERE log_id = ?").get(logId) as Row | undefined;
    return row === undefined ? undefined : toLog(row);
  }

  // ── leaves ──

  insertLeaf(leaf: LeafRow): void {
    // Prepared once: this runs for every answer.
    this.#insertLeaf ??= this.db.prepare(
      `INSERT INTO leaves (log_id, leaf_index, kind, digest, leaf_hash, envelope, seq, issued_at, prompt_tokens,
         completion_tokens, client_key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertLeaf.run(
      leaf.logId,
      leaf.leafIndex,
      leaf.kind,
      leaf.digest,
      leaf.leafHash,
      leaf.envelope,
      leaf.seq,
      leaf.issuedAt,
      leaf.promptTokens,
      leaf.completionTokens,
      leaf.clientKeyId,
    );
  }

  /** Every leaf hash of a log in index order (to rebuild its tree at start). */
  leafHashes(logId: string): Uint8Array[] {
    const rows = this.db
      .prepare("SELECT leaf_index, leaf_hash FROM leaves WHERE log_id = ? ORDER BY leaf_index")
      .all(logId) as Row[];
    rows.forEach((r, i) => {
      if (Number(r.leaf_index) !== i)
        throw new IoError("SERVE_STORE_FAILED", `log ${logId} has no leaf ${i}: the store is damaged`);
    });
    return rows.map((r) => bytes(r.leaf_hash!));
  }

  leafByDigest(digest: string): LeafRow | undefined {
    const row = this.db.prepare("SELECT * FROM leaves WHERE digest = ?").get(digest) as Row | undefined;
    return row === undefined ? undefined : toLeaf(row);
  }

  leafAt(logId: string, leafIndex: number): LeafRow | undefined {
    const row = this.db.prepare("SELECT * FROM leaves WHERE log_id = ? AND leaf_index = ?").get(logId, leafIndex) as
      Row | undefined;
    return row === undefined ? undefined : toLeaf(row);
  }

  /** The receipt with the highest seq, of any log (the next seq and prevReceipt follow it). */
  lastReceipt(): { seq: number; digest: string; logId: string } | undefined {
    const row = this.db
      .prepare("SELECT seq, digest, log_id FROM leaves WHERE kind = 'receipt' ORDER BY seq DESC LIMIT 1")
      .get() as Row | undefined;
    return row === undefined
      ? undefined
      : { seq: Number(row.seq), digest: text(row.digest!), logId: text(row.log_id!) };
  }

  /** Receipts of `logId` among leaves [fromSize, toSize): count, seq range, tokens, per client (largest first). */
  aggregate(logId: string, fromSize: number, toSize: number, maxClients: number): EpochAggregate {
    const totals = this.db
      .prepare(
        `SELECT COUNT(*) AS n, MIN(seq) AS first, MAX(seq) AS last, COALESCE(SUM(prompt_tokens), 0) AS input,
           COALESCE(SUM(completion_tokens), 0) AS output, MIN(issued_at) AS first_at
         FROM leaves WHERE log_id = ? AND kind = 'receipt' AND leaf_index >= ? AND leaf_index < ?`,
      )
      .get(logId, fromSize, toSize) as Row;
    const clients = (
      this.db
        .prepare(
          `SELECT client_key_id AS id, COUNT(*) AS n, SUM(prompt_tokens) AS input, SUM(completion_tokens) AS output
           FROM leaves WHERE log_id = ? AND kind = 'receipt' AND leaf_index >= ? AND leaf_index < ?
           GROUP BY client_key_id ORDER BY n DESC, id LIMIT ?`,
        )
        .all(logId, fromSize, toSize, maxClients + 1) as Row[]
    ).map((r) => ({
      clientKeyId: text(r.id!),
      count: Number(r.n),
      inputTokens: Number(r.input),
      outputTokens: Number(r.output),
    }));
    return {
      count: Number(totals.n),
      firstSeq: maybeNumber(totals.first!),
      lastSeq: maybeNumber(totals.last!),
      inputTokens: Number(totals.input),
      outputTokens: Number(totals.output),
      firstIssuedAt: maybeText(totals.first_at!),
      clients,
    };
  }

  // ── checkpoints ──

  insertCheckpoint(
    row: Omit<CheckpointRow, "anchorTx" | "anchorBlock" | "anchorGas" | "anchoredAt" | "anchoredAfterRestart">,
  ): void {
    this.db
      .prepare(
        `INSERT INTO checkpoints (log_id, tree_size, root_hash, note, signer_log_id, created_at, recovery)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(row.logId, row.treeSize, row.rootHash, row.note, row.signerLogId, row.createdAt, row.recovery ? 1 : 0);
  }

  markAnchored(
    logId: string,
    treeSize: number,
    anchor: { txHash: string | null; block: number | null; gasUsed: number | null; at: string; afterRestart: boolean },
  ): void {
    this.transaction(() =>
      this.db
        .prepare(
          `UPDATE checkpoints SET anchor_tx = ?, anchor_block = ?, anchor_gas = ?, anchored_at = ?,
             anchored_after_restart = ? WHERE log_id = ? AND tree_size = ?`,
        )
        .run(anchor.txHash, anchor.block, anchor.gasUsed, anchor.at, anchor.afterRestart ? 1 : 0, logId, treeSize),
    );
  }

  checkpoints(logId: string): CheckpointRow[] {
    return (this.db.prepare("SELECT * FROM checkpoints WHERE log_id = ? ORDER BY tree_size").all(logId) as Row[]).map(
      toCheckpoint,
    );
  }

  checkpoint(logId: string, treeSize: number): CheckpointRow | undefined {
    const row = this.db.prepare("SELECT * FROM checkpoints WHERE log_id = ? AND tree_size = ?").get(logId, treeSize) as
      Row | undefined;
    return row === undefined ? undefined : toCheckpoint(row);
  }

  latestCheckpoint(logId: string): CheckpointRow | undefined {
    const row = this.db
      .prepare("SELECT * FROM checkpoints WHERE log_id = ? ORDER BY tree_size DESC LIMIT 1")
      .get(logId) as Row | undefined;
    return row === undefined ? undefined : toCheckpoint(row);
  }

  /** The newest anchored checkpoint of a log that covers leaf `leafIndex`, if any. */
  anchoredCovering(logId: string, leafIndex: number): CheckpointRow | undefined {
    const row = this.db
      .prepare(
        `SELECT * FROM checkpoints WHERE log_id = ? AND tree_size > ? AND anchored_at IS NOT NULL
         ORDER BY tree_size DESC LIMIT 1`,
      )
      .get(logId, leafIndex) as Row | undefined;
    return row === undefined ? undefined : toCheckpoint(row);
  }

  latestAnchored(logId: string): CheckpointRow | undefined {
    const row = this.db
      .prepare("SELECT * FROM checkpoints WHERE log_id = ? AND anchored_at IS NOT NULL ORDER BY tree_size DESC LIMIT 1")
      .get(logId) as Row | undefined;
    return row === undefined ? undefined : toCheckpoint(row);
  }

  // ── usage ──

  insertUsage(row: Omit<UsageRow, "ordinal">): UsageRow {
    const ordinal = Number((this.db.prepare("SELECT COALESCE(MAX(ordinal), -1) + 1 AS n FROM usage").get() as Row).n);
    this.db
      .prepare(
        `INSERT INTO usage (digest, ordinal, metered_log_id, leaf_log_id, leaf_index, from_size, tree_size, period_end,
           created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.digest,
        ordinal,
        row.meteredLogId,
        row.leafLogId,
        row.leafIndex,
        row.fromSize,
        row.treeSize,
        row.periodEnd,
        row.createdAt,
      );
    return { ...row, ordinal };
  }

  lastUsage(): UsageRow | undefined {
    const row = this.db.prepare("SELECT * FROM usage ORDER BY ordinal DESC LIMIT 1").get() as Row | undefined;
    return row === undefined ? undefined : toUsage(row);
  }

  /** The last usage statement that metered `logId` (where its next epoch starts). */
  lastUsageOf(logId: string): UsageRow | undefined {
    const row = this.db
      .prepare("SELECT * FROM usage WHERE metered_log_id = ? ORDER BY ordinal DESC LIMIT 1")
      .get(logId) as Row | undefined;
    return row === undefined ? undefined : toUsage(row);
  }

  usage(digest: string): UsageRow | undefined {
    const row = this.db.prepare("SELECT * FROM usage WHERE digest = ?").get(digest) as Row | undefined;
    return row === undefined ? undefined : toUsage(row);
  }
}
