// Where SEV-SNP certificates come from when a bundle does not carry them: an on-disk cache, then AMD's Key
// Distribution Service (KDS, spec 57230 §4) through an injectable fetch, one request at a time and throttled
// (KDS rate-limits). The store's synchronous `chain()` makes it a CertificateSource for the (synchronous) verifier.
// Which chain a piece of evidence needs is read from its VCEK/VLEK's issuer (SEV-<product>), never from the report's
// CPUID: the verifier looks the chain up by the issuer, and a report that claims another product must still get a
// verdict (SNP_PRODUCT_MISMATCH), not wait forever for a chain that would never be used.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

import { IoError, ProvenantError } from "../errors.ts";
import { productOfCommonName, readCertificate } from "./cert.ts";
import { parseCrl } from "./crl.ts";
import { parseReport, type AttestationReport, type Product } from "./parse.ts";
import type { CertificateSource, SnpEvidence } from "./verify.ts";

export const KDS_BASE = "https://kdsintf.amd.com";

export type FetchLike = (
  url: string,
  init?: { headers?: Record<string, string> },
) => Promise<{
  ok: boolean;
  status: number;
  arrayBuffer(): Promise<ArrayBuffer>;
  headers?: { get(name: string): string | null };
}>;

const two = (n: number) => String(n).padStart(2, "0");
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/**
 * The KDS VCEK URL for a report's chip and REPORTED_TCB. Milan and Genoa use the 64-byte hwid; Turin the first
 * 8 bytes of CHIP_ID and adds fmcSPL (57230 Table 11).
 */
export function kdsVcekUrl(
  product: Product,
  chipId: Uint8Array,
  tcb: AttestationReport["reportedTcb"],
  base: string = KDS_BASE,
): string {
  if (product === "Turin") {
    return (
      `${base}/vcek/v1/Turin/${hex(chipId.subarray(0, 8))}` +
      `?fmcSPL=${two(tcb.fmc ?? 0)}&blSPL=${two(tcb.bootloader)}&teeSPL=${two(tcb.tee)}&snpSPL=${two(tcb.snp)}&ucodeSPL=${two(tcb.microcode)}`
    );
  }
  return (
    `${base}/vcek/v1/${product}/${hex(chipId.subarray(0, 64))}` +
    `?blSPL=${two(tcb.bootloader)}&teeSPL=${two(tcb.tee)}&snpSPL=${two(tcb.snp)}&ucodeSPL=${two(tcb.microcode)}`
  );
}

/** `cert_chain`: the ASK (or ASVK) then the ARK, PEM. */
export function kdsChainUrl(product: Product, signer: "vcek" | "vlek", base: string = KDS_BASE): string {
  return `${base}/${signer}/v1/${product}/cert_chain`;
}

/** The ARK-signed CRL (DER). */
export function kdsCrlUrl(product: Product, signer: "vcek" | "vlek", base: string = KDS_BASE): string {
  return `${base}/${signer}/v1/${product}/crl`;
}

/** What a VCEK/VLEK and the chain given with it lack, and which product's `cert_chain` supplies it. */
export interface ChainNeeds {
  /** The product of the leaf's issuer (SEV-<product> or SEV-VLEK-<product>). */
  product: Product;
  signer: "vcek" | "vlek";
  /** The roles no certificate of the given chain fills. */
  missing: ("intermediate" | "ark")[];
}

/**
 * Reads the leaf's issuer and sorts the given chain into roles by subject CN (any order, the leaf may be included).
 * Undefined when the leaf is unreadable or names no product, or a chain certificate is unreadable: the verifier then
 * refuses the evidence with its own code, and fetching cannot help.
 */
export function chainNeeds(vcek: Uint8Array, chain: readonly Uint8Array[] | undefined): ChainNeeds | undefined {
  let product: Product | undefined;
  let signer: "vcek" | "vlek";
  let intermediate = false;
  let ark = false;
  try {
    const leaf = readCertificate(vcek, "VCEK/VLEK");
    signer = leaf.subjectCn === "SEV-VLEK" ? "vlek" : "vcek";
    product = productOfCommonName(leaf.issuerCn);
    // Bounded like the verifier's own chain (at most three certificates): more is its SNP_CHAIN_INVALID to give.
    if (product === undefined || (chain?.length ?? 0) > 3) return undefined;
    for (const [i, der] of (chain ?? []).entries()) {
      const cn = readCertificate(der, `chain[${i}]`).subjectCn;
      if (cn === "SEV-VCEK" || cn === "SEV-VLEK") continue;
      if (cn.startsWith("ARK-")) ark = true;
      else intermediate = true;
    }
  } catch {
    return undefined;
  }
  const missing: ChainNeeds["missing"] = [];
  if (!intermediate) missing.push("intermediate");
  if (!ark) missing.push("ark");
  return { product, signer, missing };
}

