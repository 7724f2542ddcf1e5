// Reads what the SEV-SNP launch digest needs from an OVMF image: the GUIDed footer table at the end of the image
// (edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm), the SEV-ES reset block (the APs' reset EIP), the SEV hashes
// table address and the SEV metadata ("ASEV", OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm). The image is untrusted:
// every offset, length and count is checked against the image before it is followed.
import { MalformedInputError } from "../errors.ts";

export const PAGE_SIZE = 4096;
/** OVMF is mapped so that it ends at 4 GiB (QEMU hw/i386/pc_sysfw.c); larger images cannot be real firmware. */
export const OVMF_MAX_BYTES = 128 * 1024 * 1024;
/** Bound on the pages all metadata sections may ask to measure (real images ask for a few dozen). */
export const METADATA_MAX_PAGES = 65536;

/** The footer table's own entry, 32 bytes before the end of the image (the last 32 bytes hold the reset vector). */
export const OVMF_TABLE_FOOTER_GUID = "96b582de-1fb2-45f7-baea-a366c55a082d";
/** Entry whose first 4 bytes give the GPA of the SEV hashes table (edk2 OvmfPkg/AmdSev, QEMU sev.c). */
export const SEV_HASH_TABLE_RV_GUID = "7255371f-3a3b-4b04-927b-1da6efa8d454";
/** Entry whose first 4 bytes give the reset EIP of the application processors (SEV-ES reset block). */
export const SEV_ES_RESET_BLOCK_GUID = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
/** Entry whose first 4 bytes give the offset, from the end of the image, of the SEV metadata header. */
export const OVMF_SEV_METADATA_GUID = "dc886566-984a-4798-a75e-5585a7bf67cc";

/** Section types of the SEV metadata (OvmfSevMetadata.asm; SVSM_CAA from the Coconut-SVSM edk2 patches). */
export const SECTION_TYPES = {
  SNP_SEC_MEMORY: 1,
  SNP_SECRETS: 2,
  CPUID: 3,
  SVSM_CAA: 4,
  SNP_KERNEL_HASHES: 0x10,
} as const;
export type SectionType = keyof typeof SECTION_TYPES;

export interface OvmfSection {
  type: SectionType;
  gpa: number;
  size: number;
}

export interface OvmfImage {
  /** The whole image; its pages are measured at `gpa`. */
  bytes: Uint8Array;
  /** Where the image is mapped: 4 GiB minus its size. */
  gpa: number;
  /** Footer table entries by GUID (lower-case string form). */
  table: ReadonlyMap<string, Uint8Array>;
  /** SEV metadata sections, in the order the image lists them (the order they are measured). */
  sections: readonly OvmfSection[];
}

function malformed(message: string, details?: Record<string, unknown>): never {
  throw new MalformedInputError("MEASURE_OVMF_MALFORMED", message, details === undefined ? {} : { details });
}

