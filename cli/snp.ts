// `provenant snp verify` and `provenant sim policy`: the file and terminal edges of lib/snp. Policy files go
// through the verifier's own parser (offchain/pipeline/policy.ts), so `snp verify`, `bundle verify` and the service
// read a policy the same way, and `sim policy` prints what that parser normalises.
import { resolve } from "node:path";

import { dateOption, defineCommand, readInputFile, requiredOption, type Command } from "../lib/cli/index.ts";
import { ProvenantError, toErrorList, UsageError, VerificationError } from "../lib/errors.ts";
import { parseStrictJsonBytes } from "../lib/json/index.ts";
import { productOfCommonName, readCertificate, type AmdCertificate } from "../lib/snp/cert.ts";
import {
  createCertificateStore,
  createSimulator,
  defaultCacheDir,
  defaultKeyDir,
  parseReport,
  parseSnpPolicy,
  reportToJson,
  validateReport,
  verifyReport,
  type AttestationReport,
  type CertificateStore,
  type SnpPolicy,
  type VerifiedReport,
} from "../lib/snp/index.ts";
import {
  defaultVerifierPolicy,
  parseVerifierPolicy,
  parseVerifierPolicyBytes,
  VERIFIER_POLICY_FIELDS,
} from "../offchain/pipeline/policy.ts";

const VERIFY_USAGE =
  "provenant snp verify <report.bin> --vcek <der|pem> [--chain <pem>] [--cache-dir <dir>] [--offline] [--policy <json>] [--now <iso>] [--crl <der>]… [--json]";
const POLICY_USAGE = "provenant sim policy [--product Milan|Genoa|Turin] [--gpu] [--key-dir <dir>]";

