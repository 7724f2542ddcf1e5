// The verifier service: polls git repositories, verifies every new bundle in a pool of worker threads (the event
// loop only does I/O), keeps state in SQLite, publishes accepted records in batches and serves the HTTP API.
// Crash-safe by construction: a repository's last processed commit is stored only after every bundle of that commit
// has a stored verdict or an explicit, bounded wait for its certificates; verdicts and publications only move
// forward; and the publisher asks the chain (`isRecorded`) before sending anything. No bundle holds up the ones after
// it: a bundle whose ASK/ARK cannot be fetched waits in the store (retried `certificateAttempts` times,
// `certificateRetryMs` apart), then gets the final verdict SNP_CERT_UNAVAILABLE, re-checkable on request. The same
// holds for AMD's CRLs: a chain to one of AMD's roots is judged only against a current CRL of its ARK (fetched from
// KDS, cached until its nextUpdate), and waits for one. An open policy is refused at start (POLICY_OPEN).
import path from "node:path";

import type { Logger } from "pino";

import { isProvenantError, toErrorList } from "../lib/errors.ts";
import { createCertificateStore, KDS_BASE, type CertificateStore } from "../lib/snp/index.ts";
import { sha256Hex } from "../lib/x509/index.ts";
import { createProvider, isTransient, redactUrl, type TxSender } from "./chain/index.ts";
import { assertRegistry } from "./chain/registry.ts";
import { createServiceLogger } from "./daemon.ts";
import { Metrics, startApi, type HttpLimits, type RecheckOutcome } from "./http/index.ts";
import { verdictDetails, type BundleVerdict, type VerifierPolicy } from "./pipeline/index.ts";
import { assertPolicyNotOpen, canonicalPolicyJson, policyDigest } from "./pipeline/policy.ts";
import { VerificationAbortedError, VerificationPool, type SuppliedChain, type SuppliedCrl } from "./pipeline/pool.ts";
import { backoffDelay, Publisher } from "./publisher/index.ts";
import { Store, type BundleRow, type VerdictInput } from "./store/index.ts";
import { GitRepo, type FoundBundle, type WatchLimits } from "./watcher/index.ts";

export interface ServiceOptions {
  repos: string[];
  /** Branch to follow in every repository; default: the source's HEAD. */
  branch?: string;
  rpcUrl: string;
  registry: string;
  policy: VerifierPolicy;
  /** Builds the sender once the provider is up (the local key needs the chain id to decide on Sapphire wrapping). */
  createSender: (provider: ReturnType<typeof createProvider>) => Promise<TxSender>;
  dataDir: string;
  listen?: { host: string; port: number } | undefined;
  intervalMs?: number;
  maxBatch?: number;
  maxWaitMs?: number;
  logger?: Logger;
  now?: () => Date;
  /**
   * Where the ASK/ASVK and ARK come from when a bundle does not carry them (or carries only one): an on-disk cache
   * (default `<dataDir>/kds`) filled from AMD's KDS. Inject one to use another cache or to forbid the network.
   */
  certificates?: CertificateStore;
  /**
   * KDS base URL for the default certificate store (default https://kdsintf.amd.com). Another URL (a mirror, a
   * test's fake KDS) is also asked for the CRLs of development roots, which AMD's KDS never holds.
   */
  kdsBaseUrl?: string;
  /** Time between two fetch attempts for a bundle that waits for its certificates (5 min). */
  certificateRetryMs?: number;
  /** Fetch attempts before a waiting bundle gets the final verdict SNP_CERT_UNAVAILABLE (4). */
  certificateAttempts?: number;
  /** Verification worker threads (default: the number of cores). */
  workers?: number;
  /**
   * Scheduling niceness of the verification threads (Linux; default 10): the event loop wins the CPU when cores are
   * short. 0 runs them like any other thread (on a host shared with busy jobs, niced workers wait behind them).
   */
  workerNiceness?: number;
  /** Wall-clock limit of one bundle's verification (5 min; past it, BUNDLE_TOO_COMPLEX): a safety net. */
  verifyTimeoutMs?: number;
  /** Bearer token that authorises POST /bundles/:digest/recheck (PROVENANT_RECHECK_TOKEN); none: 403. */
  recheckToken?: string | undefined;
  /** Per-scan bounds of the watcher (see offchain/watcher WatchLimits). */
  watchLimits?: Partial<WatchLimits>;
  /** HTTP bounds (see offchain/http HttpLimits). */
  httpLimits?: Partial<HttpLimits>;
}

