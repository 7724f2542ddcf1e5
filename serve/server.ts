// `provenant serve` put together (DESIGN §12): hash the model and check in the registry that it may be served, make the
// serving key S in this process and have the hardware attest it, sign the serving statement and write (and push) the
// serving bundle, open the receipt log (recovering earlier logs of the data directory), load the model, then serve
// the HTTP API while the registry monitor, the epoch timer and the anchorer run. Everything outside is an option.
import { basename, extname, join } from "node:path";

import type { Logger } from "pino";
import type { JsonRpcProvider } from "ethers";

import { writeBundle } from "../lib/bundle/index.ts";
import { IoError, PolicyError, ProvenantError } from "../lib/errors.ts";
import { buildOmsStatement, type Statement } from "../lib/intoto/index.ts";
import type { ModelHash } from "../lib/oms/types.ts";
import { buildServingStatement, logIdOf, SERVING_KEY_CURVE, type RequireKind } from "../lib/receipt/index.ts";
import { bundleFileName, assembleBundle, writeBundleFile } from "../enclave-job/bundle.ts";
import { defaultHash, harnessVersion, jobCodeDigest } from "../enclave-job/job.ts";
import { attestKey } from "../enclave-job/attest/attest.ts";
import type { AttestationProvider } from "../enclave-job/attest/providers.ts";
import type { GpuEvidenceProvider } from "../enclave-job/attest/gpu.ts";
import { sharedLlama } from "../enclave-job/llama.ts";
import { pushBundle, redactUrls } from "../enclave-job/push.ts";
import { createProvider, redactUrl, type TxSender } from "../offchain/chain/index.ts";
import { assertRegistry } from "../offchain/chain/registry.ts";
import { createServiceLogger } from "../offchain/daemon.ts";
import type { HttpLimits } from "../offchain/http/index.ts";
import { Anchorer } from "./anchor.ts";
import { Engine } from "./engine.ts";
import { startServeApi, type ServeApp } from "./http.ts";
import { ReceiptLog, type ServingIdentity } from "./log.ts";
import { renderServeMetrics, ServeMetrics } from "./metrics.ts";
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from "./openai.ts";
import { RegistryMonitor, RegistryReader } from "./registry.ts";
import { ServeStore, type CheckpointRow } from "./store.ts";

export interface ServeOptions {
  /** The GGUF model to serve. */
  modelPath: string;
  rpcUrl: string;
  /** The ModelRegistry address. */
  registry: string;
  provider: AttestationProvider;
  /** GPU evidence for gpuNonceFor(REPORT_DATA), bundled as evidence.gpu (enclave-job/attest/gpu.ts); null: none. */
  gpuEvidence?: GpuEvidenceProvider | null;
  /** 64 hex REPORT_DATA[32:64]; random when absent. */
  nonce?: string;
  /** A watched git repository to push the serving bundle to (retried until it succeeds). */
  push?: string;
  listen: { host: string; port: number };
  require: RequireKind;
  checkSeconds: number;
  epochReceipts: number;
  epochSeconds: number;
  /** The anchoring transaction sender (a local key or rofl-appd), made once the chain is reached. */
  createSender: (provider: JsonRpcProvider) => Promise<TxSender>;
  dataDir: string;
  threads: number;
  gpu: boolean;
  contextSize?: number;
  requestLimits?: Partial<RequestLimits>;
  httpLimits?: Partial<HttpLimits>;
  maxQueue?: number;
  queueTimeoutMs?: number;
  generationTimeoutMs?: number;
  /** Time between anchoring passes when nothing triggers one (default: the check interval, at most 5 s). */
  anchorIntervalMs?: number;
  now?: () => Date;
  logger?: Logger;
  /** The job-code digest (default: the enclave job's, the OMS root of the installed package). */
  jobCodeDigest?: () => Promise<string>;
  hash?: (path: string) => Promise<ModelHash>;
}

export interface ServeHandle {
  url: string;
  identity: ServingIdentity;
  bundlePath: string;
  modelId: string;
  log: ReceiptLog;
  store: ServeStore;
  monitor: RegistryMonitor;
  anchorer: Anchorer;
  engine: Engine;
  /** Closes the open epoch now (tests, shutdown); undefined when it has no receipts. */
  closeEpoch(): Promise<CheckpointRow | undefined>;
  stop(): Promise<void>;
  /** Resolves when stop() has finished. */
  done: Promise<void>;
}