/** Every CERTIFICATE block of a PEM file as DER, in order (KDS cert_chain: ASK|ASVK, then ARK). */
export function pemCertificates(bytes: Uint8Array): Uint8Array[] {
  const text = Buffer.from(bytes).toString("latin1");
  const out: Uint8Array[] = [];
  for (const match of text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)) {
    out.push(new Uint8Array(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64")));
  }
  return out;
}

/** Whether the given chain lacks the ASK/ASVK or the ARK (then the certificate cache / KDS must supply them). */
function chainIncomplete(chain: readonly Uint8Array[] | undefined): boolean {
  if (chain === undefined) return true;
  try {
    const names = chain.map((der, i) => readCertificate(der, `chain[${i}]`).subjectCn);
    const arks = names.filter((cn) => cn.startsWith("ARK-")).length;
    const intermediates = names.filter((cn) => !cn.startsWith("ARK-") && cn !== "SEV-VCEK" && cn !== "SEV-VLEK").length;
    return arks === 0 || intermediates === 0;
  } catch {
    return false; // an unreadable chain is the verifier's to report (SNP_CHAIN_INVALID)
  }
}

/**
 * Makes sure the store's cache holds the cert_chain (ASK|ASVK, ARK) for the leaf's product, from AMD's KDS when it
 * does not, so that the synchronous verifier finds it. A leaf that names no product is left to the verifier.
 */
async function prefetchChain(store: CertificateStore, leafDer: Uint8Array, cacheDir: string): Promise<void> {
  let leaf: AmdCertificate;
  try {
    leaf = readCertificate(leafDer, "VCEK/VLEK");
  } catch {
    return;
  }
  const signer = leaf.subjectCn === "SEV-VLEK" ? "vlek" : leaf.subjectCn === "SEV-VCEK" ? "vcek" : undefined;
  const product = productOfCommonName(leaf.issuerCn);
  if (signer === undefined || product === undefined) return;
  try {
    await store.fetchChain(product, signer);
  } catch (error) {
    const reason = error instanceof ProvenantError ? error.message : String(error);
    throw new VerificationError(
      "SNP_CERT_UNAVAILABLE",
      `the evidence carries no ${signer === "vcek" ? "ASK" : "ASVK"}/ARK and no certificate cache holds them ` +
        `(cache ${cacheDir}; AMD KDS: ${reason}): pass --chain <pem> (KDS ${signer}/v1/${product}/cert_chain), ` +
        "or point --cache-dir at a cache that holds it, or allow access to kdsintf.amd.com",
      { cause: error, details: { product, signer, cacheDir } },
    );
  }
}

/**
 * `--policy`: a verifier policy file, read by the verifier's parser (unknown fields refused, POLICY_INVALID), or a
 * bare SNP policy object (the verifier policy's `snp` part alone, read by parseSnpPolicy, just as strict). An object
 * with at least one key and none of the verifier's top-level fields is the bare form; anything else is a verifier
 * policy. Either way a bad file is POLICY_INVALID of kind malformed: exit 2, like any unreadable input.
 */
export function parseSnpVerifyPolicy(bytes: Uint8Array): { snp: SnpPolicy; trustedRoots: string[] } {
  let json: unknown;
  try {
    // The strict reader the verifier's parser uses: a key given twice is refused, never resolved to the last.
    json = parseStrictJsonBytes(bytes, { code: "POLICY_INVALID", what: "policy file" });
  } catch {
    json = undefined; // parseVerifierPolicyBytes reports it
  }
  const bare =
    typeof json === "object" &&
    json !== null &&
    !Array.isArray(json) &&
    Object.keys(json).length > 0 &&
    Object.keys(json).every((key) => !(VERIFIER_POLICY_FIELDS as readonly string[]).includes(key));
  if (bare) return { snp: parseSnpPolicy(json), trustedRoots: [] };
  const policy = parseVerifierPolicyBytes(bytes);
  return { snp: policy.snp, trustedRoots: policy.trustedRoots };
}

const snpVerify = defineCommand({
  path: ["snp", "verify"],
  summary: "verify an SEV-SNP attestation report against its VCEK/VLEK, AMD's pinned roots and a policy",
  usage: VERIFY_USAGE,
  options: {
    vcek: { type: "string" },
    chain: { type: "string" },
    "cache-dir": { type: "string" },
    offline: { type: "boolean", default: false },
    policy: { type: "string" },
    now: { type: "string" },
    crl: { type: "string", multiple: true },
  },
  positionals: ["report.bin"],
  async run({ values, positionals, io }) {
    const vcekPath = requiredOption(values.vcek, "vcek", VERIFY_USAGE);
    const now = dateOption(values.now, "now");
    const bytes = new Uint8Array(await readInputFile(io, positionals[0]!, "report"));
    const vcekBytes = new Uint8Array(await readInputFile(io, vcekPath, "VCEK/VLEK"));
    const vcek = vcekBytes[0] === 0x2d ? (pemCertificates(vcekBytes)[0] ?? vcekBytes) : vcekBytes;
    let chain: Uint8Array[] | undefined;
    if (values.chain !== undefined) {
      chain = pemCertificates(await readInputFile(io, values.chain, "chain"));
      if (chain.length === 0) throw new UsageError(`--chain ${values.chain} holds no PEM certificate`);
    }
    const policy =
      values.policy === undefined
        ? defaultVerifierPolicy()
        : parseSnpVerifyPolicy(await readInputFile(io, values.policy, "policy"));

    const crls: Uint8Array[] = [];
    for (const path of values.crl ?? []) crls.push(new Uint8Array(await readInputFile(io, path, "CRL")));

    // What --chain does not give comes from the certificate cache, filled from AMD's KDS (unless --offline).
    const cacheDir = values["cache-dir"] === undefined ? defaultCacheDir(io.env) : resolve(io.cwd, values["cache-dir"]);
    const certificates = createCertificateStore({ cacheDir, offline: values.offline === true });

    let report: AttestationReport | undefined;
    let verified: VerifiedReport | undefined;
    let failure: unknown;
    try {
      report = parseReport(bytes);
      if (chainIncomplete(chain)) await prefetchChain(certificates, vcek, cacheDir);
      verified = verifyReport(bytes, chain === undefined ? { vcek } : { vcek, chain }, now, {
        trustedRoots: policy.trustedRoots,
        certificates,
        ...(crls.length > 0 ? { crls } : {}),
      });
      report = verified.report;
      validateReport(verified, policy.snp);
    } catch (error) {
      failure = error;
    }
    const fields = {
      product: verified?.product ?? report?.productFromCpuid ?? null,
      version: report?.version ?? null,
      signer: verified?.signer ?? (report?.signingKey === "none" ? null : (report?.signingKey ?? null)),
      rootFingerprint: verified?.rootFingerprint ?? null,
      report: report === undefined ? null : reportToJson(report),
    };
    if (failure !== undefined) {
      // A report or certificate that does not parse is unreadable input (2); a proof or policy refusal is 1.
      const kind = (failure as { kind?: string }).kind;
      return {
        ok: false,
        fields,
        errors: toErrorList(failure),
        exitCode: kind === "proof" || kind === "policy" ? 1 : 2,
      };
    }
    const r = verified!.report;
    const t = r.reportedTcb;
    const text =
      `OK ${verified!.product} v${r.version} signed by ${verified!.signer.toUpperCase()}\n` +
      `  measurement  ${Buffer.from(r.measurement).toString("hex")}\n` +
      `  report_data  ${Buffer.from(r.reportData).toString("hex")}\n` +
      `  reported TCB ${t.fmc === undefined ? "" : `fmc ${t.fmc} `}bl ${t.bootloader} tee ${t.tee} snp ${t.snp} ucode ${t.microcode}\n` +
      `  firmware     ${r.currentVersion.major}.${r.currentVersion.minor} build ${r.currentVersion.build}\n`;
    return { ok: true, fields, text };
  },
});

const simPolicy = defineCommand({
  path: ["sim", "policy"],
  summary:
    "print a development verifier policy that trusts this machine's SEV-SNP (and with --gpu, GPU) simulator roots",
  usage: POLICY_USAGE,
  json: false,
  options: { product: { type: "string" }, gpu: { type: "boolean" }, "key-dir": { type: "string" } },
  async run({ values, io }) {
    const product = values.product ?? "Milan";
    if (product !== "Milan" && product !== "Genoa" && product !== "Turin") {
      throw new UsageError(`--product must be Milan, Genoa or Turin\nusage: ${POLICY_USAGE}`);
    }
    const keyDir = values["key-dir"] ?? defaultKeyDir(io.env);
    const sim = await createSimulator({ product, keyDir });
    // --gpu: also the GPU simulator's device and RIM roots (lib/gpu sim.ts, kept in the same directory), so bundles
    // made with `job … --gpu-evidence sim` pass step h (docs/gpu.md).
    let gpu: { trustedRoots: readonly string[] } | undefined;
    if (values.gpu === true) {
      const { createGpuSimulator } = await import("../lib/gpu/index.ts");
      gpu = { trustedRoots: createGpuSimulator({ now: new Date(), keyDir }).trustedRoots };
    }
    // The verifier's parser fills every default, so the printed file is exactly what the verifier will enforce. It
    // pins nothing and trusts a development root, so it says so (DESIGN §11): `verifier run` starts with it.
    // It also accepts serving statements (docs/serving.md): a development verifier records what `provenant serve`
    // pushes, as kind 3 (the parser's own default stays eval and finetune).
    const policy = parseVerifierPolicy({
      trustedRoots: [sim.rootFingerprint],
      ...(gpu === undefined ? {} : { gpu: { trustedRoots: [...gpu.trustedRoots] } }),
      acceptedKinds: ["eval", "finetune", "serving"],
      development: true,
    });
    return { ok: true, text: `${JSON.stringify(policy.json, null, 2)}\n` };
  },
});

export const commands: readonly Command[] = [snpVerify, simPolicy];