export interface RunningService {
  store: Store;
  metrics: Metrics;
  apiUrl: string | undefined;
  /** Resolves after one complete poll of every repository (tests). */
  pollOnce(): Promise<void>;
  /**
   * Stops polling, aborts verifications in flight (their bundles are verified again after a restart), lets the batch
   * in flight finish (or abandons it safely), closes everything.
   */
  stop(): Promise<void>;
  done: Promise<void>;
}

/** The verifier's logger (offchain/daemon: key material and RPC credentials never reach a log line). */
export function createLogger(level = process.env.PROVENANT_LOG_LEVEL ?? "info"): Logger {
  return createServiceLogger("provenant-verifier", level);
}

/** What the store keeps of a verdict (setVerdict, and reviseVerdict after a recheck). */
function toVerdictInput(verdict: BundleVerdict): VerdictInput {
  return {
    ok: verdict.ok,
    errors: verdict.errors,
    manifestDigest: verdict.manifestDigest,
    modelHash: verdict.modelHash,
    kind: verdict.kind,
    record: verdict.record,
    details: verdictDetails(verdict),
  };
}

/** Lets pending I/O callbacks (an HTTP request) run before the next piece of work. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** "300 ms", "45 s", "5 min": for messages that tell a publisher how long something waited. */
function formatMs(ms: number): string {
  if (ms < 10_000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/**
 * Waits `ms`, or less when `signal` aborts or the wake function handed to `setWake` is called (the loops' idle waits:
 * a recheck wakes the watcher, an accepted verdict the publisher); the abort listener is removed either way (no leak
 * per tick), and `setWake` gets undefined once the wait is over.
 */
const sleep = (ms: number, signal?: AbortSignal, setWake?: (wake: (() => void) | undefined) => void): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      setWake?.(undefined);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    setWake?.(done);
  });

