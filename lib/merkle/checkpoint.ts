// C2SP checkpoints (c2sp.org/tlog-checkpoint) inside C2SP signed notes (c2sp.org/signed-note): the text
// "<origin>\n<tree size>\n<base64 root>\n[extension lines]" and signature lines "— <key name> base64(keyID ‖ sig)".
// Signatures are type 0x02 (ECDSA, as transparency-dev's witness implements it): key ID = SHA-256(DER SPKI)[:4],
// the signature an ASN.1 DER ECDSA signature over SHA-256 of the note text. Parsing is strict and bounded.
import { createHash, sign, verify, type KeyObject } from "node:crypto";

import { MalformedInputError, VerificationError } from "../errors.ts";

export interface Checkpoint {
  /** The log's origin line, e.g. "provenant.dev/serving/<keyid>". */
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** Optional extension lines after the root, each without its newline. */
  extensions: string[];
}

export interface SignedNote {
  /** The note text, ending in a newline (what is signed). */
  text: string;
  signatures: { name: string; keyId: Uint8Array; signature: Uint8Array }[];
}

const MAX_NOTE_BYTES = 64 * 1024;
const MAX_SIGNATURES = 16;
const EM_DASH = "\u2014";

/** Whether `text` holds an ASCII control character (below U+0020), newline included unless allowed. */
function hasControl(text: string, allowNewline = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && !(allowNewline && c === 0x0a)) return true;
  }
  return false;
}

function bad(message: string): MalformedInputError {
  return new MalformedInputError("CHECKPOINT_INVALID", message);
}

function strictBase64(text: string, what: string): Uint8Array {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text))
    throw bad(`${what} is not standard base64`);
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) throw bad(`${what} is not canonical base64`);
  return new Uint8Array(bytes);
}

/** The checkpoint body (the note text): origin, decimal size, base64 root, extension lines; ends in "\n". */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  if (checkpoint.origin === "" || /^\s/.test(checkpoint.origin) || hasControl(checkpoint.origin))
    throw bad("the origin must be one line of text");
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw bad("the tree size must be an integer");
  if (checkpoint.rootHash.length !== 32) throw bad("the root hash must be 32 bytes");
  for (const line of checkpoint.extensions)
    if (line === "" || hasControl(line)) throw bad("an extension line must be non-empty text");
  return [
    checkpoint.origin,
    String(checkpoint.size),
    Buffer.from(checkpoint.rootHash).toString("base64"),
    ...checkpoint.extensions,
  ]
    .map((line) => `${line}\n`)
    .join("");
}

/** Reads a checkpoint body (the text of a signed note). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith("\n")) throw bad("a checkpoint ends in a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw bad("a checkpoint has an origin, a size and a root hash");
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin === "" || hasControl(origin)) throw bad("the origin line is empty or has control characters");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw bad("the tree size is not a decimal number");
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw bad("the tree size is too large");
  const rootHash = strictBase64(rootText, "the root hash");
  if (rootHash.length !== 32) throw bad("the root hash is not 32 bytes");
  if (extensions.some((line) => line === "")) throw bad("a checkpoint has no empty lines");
  return { origin, size, rootHash, extensions };
}

/** C2SP signed-note key ID for an ECDSA key (type 0x02): the first 4 bytes of SHA-256 of its DER SPKI. */
export function noteKeyId(publicKey: KeyObject): Uint8Array {
  const spki = publicKey.export({ format: "der", type: "spki" });
  return new Uint8Array(createHash("sha256").update(spki).digest().subarray(0, 4));
}

function checkKeyName(name: string): void {
  if (name === "" || /[\s+]/u.test(name) || hasControl(name))
    throw bad("a key name is non-empty, without spaces or '+'");
}

/** Signs a note text with an ECDSA key: text, a blank line, one signature line. */
export function signNote(text: string, name: string, privateKey: KeyObject, publicKey: KeyObject): string {
  checkKeyName(name);
  if (!text.endsWith("\n")) throw bad("a note text ends in a newline");
  const signature = sign("sha256", Buffer.from(text, "utf8"), { key: privateKey, dsaEncoding: "der" });
  const blob = Buffer.concat([noteKeyId(publicKey), signature]).toString("base64");
  return `${text}\n${EM_DASH} ${name} ${blob}\n`;
}

/** Splits a signed note into its text and signature lines (strict: UTF-8 text, no control characters, bounded). */
export function parseNote(note: string): SignedNote {
  if (Buffer.byteLength(note, "utf8") > MAX_NOTE_BYTES) throw bad(`a note is at most ${MAX_NOTE_BYTES} bytes`);
  if (hasControl(note, true)) throw bad("a note has no control characters but newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw bad("a note is text, a blank line and signature lines");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length === 0 || lines.length > MAX_SIGNATURES) throw bad(`a note has 1 to ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (match === null) throw bad("a signature line is '— <name> <base64>'");
    const blob = strictBase64(match[2]!, "a signature");
    if (blob.length < 5) throw bad("a signature holds a key ID and a signature");
    return { name: match[1]!, keyId: blob.subarray(0, 4), signature: blob.subarray(4) };
  });
  return { text, signatures };
}

/**
 * Verifies a signed note against one known key (name + public key) and returns its text. Signatures by other keys
 * are ignored (c2sp.org/signed-note); a signature by the known key that fails, or none at all, is refused.
 */
export function verifyNote(note: string, name: string, publicKey: KeyObject): string {
  const parsed = parseNote(note);
  const keyId = noteKeyId(publicKey);
  const mine = parsed.signatures.filter((s) => s.name === name && Buffer.from(s.keyId).equals(keyId));
  if (mine.length === 0) throw new VerificationError("CHECKPOINT_INVALID", `the note carries no signature by ${name}`);
  for (const s of mine) {
    const ok = verify("sha256", Buffer.from(parsed.text, "utf8"), { key: publicKey, dsaEncoding: "der" }, s.signature);
    if (!ok) throw new VerificationError("CHECKPOINT_INVALID", `the signature by ${name} does not verify`);
  }
  return parsed.text;
}
