// Test support for lib/oms and the OMS commands (never imported by product code): the model-transparency reference
// sample from test/fixtures, and writable copies of it.
import { chmodSync, cpSync, readdirSync } from "node:fs";
import { join } from "node:path";

const FORMATS = new URL("../../test/fixtures/formats/", import.meta.url).pathname;
/** model_signing's reference sample (v1.1.0, elliptic key), with its model.sig. */
export const OMS_SAMPLE = join(FORMATS, "model-transparency/v1.1.0-elliptic-key");
/** The sample's keys and certificates (certificate mode). */
export const OMS_SAMPLE_KEYS = join(FORMATS, "model-transparency/keys/certificate");

let count = 0;
/** A writable copy of the reference sample in `dir` (fixture files may be read-only). */
export function copyOmsSample(dir: string): string {
  const target = join(dir, `model-${count++}`);
  cpSync(OMS_SAMPLE, target, { recursive: true });
  chmodSync(target, 0o755);
  for (const f of readdirSync(target)) chmodSync(join(target, f), 0o644);
  return target;
}
