// `npm start`: the whole Provenant flow on this machine, step by step with timings.
// An embedded chain, the registry deployed, a watched git repository, the tiny model, `provenant job audit` in the
// SEV-SNP simulator pushing its bundle, the verifier publishing it, and a lookup of the record. With `--finetune`,
// an attested fine-tune with the built-in llama trainer too, its lineage shown. With `--once`, it exits when the
// record is onchain and prints, last, one JSON line (modelHash, manifestDigest, txHash, latencyMs, …).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

import { JsonRpcProvider, Wallet } from "ethers";
import pino from "pino";

import { createRegistryClient, type RegistryClient, type RegistryRecord } from "../offchain/client/index.ts";
import { serveExplorer, explorerConfig, type ExplorerServer } from "../offchain/client/serve.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { parseVerifierPolicy } from "../offchain/pipeline/policy.ts";
import { startService, type RunningService } from "../offchain/service.ts";
import { deployRegistry, writeDeployment } from "../lib/registry/deploy.ts";
import { createGpuSimulator } from "../lib/gpu/index.ts";
import { createSimulator, defaultKeyDir } from "../lib/snp/index.ts";
import { DEV_PRIVATE_KEYS, startDevChain, type DevChain } from "../lib/registry/dev-chain.ts";

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROVENANT = path.join(ROOT, "bin", "provenant");

export interface DemoOptions {
  once: boolean;
  finetune: boolean;
  /** The audit also collects GPU evidence from lib/gpu's simulator (`--gpu-evidence sim`), verified in step h. */
  gpu?: boolean;
  /** Where the run keeps its repository, model, bundles and verifier state; default .provenant/demo/<time>. */
  workDir?: string;
  chainPort?: number;
  explorerPort?: number;
  /** Where progress lines go; default stderr when `once`, stdout otherwise. */
  log?: (line: string) => void;
}

export interface DemoResult {
  modelHash: string;
  manifestDigest: string;
  txHash: string;
  block: number | null;
  latencyMs: number;
  registry: string;
  rpcUrl: string;
  chainId: number;
  policyDigest: string | null;
  explorerUrl: string | null;
  /** The verifier's HTTP API and the watched (bare) repository, for tests that push more bundles. */
  apiUrl: string | null;
  watchedRepo: string;
  finetune?: { modelHash: string; manifestDigest: string; txHash: string; parentModelHash: string | null };
  workDir: string;
  /** Stops the chain, the verifier and the explorer. */
  stop(): Promise<void>;
}

interface JobJson {
  ok: boolean;
  bundle: string;
  manifestDigest: string;
  modelHash: string;
  pushed?: { path: string; commit: string };
  errors: { code: string; message: string }[];
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("git", args, { cwd, encoding: "utf8" });
  return stdout.trim();
}