export async function startService(options: ServiceOptions): Promise<RunningService> {
  // DESIGN §11: a policy that pins no measurement or TCB floor runs only when it says it is for development.
  assertPolicyNotOpen(options.policy);
  const logger = options.logger ?? createLogger();
  const now = options.now ?? (() => new Date());
  const intervalMs = options.intervalMs ?? 30_000;
  const certificateRetryMs = options.certificateRetryMs ?? 5 * 60_000;
  const certificateAttempts = Math.max(1, options.certificateAttempts ?? 4);
  const store = new Store({ dataDir: options.dataDir, now });
  // Every record this service admits names this policy's digest: readers fetch it back by that digest.
  store.keepPolicy(policyDigest(options.policy), canonicalPolicyJson(options.policy));
  const metrics = new Metrics();
  metrics.waitingCertificates = () => store.waitingCount();
  const stopController = new AbortController();
  const log = logger.child({ module: "service" });
  const watchLog = logger.child({ module: "watcher" });
  const pubLog = logger.child({ module: "publisher" });

  const provider = createProvider(options.rpcUrl);
  log.info(
    {
      repos: options.repos.length,
      rpc: redactUrl(options.rpcUrl),
      registry: options.registry,
      dataDir: options.dataDir,
    },
    "starting",
  );

  // The chain may be down at start: wait for it (with backoff) instead of exiting, unless we are asked to stop.
  let sender: TxSender | undefined;
  for (let attempt = 0; sender === undefined && !stopController.signal.aborted; attempt++) {
    try {
      await assertRegistry(provider, options.registry);
      sender = await options.createSender(provider);
      metrics.rpcUp = 1;
    } catch (error) {
      if (!isTransient(error) || (isProvenantError(error) && error.code === "REGISTRY_NOT_FOUND")) {
        store.close();
        provider.destroy();
        throw error;
      }
      metrics.rpcUp = 0;
      const delay = backoffDelay(attempt, 500, 10_000);
      log.warn({ err: toErrorList(error)[0], retryInMs: delay }, "chain not reachable yet");
      await sleep(delay);
    }
  }
  if (sender === undefined) throw new Error("unreachable");
  log.info({ signer: sender.kind, address: sender.address }, "signer ready");

  // Verification runs in worker threads; the event loop below only moves bytes between git, SQLite and the chain.
  const pool = new VerificationPool({
    policy: options.policy,
    ...(options.workers === undefined ? {} : { size: options.workers }),
    ...(options.verifyTimeoutMs === undefined ? {} : { timeoutMs: options.verifyTimeoutMs }),
    // Verification yields the CPU to the event loop (HTTP, git, SQLite, the chain) when cores are short.
    niceness: options.workerNiceness ?? 10,
  });
  try {
    await pool.ready();
  } catch (error) {
    await pool.close();
    store.close();
    provider.destroy();
    throw error;
  }
  metrics.pool = pool;
  log.info({ workers: pool.size }, "verification workers ready");

  const publisher = new Publisher({
    store,
    provider,
    sender,
    registry: options.registry,
    maxBatch: options.maxBatch ?? 64,
    maxWaitMs: options.maxWaitMs ?? 1_000,
    logger: pubLog,
    now: () => now().getTime(),
    onPublished: (ms) => metrics.observeLatency(ms),
  });

  const repos = options.repos.map(
    (source) =>
      new GitRepo({
        source,
        mirrorDir: path.join(options.dataDir, "mirrors", `${GitRepo.mirrorName(source)}.git`),
        ...(options.branch === undefined ? {} : { branch: options.branch }),
        maxBundleBytes: options.policy.maxBundleBytes,
        ...(options.watchLimits === undefined ? {} : { limits: options.watchLimits }),
      }),
  );
  // Certificates a bundle lacks come from the cache or AMD's KDS (fetched here, on the event loop: I/O), and are
  // handed to the workers with every job.
  const certificates =
    options.certificates ??
    createCertificateStore({
      cacheDir: path.join(options.dataDir, "kds"),
      ...(options.kdsBaseUrl === undefined ? {} : { kdsBaseUrl: options.kdsBaseUrl }),
    });
  const chains = new Map<string, SuppliedChain>();
  /** AMD's CRLs as last fetched (cached on disk until their nextUpdate), handed to the workers with every job. */
  const crls = new Map<string, SuppliedCrl>();
  /** A development root's CRL is asked only of a KDS that is not AMD's (which never holds one). */
  const developmentCrls = options.kdsBaseUrl !== undefined && options.kdsBaseUrl.replace(/\/+$/, "") !== KDS_BASE;
  /** When a product's chain last failed to come: KDS is not asked again for it sooner than this allows. */
  const fetchFailedAt = new Map<string, number>();
  /** The same for a product's CRL. */
  const crlFailedAt = new Map<string, number>();
  const refetchAfterMs = Math.min(certificateRetryMs, 60_000);
  let lastPollAt: string | null = null;
  let lastPollError: string | null = null;
  let acceptedInPoll = false;

  const job = () => ({ now: now(), chains: [...chains.values()], crls: [...crls.values()] });

  /**
   * The worker's verdict, with a chain the bundle lacks, then a CRL its chain needs, fetched and supplied when a
   * verdict names one (each answer verified once more).
   */
  async function verifyBytes(
    bytes: Uint8Array,
    fresh = false,
  ): Promise<{ verdict: BundleVerdict; fetchError?: string }> {
    const first = await verifyWithChain(bytes, fresh);
    if (first.fetchError !== undefined || first.verdict.crlNeeded === undefined) return first;
    return verifyWithCrl(bytes, first.verdict, fresh);
  }

  /** A chain's CRL that no job had, or that was not usable (stale, not signed by its ARK): fetched, then used. */
  async function verifyWithCrl(
    bytes: Uint8Array,
    verdict: BundleVerdict,
    fresh: boolean,
  ): Promise<{ verdict: BundleVerdict; fetchError?: string }> {
    const need = verdict.crlNeeded!;
    if (!need.required && !developmentCrls) return { verdict };
    const key = `${need.signer}-${need.product}`;
    const failedAt = crlFailedAt.get(key);
    if (!fresh && failedAt !== undefined && now().getTime() - failedAt < refetchAfterMs)
      return { verdict, fetchError: `KDS did not supply a usable ${need.product} CRL recently` };
    try {
      // One already held was not usable: past the disk cache to KDS.
      const crl = await certificates.fetchCrl(need.product, need.signer, now(), { refresh: crls.has(key) });
      crls.set(key, { product: need.product, signer: need.signer, crl });
    } catch (error) {
      crlFailedAt.set(key, now().getTime());
      return { verdict, fetchError: toErrorList(error)[0]?.message ?? "fetch failed" };
    }
    const again = await pool.verify(bytes, job());
    if (again.crlNeeded !== undefined) {
      crlFailedAt.set(key, now().getTime());
      return {
        verdict: again,
        fetchError: `the ${need.product} CRL from KDS is not usable (${again.crlNeeded.reason})`,
      };
    }
    crlFailedAt.delete(key);
    return { verdict: again };
  }

  /** The worker's verdict, with a chain the bundle lacks fetched and supplied when the first verdict names one. */
  async function verifyWithChain(
    bytes: Uint8Array,
    fresh: boolean,
  ): Promise<{ verdict: BundleVerdict; fetchError?: string }> {
    const verdict = await pool.verify(bytes, job());
    const need = verdict.certificatesNeeded;
    if (need === undefined) return { verdict };
    const key = `${need.signer}-${need.product}`;
    if (chains.has(key)) return { verdict, fetchError: `the ${need.product} cert_chain does not complete it` };
    const failedAt = fetchFailedAt.get(key);
    if (!fresh && failedAt !== undefined && now().getTime() - failedAt < refetchAfterMs)
      return { verdict, fetchError: `AMD KDS did not supply the ${need.product} cert_chain recently` };
    try {
      const chain = await certificates.fetchChain(need.product, need.signer);
      chains.set(key, { product: need.product, signer: need.signer, chain: [...chain] });
      fetchFailedAt.delete(key);
    } catch (error) {
      fetchFailedAt.set(key, now().getTime());
      return { verdict, fetchError: toErrorList(error)[0]?.message ?? "fetch failed" };
    }
    return { verdict: await pool.verify(bytes, job()) };
  }

  /** Whether a verdict waits for something KDS may still supply: its ASK/ARK, or a CRL revocation requires. */
  const waits = (verdict: BundleVerdict): boolean =>
    verdict.certificatesNeeded !== undefined || verdict.crlNeeded?.required === true;

  /**
   * Verdicts are written in batches, one transaction (one fsync with synchronous=FULL) per 20 ms instead of one per
   * bundle, so that a burst of verdicts does not hold the event loop. A repository's commit is marked processed only
   * after a flush (flushVerdicts), so a crash before it loses nothing: the commit is scanned again.
   */
  const verdictQueue: {
    row: BundleRow | undefined;
    verdict: BundleVerdict;
    where: { log: Logger; path?: string };
    /** The bundle's bytes: kept with an accepted verdict, for GET /bundles/:digest/bundle. */
    bytes?: Uint8Array | undefined;
  }[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  function storeVerdict(
    row: BundleRow | undefined,
    verdict: BundleVerdict,
    where: { log: Logger; path?: string },
    bytes?: Uint8Array,
  ) {
    verdictQueue.push({ row, verdict, where, bytes });
    flushTimer ??= setTimeout(flushVerdicts, 20);
  }
  function flushVerdicts(): void {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (verdictQueue.length === 0 || !store.db.isOpen) return;
    const batch = verdictQueue.splice(0);
    const stored = store.transaction(() => {
      const done = batch.map(({ verdict }) => store.setVerdict(verdict.bundleDigest, toVerdictInput(verdict)));
      // An accepted bundle's bytes are kept with its verdict: a reader re-verifies its record with them.
      batch.forEach((b, i) => {
        if (done[i] === true && b.verdict.ok && b.bytes !== undefined)
          store.keepBundleBytes(b.verdict.bundleDigest, b.bytes);
      });
      return done;
    });
    batch.forEach((b, i) => {
      if (stored[i] === true) noteVerdict(b.row, b.verdict, b.where);
    });
    if (acceptedInPoll) wakePublisher?.();
  }
  function noteVerdict(row: BundleRow | undefined, verdict: BundleVerdict, where: { log: Logger; path?: string }) {
    if (verdict.ok) {
      acceptedInPoll = true;
      lastAcceptedAt = performance.now();
    }
    const seenAt = row === undefined ? NaN : Date.parse(row.seenAt);
    metrics.observeVerdict(
      verdict.ok,
      verdict.errors.map((e) => e.code),
      Number.isFinite(seenAt) ? now().getTime() - seenAt : 0,
    );
    where.log.info(
      {
        path: where.path ?? row?.path,
        digest: verdict.bundleDigest,
        ok: verdict.ok,
        codes: verdict.errors.map((e) => e.code),
        manifestDigest: verdict.manifestDigest,
      },
      verdict.ok ? "bundle accepted" : "bundle rejected",
    );
  }

  /** The final SNP_CERT_UNAVAILABLE verdict of a bundle whose certificates never came: what to do is in it. */
  function unavailableVerdict(verdict: BundleVerdict, attempts: number, reason: string): BundleVerdict {
    const chain = verdict.certificatesNeeded;
    const what =
      chain !== undefined
        ? `the ${chain.product} ASK/ARK`
        : `a current CRL of AMD's ${verdict.crlNeeded?.product ?? ""} root (KDS ${verdict.crlNeeded?.signer ?? "vcek"}/v1/${verdict.crlNeeded?.product ?? ""}/crl)`;
    const message =
      `${what} could not be had after ${attempts} attempt(s) ` +
      `${formatMs(certificateRetryMs)} apart (${reason}); ${chain !== undefined ? "include the chain in the bundle, " : ""}fill ` +
      `<data-dir>/kds, or POST /bundles/${verdict.bundleDigest}/recheck once AMD KDS answers`;
    const errors = verdict.errors.map((e) => (e.code === "SNP_CERT_UNAVAILABLE" ? { ...e, message } : e));
    const { certificatesNeeded: _needed, crlNeeded: _crl, ...rest } = verdict;
    return { ...rest, ok: false, errors };
  }

  /**
   * Verifies a bundle in status `seen` and stores its verdict, or, when its certificates cannot be had yet, records
   * one more attempt of its bounded wait (the last one stores SNP_CERT_UNAVAILABLE). Rejects only when stopping.
   */
  async function settle(
    digest: string,
    bytes: Uint8Array,
    where: { log: Logger; path?: string },
    fresh = false,
  ): Promise<void> {
    const { verdict, fetchError } = await verifyBytes(bytes, fresh);
    const row = store.getBundle(digest);
    if (!waits(verdict)) return storeVerdict(row, verdict, where, bytes);
    const reason = fetchError ?? "certificates unavailable";
    const attempts = store.noteCertificateWait(digest, new Date(now().getTime() + certificateRetryMs), reason);
    if (attempts >= certificateAttempts) return storeVerdict(row, unavailableVerdict(verdict, attempts, reason), where);
    where.log.warn(
      { digest, attempt: attempts, of: certificateAttempts, retryInMs: certificateRetryMs, reason },
      "bundle waits for its certificates",
    );
  }

  /** One verification per digest at a time (the same bytes in two files, or a poll and a retry at once). */
  const inFlight = new Map<string, Promise<void>>();
  function once(digest: string, work: () => Promise<void>): Promise<void> {
    const running = inFlight.get(digest);
    if (running !== undefined) return running;
    const started = work().finally(() => inFlight.delete(digest));
    inFlight.set(digest, started);
    return started;
  }

  /**
   * Records the sightings of a chunk of bundles in one transaction, then settles those not judged before (a waiting
   * bundle belongs to the retry sweep). Hashing a large bundle takes milliseconds: requests are let in between.
   */
  async function judgeChunk(
    where: { source: string; head: string; log: Logger },
    chunk: readonly FoundBundle[],
    blobs: ReadonlyMap<string, Uint8Array>,
  ): Promise<void> {
    const items: { found: FoundBundle; bytes: Uint8Array; digest: string }[] = [];
    for (const found of chunk) {
      const bytes = blobs.get(found.blob)!;
      items.push({ found, bytes, digest: sha256Hex(bytes) });
      if (bytes.length >= 1024 * 1024) await yieldToLoop();
    }
    store.transaction(() => {
      for (const i of items) store.recordSighting(where.source, where.head, i.found.path, i.digest);
    });
    const todo = items.filter((i) => {
      const row = store.getBundle(i.digest);
      return row?.status === "seen" && row.certAttempts === 0; // else judged, or in its bounded wait
    });
    await Promise.all(
      todo.map((i) => once(i.digest, () => settle(i.digest, i.bytes, { log: where.log, path: i.found.path }))),
    );
  }

  async function pollRepo(repo: GitRepo): Promise<void> {
    const rlog = watchLog.child({ repo: redactUrl(repo.source) });
    const head = await repo.fetch();
    const last = store.lastCommit(repo.source);
    const scan = await repo.scan(head, last);
    if (scan.mode === "unchanged") return;
    rlog.info(
      {
        commit: head,
        mode: scan.mode,
        entries: scan.entries,
        bundles: scan.bundles.length,
        refused: scan.refused.length,
      },
      "scanned",
    );
    for (const r of scan.refused) {
      if (store.recordRefusal(repo.source, head, r.path, r.code, r.reason))
        rlog.warn({ path: r.path, code: r.code, reason: r.reason }, "entry refused");
    }
    // Blobs are read in chunks of at most 64 MiB with one git process each; a chunk's bundles go to the workers
    // together.
    const chunks: FoundBundle[][] = [];
    let size = Infinity;
    for (const found of scan.bundles) {
      if (size + found.size > 64 * 1024 * 1024 || chunks.at(-1)!.length >= 256) {
        chunks.push([]);
        size = 0;
      }
      chunks.at(-1)!.push(found);
      size += found.size;
    }
    for (const chunk of chunks) {
      if (stopController.signal.aborted) return; // last commit not advanced: the rest is picked up after restart
      const blobs = await repo.readBlobs(chunk.map((b) => b.blob));
      const missing = chunk.filter((found) => !blobs.has(found.blob));
      if (missing.length > 0) throw new Error(`${missing.length} blob(s) of ${head} could not be read`);
      await judgeChunk({ source: repo.source, head, log: rlog }, chunk, blobs);
    }
    if (stopController.signal.aborted) return;
    // Every bundle of this commit has a verdict or waits, in the store, for its certificates: the commit is done.
    flushVerdicts();
    store.setLastCommit(repo.source, head);
  }

  /** The bytes of a stored bundle, read again from a repository it was seen in (waiting bundles are not kept). */
  async function readStored(row: BundleRow): Promise<Uint8Array | undefined> {
    for (const sighting of store.sightingsOf(row.digest)) {
      const repo = repos.find((r) => r.source === sighting.repo);
      if (repo === undefined) continue;
      try {
        const files = await repo.readFiles([{ commit: sighting.commit, path: sighting.path }]);
        const bytes = files.get(`${sighting.commit}:${sighting.path}`);
        if (bytes !== undefined && sha256Hex(bytes) === row.digest) return bytes;
      } catch {
        // another sighting may still be readable
      }
    }
    return undefined;
  }

  /** Bundles whose wait for certificates is due, and rechecks asked for over HTTP: verified again. */
  async function sweep(): Promise<void> {
    const slog = watchLog.child({ sweep: true });
    for (const row of store.dueForRetry(now(), 64)) {
      if (stopController.signal.aborted) return;
      await once(row.digest, async () => {
        const bytes = await readStored(row);
        if (bytes === undefined) {
          const reason = "the bundle's file can no longer be read from its repository";
          const attempts = store.noteCertificateWait(
            row.digest,
            new Date(now().getTime() + certificateRetryMs),
            reason,
          );
          if (attempts >= certificateAttempts)
            storeVerdict(
              row,
              {
                ok: false,
                bundleDigest: row.digest,
                errors: [{ code: "SNP_CERT_UNAVAILABLE", message: `${reason}; certificates never came` }],
              },
              { log: slog },
            );
          return;
        }
        // A recheck asked for while it waits: KDS is asked now, even right after a failure.
        await settle(row.digest, bytes, { log: slog }, row.recheckAt !== null);
      });
    }
    for (const row of store.dueRechecks(64)) {
      if (stopController.signal.aborted) return;
      await once(row.digest, async () => {
        const bytes = await readStored(row);
        if (bytes === undefined) {
          store.reviseVerdict(row.digest, { ok: false, errors: row.errors });
          slog.warn({ digest: row.digest }, "recheck: the bundle's file can no longer be read");
          return;
        }
        const { verdict, fetchError } = await verifyBytes(bytes, true);
        const final = !waits(verdict)
          ? verdict
          : unavailableVerdict(verdict, row.certAttempts, fetchError ?? "certificates unavailable");
        // The new verdict and, when accepted, the bytes readers re-verify its record with: one transaction.
        store.transaction(() => {
          store.reviseVerdict(row.digest, toVerdictInput(final));
          if (final.ok) store.keepBundleBytes(row.digest, bytes);
        });
        if (final.ok) acceptedInPoll = true;
        metrics.observeVerdict(
          final.ok,
          final.errors.map((e) => e.code),
          now().getTime() - Date.parse(row.seenAt),
        );
        slog.info(
          { digest: row.digest, ok: final.ok, codes: final.errors.map((e) => e.code) },
          final.ok ? "recheck: bundle accepted" : "recheck: bundle still refused",
        );
      });
    }
  }

  async function pollOnce(): Promise<void> {
    let failed: string | null = null;
    for (const repo of repos) {
      try {
        await pollRepo(repo);
      } catch (error) {
        if (error instanceof VerificationAbortedError || stopController.signal.aborted) return;
        failed = toErrorList(error)[0]?.message ?? "poll failed";
        watchLog.error({ repo: redactUrl(repo.source), err: toErrorList(error)[0] }, "poll failed");
      }
    }
    try {
      await sweep();
    } catch (error) {
      if (error instanceof VerificationAbortedError || stopController.signal.aborted) return;
      watchLog.error({ err: toErrorList(error)[0] }, "retry sweep failed");
    }
    lastPollAt = now().toISOString();
    lastPollError = failed;
    if (acceptedInPoll) {
      acceptedInPoll = false;
      wakePublisher?.();
    }
  }

  // A recheck asked for over HTTP wakes the watch loop instead of waiting for the next interval.
  let wakeWatcher: (() => void) | undefined;
  async function watchLoop(): Promise<void> {
    while (!stopController.signal.aborted) {
      await pollOnce();
      await sleep(intervalMs, stopController.signal, (wake) => (wakeWatcher = wake));
    }
  }

  // The watcher wakes the publisher as soon as a poll accepted something, so no idle tick adds to the latency.
  let wakePublisher: (() => void) | undefined;

  /**
   * While the workers are still verifying a backlog and accepted records keep coming, a batch waits to fill up
   * (records come one verdict at a time from the pool, not a whole chunk at once), for at most max(5 s, 10 ×
   * maxWaitMs): fewer, fuller transactions cost less gas per record. A lone bundle is published at once.
   */
  const maxBatch = options.maxBatch ?? 64;
  const maxWaitMs = options.maxWaitMs ?? 1_000;
  let lastAcceptedAt = -Infinity;
  let deferredSince: number | undefined;
  function fillingUp(): boolean {
    const t = performance.now();
    const filling =
      pool.queued + pool.running > 0 &&
      t - lastAcceptedAt < Math.max(maxWaitMs, 100) &&
      store.pendingCount() < maxBatch;
    if (!filling) deferredSince = undefined;
    else deferredSince ??= t;
    return filling && t - deferredSince! < Math.max(5_000, 10 * maxWaitMs);
  }

  async function publishLoop(): Promise<void> {
    let attempt = 0;
    while (!stopController.signal.aborted) {
      if (!publisher.isDue() || fillingUp()) {
        await sleep(Math.min(200, intervalMs), stopController.signal, (wake) => (wakePublisher = wake));
        continue;
      }
      deferredSince = undefined;
      try {
        await publisher.publishBatch();
        metrics.rpcUp = 1;
        attempt = 0;
      } catch (error) {
        metrics.rpcUp = 0;
        metrics.publishErrors += 1;
        const delay = backoffDelay(attempt++, 500, 15_000);
        pubLog.warn({ err: toErrorList(error)[0], retryInMs: delay }, "publish failed; will retry");
        await sleep(delay, stopController.signal);
      }
    }
  }

  const requestRecheck = (digest: string): RecheckOutcome => {
    const outcome = store.requestRecheck(digest);
    if (outcome === "queued") {
      log.info({ digest }, "recheck requested");
      wakeWatcher?.();
    }
    return outcome;
  };

  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  try {
    api =
      options.listen === undefined
        ? undefined
        : await startApi(
            {
              store,
              metrics,
              health: () => ({
                ok: lastPollError === null && metrics.rpcUp === 1,
                lastPollAt,
                lastPollError,
                rpcUp: metrics.rpcUp === 1,
                queueDepth: store.pendingCount(),
                verificationQueue: pool.queued + pool.running,
                waitingCertificates: store.waitingCount(),
              }),
              recheck: { token: options.recheckToken, request: requestRecheck },
              // Bytes the store did not keep (verdicts from before it kept them) are read again from git.
              readBundle: async (row) => {
                const bytes = await readStored(row);
                if (bytes !== undefined && (row.status === "accepted" || row.status === "published") && store.db.isOpen)
                  store.keepBundleBytes(row.digest, bytes);
                return bytes;
              },
              ...(options.httpLimits === undefined ? {} : { limits: options.httpLimits }),
            },
            options.listen,
          );
  } catch (error) {
    await pool.close();
    store.close();
    provider.destroy();
    throw error;
  }
  if (api !== undefined) log.info({ url: api.url }, "http api listening");

  const done = Promise.all([watchLoop(), publishLoop()]).then(async () => {
    await api?.close();
    await pool.close();
    await Promise.allSettled([...inFlight.values()]);
    flushVerdicts();
    provider.destroy();
    store.close();
    log.info("stopped");
  });

  return {
    store,
    metrics,
    apiUrl: api?.url,
    pollOnce,
    async stop() {
      if (!stopController.signal.aborted) {
        log.info("stopping: aborting verifications in flight, finishing the batch in flight");
        publisher.stop();
        stopController.abort();
        // Verification does not hold up shutdown: a hostile bundle's worker is terminated, the bundle verified again
        // after a restart (its commit was not marked processed).
        await pool.close();
      }
      await done;
    },
    done,
  };
}
