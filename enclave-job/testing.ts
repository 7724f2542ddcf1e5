// Test helpers for the enclave job: the simulator as attestation provider (on the test's fixed clock), the offline
// checks a bundle must pass (DSSE signatures by K, K and the nonce bound in REPORT_DATA, every model digest
// recomputed), and the rule for the built-in llama trainer's test (built and required under CI, skipped otherwise).
import { createHash, createPublicKey } from "node:crypto";

import { findManifest, readBundle, type ProvenanceBundle } from "../lib/bundle/index.ts";
import { verifyEnvelope } from "../lib/dsse/index.ts";
import { validateStatement, type ValidatedStatement } from "../lib/intoto/index.ts";
import { hashModel } from "../lib/oms/index.ts";
import { simProvider, type AttestationProvider } from "./attest/providers.ts";
import { ensureFinetuneBuild, hasFinetuneBuild } from "./finetune/llama-build.ts";

/** REPORT_DATA's offset in the attestation report (AMD SEV-SNP ABI 56860, Table 23). */
export const REPORT_DATA_OFFSET = 0x50;

/**
 * lib/snp's simulator, its VCEK dated around `now` (the test's fixed clock, which the test also verifies at). A
 * failure to attest is the test's failure: there is no stand-in report.
 */
export function testProvider(now: Date): AttestationProvider {
  return simProvider({ now });
}

/** True under CI (`CI` set to anything but "", "0" or "false"), as test/chromium.ts reads it. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
}

/**
 * Whether the built-in llama trainer's test can run: `false` to run it, or the one line to skip it with. Under CI the
 * test is required: a cold cache is built here (llama.cpp from the source node-llama-cpp ships, cmake, minutes) and a
 * build that fails throws, so the test fails rather than being skipped. `.ci/run` builds it before `npm test`.
 */
export async function finetuneBuildSkip(env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  if (await hasFinetuneBuild(env)) return false;
  if (inCi(env)) {
    await ensureFinetuneBuild({ env, log: (line) => console.log(`llama-finetune build: ${line}`) });
    return false;
  }
  return (
    "the llama.cpp fine-tune tool is not built: build it once with `provenant job finetune --trainer llama …` or " +
    "`CI=true node --test enclave-job/job.test.ts` (a few minutes, no network); under CI=true this test is required"
  );
}

export interface CheckedBundle {
  bundle: ProvenanceBundle;
  manifest: ValidatedStatement;
  statements: ValidatedStatement[];
}

/** The offline checks; `models` maps an OMS subject name to the path whose root digest it must equal. */
export async function checkBundleOffline(bytes: Uint8Array, models: Record<string, string>): Promise<CheckedBundle> {
  const bundle = readBundle(bytes);
  const spki = Buffer.from(bundle.signer.publicKey, "base64");
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  const statements = bundle.envelopes.map((envelope) =>
    validateStatement(JSON.parse(Buffer.from(verifyEnvelope(envelope, key)).toString("utf8"))),
  );
  const report = Buffer.from(bundle.evidence.cpu.report, "base64");
  const reportData = report.subarray(REPORT_DATA_OFFSET, REPORT_DATA_OFFSET + 64);
  if (!reportData.subarray(0, 32).equals(createHash("sha256").update(spki).digest())) {
    throw new Error("BINDING_KEY_MISMATCH");
  }
  if (reportData.subarray(32).toString("hex") !== bundle.nonce) throw new Error("BINDING_NONCE_MISMATCH");
  for (const statement of statements) {
    if (statement.kind !== "oms") continue;
    const name = statement.statement.subject[0]?.name ?? "";
    const path = models[name];
    if (path === undefined) throw new Error(`no path for model ${name}`);
    const hash = await hashModel(path);
    if (hash.rootDigest !== statement.subjectDigests[0]) throw new Error(`MODEL_DIGEST_MISMATCH ${name}`);
  }
  const manifest = statements[findManifest(bundle).index];
  if (manifest === undefined) throw new Error("no manifest");
  return { bundle, manifest, statements };
}
