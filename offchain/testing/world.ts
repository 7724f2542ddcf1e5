// Test fixture shared by the verifier's cross-part tests and the reliability soak: a real chain with a deployed
// registry, the simulator's bundle factory, a scratch directory with the development policy file, the command
// line of `provenant verifier run` against them, and a polling wait.
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

export async function createTestWorld(prefix: string): Promise<TestWorld> {
  const chain = await startDevChain();
  const registry = await deployRegistry(chain.url);
  const factory = await createBundleFactory();
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

/** Polls `probe` every 100 ms until it returns a value, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
