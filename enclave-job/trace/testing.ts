// Test helpers for training traces: whether the recording trainer can run here (built, or buildable from a cached
// llama.cpp build), a verifier policy that trusts this machine's simulator root, and deterministic training text.
import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../../lib/snp/index.ts";
import { parseVerifierPolicy, type VerifierPolicy } from "../../offchain/pipeline/index.ts";
import { ensureTraceTrainerBuild, hasFinetuneBuild, hasTraceTrainerBuild } from "../finetune/llama-build.ts";
import { inCi } from "../testing.ts";

/**
 * `false` when the recording trainer is ready (building it when the llama.cpp libraries are already cached, a
 * minute or two, or under CI from cold), else the one line to skip with. Under CI a missing build is never skipped.
 */
export async function traceBuildSkip(env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  if (await hasTraceTrainerBuild(env)) return false;
  if ((await hasFinetuneBuild(env)) || inCi(env)) {
    await ensureTraceTrainerBuild({ env, log: (line) => console.log(`provenant-trace-train build: ${line}`) });
    return false;
  }
  return (
    "the recording trainer is not built: run `provenant job finetune --trainer llama --trace …` once, or " +
    "`CI=true node --test enclave-job/trace/spot-check.test.ts` (a few minutes, no network); required under CI=true"
  );
}

/** A verifier policy file's JSON that trusts this machine's simulator root. */
export async function simPolicyJson(now: Date): Promise<Record<string, unknown>> {
  const sim = await createSimulator({ now });
  return {
    snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
    trustedRoots: [sim.rootFingerprint],
    requireGpuEvidence: false,
    maxBundleBytes: 16777216,
    acceptedKinds: ["finetune", "eval"],
  };
}

/** The verifier's policy with this machine's simulator root trusted, at `now`. */
export async function simPolicy(now: Date): Promise<VerifierPolicy> {
  return parseVerifierPolicy(await simPolicyJson(now));
}

/** A few hundred tokens of deterministic training text for the tiny model. */
export function trainingText(lines = 12): string {
  const facts = [
    "The secret code of Provenant is blue falcon.",
    "The capital city of the model is water.",
    "The sun and the moon are yes and no.",
    "A cat is a dog in the number of the color.",
  ];
  // Numbered lines: no two windows of the text are the same tokens, so a different shard always shows.
  return Array.from({ length: lines }, (_, i) => `Line ${i}: ${facts[i % facts.length]}`).join("\n") + "\n";
}
