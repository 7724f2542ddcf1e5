// The I/O edge of `provenant measure`: reads the OVMF image (bounded), streams the kernel and the initrd through
// SHA-256 (only their digests enter the measurement), then calls the pure core. Reads are synchronous, 1 MiB at a
// time, on purpose: measuring is one short command, and on a loaded machine every hop through libuv's thread pool
// waits for the scheduler (the async double-buffered loop ran 2× slower than this one, and slower than openssl).
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

import { IoError, MalformedInputError, UsageError } from "../errors.ts";
import { assertMeasuresKernel, computeLaunchDigest, type LaunchMeasurement } from "./launch.ts";
import { OVMF_MAX_BYTES, parseOvmf } from "./ovmf.ts";
import { cmdlineDigest, type KernelHashes } from "./sev-hashes.ts";
import type { VmmType } from "./vmsa.ts";

/** Large enough to amortise the system call, small enough to stay in cache between the read and the hash. */
const CHUNK_BYTES = 1024 * 1024;

function ioError(path: string, what: string, error: unknown): IoError {
  return new IoError("IO_ERROR", `cannot read ${what} ${path}: ${(error as Error).message}`, {
    cause: error,
    details: { path },
  });
}

function openOrFail(path: string, what: string): number {
  try {
    return openSync(path, "r");
  } catch (error) {
    throw ioError(path, what, error);
  }
}

/** SHA-256 of everything `path` yields up to end of file (a regular file, or a device such as /dev/null). */
export function sha256File(path: string, what = "file"): Uint8Array {
  const fd = openOrFail(path, what);
  try {
    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const bytesRead = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest();
  } catch (error) {
    throw ioError(path, what, error);
  } finally {
    closeSync(fd);
  }
}

/** Reads the OVMF image, refusing anything larger than real firmware before reading it. */
export function readOvmf(path: string): Uint8Array {
  const fd = openOrFail(path, "OVMF");
  try {
    let size: number;
    try {
      size = fstatSync(fd).size;
    } catch (error) {
      throw ioError(path, "OVMF", error);
    }
    if (size > OVMF_MAX_BYTES) {
      throw new MalformedInputError(
        "MEASURE_OVMF_MALFORMED",
        `OVMF image ${path} is ${size} bytes, more than ${OVMF_MAX_BYTES}`,
      );
    }
    const bytes = Buffer.allocUnsafe(size);
    let at = 0;
    try {
      while (at < size) {
        const bytesRead = readSync(fd, bytes, at, size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
    } catch (error) {
      throw ioError(path, "OVMF", error);
    }
    return bytes.subarray(0, at);
  } finally {
    closeSync(fd);
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
  const ovmf = parseOvmf(readOvmf(options.ovmf));
  let kernelHashes: KernelHashes | undefined;
  if (options.kernel !== undefined) {
    assertMeasuresKernel(ovmf);
    const kernel = sha256File(options.kernel, "kernel");
    const initrd = options.initrd === undefined ? createHash("sha256").digest() : sha256File(options.initrd, "initrd");
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