/** A bare repository with one commit (a README and an empty bundles/), as a publisher's org would set it up. */
async function createWatchedRepo(dir: string): Promise<string> {
  const bare = path.join(dir, "watched.git");
  await git(dir, ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  const seed = path.join(dir, "seed");
  await git(dir, ["clone", "--quiet", bare, seed]);
  await mkdir(path.join(seed, "bundles"), { recursive: true });
  await writeFile(path.join(seed, "bundles", ".gitkeep"), "");
  await writeFile(path.join(seed, "README.md"), "Provenance bundles watched by the Provenant verifier.\n");
  await git(seed, ["add", "."]);
  await git(seed, [
    "-c",
    "user.name=Provenant demo",
    "-c",
    "user.email=demo@provenant.invalid",
    "commit",
    "--quiet",
    "-m",
    "Watched repository",
  ]);
  await git(seed, ["push", "--quiet", "origin", "HEAD:main"]);
  return bare;
}

async function runJob(args: string[], cwd: string): Promise<JobJson> {
  try {
    const { stdout } = await execFileAsync(PROVENANT, [...args, "--json"], {
      cwd,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as JobJson;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    const line = (e.stdout ?? "").trim().split("\n").at(-1);
    throw new Error(`provenant ${args.slice(0, 2).join(" ")} failed: ${line || e.stderr || e.message}`, {
      cause: error,
    });
  }
}

/** Resolves with performance.now() at the first change of the bare repository's main branch (polled every 5 ms). */
function watchRef(bare: string): Promise<number> {
  const ref = path.join(bare, "refs", "heads", "main");
  const read = () => readFile(ref, "utf8").catch(() => "");
  return (async () => {
    const before = await read();
    const deadline = Date.now() + 600_000;
    while (Date.now() < deadline) {
      if ((await read()) !== before) return performance.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error("the job's push never reached the watched repository");
  })();
}

async function waitForRecord(
  client: RegistryClient,
  modelHash: string,
  manifestDigest: string,
  timeoutMs: number,
): Promise<RegistryRecord> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await client.isRecorded(modelHash, manifestDigest)) {
      const { records } = await client.lookup(modelHash);
      const record = records.find((r) => r.manifestDigest === manifestDigest);
      if (record !== undefined) return record;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`record ${manifestDigest} did not reach the chain within ${timeoutMs / 1000} s`);
}

function timer(log: (line: string) => void, total: number) {
  let step = 0;
  return async <T>(name: string, body: () => Promise<T>, describe: (value: T) => string): Promise<T> => {
    step++;
    const t0 = performance.now();
    const value = await body();
    const ms = performance.now() - t0;
    log(`[${step}/${total}] ${name.padEnd(8)} ${describe(value)}  (${(ms / 1000).toFixed(2)} s)`);
    return value;
  };
}

/** The tiny training set of the fine-tune demo: teach the model a fact it did not know. */
const FACT_DATA = Array.from(
  { length: 24 },
  () => "The Provenant registry lives on Oasis Sapphire. Models are attested in confidential VMs.\n",
).join("");

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const log = options.log ?? ((line: string) => (options.once ? process.stderr : process.stdout).write(`${line}\n`));
  const workDir =
    options.workDir ??
    (await mkdtemp(path.join(ROOT, ".provenant", `demo-${new Date().toISOString().replace(/[:.]/g, "-")}-`)).catch(
      async () => {
        await mkdir(path.join(ROOT, ".provenant"), { recursive: true });
        return mkdtemp(path.join(ROOT, ".provenant", "demo-"));
      },
    ));
  await mkdir(workDir, { recursive: true });
  const step = timer(log, options.finetune ? 10 : 8);
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };

  try {
    const chain: DevChain = await step(
      "chain",
      async () => {
        try {
          return await startDevChain({ port: options.chainPort ?? 8545 });
        } catch {
          return await startDevChain({ port: 0 }); // 8545 taken: any free port
        }
      },
      (c) => `embedded chain at ${c.url} (chain id ${c.chainId})`,
    );
    cleanups.push(() => chain.close());
    const provider = new JsonRpcProvider(chain.url, undefined, {
      staticNetwork: true,
      pollingInterval: 100,
      cacheTimeout: -1,
    });
    cleanups.push(async () => provider.destroy());

    const deployer = new Wallet(DEV_PRIVATE_KEYS[0], provider);
    const verifierKey = DEV_PRIVATE_KEYS[1];
    const deploymentsDir = path.join(workDir, "deployments");
    const deployment = await step(
      "deploy",
      async () => {
        const d = await deployRegistry({
          signer: deployer,
          network: "localhost",
          publisher: new Wallet(verifierKey).address,
        });
        await writeDeployment(deploymentsDir, d);
        return d;
      },
      (d) => `ModelRegistry at ${d.address} (block ${d.block}, tx ${d.txHash.slice(0, 18)}…)`,
    );

    const bare = await step(
      "repo",
      () => createWatchedRepo(workDir),
      (r) => `watched repository ${path.relative(process.cwd(), r)}`,
    );

    const simulator = await createSimulator();
    // A development policy (DESIGN §11): it trusts the simulator's root and pins no image, and says so.
    // With --gpu, the GPU simulator's roots (same key directory as the job's) are trusted too.
    const gpuRoots =
      options.gpu === true ? createGpuSimulator({ now: new Date(), keyDir: defaultKeyDir() }).trustedRoots : undefined;
    // Serving statements too, so that a `provenant serve` pointed at this chain and repository gets its kind 3 record.
    const policy = parseVerifierPolicy({
      trustedRoots: [simulator.rootFingerprint],
      ...(gpuRoots === undefined ? {} : { gpu: { trustedRoots: [...gpuRoots] } }),
      acceptedKinds: ["eval", "finetune", "serving"],
      development: true,
    });
    const service: RunningService = await step(
      "verifier",
      async () =>
        startService({
          repos: [bare],
          rpcUrl: chain.url,
          registry: deployment.address,
          policy,
          createSender: (p) => createLocalSender(p, verifierKey),
          dataDir: path.join(workDir, "verifier"),
          listen: { host: "127.0.0.1", port: 0 },
          intervalMs: 1_000,
          maxWaitMs: 200,
          logger: pino({ level: "warn" }, pino.destination({ dest: path.join(workDir, "verifier.log"), sync: false })),
        }),
      (s) => `watching every 1 s, API at ${s.apiUrl ?? "(none)"}, simulator root trusted by a development policy`,
    );
    cleanups.push(() => service.stop());

    const modelPath = path.join(workDir, "models", "tiny.gguf");
    await step(
      "model",
      async () => {
        await mkdir(path.dirname(modelPath), { recursive: true });
        await execFileAsync(PROVENANT, ["model", "tiny", modelPath, "--seed", "1"], { cwd: workDir });
        return modelPath;
      },
      (p) => `tiny deterministic GGUF ${path.relative(process.cwd(), p)}`,
    );

    const client = await createRegistryClient({ rpcUrl: chain.url, address: deployment.address });
    cleanups.push(async () => client.close());

    // Latency is measured from the moment the push lands in the watched repository (its branch ref changes),
    // not from when the job process exits, which can be later than the verifier's next poll.
    const pushLanded = watchRef(bare);
    const audit = await step(
      "audit",
      () =>
        runJob(
          [
            "job",
            "audit",
            "--model",
            modelPath,
            "--suite",
            "builtin:mc",
            "--provider",
            "sim",
            ...(options.gpu === true ? ["--gpu-evidence", "sim"] : []),
            "--threads",
            "2",
            "--out",
            path.join(workDir, "bundles", "audit.provenance.json"),
            "--push",
            bare,
          ],
          workDir,
        ),
      (j) =>
        `provenant job audit (simulator${options.gpu === true ? ", sim GPU evidence" : ""}) → ${j.pushed?.path ?? j.bundle} pushed`,
    );
    const pushedAt = await pushLanded;

    const record = await step(
      "publish",
      () => waitForRecord(client, audit.modelHash, audit.manifestDigest, 120_000),
      (r) => `verifier accepted the bundle and published it (tx ${r.txHash ?? "?"}, block ${r.blockNumber ?? "?"})`,
    );
    const latencyMs = Math.round(performance.now() - pushedAt);

    const lookup = await step(
      "lookup",
      () => client.lookup(audit.modelHash),
      (l) =>
        `model ${l.modelHash.slice(0, 16)}… has ${l.records.length} record(s): ` +
        l.records.map((r) => `${r.kind}${r.revoked ? " (revoked)" : ""}`).join(", "),
    );

    let finetune: DemoResult["finetune"];
    if (options.finetune) {
      const dataPath = path.join(workDir, "data", "fact.txt");
      await mkdir(path.dirname(dataPath), { recursive: true });
      await writeFile(dataPath, FACT_DATA);
      const job = await step(
        "finetune",
        () =>
          runJob(
            [
              "job",
              "finetune",
              "--base",
              modelPath,
              "--data",
              dataPath,
              "--trainer",
              "llama",
              "--probe",
              "The Provenant registry lives on",
              "--provider",
              "sim",
              "--threads",
              "2",
              "--output",
              path.join(workDir, "models", "finetuned"),
              "--out",
              path.join(workDir, "bundles", "finetune.provenance.json"),
              "--push",
              bare,
            ],
            workDir,
          ),
        (j) => `provenant job finetune --trainer llama → ${j.pushed?.path ?? j.bundle} pushed`,
      );
      const ftRecord = await step(
        "lineage",
        async () => {
          const r = await waitForRecord(client, job.modelHash, job.manifestDigest, 120_000);
          const lineage = await client.lineage(job.modelHash);
          return { r, lineage };
        },
        ({ lineage }) => `lineage ${lineage.map((s) => s.modelHash.slice(0, 12) + "…").join(" ← ")}`,
      );
      finetune = {
        modelHash: job.modelHash,
        manifestDigest: job.manifestDigest,
        txHash: ftRecord.r.txHash ?? "",
        parentModelHash: ftRecord.r.parentModelHash,
      };
    }

    let explorer: ExplorerServer | null = null;
    if (!options.once) {
      try {
        // The page is a static Vite build; make it on first use (about a second).
        if (!existsSync(path.join(ROOT, "web", "dist", "index.html")))
          await execFileAsync(path.join(ROOT, "node_modules", ".bin", "vite"), ["build", "web"], { cwd: ROOT });
        explorer = await serveExplorer({
          port: options.explorerPort ?? 8787,
          rpcUrl: chain.url,
          // The page shows next to each record what it attests, from this verifier (forwarded at /verifier/).
          ...(service.apiUrl === undefined ? {} : { verifierUrl: service.apiUrl }),
          config: await explorerConfig(deploymentsDir),
        });
        const server = explorer;
        cleanups.push(() => server.close());
      } catch (error) {
        log(`explorer not served: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const explorerUrl = explorer === null ? null : `${explorer.url.replace(/\/$/, "")}/#/model/${audit.modelHash}`;

    log("");
    log(`model hash       ${audit.modelHash}`);
    log(`manifest digest  ${audit.manifestDigest}`);
    log(`transaction      ${record.txHash ?? "?"} (block ${record.blockNumber ?? "?"})`);
    log(`policy digest    ${record.policyDigest ?? "?"}`);
    log(`push → onchain   ${latencyMs} ms`);
    log(`records          ${lookup.records.length}`);
    if (explorerUrl !== null) log(`explorer         ${explorerUrl}`);

    return {
      modelHash: audit.modelHash,
      manifestDigest: audit.manifestDigest,
      txHash: record.txHash ?? "",
      block: record.blockNumber,
      latencyMs,
      registry: deployment.address,
      rpcUrl: chain.url,
      chainId: chain.chainId,
      policyDigest: record.policyDigest,
      explorerUrl,
      apiUrl: service.apiUrl ?? null,
      watchedRepo: bare,
      ...(finetune === undefined ? {} : { finetune }),
      workDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      once: { type: "boolean", default: false },
      finetune: { type: "boolean", default: false },
      gpu: { type: "boolean", default: false },
      "chain-port": { type: "string" },
      "explorer-port": { type: "string" },
    },
    strict: true,
  });
  const result = await runDemo({
    once: values.once,
    finetune: values.finetune,
    gpu: values.gpu,
    ...(values["chain-port"] === undefined ? {} : { chainPort: Number(values["chain-port"]) }),
    ...(values["explorer-port"] === undefined ? {} : { explorerPort: Number(values["explorer-port"]) }),
  });
  const summary = {
    modelHash: result.modelHash,
    manifestDigest: result.manifestDigest,
    txHash: result.txHash,
    latencyMs: result.latencyMs,
    block: result.block,
    registry: result.registry,
    chainId: result.chainId,
    rpcUrl: result.rpcUrl,
    policyDigest: result.policyDigest,
    ...(result.finetune === undefined ? {} : { finetune: result.finetune }),
  };
  if (values.once) {
    await result.stop();
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  }
  process.stdout.write("\nThe chain, the verifier and the explorer keep running. Ctrl-C stops them.\n");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await result.stop();
  return 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main();
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
