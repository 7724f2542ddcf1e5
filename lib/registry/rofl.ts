// ROFL app ids: the Oasis CLI and rofl.yaml show them in bech32 (`rofl1…`); the contract takes the 21 raw bytes
// (bytes21: a version byte and a 20-byte hash). Bech32 as in BIP-173 (the checksum constant 1, not bech32m).
import { UsageError } from "../errors.ts";

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let checksum = 1;
  for (const value of values) {
    const top = checksum >>> 25;
    checksum = ((checksum & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) checksum ^= GENERATOR[i];
  }
  return checksum >>> 0;
}

function expandPrefix(prefix: string): number[] {
  const codes = [...prefix].map((char) => char.charCodeAt(0));
  return [...codes.map((code) => code >>> 5), 0, ...codes.map((code) => code & 31)];
}

/** Regroups `bits`-bit words into `to`-bit words (BIP-173 convertbits), refusing non-zero padding. */
function convertBits(words: readonly number[], from: number, to: number, pad: boolean): number[] | undefined {
  let accumulator = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const word of words) {
    accumulator = (accumulator << from) | word;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((accumulator >>> bits) & max);
    }
    accumulator &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((accumulator << (to - bits)) & max);
  } else if (bits >= from || accumulator !== 0) {
    return undefined;
  }
  return out;
}

/** Decodes a bech32 string into its prefix and bytes; throws USAGE when it is not valid bech32. */
export function decodeBech32(text: string): { prefix: string; bytes: Uint8Array } {
  const lower = text.toLowerCase();
  const separator = lower.lastIndexOf("1");
  if (text !== lower && text !== text.toUpperCase()) throw new UsageError(`mixed case in bech32 string: ${text}`);
  if (separator < 1 || separator + 7 > lower.length || lower.length > 90) {
    throw new UsageError(`not a bech32 string: ${text}`);
  }
  const prefix = lower.slice(0, separator);
  const words = [...lower.slice(separator + 1)].map((char) => CHARSET.indexOf(char));
  if (words.some((word) => word < 0)) throw new UsageError(`invalid bech32 character in ${text}`);
  if (polymod([...expandPrefix(prefix), ...words]) !== 1) throw new UsageError(`bad bech32 checksum in ${text}`);
  const bytes = convertBits(words.slice(0, -6), 5, 8, false);
  if (bytes === undefined) throw new UsageError(`bad bech32 padding in ${text}`);
  return { prefix, bytes: Uint8Array.from(bytes) };
}

/** Encodes bytes as bech32 with `prefix`. */
export function encodeBech32(prefix: string, bytes: Uint8Array): string {
  const words = convertBits([...bytes], 8, 5, true) ?? [];
  const checksum = polymod([...expandPrefix(prefix), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const tail = Array.from({ length: 6 }, (_, i) => (checksum >>> (5 * (5 - i))) & 31);
  return `${prefix}1${[...words, ...tail].map((word) => CHARSET[word]).join("")}`;
}

/** Turns a ROFL app id (`rofl1…`, or 0x and 42 hex digits) into the bytes21 hex the contract takes. */
export function toRoflAppIdBytes(appId: string): string {
  if (/^0x[0-9a-fA-F]{42}$/.test(appId)) return appId.toLowerCase();
  const { prefix, bytes } = decodeBech32(appId);
  if (prefix !== "rofl" || bytes.length !== 21) {
    throw new UsageError(`not a ROFL app id (rofl1… of 21 bytes, or 0x and 42 hex digits): ${appId}`);
  }
  return `0x${Buffer.from(bytes).toString("hex")}`;
}

/** The `rofl1…` form of a bytes21 app id. */
export function toRoflAppIdBech32(bytes21: string): string {
  if (!/^0x[0-9a-fA-F]{42}$/.test(bytes21)) throw new UsageError(`not a bytes21 hex value: ${bytes21}`);
  return encodeBech32("rofl", Buffer.from(bytes21.slice(2), "hex"));
}
