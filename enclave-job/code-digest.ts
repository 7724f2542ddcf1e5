// The job-code digest (DESIGN §11, docs/measured-launch.md): the OMS v1.0 root digest (method "files") of the
// installed provenant package, node_modules included, ignoring nothing that runs. The measured image names it on the
// kernel command line (`provenant.job=sha256:<hex>`), its init refuses to start a job whose files differ, and the job
// computes it at start and writes it into every statement, so a verifier can pin it (`jobCodeDigests`).
import { createHash } from "node:crypto";
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { IoError, MalformedInputError } from "../lib/errors.ts";
import { comparePaths } from "../lib/oms/index.ts";

/**
 * Paths left out, relative to the package root, and why: OMS's own defaults (`.git`, `.gitattributes`, `.github`,
 * `.gitignore`: version-control metadata, never loaded) and `.provenant` (state the demo and verifier write while
 * they run: databases, watched repositories; no code is loaded from it). Nothing else: node_modules, bin/, tests,
 * docs and build outputs all count, because any file in the package could be loaded by the code that runs.
 */
export const JOB_CODE_IGNORE_PATHS: readonly string[] = [
  ".git",
  ".gitattributes",
  ".github",
  ".gitignore",
  ".provenant",
];

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

interface Found {
  name: string;
  path: string;
}

// Not lib/oms hashModel, though the digest is the same (code-digest.test.ts compares them): hashModel's worker pool
// suits a few large weight files and took four times as long over this package's ~26,000 small files.
const CHUNK_BYTES = 1024 * 1024;
/** Yield to the event loop this often, so that a job hashing its code keeps serving its other work. */
const SLICE_MS = 20;
/** A tree that changes while it is hashed is hashed again, at most this many times in all. */
const ATTEMPTS = 3;

class TreeChanged extends Error {}

function isIgnored(name: string): boolean {
  return JOB_CODE_IGNORE_PATHS.some((p) => name === p || name.startsWith(`${p}/`));
}

/** Lists regular files; follows symbolic links that stay inside the root (node_modules/.bin), refuses the others. */
function listFiles(root: string): Found[] {
  const realRoot = realpathSync(root);
  const files: Found[] = [];
  const visited = new Set<string>([realRoot]);
  const walk = (dir: string, prefix: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const name = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      if (isIgnored(name)) continue;
      const path = join(dir, entry.name);
      let info = lstatSync(path);
      if (info.isSymbolicLink()) {
        const target = realpathSync(path);
        if (target !== realRoot && !target.startsWith(realRoot + sep)) {
          throw new MalformedInputError("OMS_SYMLINK", `${path} points outside the package (${target})`, {
            details: { path, target },
          });
        }
        info = statSync(path);
        if (info.isDirectory()) {
          if (visited.has(target)) continue;
          visited.add(target);
        }
      }
      if (info.isDirectory()) walk(path, name);
      else if (info.isFile()) files.push({ name, path });
      else throw new IoError("IO_ERROR", `${path} is neither a regular file nor a directory`, { details: { path } });
    }
  };
  walk(root, "");
  return files.sort((a, b) => comparePaths(a.name, b.name));
}

function hashFile(path: string, buffer: Buffer): { digest: Buffer; size: number } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new TreeChanged(path);
    throw error;
  }
  try {
    const expected = fstatSync(fd).size;
    const hash = createHash("sha256");
    let size = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      size += n;
    }
    if (size !== expected) throw new TreeChanged(path);
    return { digest: hash.digest(), size };
  } finally {
    closeSync(fd);
  }
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function digestOnce(root: string): Promise<JobCodeDigest> {
  const files = listFiles(root);
  if (files.length === 0) {
    throw new MalformedInputError("OMS_MALFORMED", `${root} holds no files to hash`, { details: { root } });
  }
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  const rootHash = createHash("sha256");
  let bytes = 0;
  let sliceStart = performance.now();
  for (const file of files) {
    const { digest, size } = hashFile(file.path, buffer);
    rootHash.update(digest);
    bytes += size;
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  const rootDigest = rootHash.digest("hex");
  return { rootDigest, digest: `sha256:${rootDigest}`, root, files: files.length, bytes };
}

/**
 * The job-code digest of the package at `root` (default: this installed package). Throws IO_ERROR when the tree
 * cannot be read or keeps changing while it is hashed, OMS_SYMLINK for a link that leaves the package.
 */
export async function jobCodeDigest(root: string = PACKAGE_ROOT): Promise<JobCodeDigest> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await digestOnce(root);
    } catch (error) {
      if (error instanceof TreeChanged && attempt < ATTEMPTS) continue;
      if (error instanceof IoError || error instanceof MalformedInputError) throw error;
      throw new IoError("IO_ERROR", `cannot hash the job code under ${root}: ${(error as Error).message}`, {
        cause: error,
        details: { root },
      });
    }
  }
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
