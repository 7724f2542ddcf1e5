// Byte encodings shared by Node and the explorer page: strict base64 (RFC 4648 §4 with padding, or §5 URL-safe
// without, as DSSE allows both) and lowercase hex. Pure functions over Uint8Array and strings: no Buffer, no node:*,
// so that lib and the browser decode the same strings to the same bytes and refuse the same ones.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Sextet value of each ASCII code unit; both alphabets share one table ("-" = "+", "_" = "/"). */
const SEXTET = new Uint8Array(128);
for (let i = 0; i < 64; i++) SEXTET[ALPHABET.charCodeAt(i)] = i;
SEXTET["-".charCodeAt(0)] = 62;
SEXTET["_".charCodeAt(0)] = 63;

/** One character outside the standard alphabet (and "="), outside the URL-safe one, or of the standard one only. */
const NOT_STANDARD = /[^A-Za-z0-9+/=]/;
const NOT_URL_SAFE = /[^A-Za-z0-9_-]/;
const STANDARD_ONLY = /[+/]/;

/**
 * True when `text` is standard base64 with correct padding (RFC 4648 §4: length a multiple of 4, one or two "="
 * only at the end), or URL-safe base64 without padding (§5; a lone trailing character is never valid). Linear and
 * stack-safe: the regular expression this replaces, /^(?:[A-Za-z0-9+/]{4})*…$/, overflows V8's backtracking stack
 * above about 4.27 M characters, which a 16 MiB bundle easily holds; the searches here are each for one character
 * (no quantifier, no backtracking), which V8 runs several times faster than a charCodeAt loop, and a sound standard
 * text takes one of them.
 */
export function isBase64(text: string): boolean {
  const n = text.length;
  let pad = 0;
  while (pad < 2 && pad < n && text.charCodeAt(n - 1 - pad) === 0x3d) pad++;
  const equals = text.indexOf("=");
  if (equals !== -1 && equals < n - pad) return false; // "=" only as the final padding
  // Standard: its alphabet only, a whole number of quanta.
  if (!NOT_STANDARD.test(text)) return n % 4 === 0 || (pad === 0 && n % 4 !== 1 && !STANDARD_ONLY.test(text));
  // URL-safe: its alphabet only (so no "=" either), no lone trailing character.
  return pad === 0 && n % 4 !== 1 && !NOT_URL_SAFE.test(text);
}

/**
 * Decodes strict base64 (see isBase64); undefined for anything else: whitespace, stray characters, bad padding, a
 * lone trailing character. Non-zero bits left over in the last character are ignored, as Node's Buffer does.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (!isBase64(text)) return undefined;
  // Node's native decoder, when there is one, gives the same bytes for text the check above accepted (it reads both
  // alphabets), several times faster, written straight into a Uint8Array of the exact size (no pooled Buffer, no
  // copy); the loop below is the browser's (and the reference the tests compare both with).
  const native = (globalThis as { Buffer?: NativeBuffer }).Buffer;
  if (native === undefined) return decodeChecked(text);
  let n = text.length;
  while (n > 0 && text.charCodeAt(n - 1) === 0x3d) n--;
  const out = new Uint8Array((n * 3) >> 2);
  native.from(out.buffer, 0, out.length).write(text, 0, out.length, "base64");
  return out;
}

/** The part of Node's Buffer fromBase64 uses, looked up at run time so that the module imports nothing of Node. */
interface NativeBuffer {
  from(
    buffer: ArrayBuffer,
    offset: number,
    length: number,
  ): { write(text: string, o: number, l: number, e: string): number };
}

/** The decoding loop of fromBase64, for text isBase64 accepted (either alphabet). */
export function decodeChecked(text: string): Uint8Array {
  let n = text.length;
  while (n > 0 && text.charCodeAt(n - 1) === 0x3d) n--;
  const out = new Uint8Array((n * 3) >> 2);
  let j = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v =
      (SEXTET[text.charCodeAt(i)]! << 18) |
      (SEXTET[text.charCodeAt(i + 1)]! << 12) |
      (SEXTET[text.charCodeAt(i + 2)]! << 6) |
      SEXTET[text.charCodeAt(i + 3)]!;
    out[j++] = v >> 16;
    out[j++] = (v >> 8) & 0xff;
    out[j++] = v & 0xff;
  }
  const rest = n - i;
  if (rest >= 2) {
    const v = (SEXTET[text.charCodeAt(i)]! << 18) | (SEXTET[text.charCodeAt(i + 1)]! << 12);
    const w = rest === 3 ? v | (SEXTET[text.charCodeAt(i + 2)]! << 6) : v;
    out[j] = w >> 16;
    if (rest === 3) out[j + 1] = (w >> 8) & 0xff;
  }
  return out;
}

/** Standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i]! << 16;
    out += `${ALPHABET[v >> 18]!}${ALPHABET[(v >> 12) & 63]!}==`;
  } else if (rest === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${ALPHABET[v >> 18]!}${ALPHABET[(v >> 12) & 63]!}${ALPHABET[(v >> 6) & 63]!}=`;
  }
  return out;
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex, two digits per byte. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i]!]!;
  return out;
}

/** True when `text` is hex of either case and even length (one linear pass; "" counts as hex of no bytes). */
export function isHex(text: string): boolean {
  if (text.length % 2 !== 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Value of each ASCII hex digit (either case); -1 for every other code unit below 128. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(i)] = i;
}

/** Hex (either case, even length) to bytes; undefined for anything else (isHex's grammar, checked as it decodes). */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = text.charCodeAt(2 * i);
    const lo = text.charCodeAt(2 * i + 1);
    const value = ((hi < 128 ? HEX_VALUE[hi]! : -1) << 4) | (lo < 128 ? HEX_VALUE[lo]! : -1);
    if (value < 0) return undefined;
    out[i] = value;
  }
  return out;
}

/** Byte-wise equality in time that depends only on the lengths (for digests; not secret-grade in JS engines). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
