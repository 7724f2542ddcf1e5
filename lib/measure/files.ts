// The I/O edge of `provenant measure`: reads the OVMF image (bounded), streams the kernel and the initrd through
// SHA-256 with large double-buffered reads (only their digests enter the measurement), then calls the pure core.
import { createHash } from "node:crypto";
import { open, stat } from "node:fs/promises";

import { IoError, MalformedInputError, UsageError } from "../errors.ts";
import { assertMeasuresKernel, computeLaunchDigest, type LaunchMeasurement } from "./launch.ts";
import { OVMF_MAX_BYTES, parseOvmf } from "./ovmf.ts";
import { cmdlineDigest, type KernelHashes } from "./sev-hashes.ts";
import type { VmmType } from "./vmsa.ts";

const CHUNK_BYTES = 4 * 1024 * 1024;

function ioError(path: string, what: string, error: unknown): IoError {
  return new IoError("IO_ERROR", `cannot read ${what} ${path}: ${(error as Error).message}`, {
    cause: error,
    details: { path },
  });
}

/**
 * SHA-256 of everything `path` yields up to end of file (a regular file, or a device such as /dev/null). The next
 * 4 MiB read runs on libuv's pool while this thread hashes the previous one.
 */
export async function sha256Stream(path: string, what = "file"): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw ioError(path, what, error);
  }
  try {
    const hash = createHash("sha256");
    const buffers = [Buffer.allocUnsafe(CHUNK_BYTES), Buffer.allocUnsafe(CHUNK_BYTES)];
    let which = 0;
    let pending = handle.read(buffers[0]!, 0, CHUNK_BYTES, null);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = buffers[which]!;
      which ^= 1;
      pending = handle.read(buffers[which]!, 0, CHUNK_BYTES, null);
      hash.update(current.subarray(0, bytesRead));
    }
    return hash.digest();
  } catch (error) {
    throw ioError(path, what, error);
  } finally {
    await handle.close();
  }
}

/** Reads the OVMF image, refusing anything larger than real firmware before reading it. */
export async function readOvmf(path: string): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw ioError(path, "OVMF", error);
  }
  if (size > OVMF_MAX_BYTES) {
    throw new MalformedInputError(
      "MEASURE_OVMF_MALFORMED",
      `OVMF image ${path} is ${size} bytes, more than ${OVMF_MAX_BYTES}`,
    );
  }
  let handle;
  try {
    handle = await open(path, "r");
    const bytes = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(bytes, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return bytes.subarray(0, at);
  } catch (error) {
    throw ioError(path, "OVMF", error);
  } finally {
    await handle?.close();
  }
}

export interface MeasureFilesOptions {
  ovmf: string;
  kernel?: string;
  /** Needs `kernel`. Absent: the hashes table holds the SHA-256 of no bytes, as QEMU writes it. */
  initrd?: string;
  /** The kernel command line; needs `kernel`. Absent or empty: the SHA-256 of a lone NUL. */
  append?: string;
  vcpus: number;
  vcpuSig: number;
  vmm: VmmType;
  guestFeatures: bigint;
  /** 96 hex: start the chain from this OVMF digest instead of hashing the image (which is still parsed). */
  snpOvmfHash?: string;
}

export interface FilesMeasurement extends LaunchMeasurement {
  /** The digests that went into the SEV hashes table, when a kernel was given. */
  kernelHashes?: KernelHashes;
}

/** Parses a 48-byte digest given as 96 hex digits. */
export function parseOvmfHash(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{96}$/.test(hex)) {
    throw new UsageError(`a precomputed OVMF hash is 96 hex digits (48 bytes), got ${JSON.stringify(hex)}`);
  }
  return Buffer.from(hex, "hex");
}

/** Measures a guest from its files: the launch digest and the OVMF digest. */
export async function measureLaunchFiles(options: MeasureFilesOptions): Promise<FilesMeasurement> {
  if (options.kernel === undefined && (options.initrd !== undefined || options.append !== undefined)) {
    throw new UsageError("an initrd or a command line needs a kernel (--kernel)");
  }
  const ovmfHash = options.snpOvmfHash === undefined ? undefined : parseOvmfHash(options.snpOvmfHash);
  const ovmf = parseOvmf(await readOvmf(options.ovmf));
  let kernelHashes: KernelHashes | undefined;
  if (options.kernel !== undefined) {
    assertMeasuresKernel(ovmf);
    const [kernel, initrd] = await Promise.all([
      sha256Stream(options.kernel, "kernel"),
      options.initrd === undefined ? createHash("sha256").digest() : sha256Stream(options.initrd, "initrd"),
    ]);
    kernelHashes = { kernel, initrd, cmdline: cmdlineDigest(options.append) };
  }
  const result = computeLaunchDigest({
    ovmf,
    vcpus: options.vcpus,
    vcpuSig: options.vcpuSig,
    vmm: options.vmm,
    guestFeatures: options.guestFeatures,
    ...(ovmfHash === undefined ? {} : { ovmfHash }),
    ...(kernelHashes === undefined ? {} : { kernelHashes }),
  });
  return kernelHashes === undefined ? result : { ...result, kernelHashes };
}
