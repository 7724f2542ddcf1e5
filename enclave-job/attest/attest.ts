// A fresh signing key attested by the hardware: the key is born in this process, the CPU report is asked for over
// REPORT_DATA = SHA-256(DER SPKI) ‖ nonce (DESIGN §3.3) and checked to carry exactly those 64 bytes, and each GPU's
// evidence is collected over gpuNonceFor(REPORT_DATA) (DESIGN §10). The job's key K (P-384) and the serving key S
// (P-256, lib/receipt SERVING_KEY_CURVE) are both made here; nothing is signed before the binding holds.
import { equalBytes, toHex } from "../../lib/encoding/index.ts";
import { IoError } from "../../lib/errors.ts";
import { gpuNonceFor } from "../../lib/gpu/index.ts";
import type { GpuCollection, GpuEvidenceProvider } from "./gpu.ts";
import { generateJobKey, reportDataFor, toNonce, type JobKey } from "./key.ts";
import type { AttestationProvider, Evidence } from "./providers.ts";

/** REPORT_DATA's offset in the attestation report (AMD SEV-SNP ABI 56860, Table 23). */
export const REPORT_DATA_OFFSET = 0x50;

/** The curves a bound key may use: P-384 for the job key K (DESIGN §3.2), P-256 for the serving key S. */
export type AttestedKeyCurve = "P-384" | "P-256";

export interface AttestedKey {
  key: JobKey;
  nonce: Uint8Array;
  evidence: Evidence;
  /** The GPUs' evidence over gpuNonceFor(REPORT_DATA), when a GPU provider was given. */
  gpu?: GpuCollection;
}

export interface AttestKeyOptions {
  /** Default P-384 (the job key K). */
  curve?: AttestedKeyCurve;
  /** REPORT_DATA[32:64] as 64 hex (a caller's challenge); default 32 random bytes. USAGE when malformed. */
  nonce?: string | undefined;
  gpu?: GpuEvidenceProvider | null | undefined;
  /** Told before the GPU evidence is collected (a progress line). */
  onGpu?: (providerName: string) => void;
}

/**
 * Generates a key on `curve`, has `provider` attest it and checks the report's REPORT_DATA before anything else:
 * the provider only relays the report, so a stale or foreign one (a replayed or concurrent request) is
 * ATTESTATION_FAILED and never ends up signed into a bundle. Then the GPUs' evidence, bound to the same REPORT_DATA.
 */
export async function attestKey(provider: AttestationProvider, options: AttestKeyOptions = {}): Promise<AttestedKey> {
  const key = generateJobKey(options.curve);
  const nonce = toNonce(options.nonce);
  const expected = reportDataFor(key.spki, nonce);
  const evidence = await provider.attest(expected);
  const actual = evidence.report.subarray(REPORT_DATA_OFFSET, REPORT_DATA_OFFSET + 64);
  if (actual.length !== 64 || !equalBytes(actual, expected))
    throw new IoError(
      "ATTESTATION_FAILED",
      `${provider.name}: the report's REPORT_DATA is not the 64 bytes asked for (SHA-256 of the new key's SPKI ‖ nonce)`,
      { details: { expected: toHex(expected), actual: toHex(actual) } },
    );
  if (options.gpu === undefined || options.gpu === null) return { key, nonce, evidence };
  options.onGpu?.(options.gpu.name);
  return { key, nonce, evidence, gpu: await options.gpu.collect(gpuNonceFor(expected)) };
}
