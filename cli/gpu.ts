// `provenant gpu verify`: the file and terminal edge of lib/gpu. Reads NVIDIA evidence (hex text or raw bytes), the
// device chain, RIMs and OCSP responses from disk, verifies them offline at `--now`, and prints the verdict.
import { dateOption, defineCommand, readInputFile, type Command } from "../lib/cli/index.ts";
import { MalformedInputError, ProvenantError, toErrorList, UsageError } from "../lib/errors.ts";
import { readLeafFwid, readGpuCertificate, readPemCertificates } from "../lib/gpu/cert.ts";
import {
  DEFAULT_GPU_POLICY,
  parseGpuEvidence,
  parseGpuPolicy,
  toEvidenceBytes,
  verifyGpuEvidence,
  type GpuEvidence,
  type GpuPolicy,
  type VerifiedGpu,
} from "../lib/gpu/index.ts";

const VERIFY_USAGE =
  "provenant gpu verify <evidence> --chain <pem> [--nonce <64 hex>] [--rim <xml>]… [--ocsp <der>]… [--now <iso>] [--policy <json>] [--json]";

/** Top-level keys of the verifier policy file: a file with any of them is a verifier policy, else a bare GPU policy. */
const VERIFIER_KEYS = ["gpu", "snp", "requireGpuEvidence", "maxBundleBytes", "acceptedKinds"];

/**
 * The GPU policy from `--policy`: the `gpu` section of a verifier policy file (a verifier policy without one gets the
 * defaults), or a bare GPU policy object (`{"requireRims": false, "trustedRoots": [...]}`).
 */
export function readGpuPolicyFile(bytes: Uint8Array): GpuPolicy {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new MalformedInputError("POLICY_INVALID", `the policy file is not JSON: ${(error as Error).message}`);
  }
  if (typeof json === "object" && json !== null && !Array.isArray(json)) {
    const record = json as Record<string, unknown>;
    if (VERIFIER_KEYS.some((k) => k in record)) return parseGpuPolicy(record["gpu"]);
  }
  return parseGpuPolicy(json);
}

function nonceOption(value: string | undefined): Uint8Array | null {
  if (value === undefined) return null;
  if (!/^[0-9a-fA-F]{64}$/.test(value))
    throw new UsageError(`--nonce must be 64 hex digits (32 bytes)\nusage: ${VERIFY_USAGE}`);
  return new Uint8Array(Buffer.from(value, "hex"));
}

/** The architecture the chain's leaf claims, for the output when verification failed (nothing is trusted here). */
function claimedArch(pem: Uint8Array): string | null {
  try {
    const leaf = readGpuCertificate(
      readPemCertificates(pem, "chain", "GPU_CHAIN_INVALID")[0]!,
      "leaf",
      "GPU_CHAIN_INVALID",
    );
    return readLeafFwid(leaf).arch;
  } catch {
    return null;
  }
}

const verify = defineCommand({
  path: ["gpu", "verify"],
  summary: "verify NVIDIA GPU evidence (SPDM report, device chain, RIMs, OCSP) offline",
  usage: VERIFY_USAGE,
  options: {
    chain: { type: "string" },
    nonce: { type: "string" },
    rim: { type: "string", multiple: true },
    ocsp: { type: "string", multiple: true },
    now: { type: "string" },
    policy: { type: "string" },
  },
  positionals: ["evidence"],
  async run({ values, positionals, io }) {
    if (values.chain === undefined || values.chain === "")
      throw new UsageError(`missing --chain\nusage: ${VERIFY_USAGE}`);
    const expectedNonce = nonceOption(values.nonce);
    const now = dateOption(values.now, "now");
    const policy =
      values.policy === undefined
        ? DEFAULT_GPU_POLICY
        : readGpuPolicyFile(await readInputFile(io, values.policy, "policy"));
    const evidenceBytes = await readInputFile(io, positionals[0]!, "evidence");
    const chain = await readInputFile(io, values.chain, "chain");
    const rims: Uint8Array[] = [];
    for (const path of values.rim ?? []) rims.push(await readInputFile(io, path, "RIM"));
    const ocsp: Uint8Array[] = [];
    for (const path of values.ocsp ?? []) ocsp.push(await readInputFile(io, path, "OCSP response"));

    let parsed: GpuEvidence | undefined;
    let verified: VerifiedGpu | undefined;
    let failure: unknown;
    try {
      parsed = parseGpuEvidence(toEvidenceBytes(evidenceBytes));
      verified = verifyGpuEvidence(
        { evidence: parsed.raw, certChainPem: chain, rims, ocsp },
        { expectedNonce, now, policy },
      );
    } catch (error) {
      failure = error;
    }
    const mismatch =
      failure instanceof ProvenantError && failure.code === "GPU_MEASUREMENT_MISMATCH" ? failure.details : undefined;
    const measurements = verified?.measurements ?? {
      checked: (mismatch?.["checked"] as number | undefined) ?? 0,
      matched: (mismatch?.["matched"] as number | undefined) ?? 0,
      mismatched: (mismatch?.["mismatched"] as number[] | undefined) ?? [],
    };
    const hex = (b: Uint8Array | undefined) => (b === undefined ? null : Buffer.from(b).toString("hex"));
    const fields = {
      arch: verified?.arch ?? (parsed === undefined ? null : claimedArch(chain)),
      driverVersion: parsed?.driverVersion ?? null,
      vbiosVersion: parsed?.vbiosVersion ?? null,
      nonce: hex(parsed?.request.nonce),
      fwid: hex(parsed?.fwid),
      measurements: {
        checked: measurements.checked,
        matched: measurements.matched,
        mismatched: measurements.mismatched,
      },
    };
    const errors = failure === undefined ? [] : toErrorList(failure);
    if (verified !== undefined) {
      const m = verified.measurements;
      const text =
        `OK ${verified.arch} GPU ${verified.ids.leaf}\n` +
        `  driver       ${verified.driverVersion}${verified.rims.driver === null ? " (no RIM)" : " (RIM verified)"}\n` +
        `  VBIOS        ${verified.vbiosVersion}${verified.rims.vbios === null ? " (no RIM)" : " (RIM verified)"}\n` +
        `  nonce        ${verified.nonce}${expectedNonce === null ? " (not checked: no --nonce)" : ""}\n` +
        `  FWID         ${verified.fwid ?? "(not reported)"}\n` +
        `  measurements ${m.matched}/${m.checked} match${m.skipped.length > 0 ? `, skipped ${m.skipped.join(", ")}` : ""}\n` +
        `  root         ${verified.rootFingerprint}\n`;
      return { ok: true, fields, text };
    }
    // Evidence or a certificate that does not parse is unreadable input (exit 2); a refused proof or policy is 1.
    const kind = failure instanceof ProvenantError ? failure.kind : "internal";
    return { ok: false, fields, errors, exitCode: kind === "proof" || kind === "policy" ? 1 : 2 };
  },
});

export const commands: readonly Command[] = [verify];
