// Assembling the provenance bundle (DESIGN §3.3): every statement signed with K as a DSSE envelope, the manifest
// (fine-tune SLSA provenance or eval statement) plus one OMS statement per model it names, K's public key, the
// nonce, the CPU evidence and each GPU's. Written through a temporary file, fsync and a rename: never half a bundle on disk, and
// never an attested run lost: when the final write fails, the bytes go to a fallback file in the temp directory.
import type { KeyObject } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, open, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

import { IoError } from "../lib/errors.ts";

import {
  BUNDLE_MEDIA_TYPE,
  GPU_EVIDENCE_TYPE,
  manifestDigestOf,
  writeBundle,
  type ProvenanceBundle,
} from "../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope, type DsseEnvelope } from "../lib/dsse/index.ts";
import type { Statement } from "../lib/intoto/index.ts";
import type { GpuEvidenceEntry } from "./attest/gpu.ts";
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
  /** One entry per GPU, collected for gpuNonceFor(REPORT_DATA) (`evidence.gpu`). */
  gpu?: readonly GpuEvidenceEntry[];
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
      ...(input.gpu === undefined || input.gpu.length === 0
        ? {}
        : {
            gpu: input.gpu.map((g) => ({
              type: GPU_EVIDENCE_TYPE,
              arch: g.arch,
              evidence: b64(g.evidence),
              certChain: g.certChainPem,
              ...(g.rims.length === 0 ? {} : { rims: g.rims.map((xml) => b64(new TextEncoder().encode(xml))) }),
              ...(g.ocsp === undefined || g.ocsp.length === 0 ? {} : { ocsp: g.ocsp.map(b64) }),
            })),
          }),
    },
  };
  return { bundle, bytes: writeBundle(bundle), manifestDigest: manifestDigestOf(manifestEnvelope) };
}

/** `bundles/<yyyy-mm-dd>-<first 16 hex of the manifest digest>.provenance.json` (DESIGN §8, issue 4/7). */
export function bundleFileName(manifestDigest: string, date: Date): string {
  return `${date.toISOString().slice(0, 10)}-${manifestDigest.slice(0, 16)}.provenance.json`;
}

/**
 * Writes `bytes` to `path` durably: a temporary file beside it, written, fsynced and closed, renamed over `path`, then
 * the directory fsynced so the rename itself survives a crash. A reader never sees half a file.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    const handle = await open(temp, "w", 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dir);
}

async function fsyncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
  } catch {
    return; // Some platforms cannot open a directory; the rename is still atomic there.
  }
  try {
    await handle.sync();
  } catch (error) {
    // EINVAL/EISDIR: a file system that does not fsync directories; anything else is a real failure.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw error;
  } finally {
    await handle.close();
  }
}

/** Where the bundle goes: a fixed file, or a directory that gets the default name once the manifest is known. */
export type BundleTarget = { kind: "file"; path: string } | { kind: "dir"; dir: string };

export function bundleTargetPath(target: BundleTarget, name: string): string {
  return target.kind === "file" ? target.path : join(target.dir, name);
}

/**
 * Resolves and checks `--out` before any attested work: absent, `<cwd>/bundles/`; an existing directory (or a path
 * ending in a separator), that directory; anything else, that file. The directory is created and must be writable,
 * else IoError IO_ERROR, so a job never runs only to fail at the end.
 */
export async function prepareBundleTarget(out: string | undefined, cwd: string): Promise<BundleTarget> {
  const raw = out ?? "bundles/";
  const resolved = resolve(cwd, raw);
  const info = await stat(resolved).catch(() => undefined);
  const target: BundleTarget =
    info?.isDirectory() === true || /[/\\]$/.test(raw)
      ? { kind: "dir", dir: resolved }
      : { kind: "file", path: resolved };
  const dir = target.kind === "dir" ? target.dir : dirname(target.path);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    const dirInfo = await stat(dir);
    if (!dirInfo.isDirectory()) throw new Error(`${dir} is not a directory`);
  } catch (error) {
    throw new IoError(
      "IO_ERROR",
      `--out ${raw}: cannot write a bundle into ${dir} (${error instanceof Error ? error.message : String(error)})`,
      { cause: error, details: { out: resolved, dir } },
    );
  }
  return target;
}

/**
 * Writes an attested bundle to `path`; when that fails, the bytes go to a fallback file in os.tmpdir() and the
 * IoError (IO_ERROR) names it (message and `details.fallbackPath`), so the run's evidence is never lost.
 */
export async function writeBundleFile(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, bytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    let fallbackPath: string;
    try {
      const dir = await mkdtemp(join(tmpdir(), "provenant-bundle-"));
      fallbackPath = join(dir, basename(path));
      await writeFileAtomic(fallbackPath, bytes);
    } catch (fallbackError) {
      throw new IoError(
        "IO_ERROR",
        `cannot write the bundle to ${path} (${reason}), nor a fallback copy in ${tmpdir()} ` +
          `(${fallbackError instanceof Error ? fallbackError.message : String(fallbackError)})`,
        { cause: error, details: { bundlePath: path } },
      );
    }
    throw new IoError(
      "IO_ERROR",
      `cannot write the bundle to ${path} (${reason}); the attested bundle was saved to ${fallbackPath}`,
      { cause: error, details: { bundlePath: path, fallbackPath } },
    );
  }
}
