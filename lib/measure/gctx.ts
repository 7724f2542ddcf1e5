// The SNP launch digest as the PSP firmware extends it on every SNP_LAUNCH_UPDATE (AMD SEV-SNP ABI 56860 §8.17,
// Table 67 "PAGE_INFO"): DIGEST_CUR := SHA-384(PAGE_INFO), where PAGE_INFO holds the previous digest, the page's
// contents digest, its type, its VMPL permissions and its GPA. A pure accumulator: callers feed pages in launch order.
import { hash } from "node:crypto";

export const LD_BYTES = 48;
/** The GPA the firmware records for VMSA pages: (u64)-1, page-aligned, bits above 51 cleared (ABI 56860 §8.17). */
export const VMSA_GPA = 0xffff_ffff_f000n;

/** PAGE_TYPE values of SNP_LAUNCH_UPDATE (ABI 56860 Table 68). */
export const PAGE_TYPES = { NORMAL: 1, VMSA: 2, ZERO: 3, UNMEASURED: 4, SECRETS: 5, CPUID: 6 } as const;

const PAGE_INFO_LENGTH = 0x70;
const ZEROS = new Uint8Array(LD_BYTES);

function sha384(data: Uint8Array): Uint8Array {
  return hash("sha384", data, "buffer");
}

/** The launch digest chain. `seed` starts it from a digest computed earlier (e.g. the OVMF pages alone). */
export class LaunchDigest {
  #ld: Uint8Array;
  readonly #info = new Uint8Array(PAGE_INFO_LENGTH);
  readonly #view = new DataView(this.#info.buffer);

  constructor(seed?: Uint8Array) {
    if (seed !== undefined && seed.length !== LD_BYTES) throw new RangeError(`a launch digest is ${LD_BYTES} bytes`);
    this.#ld = seed === undefined ? ZEROS : Uint8Array.from(seed);
  }

  /** The digest so far (a copy). */
  digest(): Uint8Array {
    return Uint8Array.from(this.#ld);
  }

  /**
   * One PAGE_INFO: DIGEST_CUR (48) ‖ CONTENTS (48) ‖ LENGTH u16 = 0x70 ‖ PAGE_TYPE u8 ‖ IMI_PAGE u8 = 0 ‖
   * VMPL3/2/1_PERMS u8 = 0 ‖ reserved u8 ‖ GPA u64, all little-endian (ABI 56860 Table 67).
   */
  update(pageType: number, gpa: number | bigint, contents: Uint8Array): void {
    this.#info.set(this.#ld, 0);
    this.#info.set(contents, LD_BYTES);
    this.#view.setUint16(96, PAGE_INFO_LENGTH, true);
    this.#view.setUint8(98, pageType);
    this.#view.setUint32(99, 0, true); // IMI_PAGE, VMPL3, VMPL2, VMPL1 permissions
    this.#view.setUint8(103, 0);
    if (typeof gpa === "bigint") this.#view.setBigUint64(104, gpa, true);
    else {
      // GPAs of firmware pages fit 2^53; two u32 writes spare a BigInt per page on the hot path.
      this.#view.setUint32(104, gpa >>> 0, true);
      this.#view.setUint32(108, Math.floor(gpa / 0x1_0000_0000), true);
    }
    this.#ld = sha384(this.#info);
  }

  /** NORMAL pages: each 4 KiB page's SHA-384 is its CONTENTS. `data` is a whole number of pages. */
  normalPages(gpa: number, data: Uint8Array): void {
    for (let offset = 0; offset < data.length; offset += 4096) {
      this.update(PAGE_TYPES.NORMAL, gpa + offset, sha384(data.subarray(offset, offset + 4096)));
    }
  }

  /** Pages whose CONTENTS field is zero: ZERO, UNMEASURED, SECRETS and CPUID pages. */
  emptyPages(pageType: number, gpa: number, length: number): void {
    for (let offset = 0; offset < length; offset += 4096) this.update(pageType, gpa + offset, ZEROS);
  }

  /** One VMSA page, recorded at VMSA_GPA. `pageDigest` is the SHA-384 of the 4 KiB save area. */
  vmsaPage(pageDigest: Uint8Array): void {
    this.update(PAGE_TYPES.VMSA, VMSA_GPA, pageDigest);
  }
}

export { sha384 };