/**
 * The evidence's chain with the roles it lacks taken from `source` (a cache, or a chain fetched from KDS for the
 * product that `chainNeeds` named): an ASK-only or ARK-only chain gets its other half. Returns the chain unchanged
 * when nothing is missing, and undefined when the source cannot fill what is. Trust is not decided here: the
 * verifier still pins the ARK by fingerprint and checks every signature.
 */
export function completeChain(
  vcek: Uint8Array,
  chain: readonly Uint8Array[] | undefined,
  source: CertificateSource | undefined,
): { chain: readonly Uint8Array[] | undefined; needs: ChainNeeds | undefined } | undefined {
  const needs = chainNeeds(vcek, chain);
  if (needs === undefined || needs.missing.length === 0) return { chain, needs };
  const sourced = source?.chain(needs.product, needs.signer);
  if (sourced === undefined) return undefined;
  const given = chain ?? [];
  const out: Uint8Array[] = [];
  try {
    for (const der of sourced) {
      const cn = readCertificate(der, "cached chain").subjectCn;
      const role = cn.startsWith("ARK-") ? "ark" : "intermediate";
      if (needs.missing.includes(role)) out.push(der);
    }
  } catch {
    return undefined;
  }
  if (out.length !== needs.missing.length) return undefined;
  // The verifier assigns roles by subject CN, so the order does not matter.
  return { chain: [...given, ...out], needs };
}

/** The most a KDS answer may hold: a certificate or a chain, a CRL. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;
export const MAX_CRL_BYTES = 1024 * 1024;

/** The DER VCEK when `bytes` is one (subject CN SEV-VCEK, issued by SEV-<product>), else undefined. */
function asVcek(bytes: Uint8Array, product: Product): Uint8Array | undefined {
  try {
    const cert = readCertificate(bytes, "VCEK");
    return cert.subjectCn === "SEV-VCEK" && cert.issuerCn === `SEV-${product}` ? cert.der : undefined;
  } catch {
    return undefined;
  }
}

/** The two DER certificates of a cert_chain when it holds exactly the ASK|ASVK and the ARK for the product. */
function asChain(bytes: Uint8Array, product: Product, signer: "vcek" | "vlek"): Uint8Array[] | undefined {
  const certs = pemBlocks(Buffer.from(bytes).toString("latin1"));
  if (certs.length !== 2) return undefined;
  try {
    const names = certs.map((der, i) => readCertificate(der, `cert_chain[${i}]`).subjectCn).sort();
    const intermediate = signer === "vcek" ? `SEV-${product}` : `SEV-VLEK-${product}`;
    const expected = [`ARK-${product}`, intermediate].sort();
    return names[0] === expected[0] && names[1] === expected[1] ? certs : undefined;
  } catch {
    return undefined;
  }
}

function pemBlocks(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g)) {
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64")));
  }
  return out;
}