/** A GUID in its string form → the 16 bytes as EFI stores them (first three fields little-endian). */
export function guidToBytes(guid: string): Uint8Array {
  const hex = guid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a GUID: ${guid}`);
  const b = Buffer.from(hex, "hex");
  return Uint8Array.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

/** The 16 bytes of an EFI GUID → its string form. */
export function bytesToGuid(bytes: Uint8Array): string {
  const b = bytes;
  const h = (i: number) => b[i]!.toString(16).padStart(2, "0");
  const s = (...idx: number[]) => idx.map(h).join("");
  return `${s(3, 2, 1, 0)}-${s(5, 4)}-${s(7, 6)}-${s(8, 9)}-${s(10, 11, 12, 13, 14, 15)}`;
}

const u16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/**
 * The footer table: a u16 total length and the table GUID end 32 bytes before the end of the image; before them,
 * entries laid out as (data, u16 length, GUID), walked from the last one backwards. An image without the footer
 * GUID has no table (sev-snp-measure treats it so; the reset block is then missing and measuring fails).
 */
function parseFooterTable(bytes: Uint8Array): Map<string, Uint8Array> {
  const table = new Map<string, Uint8Array>();
  const headerSize = 2 + 16;
  const footerAt = bytes.length - 32 - headerSize;
  if (footerAt < 0) return table;
  if (bytesToGuid(bytes.subarray(footerAt + 2, footerAt + headerSize)) !== OVMF_TABLE_FOOTER_GUID) return table;
  const tableSize = u16(bytes, footerAt) - headerSize;
  if (tableSize < 0) return table;
  if (tableSize > footerAt) malformed(`OVMF footer table claims ${tableSize} bytes, more than the image holds`);
  let end = footerAt;
  const start = footerAt - tableSize;
  // Each step consumes at least 18 bytes, so the walk is bounded by the table's size.
  while (end - start >= headerSize) {
    const entrySize = u16(bytes, end - headerSize);
    if (entrySize < headerSize || entrySize > end - start) {
      malformed(`OVMF footer table entry at offset ${end - headerSize} has an invalid length ${entrySize}`, {
        offset: end - headerSize,
        length: entrySize,
      });
    }
    const guid = bytesToGuid(bytes.subarray(end - 16, end));
    // Walking backwards, a repeated GUID nearer the start wins, as in sev-snp-measure's dict.
    table.set(guid, bytes.subarray(end - entrySize, end - headerSize));
    end -= entrySize;
  }
  return table;
}

const TYPE_BY_VALUE = new Map<number, SectionType>(
  Object.entries(SECTION_TYPES).map(([name, value]) => [value, name as SectionType]),
);

/** The SEV metadata: "ASEV", u32 size, u32 version (1), u32 count, then count × {u32 gpa, u32 size, u32 type}. */
function parseSevMetadata(bytes: Uint8Array, table: ReadonlyMap<string, Uint8Array>): OvmfSection[] {
  const entry = table.get(OVMF_SEV_METADATA_GUID);
  if (entry === undefined) return [];
  if (entry.length < 4) malformed("OVMF SEV metadata entry is shorter than 4 bytes");
  const offsetFromEnd = u32(entry, 0);
  const start = bytes.length - offsetFromEnd;
  if (offsetFromEnd > bytes.length || start + 16 > bytes.length) {
    malformed(`OVMF SEV metadata offset ${offsetFromEnd} points outside the image`, { offset: offsetFromEnd });
  }
  if (Buffer.from(bytes.subarray(start, start + 4)).toString("latin1") !== "ASEV") {
    malformed("OVMF SEV metadata does not start with the ASEV signature", { offset: start });
  }
  const size = u32(bytes, start + 4);
  const version = u32(bytes, start + 8);
  const count = u32(bytes, start + 12);
  if (version !== 1) malformed(`OVMF SEV metadata version ${version}, expected 1`, { version });
  if (size < 16 || start + size > bytes.length) malformed(`OVMF SEV metadata size ${size} does not fit the image`);
  if (count > Math.floor((size - 16) / 12)) malformed(`OVMF SEV metadata lists ${count} sections in ${size} bytes`);
  const sections: OvmfSection[] = [];
  let pages = 0;
  for (let i = 0; i < count; i++) {
    const at = start + 16 + i * 12;
    const gpa = u32(bytes, at);
    const sectionSize = u32(bytes, at + 4);
    const typeValue = u32(bytes, at + 8);
    const type = TYPE_BY_VALUE.get(typeValue);
    if (type === undefined) malformed(`OVMF SEV metadata section ${i} has unknown type ${typeValue}`, { index: i });
    // Zero, unmeasured and hashes sections are measured page by page; secrets and CPUID are one page whatever
    // their size says (sev-snp-measure; QEMU sev.c snp_launch_update_data).
    const paged = type === "SNP_SEC_MEMORY" || type === "SVSM_CAA" || type === "SNP_KERNEL_HASHES";
    if (paged && sectionSize % PAGE_SIZE !== 0) {
      malformed(`OVMF SEV metadata section ${i} (${type}) is ${sectionSize} bytes, not whole pages`, { index: i });
    }
    pages += paged ? sectionSize / PAGE_SIZE : 1;
    if (pages > METADATA_MAX_PAGES) malformed(`OVMF SEV metadata asks for more than ${METADATA_MAX_PAGES} pages`);
    sections.push({ type, gpa, size: sectionSize });
  }
  return sections;
}

/** Parses an OVMF image: sizes, the footer table and the SEV metadata. Throws MEASURE_OVMF_MALFORMED. */
export function parseOvmf(bytes: Uint8Array): OvmfImage {
  if (bytes.length === 0 || bytes.length % PAGE_SIZE !== 0) {
    malformed(`OVMF image is ${bytes.length} bytes, not a whole number of 4 KiB pages`, { size: bytes.length });
  }
  if (bytes.length > OVMF_MAX_BYTES) malformed(`OVMF image is larger than ${OVMF_MAX_BYTES} bytes`);
  const table = parseFooterTable(bytes);
  const sections = parseSevMetadata(bytes, table);
  return { bytes, gpa: 0x1_0000_0000 - bytes.length, table, sections };
}

/** The first u32 of a footer table entry, or undefined when the entry is absent. */
export function tableU32(image: OvmfImage, guid: string): number | undefined {
  const entry = image.table.get(guid);
  if (entry === undefined) return undefined;
  if (entry.length < 4) malformed(`OVMF footer table entry ${guid} is shorter than 4 bytes`, { guid });
  return u32(entry, 0);
}

/** Whether the image measures a kernel, initrd and command line (edk2 OvmfPkg/AmdSev builds do). */
export function hasKernelHashes(image: OvmfImage): boolean {
  return image.sections.some((s) => s.type === "SNP_KERNEL_HASHES");
}
