// C2SP signed notes (c2sp.org/signed-note) signed and verified with node:crypto keys: type 0x02 (ECDSA, as
// transparency-dev's witness implements it), an ASN.1 DER ECDSA signature over SHA-256 of the note text. The text of
// notes and checkpoints (c2sp.org/tlog-checkpoint) is read and written by lib/merkle/core, which the page shares.
import { sign, verify, type KeyObject } from "node:crypto";

import { MalformedInputError, VerificationError } from "../errors.ts";
import { checkNoteKeyName, formatNoteSignature, noteKeyIdOf, noteSignaturesBy, parseNote } from "./core.ts";

export { formatCheckpoint, parseCheckpoint, parseNote, type Checkpoint, type SignedNote } from "./core.ts";

/** C2SP signed-note key ID for an ECDSA key (type 0x02): the first 4 bytes of SHA-256 of its DER SPKI. */
export function noteKeyId(publicKey: KeyObject): Uint8Array {
  return noteKeyIdOf(publicKey.export({ format: "der", type: "spki" }));
}

/** Signs a note text with an ECDSA key: text, a blank line, one signature line. */
export function signNote(text: string, name: string, privateKey: KeyObject, publicKey: KeyObject): string {
  checkNoteKeyName(name);
  if (!text.endsWith("\n")) throw new MalformedInputError("CHECKPOINT_INVALID", "a note text ends in a newline");
  const signature = sign("sha256", Buffer.from(text, "utf8"), { key: privateKey, dsaEncoding: "der" });
  return `${text}\n${formatNoteSignature(name, noteKeyId(publicKey), signature)}`;
}

/**
 * Verifies a signed note against one known key (name + public key) and returns its text. Signatures by other keys
 * are ignored (c2sp.org/signed-note); a signature by the known key that fails, or none at all, is refused.
 */
export function verifyNote(note: string, name: string, publicKey: KeyObject): string {
  const parsed = parseNote(note);
  const mine = noteSignaturesBy(parsed, name, noteKeyId(publicKey));
  if (mine.length === 0) throw new VerificationError("CHECKPOINT_INVALID", `the note carries no signature by ${name}`);
  for (const signature of mine) {
    const ok = verify("sha256", Buffer.from(parsed.text, "utf8"), { key: publicKey, dsaEncoding: "der" }, signature);
    if (!ok) throw new VerificationError("CHECKPOINT_INVALID", `the signature by ${name} does not verify`);
  }
  return parsed.text;
}