export interface CertificateStoreOptions {
  /** Default $PROVENANT_HOME/kds or ~/.provenant/kds. */
  cacheDir?: string;
  /** Defaults to globalThis.fetch; inject one in tests or to forbid the network (`offline: true`). */
  fetch?: FetchLike;
  /** Never touch the network: only the cache. */
  offline?: boolean;
  /** KDS base URL (default https://kdsintf.amd.com): a mirror, or a local fake in tests. */
  kdsBaseUrl?: string;
  /** Per-request time limit of the default fetch (default 15000 ms), so an unreachable KDS fails, never hangs. */
  timeoutMs?: number;
  /** Minimum time between two KDS requests (default 2000 ms; KDS answers 429 when hurried). */
  minIntervalMs?: number;
  /** Injectable clock and sleep, for tests. */
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface CertificateStore extends CertificateSource {
  fetchChain(product: Product, signer: "vcek" | "vlek"): Promise<Uint8Array[]>;
  fetchVcek(report: AttestationReport, product: Product): Promise<Uint8Array>;
  /**
   * The product's ARK-signed CRL: the cached one while it is current at `now` (thisUpdate ≤ now ≤ nextUpdate),
   * otherwise KDS's, cached once it parses. `refresh` skips the cache (the one held was not usable, e.g. not
   * signed by the chain's ARK). The CRL's signature is checked by whoever uses it (crl.ts), not here.
   */
  fetchCrl(product: Product, signer: "vcek" | "vlek", now: Date, options?: { refresh?: boolean }): Promise<Uint8Array>;
  /** Fills in what the evidence lacks: the VCEK (from the report's chip id and TCB) and the chain. */
  resolveEvidence(report: Uint8Array, evidence?: Partial<SnpEvidence>, product?: Product): Promise<SnpEvidence>;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env["PROVENANT_HOME"];
  return join(home !== undefined && home !== "" ? home : join(homedir(), ".provenant"), "kds");
}

/** globalThis.fetch with a time limit per request, or undefined where the runtime has none. */
function defaultFetch(timeoutMs: number): FetchLike | undefined {
  const fetcher = globalThis.fetch as typeof globalThis.fetch | undefined;
  if (fetcher === undefined) return undefined;
  return (url, init) => fetcher(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

export function createCertificateStore(options: CertificateStoreOptions = {}): CertificateStore {
  const dir = options.cacheDir ?? defaultCacheDir();
  const base = (options.kdsBaseUrl ?? KDS_BASE).replace(/\/+$/, "");
  const minInterval = options.minIntervalMs ?? 2000;
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const memory = new Map<string, Uint8Array>();
  let queue: Promise<unknown> = Promise.resolve();
  let lastRequest = -Infinity;

  const unavailable = (message: string, cause?: unknown): never => {
    throw new IoError("SNP_CERT_UNAVAILABLE", message, cause === undefined ? {} : { cause });
  };

  const readCache = (name: string): Uint8Array | undefined => {
    const hit = memory.get(name);
    if (hit !== undefined) return hit;
    const path = join(dir, name);
    try {
      if (!existsSync(path)) return undefined;
      const bytes = new Uint8Array(readFileSync(path));
      memory.set(name, bytes);
      return bytes;
    } catch {
      return undefined;
    }
  };

  const writeCache = (name: string, bytes: Uint8Array): void => {
    memory.set(name, bytes);
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${name}.${process.pid}.tmp`);
      writeFileSync(tmp, bytes);
      renameSync(tmp, join(dir, name));
    } catch {
      // The cache is an optimisation; a read-only disk must not fail verification.
    }
  };

  /**
   * One request at a time, at least minInterval apart; one retry after a 429 or 503. The body is read inside the
   * same guard as the request (a failed read or a timeout mid-body is SNP_CERT_UNAVAILABLE) and capped at maxBytes.
   */
  const get = (url: string, maxBytes: number): Promise<Uint8Array> => {
    const run = async (): Promise<Uint8Array> => {
      if (options.offline === true) unavailable(`offline: ${url} is not cached`);
      const fetcher = options.fetch ?? defaultFetch(options.timeoutMs ?? 15_000);
      if (fetcher === undefined) return unavailable("no fetch available");
      for (let attempt = 0; ; attempt++) {
        const wait = lastRequest + minInterval - clock();
        if (wait > 0) await sleep(wait);
        lastRequest = clock();
        let response: Awaited<ReturnType<FetchLike>>;
        let body: Uint8Array | undefined;
        try {
          response = await fetcher(url);
          if (response.ok) {
            const declared = Number(response.headers?.get("content-length") ?? "");
            if (Number.isFinite(declared) && declared > maxBytes) {
              return unavailable(`${url} answered ${declared} bytes, more than the ${maxBytes} allowed`);
            }
            body = new Uint8Array(await response.arrayBuffer());
          }
        } catch (error) {
          if (error instanceof ProvenantError) throw error;
          const reason =
            error instanceof Error ? ((error.cause as { code?: unknown } | undefined)?.code ?? error.message) : error;
          return unavailable(`cannot reach ${url} (${String(reason)})`, error);
        }
        if (body !== undefined) {
          if (body.length > maxBytes)
            unavailable(`${url} answered ${body.length} bytes, more than the ${maxBytes} allowed`);
          return body;
        }
        if ((response.status === 429 || response.status === 503) && attempt === 0) {
          const retryAfter = Number(response.headers?.get("retry-after") ?? "");
          await sleep(
            Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 30) * 1000 : minInterval * 2,
          );
          continue;
        }
        return unavailable(`${url} answered HTTP ${response.status}`);
      }
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };

  const chainName = (product: Product, signer: "vcek" | "vlek") => `${signer}-${product}-cert_chain.pem`;

  const store: CertificateStore = {
    chain(product, signer) {
      const cached = readCache(chainName(product, signer));
      if (cached === undefined) return undefined;
      return asChain(cached, product, signer);
    },

    async fetchChain(product, signer) {
      const cached = store.chain(product, signer);
      if (cached !== undefined) return cached.slice();
      const bytes = await get(kdsChainUrl(product, signer, base), MAX_CERTIFICATE_BYTES);
      const certs = asChain(bytes, product, signer);
      // Cached only once it parses as the ASK|ASVK and ARK for this product: a bad answer is never kept.
      if (certs === undefined) {
        const intermediate = signer === "vcek" ? `SEV-${product}` : `SEV-VLEK-${product}`;
        return unavailable(`cert_chain for ${product} is not the ${intermediate} and ARK-${product} certificates`);
      }
      writeCache(chainName(product, signer), bytes);
      return certs;
    },

    async fetchVcek(report, product) {
      const name = `vcek-${product}-${hex(report.chipId.subarray(0, product === "Turin" ? 8 : 64))}-${report.reportedTcb.raw.toString(16).padStart(16, "0")}.der`;
      const cached = readCache(name);
      if (cached !== undefined && asVcek(cached, product) !== undefined) return cached;
      const bytes = await get(kdsVcekUrl(product, report.chipId, report.reportedTcb, base), MAX_CERTIFICATE_BYTES);
      // Cached only once it parses as a SEV-VCEK issued by SEV-<product>.
      if (asVcek(bytes, product) === undefined) return unavailable(`KDS answered no ${product} VCEK certificate`);
      writeCache(name, bytes);
      return bytes;
    },

    async fetchCrl(product, signer, now, fetchOptions = {}) {
      const name = `${signer}-${product}-crl.der`;
      const cached = fetchOptions.refresh === true ? undefined : readCache(name);
      if (cached !== undefined) {
        try {
          // Reused only while current; one without nextUpdate is never current (the verifier refuses it).
          const { thisUpdate, nextUpdate } = parseCrl(cached);
          const t = now.getTime();
          if (nextUpdate !== undefined && thisUpdate.getTime() <= t && t <= nextUpdate.getTime()) return cached;
        } catch {
          // a damaged cache entry is fetched again
        }
      }
      const bytes = await get(kdsCrlUrl(product, signer, base), MAX_CRL_BYTES);
      parseCrl(bytes);
      writeCache(name, bytes);
      return bytes;
    },

    async resolveEvidence(bytes, evidence = {}, productHint) {
      let report: AttestationReport;
      try {
        report = parseReport(bytes, productHint === undefined ? {} : { product: productHint });
      } catch (error) {
        if (error instanceof ProvenantError) throw error;
        return unavailable(String(error));
      }
      const signer = report.signingKey === "vlek" ? "vlek" : "vcek";
      const product = productHint ?? report.productFromCpuid;
      let vcek = evidence.vcek;
      if (vcek === undefined) {
        if (signer === "vlek") unavailable("a VLEK is not served by the public KDS; the evidence must carry it");
        if (product === undefined) return unavailable("the report names no product (v2): pass one to fetch its VCEK");
        if (report.maskChipKey) unavailable("the chip key is masked: the VCEK cannot be looked up");
        vcek = await store.fetchVcek(report, product);
      }
      // The chain is the one the VCEK/VLEK's issuer names (not the report's CPUID), and is completed whenever a role
      // is missing: an ASK-only or ARK-only chain used to come back unchanged and never verify.
      const needs = chainNeeds(vcek, evidence.chain);
      if (needs === undefined) {
        if (evidence.chain !== undefined && evidence.chain.length > 0) return { vcek, chain: evidence.chain };
        if (product === undefined) return { vcek };
        return { vcek, chain: await store.fetchChain(product, signer) };
      }
      if (needs.missing.length === 0) return { vcek, chain: evidence.chain ?? [] };
      await store.fetchChain(needs.product, needs.signer);
      const completed = completeChain(vcek, evidence.chain, store);
      if (completed === undefined)
        return unavailable(`the ${needs.product} cert_chain does not complete the evidence's chain`);
      return { vcek, chain: completed.chain ?? [] };
    },
  };
  return store;
}
