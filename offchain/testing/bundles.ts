// Test fixture builder: real provenance bundles made with the SEV-SNP simulator (lib/snp createSimulator) and the
// formats library, one report and three envelopes (a fine-tune manifest plus the OMS statements of the output and
// base models) like the enclave job writes. Variants break one link of the chain so that tests can check each code.
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";

import { BUNDLE_MEDIA_TYPE, writeBundle, type ProvenanceBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../../lib/dsse/index.ts";
import {
  buildEvalStatement,
  buildFinetuneStatement,
  buildOmsStatement,
  type Statement,
} from "../../lib/intoto/index.ts";
import type { ModelHash } from "../../lib/oms/types.ts";
import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../../lib/snp/index.ts";
import { parseVerifierPolicy, type VerifierPolicy } from "../pipeline/index.ts";

type Simulator = Awaited<ReturnType<typeof createSimulator>>;

export type Variant =
  "good" | "debug" | "wrong-key" | "wrong-nonce" | "bad-envelope-signature" | "no-oms-for-subject" | "tampered-report";

export interface MadeBundle {
  bytes: Uint8Array;
  bundle: ProvenanceBundle;
  /** Hex (no 0x). */
  modelHash: string;
  parentModelHash: string;
}

export interface BundleFactory {
  sim: Simulator;
  policy: VerifierPolicy;
  policyJson: Record<string, unknown>;
  make(options?: { seed?: string; kind?: "finetune" | "eval"; variant?: Variant }): MadeBundle;
}

const hex = (s: string): string => createHash("sha256").update(s).digest("hex");

/** The OMS root of a one-file model whose file digest is `fileDigest`: SHA-256 over the raw resource digest. */
export function omsRoot(fileDigest: string): string {
  return createHash("sha256").update(Buffer.from(fileDigest, "hex")).digest("hex");
}

/** The OMS hash of a one-file model (model.gguf of `size` bytes, digest `fileDigest`), as lib/oms would give it. */
export function oneFileModelHash(name: string, fileDigest: string, size = 1): ModelHash {
  return {
    rootDigest: omsRoot(fileDigest),
    method: "files",
    files: [{ name: "model.gguf", digest: fileDigest, size }],
    resources: [{ name: "model.gguf", algorithm: "sha256", digest: fileDigest }],
    modelName: name,
    ignorePaths: [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
    allowSymlinks: false,
    totalBytes: size,
  };
}

function sign(statement: Statement, key: KeyObject) {
  return signEnvelope(new TextEncoder().encode(JSON.stringify(statement)), INTOTO_PAYLOAD_TYPE, key);
}

/**
 * A bundle as the enclave job writes it, with the simulator's CPU evidence: the envelopes, the signer K (DER SPKI),
 * the nonce, the SNP report and the simulator's VCEK (and chain when it gives one). Shared with testing/serving.ts.
 */
export function simBundle(parts: {
  envelopes: ProvenanceBundle["envelopes"];
  spki: Uint8Array;
  nonce: Uint8Array;
  report: Uint8Array;
  evidence: ReturnType<Simulator["evidence"]>;
}): ProvenanceBundle {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
  const { evidence } = parts;
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes: parts.envelopes,
    signer: { publicKey: b64(parts.spki) },
    nonce: Buffer.from(parts.nonce).toString("hex"),
    evidence: {
      cpu: {
        type: "sev-snp",
        report: b64(parts.report),
        vcek: b64(evidence.vcek),
        ...(evidence.chain === undefined ? {} : { chain: evidence.chain.map(b64) }),
        provider: "sim",
      },
    },
  };
}

export interface BundleFactoryOptions {
  keyDir?: string;
  /**
   * The simulator's clock: its VCEK is valid from 30 days before it for seven years (lib/snp createSimulator). Tests
   * pass the fixed date they verify at; a test that runs a real service passes the clock that service reads. Default:
   * the machine's clock now.
   */
  now?: Date;
}

export async function createBundleFactory(options: BundleFactoryOptions = {}): Promise<BundleFactory> {
  const sim = await createSimulator({
    ...(options.keyDir === undefined ? {} : { keyDir: options.keyDir }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  // A development policy (DESIGN §11): it trusts the simulator's root and pins nothing, so it must say so.
  const policyJson = {
    snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
    trustedRoots: [sim.rootFingerprint],
    requireGpuEvidence: false,
    maxBundleBytes: 16 * 1024 * 1024,
    acceptedKinds: ["finetune", "eval"],
    development: true,
  };
  const policy = parseVerifierPolicy(policyJson);
  const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const other = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const spki = k.publicKey.export({ format: "der", type: "spki" });
  const evidence = sim.evidence("vcek");
  let counter = 0;

  return {
    sim,
    policy,
    policyJson,
    make({ seed = `bundle-${counter++}`, kind = "finetune", variant = "good" } = {}) {
      const outputFile = hex(`output-${seed}`);
      const baseFile = hex(`base-${seed}`);
      const output = omsRoot(outputFile);
      const base = omsRoot(baseFile);
      const nonce = Buffer.from(hex(`nonce-${seed}`), "hex");
      const reportData = Buffer.concat([createHash("sha256").update(spki).digest(), nonce]);
      if (variant === "wrong-key") reportData.fill(7, 0, 32);
      if (variant === "wrong-nonce") reportData.fill(9, 32, 64);
      const report = Buffer.from(sim.signReport({ reportData, ...(variant === "debug" ? { debug: true } : {}) }));
      if (variant === "tampered-report") report[0x90] = (report[0x90] ?? 0) ^ 1; // a MEASUREMENT byte
      const dates = { startedOn: new Date("2026-11-21T10:00:00Z"), finishedOn: new Date("2026-11-21T11:00:00Z") };
      const manifest =
        kind === "finetune"
          ? buildFinetuneStatement({
              output: { name: "tuned", rootDigest: output },
              baseModel: { name: "base", rootDigest: base },
              dataset: { name: "data.jsonl", digest: hex(`data-${seed}`) },
              jobCode: { name: "job", digest: hex(`job-${seed}`) },
              trainerConfig: { epochs: 1 },
              invocationId: seed,
              ...dates,
              byproducts: [{ name: "snp-report", digest: createHash("sha256").update(report).digest("hex") }],
            })
          : buildEvalStatement({
              model: { name: "tuned", rootDigest: output },
              suite: { name: "suite", digest: hex(`suite-${seed}`) },
              harness: { name: "provenant", version: "0.1.0", digest: hex("harness") },
              metrics: [{ name: "accuracy", value: 0.5, sampleSize: 10 }],
              ...dates,
            });
      const omsOutput = buildOmsStatement(
        "tuned",
        oneFileModelHash("tuned", variant === "no-oms-for-subject" ? hex("x") : outputFile),
      );
      const omsBase = buildOmsStatement("base", oneFileModelHash("base", baseFile));
      const envelopes = [
        sign(manifest, k.privateKey),
        sign(omsOutput, k.privateKey),
        sign(omsBase, variant === "bad-envelope-signature" ? other.privateKey : k.privateKey),
      ];
      const bundle = simBundle({ envelopes, spki, nonce, report, evidence });
      return {
        bytes: writeBundle(bundle),
        bundle,
        modelHash: output,
        parentModelHash: kind === "finetune" ? base : "0".repeat(64),
      };
    },
  };
}
