// Test fixture shared by the verifier's cross-part tests and the reliability soak: a real chain with a deployed
// registry, the simulator's bundle factory, a scratch directory with the development policy file, the command
// line of `provenant verifier run` against them, a polling wait, and a test clock for in-process services.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { createBundleFactory, type BundleFactory } from "./bundles.ts";
import { deployRegistry, startDevChain, type DeployedRegistry, type DevChain } from "./chain.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface TestWorld {
  chain: DevChain;
  registry: DeployedRegistry;
  factory: BundleFactory;
  /** A scratch directory, removed by close(). */
  work: string;
  /** The development policy (the simulator's root trusted), written to `work`. */
  policyFile: string;
  close(): Promise<void>;
}

/**
 * `now` is the clock of the world's simulator (createBundleFactory): the fixed date of the test when its services run
 * in process with `tickingClock(now)`, or the machine's clock when a child `provenant verifier run` reads that one.
 */
export async function createTestWorld(prefix: string, options: { now?: Date } = {}): Promise<TestWorld> {
  const chain = await startDevChain();
  const registry = await deployRegistry(chain.url);
  const factory = await createBundleFactory(options.now === undefined ? {} : { now: options.now });
  const work = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  const policyFile = path.join(work, "policy.json");
  writeFileSync(policyFile, JSON.stringify(factory.policyJson));
  return {
    chain,
    registry,
    factory,
    work,
    policyFile,
    async close() {
      registry.provider.destroy();
      await chain.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** `node bin/cli.ts verifier run …` for a child process: the repository, this world's chain, registry and policy. */
export function verifierRunArgs(
  world: TestWorld,
  repo: string,
  dataDir: string,
  extra: readonly string[] = [],
): string[] {
  return [
    "--disable-warning=ExperimentalWarning",
    path.join(ROOT, "bin/cli.ts"),
    "verifier",
    "run",
    "--repo",
    repo,
    "--rpc",
    world.chain.url,
    "--registry",
    world.registry.address,
    "--policy",
    world.policyFile,
    "--data-dir",
    dataDir,
    ...extra,
  ];
}

/**
 * A clock for a service under test that starts at a fixed date and advances with the monotonic clock: what the
 * service checks (certificate validity) never depends on the day the test runs, while its timers and latencies still
 * see time pass.
 */
export function tickingClock(start: Date): () => Date {
  const origin = performance.now();
  return () => new Date(start.getTime() + (performance.now() - origin));
}

/** Polls `probe` every 100 ms until it returns a value, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
