// The job's signing key K: ECDSA P-384, born in this process and never written to disk; its public half is
// bound to the hardware report through REPORT_DATA = SHA-256(DER SPKI of K) ‖ nonce (DESIGN §3.3).
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";

import { UsageError } from "../../lib/errors.ts";

export interface JobKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of K. */
  spki: Uint8Array;
}

/** K on P-384 (DESIGN §3.2); `provenant serve` makes its serving key S the same way on P-256 (attest.ts). */
export function generateJobKey(curve: "P-384" | "P-256" = "P-384"): JobKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
  return { privateKey, publicKey, spki: new Uint8Array(publicKey.export({ type: "spki", format: "der" })) };
}

/** A 32-byte nonce from 64 hex characters, or a fresh random one. */
export function toNonce(hex?: string): Uint8Array {
  if (hex === undefined) return new Uint8Array(randomBytes(32));
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new UsageError(`--nonce must be 64 hex characters (32 bytes)`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** REPORT_DATA[0:32] = SHA-256(SPKI), REPORT_DATA[32:64] = nonce. */
export function reportDataFor(spki: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== 32) throw new RangeError(`nonce must be 32 bytes, got ${nonce.length}`);
  const out = new Uint8Array(64);
  out.set(createHash("sha256").update(spki).digest(), 0);
  out.set(nonce, 32);
  return out;
}
