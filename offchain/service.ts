// The verifier service: polls git repositories, verifies every new bundle with the pure pipeline, keeps state in
// SQLite, publishes accepted records in batches and serves the HTTP API. Crash-safe by construction: a repository's
// last processed commit is stored only after every bundle of that commit has a stored verdict, verdicts and
// publications only move forward, and the publisher asks the chain (`isRecorded`) before sending anything.
import { createHash } from "node:crypto";
import path from "node:path";

import pino, { type Logger } from "pino";

import { readBundle } from "../lib/bundle/index.ts";
import { isProvenantError, toErrorList } from "../lib/errors.ts";
import { createCertificateStore, createReportVerifier, type CertificateStore } from "../lib/snp/index.ts";
import { createProvider, isTransient, redactUrl, type TxSender } from "./chain/index.ts";
import { assertRegistry } from "./chain/registry.ts";
import { Metrics, startApi } from "./http/index.ts";
import { verifyBundle, type BundleVerdict, type VerifierPolicy } from "./pipeline/index.ts";
import { backoffDelay, Publisher } from "./publisher/index.ts";
import { Store } from "./store/index.ts";
import { GitRepo, type FoundBundle } from "./watcher/index.ts";

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
   * Where the ASK/ASVK and ARK come from when a bundle does not carry them: an on-disk cache (default
   * `<dataDir>/kds`) filled from AMD's KDS. Inject one to use another cache or to forbid the network.
   */
  certificates?: CertificateStore;
  /** After a failed certificate fetch, how long bundles that need one wait before KDS is asked again (5 min). */
  certificateRetryMs?: number;
}

export interface RunningService {
  store: Store;
  metrics: Metrics;
  apiUrl: string | undefined;
  /** Resolves after one complete poll of every repository (tests). */
  pollOnce(): Promise<void>;
  /** Stops polling, lets the batch in flight finish (or abandons it safely), closes everything. */
  stop(): Promise<void>;
  done: Promise<void>;
}

export function createLogger(level = process.env.PROVENANT_LOG_LEVEL ?? "info"): Logger {
  return pino({
    level,
    base: { service: "provenant-verifier" },
    // Key material and RPC credentials never reach a log line.
    redact: {
      paths: ["privateKey", "*.privateKey", "key", "*.key", "rpcUrl", "*.rpcUrl", "headers.authorization"],
      censor: "[redacted]",
    },
  });
}

