// Test helpers for the enclave job: an attestation provider for tests, and the offline checks a bundle must pass
// (DSSE signatures by K, K and the nonce bound in REPORT_DATA, every model digest recomputed).
import { createHash, createPublicKey } from "node:crypto";
import { existsSync } from "node:fs";

import { findManifest, readBundle, type ProvenanceBundle } from "../lib/bundle/index.ts";
import { verifyEnvelope } from "../lib/dsse/index.ts";
import { validateStatement, type ValidatedStatement } from "../lib/intoto/index.ts";
import { hashModel } from "../lib/oms/index.ts";
import { simProvider, type AttestationProvider } from "./attest/providers.ts";

/** REPORT_DATA's offset in the attestation report (AMD SEV-SNP ABI 56860, Table 23). */
export const REPORT_DATA_OFFSET = 0x50;

/** Whether lib/snp's simulator has landed (it is written alongside this part). */
export async function simulatorAvailable(): Promise<boolean> {
  if (!existsSync(new URL("../lib/snp/index.ts", import.meta.url))) return false;
  const snp = (await import("../lib/snp/index.ts")) as Record<string, unknown>;
  return typeof snp.createSimulator === "function";
}

/** The simulator when lib/snp has it; otherwise a stand-in that returns a zero report carrying REPORT_DATA. */
export function testProvider(): AttestationProvider {
  return {
    name: "sim",
    async attest(reportData) {
      if (await simulatorAvailable()) return simProvider().attest(reportData);
      const report = new Uint8Array(1184);
      report.set(reportData, REPORT_DATA_OFFSET);
      return { provider: "sim", report, vcek: new Uint8Array([0x30, 0]) };
    },
  };
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
