// Soak: the verifier service (`provenant verifier run`, a real child process) fed a repository of mixed valid and
// invalid bundles on a real chain, while it is killed with SIGKILL at random points and restarted. Afterwards every
// valid bundle must be onchain exactly once (one AttestationRecorded event per manifest), every invalid one refused
// with the code that the offline pipeline gives it, and the store consistent (nothing stuck half way).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";

import { verifyBundle } from "../../offchain/pipeline/index.ts";
import { Store } from "../../offchain/store/index.ts";
import type { Variant } from "../../offchain/testing/bundles.ts";
import { createTestRepo } from "../../offchain/testing/git.ts";
import { createTestWorld, verifierRunArgs, waitFor } from "../../offchain/testing/world.ts";
import { createRng } from "./fuzz.ts";
const INVALID_VARIANTS: readonly Variant[] = [
  "debug",
  "wrong-key",
  "wrong-nonce",
  "bad-envelope-signature",
  "no-oms-for-subject",
  "tampered-report",
];

export interface SoakOptions {
  bundles: number;
  /** Share of bundles that are invalid (0..1). */
  invalidShare: number;
  /**
   * Kill the service at a random moment within this many ms after it has made progress (a new verdict or publication
   * in its store), so that every kill lands mid-work however slowly the machine starts Node.
   */
  killWithinMs: number;
  /** A restarted service that makes no progress for this long is a failure (default 120 s: a loaded 2-core machine). */
  progressWithinMs?: number;
  /** Stop killing after this long, then let one clean run finish. */
  killForMs: number;
  /** Give up waiting for the clean run after this long. */
  finishWithinMs: number;
  /** The service's largest publish batch: small batches mean more transactions, so more kills land mid-publish. */
  maxBatch?: number;
  /** Steers the bundle mix and the kill moments (fuzzSeed: PROVENANT_FUZZ_SEED, printed). */
  seed?: number;
}

export interface SoakResult {
  bundles: number;
  valid: number;
  invalid: number;
  restarts: number;
  /** Valid bundles not onchain, plus bundles without a verdict. Must be 0. */
  bundlesLost: number;
  /** Extra AttestationRecorded events for the same manifest. Must be 0. */
  duplicates: number;
  /** Invalid bundles stored as rejected with the code the offline pipeline gives. */
  invalidRefused: number;
  /** Anything else that does not hold, in words. */
  problems: string[];
  seconds: number;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const started = performance.now();
  const rng = createRng(options.seed ?? 7);
  // The service is a child `provenant verifier run`, which reads the machine's clock: the simulator's VCEK is minted
  // at that clock, and the offline verdicts below are taken at it too.
  const now = new Date();
  const world = await createTestWorld("provenant-soak", { now });
  const { factory, registry } = world;
  const repo = createTestRepo();
  const dataDir = path.join(world.work, "data");
  const problems: string[] = [];

