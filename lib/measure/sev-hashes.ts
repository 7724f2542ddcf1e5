// The SEV hashes table that QEMU writes into the guest for measured direct boot (QEMU target/i386/sev.c
// sev_add_kernel_loader_hashes; edk2 OvmfPkg/AmdSev BlobVerifierLibSevHashes checks it): a GUIDed table of the
// SHA-256 of the kernel command line (with its trailing NUL), of the initrd and of the kernel, placed at its
// offset in the SNP_KERNEL_HASHES page, the rest of the page zero.
import { createHash } from "node:crypto";

import { guidToBytes } from "./ovmf.ts";

const TABLE_HEADER_GUID = "9438d606-4f22-4cc9-b479-a793d411fd21";
const CMDLINE_ENTRY_GUID = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";
const INITRD_ENTRY_GUID = "44baf731-3a2f-4bd7-9af1-41e29169781d";
const KERNEL_ENTRY_GUID = "4de79437-abd2-427f-b835-d5b172d2045b";

const ENTRY_LENGTH = 16 + 2 + 32;
/** Header (GUID, u16 length) and three entries: 168 bytes, the length the table states. */
export const SEV_HASHES_TABLE_LENGTH = 16 + 2 + 3 * ENTRY_LENGTH;
/** QEMU pads the table to 16 bytes (struct PaddedSevHashTable). */
export const SEV_HASHES_TABLE_PADDED = (SEV_HASHES_TABLE_LENGTH + 15) & ~15;

export interface KernelHashes {
  /** SHA-256 of the kernel image. */
  kernel: Uint8Array;
  /** SHA-256 of the initrd; of no bytes when there is none (QEMU hashes an empty initrd). */
  initrd: Uint8Array;
  /** SHA-256 of the command line followed by one NUL; of a lone NUL when the command line is empty or absent. */
  cmdline: Uint8Array;
}

/** SHA-256 of the command line as QEMU passes it to the guest: its UTF-8 bytes and a terminating NUL. */
export function cmdlineDigest(cmdline: string | undefined): Uint8Array {
  return createHash("sha256")
    .update(Buffer.from(cmdline ?? "", "utf8"))
    .update(Buffer.of(0))
    .digest();
}

/** The padded table: header, then the command line, initrd and kernel entries, in QEMU's order. */
export function buildSevHashesTable(hashes: KernelHashes): Uint8Array {
  const table = new Uint8Array(SEV_HASHES_TABLE_PADDED);
  const view = new DataView(table.buffer);
  table.set(guidToBytes(TABLE_HEADER_GUID), 0);
  view.setUint16(16, SEV_HASHES_TABLE_LENGTH, true);
  const entries: [string, Uint8Array][] = [
    [CMDLINE_ENTRY_GUID, hashes.cmdline],
    [INITRD_ENTRY_GUID, hashes.initrd],
    [KERNEL_ENTRY_GUID, hashes.kernel],
  ];
  entries.forEach(([guid, digest], i) => {
    const at = 18 + i * ENTRY_LENGTH;
    if (digest.length !== 32) throw new RangeError("kernel hashes are SHA-256 digests (32 bytes)");
    table.set(guidToBytes(guid), at);
    view.setUint16(at + 16, ENTRY_LENGTH, true);
    table.set(digest, at + 18);
  });
  return table;
}

/** The 4 KiB page holding the table at `offset` (the table GPA's offset in its page); undefined if it does not fit. */
export function buildSevHashesPage(hashes: KernelHashes, offset: number): Uint8Array | undefined {
  if (!Number.isInteger(offset) || offset < 0 || offset + SEV_HASHES_TABLE_PADDED > 4096) return undefined;
  const page = new Uint8Array(4096);
  page.set(buildSevHashesTable(hashes), offset);
  return page;
}
