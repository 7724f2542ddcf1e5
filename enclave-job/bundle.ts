// Assembling the provenance bundle (DESIGN §3.3): every statement signed with K as a DSSE envelope, the manifest
// (fine-tune SLSA provenance or eval statement) plus one OMS statement per model it names, K's public key, the
// nonce and the CPU evidence. Written through a temporary file and a rename: never half a bundle on disk.
import type { KeyObject } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

import { BUNDLE_MEDIA_TYPE, manifestDigestOf, writeBundle, type ProvenanceBundle } from "../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope, type DsseEnvelope } from "../lib/dsse/index.ts";
import type { Statement } from "../lib/intoto/index.ts";
import type { Evidence } from "./attest/providers.ts";

export function signStatement(statement: Statement, privateKey: KeyObject): DsseEnvelope {
  const payload = new TextEncoder().encode(JSON.stringify(statement));
  return signEnvelope(payload, INTOTO_PAYLOAD_TYPE, privateKey);
}

export interface AssembleInput {
  manifest: Statement;
  models: Statement[];
  privateKey: KeyObject;
  spki: Uint8Array;
  nonce: Uint8Array;
  evidence: Evidence;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

export function assembleBundle(input: AssembleInput): {
  bundle: ProvenanceBundle;
  bytes: Uint8Array;
  manifestDigest: string;
} {
  const manifestEnvelope = signStatement(input.manifest, input.privateKey);
  const bundle: ProvenanceBundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes: [manifestEnvelope, ...input.models.map((statement) => signStatement(statement, input.privateKey))],
    signer: { publicKey: b64(input.spki) },
    nonce: Buffer.from(input.nonce).toString("hex"),
    evidence: {
      cpu: {
        type: "sev-snp",
        report: b64(input.evidence.report),
        vcek: b64(input.evidence.vcek),
        ...(input.evidence.chain === undefined ? {} : { chain: input.evidence.chain.map(b64) }),
        provider: input.evidence.provider,
      },
    },
  };
  return { bundle, bytes: writeBundle(bundle), manifestDigest: manifestDigestOf(manifestEnvelope) };
}

/** `bundles/<yyyy-mm-dd>-<first 16 hex of the manifest digest>.provenance.json` (DESIGN §8, issue 4/7). */
export function bundleFileName(manifestDigest: string, date: Date): string {
  return `${date.toISOString().slice(0, 10)}-${manifestDigest.slice(0, 16)}.provenance.json`;
}

export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