/** The server's logger (offchain/daemon: key material, API keys and RPC credentials never reach a log line). */
export function createServeLogger(level = process.env.PROVENANT_LOG_LEVEL ?? "info"): Logger {
  return createServiceLogger("provenant-serve", level);
}

/** The model id the API answers to: the GGUF file name without its extension. */
export function modelIdOf(modelPath: string): string {
  const name = basename(modelPath);
  return extname(name).toLowerCase() === ".gguf" ? name.slice(0, -".gguf".length) : name;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const now = options.now ?? (() => new Date());
  const logger = options.logger ?? createServeLogger();
  const log = logger.child({ module: "serve" });
  const stopController = new AbortController();
  const startedAt = now();

  const store = await ServeStore.open(options.dataDir);
  const cleanups: (() => Promise<void> | void)[] = [() => store.close()];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  };
  try {
    const provider = createProvider(options.rpcUrl, { timeoutMs: Math.min(10_000, options.checkSeconds * 1000) });
    cleanups.push(() => provider.destroy());
    await assertRegistry(provider, options.registry);
    const chainId = Number((await provider.getNetwork()).chainId);
    const reader = new RegistryReader(provider, options.registry);
    log.info({ rpc: redactUrl(options.rpcUrl), registry: options.registry, chainId }, "registry reached");

    // 1. The model: its OMS root digest, and the registry's word that it may be served.
    const modelHash = await (options.hash ?? ((path: string) => defaultHash(path)))(options.modelPath);
    const modelRoot = modelHash.rootDigest;
    const admission = await reader.admission(modelRoot, options.require);
    if (admission.status !== "admitted" || admission.manifestDigest === null) {
      throw new PolicyError(
        admission.status === "revoked" ? "MODEL_REVOKED" : "MODEL_NOT_RECORDED",
        admission.status === "revoked"
          ? `every ${options.require} record of model ${modelRoot} is revoked (${admission.revoked.join(", ")})`
          : `model ${modelRoot} has no ${options.require === "any" ? "audit or fine-tune" : options.require} record in the registry at ${options.registry}`,
        { details: { modelRoot, require: options.require, revoked: admission.revoked } },
      );
    }
    log.info({ modelRoot, admittedBy: admission.manifestDigest, kind: admission.kind }, "model admitted");

    // --gpu: CUDA must be there before anything is attested (CUDA_UNAVAILABLE otherwise), as for the job.
    if (options.gpu) await sharedLlama(true);
    // The model loads while the job code is hashed and the hardware attests.
    const enginePromise = Engine.load(options.modelPath, {
      threads: options.threads,
      gpu: options.gpu,
      ...(options.contextSize === undefined ? {} : { contextSize: options.contextSize }),
      ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
      ...(options.queueTimeoutMs === undefined ? {} : { queueTimeoutMs: options.queueTimeoutMs }),
      ...(options.generationTimeoutMs === undefined ? {} : { generationTimeoutMs: options.generationTimeoutMs }),
    });
    enginePromise.catch(() => undefined);
    cleanups.push(async () => (await enginePromise.catch(() => undefined))?.close());
    const [codeDigest, version] = await Promise.all([(options.jobCodeDigest ?? jobCodeDigest)(), harnessVersion()]);

    // 2. The serving identity: S born here, bound to the report (and the GPUs' evidence) through REPORT_DATA.
    // S is P-256 (lib/receipt SERVING_KEY_CURVE: not the job's P-384 K, see docs/serving.md), attested as the job
    // attests K: ATTESTATION_FAILED when the report does not carry exactly those 64 bytes, before anything is signed.
    const attested = await attestKey(options.provider, {
      curve: SERVING_KEY_CURVE,
      nonce: options.nonce,
      gpu: options.gpuEvidence ?? null,
    });
    const logId = logIdOf(attested.key.spki);
    const predecessor = ReceiptLog.predecessorOf(store);
    const serving = buildServingStatement({
      modelName: basename(options.modelPath),
      modelRoot,
      servingKey: attested.key.spki,
      jobCodeDigest: codeDigest,
      startedOn: startedAt,
      epoch: { maxReceipts: options.epochReceipts, maxSeconds: options.epochSeconds },
      admission: { require: options.require, manifestDigest: admission.manifestDigest },
      ...(predecessor === undefined ? {} : { predecessor }),
      // After a crash, above the predecessor's lastSeq + 1: the seq numbers the dead life had reserved are skipped.
      firstSeq: ReceiptLog.firstSeqOf(store),
      runtime: { name: "provenant-serve", version, gpu: options.gpu },
    });
    const assembled = assembleBundle({
      manifest: serving as unknown as Statement,
      models: [buildOmsStatement(basename(options.modelPath), modelHash)],
      privateKey: attested.key.privateKey,
      spki: attested.key.spki,
      nonce: attested.nonce,
      evidence: attested.evidence,
      ...(attested.gpu === undefined ? {} : { gpu: attested.gpu.gpus }),
    });
    const bundleBytes = writeBundle(assembled.bundle);
    const fileName = bundleFileName(assembled.manifestDigest, startedAt);
    const bundlePath = join(options.dataDir, "bundles", fileName);
    await writeBundleFile(bundlePath, bundleBytes);
    const identity: ServingIdentity = {
      logId,
      privateKey: attested.key.privateKey,
      spki: attested.key.spki,
      servingManifest: assembled.manifestDigest,
      modelRoot,
      modelName: basename(options.modelPath),
      bundle: bundleBytes,
      startedAt,
    };
    log.info(
      { logId, servingManifest: identity.servingManifest, bundlePath, provider: options.provider.name },
      "serving identity attested",
    );

    // 3. The receipt log (earlier logs of this data directory are recovered and will be anchored too).
    const receiptLog = await ReceiptLog.open(store, identity, {
      epoch: { maxReceipts: options.epochReceipts, maxSeconds: options.epochSeconds },
      now,
    });
    const engine = await enginePromise;

    const monitor = new RegistryMonitor({
      reader,
      modelRoot,
      require: options.require,
      servingManifest: identity.servingManifest,
      logId,
      intervalMs: options.checkSeconds * 1000,
      staleAfterMs: 3 * options.checkSeconds * 1000 + 10_000,
      now,
      onChange: (state) =>
        (state.status === "serving" ? log.info.bind(log) : log.warn.bind(log))(
          { gate: state },
          "serving state changed",
        ),
      onError: (error) => log.warn({ code: error.code, err: error.message }, "registry check failed"),
    });
    await monitor.check();
    cleanups.push(() => monitor.stop());

    const sender = await options.createSender(provider);
    const anchorer = new Anchorer({
      log: receiptLog,
      store,
      reader,
      sender,
      registry: options.registry,
      now,
      intervalMs: options.anchorIntervalMs ?? Math.min(5_000, options.checkSeconds * 1000),
      onAnchored: (row, result) =>
        log.info(
          { logId: row.logId, treeSize: row.treeSize, txHash: result.txHash, gasUsed: result.gasUsed?.toString() },
          "checkpoint anchored",
        ),
      onError: (id, error) => log.warn({ logId: id, code: error.code, err: error.message }, "anchoring failed"),
    });
    cleanups.push(() => anchorer.stop());
    receiptLog.onCheckpoint = (row) => {
      log.info({ logId: row.logId, treeSize: row.treeSize, rootHash: row.rootHash }, "checkpoint signed");
      void anchorer.trigger();
    };
    receiptLog.onError = (error) => log.error({ err: String(error) }, "closing an epoch failed");

    // 4. The API.
    const metrics = new ServeMetrics();
    let stopping = false;
    let pushState: { status: "none" | "pending" | "pushed" | "failed"; commit?: string; error?: string } = {
      status: options.push === undefined ? "none" : "pending",
    };
    const modelId = modelIdOf(options.modelPath);
    const app: ServeApp = {
      modelId,
      modelRoot,
      engine,
      log: receiptLog,
      store,
      monitor,
      anchorer,
      metrics,
      registry: { address: options.registry, chainId },
      requestLimits: { ...DEFAULT_REQUEST_LIMITS, ...options.requestLimits },
      startedAt,
      now,
      stopping: () => stopping,
      health: () => {
        const refusal = stopping ? { code: "SERVE_UNAVAILABLE", message: "shutting down" } : monitor.gate();
        const current = receiptLog.current;
        return {
          ok: refusal === null,
          status: stopping ? "stopping" : monitor.state.status,
          reason: refusal,
          model: {
            id: modelId,
            root: modelRoot,
            require: options.require,
            admittedBy: monitor.admission?.manifestDigest ?? null,
            revokedRecords: monitor.admission?.revoked ?? [],
          },
          serving: {
            manifestDigest: identity.servingManifest,
            logId,
            recorded: monitor.servingRecorded,
            revoked: monitor.servingRevoked,
            logRegistered: monitor.logRegistered,
            push: pushState,
          },
          registry: {
            address: options.registry,
            chainId,
            lastOk: monitor.lastOk?.toISOString() ?? null,
            lastError: monitor.lastError,
            checkSeconds: options.checkSeconds,
          },
          log: {
            nextSeq: receiptLog.nextSeq,
            seqReservedThrough: receiptLog.reservedThrough,
            treeSize: current.tree.size,
            epochReceipts: receiptLog.epochReceipts,
            checkpointSize: store.latestCheckpoint(logId)?.treeSize ?? 0,
          },
          anchoring: anchorer.states(),
          queue: { waiting: engine.queued, running: engine.running },
        };
      },
      metricsText: () => {
        const states = anchorer.states();
        const mine = states.find((s) => s.logId === logId);
        return renderServeMetrics({
          metrics,
          gateOpen: !stopping && monitor.gate() === null,
          revoked: monitor.state.status === "revoked",
          queueDepth: engine.queued,
          generating: engine.running,
          generations: engine.completed,
          generationSeconds: engine.generationSeconds,
          receiptsIssued: receiptLog.issued,
          nextSeq: receiptLog.nextSeq,
          treeSize: receiptLog.current.tree.size,
          epochReceipts: receiptLog.epochReceipts,
          checkpointSize: mine?.latestSize ?? 0,
          anchoredSize: mine?.anchoredSize ?? 0,
          logs: states.length,
          logsUnanchored: states.filter((s) => s.latestSize > s.anchoredSize).length,
          anchors: anchorer.anchors,
          anchorErrors: anchorer.errors,
          lastAnchorGas: anchorer.lastGasUsed,
          registryChecks: monitor.checks,
          registryCheckFailures: monitor.checkFailures,
          registryLastOk: monitor.lastOk,
        });
      },
    };
    const api = await startServeApi(app, options.listen, options.httpLimits ?? {});
    cleanups.push(() => api.close());

    monitor.start();
    anchorer.start();
    // Epochs closed by time: checked a few times per epoch (at most every second).
    const epochTimer = setInterval(
      () => {
        if (receiptLog.epochDue()) void receiptLog.closeEpoch().catch((error: unknown) => receiptLog.onError(error));
      },
      Math.min(1000, Math.max(50, options.epochSeconds * 250)),
    );
    cleanups.push(() => clearInterval(epochTimer));

    if (options.push !== undefined) {
      const repo = options.push;
      void (async () => {
        for (let attempt = 1; !stopController.signal.aborted; attempt++) {
          try {
            const pushed = await pushBundle(repo, fileName, bundleBytes, { bundlePath });
            pushState = { status: "pushed", commit: pushed.commit };
            log.info({ repo: redactUrls(repo), commit: pushed.commit }, "serving bundle pushed");
            return;
          } catch (error) {
            pushState = { status: "failed", error: error instanceof ProvenantError ? error.message : String(error) };
            log.warn({ attempt, err: pushState.error }, "pushing the serving bundle failed; retrying");
            await sleep(Math.min(60_000, 2_000 * 2 ** Math.min(attempt, 5)), stopController.signal);
          }
        }
      })();
    }
    log.info({ url: api.url, model: modelId, modelRoot, logId, servingManifest: identity.servingManifest }, "serving");

    let stopped: Promise<void> | undefined;
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        stopping = true;
        stopController.abort();
        log.info("stopping");
        clearInterval(epochTimer);
        await api.close();
        await engine.close();
        // The last epoch is closed and offered to the chain once, briefly; what is left is anchored by the next life.
        await receiptLog.closeEpoch().catch((error: unknown) => log.error({ err: String(error) }, "final epoch"));
        // A clean stop gives back the unused seq reservation: the next life goes on from the next seq, without a gap.
        await receiptLog.close().catch((error: unknown) => log.error({ err: String(error) }, "seq reservation"));
        await Promise.race([anchorer.trigger(), sleep(10_000, new AbortController().signal)]);
        await monitor.stop();
        await anchorer.stop();
        await store.close();
        provider.destroy();
        resolveDone();
      })();
      return stopped;
    };
    return {
      url: api.url,
      identity,
      bundlePath,
      modelId,
      log: receiptLog,
      store,
      monitor,
      anchorer,
      engine,
      closeEpoch: () => receiptLog.closeEpoch(),
      stop,
      done,
    };
  } catch (error) {
    await cleanup();
    if (error instanceof ProvenantError) throw error;
    throw new IoError("SERVE_UNAVAILABLE", `cannot start serving: ${String(error)}`, { cause: error });
  }
}
