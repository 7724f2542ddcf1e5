// Test fixture builder for GPU bundles: real audit bundles like `provenant job audit --gpu-evidence sim` writes, made
// with the SEV-SNP simulator and lib/gpu's simulator (development roots in one key directory), each GPU's evidence
// requested for gpuNonceFor(REPORT_DATA) and named in the manifest's signed runtime record. Variants break one link.
import { createHash, generateKeyPairSync } from "node:crypto";

import { BUNDLE_MEDIA_TYPE, writeBundle, type GpuEvidence, type ProvenanceBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../../lib/dsse/index.ts";
import { createGpuSimulator, gpuNonceFor, type GpuArch, type GpuSimulator } from "../../lib/gpu/index.ts";
import { buildEvalStatement, buildOmsStatement, type RuntimeInfo, type Statement } from "../../lib/intoto/index.ts";
import { createSimulator, DEFAULT_SNP_POLICY, snpPolicyToJson } from "../../lib/snp/index.ts";
import { oneFileModelHash } from "./bundles.ts";

type SnpSimulator = Awaited<ReturnType<typeof createSimulator>>;

export interface GpuBundleOptions {
  seed?: string;
  /** The GPUs to carry: "good" (for this bundle's REPORT_DATA), "other-nonce" (another REPORT_DATA), "no-rims". */
  gpus?: ("good" | "other-nonce" | "no-rims")[];
  arch?: GpuArch;
  /** The manifest's runtime record: default one naming exactly the carried GPU evidence; null: none (old jobs). */
  runtime?: RuntimeInfo | null | ((carried: string[]) => RuntimeInfo);
  /** Leave the GPU entries out of the bundle after the manifest named them (evidence stripped). */
  dropAfterSigning?: boolean;
}

export interface MadeGpuBundle {
  bytes: Uint8Array;
  bundle: ProvenanceBundle;
  /** Hex, without 0x. */
  modelHash: string;
  /** The report's 48-byte MEASUREMENT. */
  measurement: Uint8Array;
  /** Hex SHA-256 of each carried GPU transcript, in bundle order. */
  carried: string[];
}

export interface GpuBundleFactory {
  snp: SnpSimulator;
  gpu: Record<GpuArch, GpuSimulator>;
  /** A development policy trusting both simulators (what `provenant sim policy --gpu` prints). */
  policyJson: Record<string, unknown>;
  make(options?: GpuBundleOptions): MadeGpuBundle;
}

const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");
const b64 = (b: Uint8Array | string): string => Buffer.from(b).toString("base64");

/** `now`: the simulators' clock (certificate validity); `keyDir`: where both keep their roots. */
export async function createGpuBundleFactory(options: { now: Date; keyDir: string }): Promise<GpuBundleFactory> {
  const snp = await createSimulator({ now: options.now, keyDir: options.keyDir });
  const gpu = {
    hopper: createGpuSimulator({ now: options.now, keyDir: options.keyDir }),
    blackwell: createGpuSimulator({ now: options.now, keyDir: options.keyDir, arch: "blackwell" }),
  };
  const policyJson = {
    snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
    trustedRoots: [snp.rootFingerprint],
    gpu: { trustedRoots: [...gpu.hopper.trustedRoots] },
    development: true,
  };
  const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const spki = k.publicKey.export({ format: "der", type: "spki" });
  const sign = (statement: Statement) =>
    signEnvelope(new TextEncoder().encode(JSON.stringify(statement)), INTOTO_PAYLOAD_TYPE, k.privateKey);
  let counter = 0;

  return {
    snp,
    gpu,
    policyJson,
    make(made = {}) {
      const seed = made.seed ?? `gpu-bundle-${counter++}`;
      const sim = gpu[made.arch ?? "hopper"];
      const nonce = Buffer.from(sha256(`nonce-${seed}`), "hex");
      const reportData = Buffer.concat([createHash("sha256").update(spki).digest(), nonce]);
      const report = Buffer.from(snp.signReport({ reportData }));
      const entries: GpuEvidence[] = (made.gpus ?? ["good"]).map((kind) => {
        const forData = kind === "other-nonce" ? Buffer.alloc(64, 3) : reportData;
        const e = sim.bundleEntry(gpuNonceFor(new Uint8Array(forData)));
        return {
          type: "nvidia-spdm",
          arch: sim.arch,
          evidence: b64(e.evidence as Uint8Array),
          certChain: e.certChainPem as string,
          ...(kind === "no-rims" ? {} : { rims: e.rims.map((r) => b64(r)) }),
        };
      });
      const carried = entries.map((e) => sha256(Buffer.from(e.evidence, "base64")));
      const runtime =
        made.runtime === null
          ? undefined
          : typeof made.runtime === "function"
            ? made.runtime(carried)
            : (made.runtime ?? {
                backend: "cpu" as const,
                devices: [],
                driverVersion: carried.length > 0 ? sim.driverVersion : null,
                gpuEvidence:
                  carried.length > 0
                    ? { provider: "sim" as const, environment: "sim" as const, devToolsMode: false, evidence: carried }
                    : null,
              });
      const hash = oneFileModelHash("tuned", sha256(`model-${seed}`));
      const root = hash.rootDigest;
      const manifest = buildEvalStatement({
        model: { name: "tuned", rootDigest: root },
        suite: { name: "suite", digest: sha256(`suite-${seed}`) },
        harness: { name: "provenant", version: "0.1.0", digest: sha256("harness") },
        metrics: [{ name: "accuracy", value: 0.5, sampleSize: 10 }],
        startedOn: new Date(options.now.getTime() - 3_600_000),
        finishedOn: new Date(options.now.getTime() - 1_800_000),
        ...(runtime === undefined ? {} : { runtime }),
      });
      const evidence = snp.evidence("vcek");
      const bundle: ProvenanceBundle = {
        mediaType: BUNDLE_MEDIA_TYPE,
        envelopes: [sign(manifest), sign(buildOmsStatement("tuned", hash))],
        signer: { publicKey: b64(spki) },
        nonce: nonce.toString("hex"),
        evidence: {
          cpu: {
            type: "sev-snp",
            report: b64(report),
            vcek: b64(evidence.vcek),
            ...(evidence.chain === undefined ? {} : { chain: evidence.chain.map((c) => b64(c)) }),
            provider: "sim",
          },
          ...(entries.length === 0 || made.dropAfterSigning === true ? {} : { gpu: entries }),
        },
      };
      return {
        bytes: writeBundle(bundle),
        bundle,
        modelHash: root,
        measurement: new Uint8Array(report.subarray(0x90, 0x90 + 48)),
        carried,
      };
    },
  };
}
