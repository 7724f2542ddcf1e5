// `provenant snp verify` and `provenant sim policy`: the file and terminal edges of lib/snp.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

import {
  EXIT_OK,
  EXIT_REFUSED,
  parseCommandArgs,
  printJson,
  requirePositional,
  runGuarded,
  type CliIo,
  type Command,
} from "../cli/index.ts";
import { IoError, PolicyError, ProvenantError, toErrorList, UsageError, VerificationError } from "../errors.ts";
import { productOfCommonName, readCertificate, type AmdCertificate } from "./cert.ts";
import { createCertificateStore, defaultCacheDir, type CertificateStore } from "./kds.ts";
import { parseReport, reportToJson, type AttestationReport } from "./parse.ts";
import { createSimulator, defaultKeyDir } from "./sim.ts";
import { DEFAULT_SNP_POLICY, parseSnpPolicy, snpPolicyToJson, validateReport, type SnpPolicy } from "./validate.ts";
import { verifyReport, type VerifiedReport } from "./verify.ts";

const VERIFY_USAGE =
  "provenant snp verify <report.bin> --vcek <der|pem> [--chain <pem>] [--cache-dir <dir>] [--offline] [--policy <json>] [--now <iso>] [--crl <der>]… [--json]";
const POLICY_USAGE = "provenant sim policy [--product Milan|Genoa|Turin] [--key-dir <dir>]";

async function readInput(io: CliIo, path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(resolve(io.cwd, path)));
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot read ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

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

/** A verifier policy file ({snp, trustedRoots, …}) or a bare SNP policy object. */
function readPolicy(text: string): { snp: SnpPolicy; trustedRoots: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PolicyError("POLICY_INVALID", `the policy is not JSON: ${(error as Error).message}`);
  }
  if (typeof json === "object" && json !== null && !Array.isArray(json) && ("snp" in json || "trustedRoots" in json)) {
    const file = json as Record<string, unknown>;
    const roots = file["trustedRoots"] ?? [];
    if (!Array.isArray(roots) || !roots.every((r) => typeof r === "string" && /^[0-9a-fA-F]{64}$/.test(r))) {
      throw new PolicyError("POLICY_INVALID", "trustedRoots must be an array of 64-hex-digit fingerprints");
    }
    return { snp: parseSnpPolicy(file["snp"]), trustedRoots: roots as string[] };
  }
  return { snp: parseSnpPolicy(json), trustedRoots: [] };
}

const snpVerify: Command = {
  path: ["snp", "verify"],
  summary: "verify an SEV-SNP attestation report against its VCEK/VLEK, AMD's pinned roots and a policy",
  usage: VERIFY_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        vcek: { type: "string" },
        chain: { type: "string" },
        "cache-dir": { type: "string" },
        offline: { type: "boolean", default: false },
        policy: { type: "string" },
        now: { type: "string" },
        crl: { type: "string", multiple: true },
        json: { type: "boolean", default: false },
      },
      VERIFY_USAGE,
    );
    const json = values.json === true;
    return runGuarded(io, json, async () => {
      const reportPath = requirePositional(positionals, 0, "report.bin", VERIFY_USAGE);
      if (values.vcek === undefined) throw new UsageError(`missing --vcek\nusage: ${VERIFY_USAGE}`);
      const now = values.now === undefined ? new Date() : new Date(values.now);
      if (Number.isNaN(now.getTime())) throw new UsageError(`--now ${values.now} is not an ISO date`);
      const bytes = await readInput(io, reportPath, "report");
      const vcekBytes = await readInput(io, values.vcek, "VCEK/VLEK");
      const vcek = vcekBytes[0] === 0x2d ? (pemCertificates(vcekBytes)[0] ?? vcekBytes) : vcekBytes;
      let chain: Uint8Array[] | undefined;
      if (values.chain !== undefined) {
        chain = pemCertificates(await readInput(io, values.chain, "chain"));
        if (chain.length === 0) throw new UsageError(`--chain ${values.chain} holds no PEM certificate`);
      }
      const policy =
        values.policy === undefined
          ? { snp: DEFAULT_SNP_POLICY, trustedRoots: [] }
          : readPolicy(Buffer.from(await readInput(io, values.policy, "policy")).toString("utf8"));

      const crls: Uint8Array[] = [];
      for (const path of values.crl ?? []) crls.push(await readInput(io, path, "CRL"));

      // What --chain does not give comes from the certificate cache, filled from AMD's KDS (unless --offline).
      const cacheDir =
        values["cache-dir"] === undefined ? defaultCacheDir(io.env) : resolve(io.cwd, values["cache-dir"]);
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
      const errors = failure === undefined ? [] : toErrorList(failure);
      const ok = failure === undefined;
      if (json) {
        printJson(
          io,
          ok,
          {
            product: verified?.product ?? report?.productFromCpuid ?? null,
            version: report?.version ?? null,
            signer: verified?.signer ?? (report?.signingKey === "none" ? null : (report?.signingKey ?? null)),
            rootFingerprint: verified?.rootFingerprint ?? null,
            report: report === undefined ? null : reportToJson(report),
          },
          errors,
        );
      } else if (ok && verified !== undefined) {
        const r = verified.report;
        const t = r.reportedTcb;
        io.stdout(
          `OK ${verified.product} v${r.version} signed by ${verified.signer.toUpperCase()}\n` +
            `  measurement  ${Buffer.from(r.measurement).toString("hex")}\n` +
            `  report_data  ${Buffer.from(r.reportData).toString("hex")}\n` +
            `  reported TCB ${t.fmc === undefined ? "" : `fmc ${t.fmc} `}bl ${t.bootloader} tee ${t.tee} snp ${t.snp} ucode ${t.microcode}\n` +
            `  firmware     ${r.currentVersion.major}.${r.currentVersion.minor} build ${r.currentVersion.build}\n`,
        );
      } else {
        for (const e of errors) io.stderr(`error ${e.code}: ${e.message}\n`);
      }
      if (ok) return EXIT_OK;
      // A report or certificate that does not parse is unreadable input (2); a proof or policy refusal is 1.
      const kind = (failure as { kind?: string }).kind;
      return kind === "proof" || kind === "policy" ? EXIT_REFUSED : 2;
    });
  },
};

const simPolicy: Command = {
  path: ["sim", "policy"],
  summary: "print a development verifier policy that trusts this machine's SEV-SNP simulator root",
  usage: POLICY_USAGE,
  async run(argv, io) {
    const { values } = parseCommandArgs(
      argv,
      { product: { type: "string" }, "key-dir": { type: "string" } },
      POLICY_USAGE,
    );
    return runGuarded(io, false, async () => {
      const product = values.product ?? "Milan";
      if (product !== "Milan" && product !== "Genoa" && product !== "Turin") {
        throw new UsageError(`--product must be Milan, Genoa or Turin\nusage: ${POLICY_USAGE}`);
      }
      const sim = await createSimulator({ product, keyDir: values["key-dir"] ?? defaultKeyDir(io.env) });
      const policy = {
        snp: snpPolicyToJson(DEFAULT_SNP_POLICY),
        trustedRoots: [sim.rootFingerprint],
        requireGpuEvidence: false,
        maxBundleBytes: 16777216,
        acceptedKinds: ["finetune", "eval"],
      };
      io.stdout(`${JSON.stringify(policy, null, 2)}\n`);
      return EXIT_OK;
    });
  },
};

export const commands: readonly Command[] = [snpVerify, simPolicy];
