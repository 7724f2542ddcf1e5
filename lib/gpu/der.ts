// A DER tag-length reader used only to slice signed bytes out of certificates and OCSP responses exactly as they
// were received (X.690 §8.1): the TBS part, the names that OCSP hashes, and the outer length that must cover the
// whole input. What the structures mean is read with @peculiar/asn1-schema; this never interprets a value.
import { MalformedInputError, type ErrorCode } from "../errors.ts";

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset after the last content byte. */
  end: number;
}

/** Reads one TLV at `offset` within `[offset, limit)`; single-byte tags, definite lengths of up to 4 bytes. */
export function readTlv(bytes: Uint8Array, offset: number, limit: number, code: ErrorCode): Tlv {
  const fail = (m: string): never => {
    throw new MalformedInputError(code, `DER: ${m} at offset ${offset}`);
  };
  if (offset + 2 > limit) fail("truncated header");
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) fail("multi-byte tags are not used here");
  let length = bytes[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) fail("indefinite or oversized length");
    if (contentStart + n > limit) fail("truncated length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + length;
  if (end > limit) fail("content runs past its container");
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed TLV. */
export function childrenOf(bytes: Uint8Array, parent: Tlv, code: ErrorCode): Tlv[] {
  const out: Tlv[] = [];
  let at = parent.contentStart;
  while (at < parent.end) {
    if (out.length >= 64) throw new MalformedInputError(code, "DER: more than 64 elements in one structure");
    const child = readTlv(bytes, at, parent.end, code);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The one top-level TLV of `bytes`, which must span every byte (trailing bytes would be carried unsigned). */
export function wholeTlv(bytes: Uint8Array, code: ErrorCode, what: string): Tlv {
  const tlv = readTlv(bytes, 0, bytes.length, code);
  if (tlv.tag !== 0x30) throw new MalformedInputError(code, `${what} is not a DER SEQUENCE`);
  if (tlv.end !== bytes.length) {
    throw new MalformedInputError(code, `${what} has ${bytes.length - tlv.end} bytes after its DER structure`);
  }
  return tlv;
}

export function slice(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  return bytes.subarray(tlv.start, tlv.end);
}
