// The job-code digest (DESIGN §11, docs/measured-launch.md): the OMS v1.0 root digest (method "files") of the
// installed provenant package, node_modules included, ignoring nothing that runs. The measured image names it on the
// kernel command line (`provenant.job=sha256:<hex>`), its init refuses to start a job whose files differ, and the job
// computes it at start and writes it into every statement, so a verifier can pin it (`jobCodeDigests`).
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { DEFAULT_IGNORE_PATHS, hashModel } from "../lib/oms/index.ts";

/**
 * Paths left out, relative to the package root, and why: OMS's own defaults (`.git`, `.gitattributes`, `.github`,
 * `.gitignore`: version-control metadata, never loaded) and `.provenant` (state the demo and verifier write while
 * they run: databases, watched repositories; no code is loaded from it). Nothing else: node_modules, bin/, tests,
 * docs and build outputs all count, because any file in the package could be loaded by the code that runs.
 */
export const JOB_CODE_IGNORE_PATHS: readonly string[] = [...DEFAULT_IGNORE_PATHS, ".provenant"];

/** The installed provenant package: the directory that holds its package.json (this module is in enclave-job/). */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));

export interface JobCodeDigest {
  /** Hex SHA-256 over the files' raw digests in OMS path order: the OMS root digest. */
  rootDigest: string;
  /** The form the kernel command line carries: `sha256:<rootDigest>`. */
  digest: string;
  /** The package root that was hashed (absolute). */
  root: string;
  files: number;
  bytes: number;
}

/**
 * The job-code digest of the package at `root` (default: this installed package): lib/oms hashModel, method "files",
 * symbolic links inside the package followed, JOB_CODE_IGNORE_PATHS left out, so that it is by construction the OMS
 * root digest anyone recomputes with model_signing. Throws IO_ERROR when the tree cannot be read, OMS_SYMLINK for a
 * link that leaves the package, OMS_MALFORMED when nothing is left to hash.
 */
export async function jobCodeDigest(root: string = PACKAGE_ROOT): Promise<JobCodeDigest> {
  const hash = await hashModel(root, { method: "files", allowSymlinks: true, ignorePaths: [".provenant"] });
  return {
    rootDigest: hash.rootDigest,
    digest: `sha256:${hash.rootDigest}`,
    root: resolve(root),
    files: hash.files.length,
    bytes: hash.totalBytes,
  };
}

/** The `provenant.job=sha256:<hex>` value in a kernel command line, or undefined when it names none. */
export function jobDigestFromCmdline(cmdline: string): string | undefined {
  const values = cmdline
    .trim()
    .split(/\s+/)
    .filter((arg) => arg.startsWith("provenant.job="))
    .map((arg) => arg.slice("provenant.job=".length));
  if (values.length !== 1) return undefined;
  return /^sha256:[0-9a-f]{64}$/.test(values[0]!) ? values[0] : undefined;
}
