// Where SEV-SNP certificates come from when a bundle does not carry them: an on-disk cache, then AMD's Key
// Distribution Service (KDS, spec 57230 §4) through an injectable fetch, one request at a time and throttled
// (KDS rate-limits). The store's synchronous `chain()` makes it a CertificateSource for the (synchronous) verifier.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

import { IoError, ProvenantError } from "../errors.ts";
import { readCertificate } from "./cert.ts";
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
export function kdsVcekUrl(product: Product, chipId: Uint8Array, tcb: AttestationReport["reportedTcb"]): string {
  if (product === "Turin") {
    return (
      `${KDS_BASE}/vcek/v1/Turin/${hex(chipId.subarray(0, 8))}` +
      `?fmcSPL=${two(tcb.fmc ?? 0)}&blSPL=${two(tcb.bootloader)}&teeSPL=${two(tcb.tee)}&snpSPL=${two(tcb.snp)}&ucodeSPL=${two(tcb.microcode)}`
    );
  }
  return (
    `${KDS_BASE}/vcek/v1/${product}/${hex(chipId.subarray(0, 64))}` +
    `?blSPL=${two(tcb.bootloader)}&teeSPL=${two(tcb.tee)}&snpSPL=${two(tcb.snp)}&ucodeSPL=${two(tcb.microcode)}`
  );
}

/** `cert_chain`: the ASK (or ASVK) then the ARK, PEM. */
export function kdsChainUrl(product: Product, signer: "vcek" | "vlek"): string {
  return `${KDS_BASE}/${signer}/v1/${product}/cert_chain`;
}

/** The ARK-signed CRL (DER). */
export function kdsCrlUrl(product: Product, signer: "vcek" | "vlek"): string {
  return `${KDS_BASE}/${signer}/v1/${product}/crl`;
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
  fetchCrl(product: Product, signer: "vcek" | "vlek", now: Date): Promise<Uint8Array>;
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
      const bytes = await get(kdsChainUrl(product, signer), MAX_CERTIFICATE_BYTES);
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
      const bytes = await get(kdsVcekUrl(product, report.chipId, report.reportedTcb), MAX_CERTIFICATE_BYTES);
      // Cached only once it parses as a SEV-VCEK issued by SEV-<product>.
      if (asVcek(bytes, product) === undefined) return unavailable(`KDS answered no ${product} VCEK certificate`);
      writeCache(name, bytes);
      return bytes;
    },

    async fetchCrl(product, signer, now) {
      const name = `${signer}-${product}-crl.der`;
      const cached = readCache(name);
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
      const bytes = await get(kdsCrlUrl(product, signer), MAX_CRL_BYTES);
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
      if (evidence.chain !== undefined && evidence.chain.length > 0) return { vcek, chain: evidence.chain };
      if (product === undefined) return { vcek };
      return { vcek, chain: await store.fetchChain(product, signer) };
    },
  };
  return store;
}