/** Waits `ms`, or less when `signal` aborts; the abort listener is removed either way (no leak per tick). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const logger = options.logger ?? createLogger();
  const now = options.now ?? (() => new Date());
  const intervalMs = options.intervalMs ?? 30_000;
  const store = new Store({ dataDir: options.dataDir, now });
  const metrics = new Metrics();
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
      }),
  );
  // Certificates a bundle lacks come from the cache or AMD's KDS; the verifier reads them synchronously once fetched.
  const certificates = options.certificates ?? createCertificateStore({ cacheDir: path.join(options.dataDir, "kds") });
  const verifier = createReportVerifier({ trustedRoots: options.policy.trustedRoots, certificates });
  let lastPollAt: string | null = null;
  let lastPollError: string | null = null;

  let acceptedInPoll = false;

  async function pollRepo(repo: GitRepo): Promise<void> {
    const rlog = watchLog.child({ repo: redactUrl(repo.source) });
    const head = await repo.fetch();
    const last = store.lastCommit(repo.source);
    const scan = await repo.scan(head, last);
    if (scan.mode === "unchanged") return;
    rlog.info({ commit: head, mode: scan.mode, bundles: scan.bundles.length, refused: scan.refused.length }, "scanned");
    for (const r of scan.refused) {
      if (store.recordRefusal(repo.source, head, r.path, r.code, r.reason))
        rlog.warn({ path: r.path, code: r.code, reason: r.reason }, "entry refused");
    }
    let waiting = false;
    // Blobs are read in chunks of at most 64 MiB with one git process each.
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
      for (const found of chunk) {
        const bytes = blobs.get(found.blob) ?? (await repo.readBlob(found.blob));
        if (!(await judge({ source: repo.source, head, log: rlog }, found, bytes))) waiting = true;
      }
      // A long scan feeds the publisher as it goes instead of at the end.
      if (acceptedInPoll) wakePublisher?.();
    }
    // A bundle waiting for certificates keeps this commit unprocessed, so the next poll reads it again.
    if (waiting) rlog.info({ commit: head }, "bundles wait for certificates; the commit is read again next poll");
    else store.setLastCommit(repo.source, head);
  }

  // After a failed fetch, bundles that need certificates wait this long before KDS is asked again.
  const certificateRetryMs = options.certificateRetryMs ?? 5 * 60_000;
  let certificatesRetryAt = 0;

  /**
   * The pure pipeline refuses a bundle without its ASK/ARK (or VCEK) with SNP_CERT_UNAVAILABLE. That is not the
   * bundle's fault when the certificates merely have to be fetched: fetch them into the cache (KDS, throttled) and
   * verify once more. When they cannot be had now, the answer is `undefined`: no verdict yet, retry later.
   */
  async function verifyWithCertificates(bytes: Uint8Array, log: Logger): Promise<BundleVerdict | undefined> {
    const verdict = verifyBundle(bytes, { policy: options.policy, now: now(), verifier });
    if (!verdict.errors.some((e) => e.code === "SNP_CERT_UNAVAILABLE")) return verdict;
    if (now().getTime() < certificatesRetryAt) return undefined;
    try {
      const cpu = readBundle(bytes, { maxBytes: options.policy.maxBundleBytes }).evidence.cpu;
      await certificates.resolveEvidence(Buffer.from(cpu.report, "base64"), {
        vcek: Buffer.from(cpu.vcek, "base64"),
        ...(cpu.chain === undefined ? {} : { chain: cpu.chain.map((c) => Buffer.from(c, "base64")) }),
      });
    } catch (error) {
      certificatesRetryAt = now().getTime() + certificateRetryMs;
      log.warn({ err: toErrorList(error)[0] }, "certificates not available from the cache or AMD's KDS; will retry");
      return undefined;
    }
    const again = verifyBundle(bytes, { policy: options.policy, now: now(), verifier });
    return again.errors.some((e) => e.code === "SNP_CERT_UNAVAILABLE") ? undefined : again;
  }

  /** Stores the verdict of a bundle not judged before. False when it waits for certificates (no verdict yet). */
  async function judge(
    where: { source: string; head: string; log: Logger },
    found: FoundBundle,
    bytes: Uint8Array,
  ): Promise<boolean> {
    const digest = createHash("sha256").update(bytes).digest("hex");
    store.recordSighting(where.source, where.head, found.path, digest);
    if (store.getBundle(digest)?.status !== "seen") return true; // known bundle: its verdict stands, not verified again
    const verdict = await verifyWithCertificates(bytes, where.log);
    if (verdict === undefined) return false;
    store.setVerdict(verdict.bundleDigest, {
      ok: verdict.ok,
      errors: verdict.errors,
      manifestDigest: verdict.manifestDigest,
      modelHash: verdict.modelHash,
      kind: verdict.kind,
      record: verdict.record,
    });
    if (verdict.ok) acceptedInPoll = true;
    where.log.info(
      {
        path: found.path,
        digest: verdict.bundleDigest,
        ok: verdict.ok,
        codes: verdict.errors.map((e) => e.code),
        manifestDigest: verdict.manifestDigest,
      },
      verdict.ok ? "bundle accepted" : "bundle rejected",
    );
    return true;
  }

  async function pollOnce(): Promise<void> {
    let failed: string | null = null;
    for (const repo of repos) {
      try {
        await pollRepo(repo);
      } catch (error) {
        failed = toErrorList(error)[0]?.message ?? "poll failed";
        watchLog.error({ repo: redactUrl(repo.source), err: toErrorList(error)[0] }, "poll failed");
      }
    }
    lastPollAt = now().toISOString();
    lastPollError = failed;
    if (acceptedInPoll) {
      acceptedInPoll = false;
      wakePublisher?.();
    }
  }

  async function watchLoop(): Promise<void> {
    while (!stopController.signal.aborted) {
      await pollOnce();
      await sleep(intervalMs, stopController.signal);
    }
  }

  // The watcher wakes the publisher as soon as a poll accepted something, so no idle tick adds to the latency.
  let wakePublisher: (() => void) | undefined;
  const idle = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wakePublisher = undefined;
        resolve();
      }
      wakePublisher = done;
      stopController.signal.addEventListener("abort", done, { once: true });
    });

  async function publishLoop(): Promise<void> {
    let attempt = 0;
    while (!stopController.signal.aborted) {
      if (!publisher.isDue()) {
        await idle(Math.min(200, intervalMs));
        continue;
      }
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

  const api =
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
            }),
          },
          options.listen,
        );
  if (api !== undefined) log.info({ url: api.url }, "http api listening");

  const done = Promise.all([watchLoop(), publishLoop()]).then(async () => {
    await api?.close();
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
        log.info("stopping: finishing the batch in flight");
        publisher.stop();
        stopController.abort();
      }
      await done;
    },
    done,
  };
}
