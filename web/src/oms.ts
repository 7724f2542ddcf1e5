// OMS v1.0 "files" root digest computed in the browser (DESIGN §3.1), the same algorithm as lib/oms hashModel:
// SHA-256 of every file, resources sorted path component by path component (code points), root = SHA-256 over the
// concatenated raw digests. Files are read in slices (File.slice), so a multi-GB model never sits in memory.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** Paths model_signing ignores by default, relative to the model root. */
export const DEFAULT_IGNORE_PATHS = [".git", ".gitattributes", ".github", ".gitignore"];
const CHUNK_BYTES = 8 * 1024 * 1024;

export interface ModelFile {
  /** POSIX path relative to the model root ("." for a single-file model). */
  name: string;
  blob: Blob;
}

export interface BrowserModelHash {
  rootDigest: string;
  files: { name: string; digest: string; size: number }[];
}

function compareCodePoints(a: string, b: string): number {
  const ca = Array.from(a, (c) => c.codePointAt(0)!);
  const cb = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) if (ca[i] !== cb[i]) return ca[i]! - cb[i]!;
  return ca.length - cb.length;
}

export function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareCodePoints(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

export function isIgnored(name: string): boolean {
  return DEFAULT_IGNORE_PATHS.some((p) => name === p || name.startsWith(`${p}/`));
}

/** SHA-256 of a Blob, read slice by slice. */
export async function hashBlob(blob: Blob, onBytes: (n: number) => void): Promise<Uint8Array> {
  const h = sha256.create();
  for (let offset = 0; offset < blob.size; offset += CHUNK_BYTES) {
    const chunk = new Uint8Array(await blob.slice(offset, offset + CHUNK_BYTES).arrayBuffer());
    h.update(chunk);
    onBytes(chunk.length);
  }
  return h.digest();
}

/**
 * Names dropped files relative to the model root. One file is a single-file model; files from a folder carry
 * `webkitRelativePath` ("folder/a/b.bin"), whose first component is the model directory itself.
 */
export function toModelFiles(files: readonly { file: Blob & { name: string }; relativePath?: string }[]): ModelFile[] {
  if (files.length === 1 && !(files[0]!.relativePath ?? "").includes("/")) return [{ name: ".", blob: files[0]!.file }];
  return files
    .map(({ file, relativePath }) => {
      const rel = relativePath !== undefined && relativePath !== "" ? relativePath : file.name;
      const parts = rel.split("/").filter((p) => p !== "");
      return { name: (parts.length > 1 ? parts.slice(1) : parts).join("/"), blob: file };
    })
    .filter((f) => !isIgnored(f.name));
}

export async function hashModelFiles(
  files: readonly ModelFile[],
  onProgress?: (done: number, total: number) => void,
): Promise<BrowserModelHash> {
  const sorted = [...files].sort((a, b) => comparePaths(a.name, b.name));
  const total = sorted.reduce((sum, f) => sum + f.blob.size, 0);
  let done = 0;
  onProgress?.(0, total);
  const root = sha256.create();
  const out: BrowserModelHash["files"] = [];
  for (const f of sorted) {
    const digest = await hashBlob(f.blob, (n) => {
      done += n;
      onProgress?.(done, total);
    });
    root.update(digest);
    out.push({ name: f.name, digest: bytesToHex(digest), size: f.blob.size });
  }
  return { rootDigest: bytesToHex(root.digest()), files: out };
}