  try {
    // The bundles, each with the verdict the offline pipeline gives it: the service must agree.
    const made = Array.from({ length: options.bundles }, (_, i) => {
      const invalid = rng() < options.invalidShare;
      const variant: Variant = invalid ? INVALID_VARIANTS[i % INVALID_VARIANTS.length]! : "good";
      const m = factory.make({ seed: `soak-${i}`, kind: i % 2 === 0 ? "eval" : "finetune", variant });
      const verdict = verifyBundle(m.bytes, { policy: factory.policy, now });
      return { ...m, index: i, variant, digest: sha256(m.bytes), verdict };
    });
    for (const m of made) {
      if ((m.variant === "good") !== m.verdict.ok)
        problems.push(`bundle ${m.index} (${m.variant}): offline verdict ${m.verdict.ok ? "accepted" : "refused"}`);
    }
    // Several commits, so that kills land between and during them.
    const perCommit = Math.max(1, Math.ceil(made.length / 10));
    for (let i = 0; i < made.length; i += perCommit) {
      for (const m of made.slice(i, i + perCommit)) repo.write(`bundles/s-${m.index}.provenance.json`, m.bytes);
      repo.commitAndPush(`soak ${i}`);
    }

    const start = (): ChildProcess =>
      spawn(
        process.execPath,
        verifierRunArgs(world, repo.origin, dataDir, [
          "--interval",
          "0.2",
          "--max-wait",
          "0.1",
          "--max-batch",
          String(options.maxBatch ?? 64),
          "--listen",
          "off",
        ]),
        {
          cwd: path.dirname(world.policyFile),
          env: { ...process.env, PROVENANT_PRIVATE_KEY: registry.publisherKey, PROVENANT_LOG_LEVEL: "error" },
          stdio: ["ignore", "ignore", "ignore"],
        },
      );
    const validCount = made.filter((m) => m.variant === "good").length;
    /** The store's counts by status, as text: what changes when the service makes progress. */
    const snapshot = (): string => {
      let store: Store | undefined;
      try {
        store = new Store({ dataDir });
        return JSON.stringify(store.countByStatus());
      } catch {
        return ""; // the database may not exist yet
      } finally {
        store?.close();
      }
    };
    const finished = (): boolean => {
      const counts = JSON.parse(snapshot() || "{}") as Record<string, number | undefined>;
      return counts.published === validCount && counts.rejected === made.length - validCount;
    };

    let restarts = 0;
    const killUntil = performance.now() + options.killForMs;
    while (performance.now() < killUntil && !finished()) {
      const before = snapshot();
      const child = start();
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        await waitFor(
          "the restarted verifier to make progress",
          () => (snapshot() !== before || finished() ? true : undefined),
          options.progressWithinMs ?? 120_000,
        );
        // The fault itself: a kill at a random moment of this life's work (drawn from the seeded generator).
        await new Promise((resolve) => setTimeout(resolve, rng() * options.killWithinMs));
      } finally {
        child.kill("SIGKILL");
        await exited;
      }
      restarts++;
    }
    if (!finished()) {
      const child = start();
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await waitFor("the last clean run to finish", () => (finished() ? true : undefined), options.finishWithinMs)
        .catch((error: unknown) => problems.push(String(error)))
        .finally(() => child.kill("SIGTERM"));
      await exited;
    }

    // What the chain says: one event per valid manifest, none for the invalid ones.
    const events = await registry.contract.queryFilter(registry.contract.filters.AttestationRecorded!(), 0, "latest");
    const eventsByManifest = new Map<string, number>();
    for (const e of events) {
      if (!("args" in e)) continue;
      const manifest = String(e.args[1]).slice(2);
      eventsByManifest.set(manifest, (eventsByManifest.get(manifest) ?? 0) + 1);
    }

    let bundlesLost = 0;
    let duplicates = 0;
    let invalidRefused = 0;
    const store = new Store({ dataDir });
    try {
      for (const m of made) {
        const row = store.getBundle(m.digest);
        if (row === undefined || row.status === "seen") {
          bundlesLost++;
          problems.push(`bundle ${m.index}: no verdict`);
          continue;
        }
        const manifest = m.verdict.manifestDigest;
        const onchain = manifest === undefined ? 0 : (eventsByManifest.get(manifest) ?? 0);
        if (m.variant === "good") {
          if (row.status !== "published" || onchain === 0) {
            bundlesLost++;
            problems.push(`bundle ${m.index}: valid but ${row.status}, ${onchain} events`);
          }
          duplicates += Math.max(0, onchain - 1);
        } else {
          const expected = m.verdict.errors.map((e) => e.code);
          const stored = (row.errors ?? []).map((e: { code: string }) => e.code);
          if (row.status === "rejected" && expected.every((code) => stored.includes(code))) invalidRefused++;
          else
            problems.push(
              `bundle ${m.index} (${m.variant}): ${row.status} [${stored.join(",")}], expected [${expected.join(",")}]`,
            );
          if (onchain > 0) problems.push(`bundle ${m.index} (${m.variant}) is onchain`);
        }
      }
      if (events.length !== validCount + duplicates)
        problems.push(`${events.length} events onchain for ${validCount} valid bundles`);
    } finally {
      store.close();
    }

    return {
      bundles: made.length,
      valid: validCount,
      invalid: made.length - validCount,
      restarts,
      bundlesLost,
      duplicates,
      invalidRefused,
      problems,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    repo.cleanup();
    await world.close();
  }
}
