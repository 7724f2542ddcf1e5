// Attestation providers: ask the CPU for an SEV-SNP report carrying our REPORT_DATA, and collect the VCEK (or VLEK)
// and its chain. `tsm` talks to Linux configfs-tsm, `sev-guest` runs the `snpguest` tool, `sim` signs with the
// development simulator. None of them verifies anything: the verifier does, with pinned roots.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { IoError, ProvenantError } from "../../lib/errors.ts";
import { parseCertTable } from "./certtable.ts";

export type ProviderName = "tsm" | "sev-guest" | "sim";

export interface Evidence {
  provider: ProviderName;
  /** The 1184-byte attestation report. */
  report: Uint8Array;
  /** DER VCEK or VLEK. */
  vcek: Uint8Array;
  /** DER ASK (or ASVK), then ARK, when known. */
  chain?: Uint8Array[];
}

export interface AttestationProvider {
  name: ProviderName;
  attest(reportData: Uint8Array): Promise<Evidence>;
}

export const REPORT_SIZE = 1184;

function provenantHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.PROVENANT_HOME ?? join(homedir(), ".provenant");
}

async function readIfPresent(path: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch {
    return undefined;
  }
}

/** Certificates cached on disk (`<dir>/vcek.der`, `vlek.der`, `ask.der`, `ark.der`), e.g. fetched once from AMD's KDS. */
async function cachedCerts(dir: string): Promise<{ vcek?: Uint8Array; chain?: Uint8Array[] }> {
  const vcek = (await readIfPresent(join(dir, "vcek.der"))) ?? (await readIfPresent(join(dir, "vlek.der")));
  const ask = (await readIfPresent(join(dir, "ask.der"))) ?? (await readIfPresent(join(dir, "asvk.der")));
  const ark = await readIfPresent(join(dir, "ark.der"));
  const chain = ask !== undefined && ark !== undefined ? [ask, ark] : undefined;
  return { ...(vcek === undefined ? {} : { vcek }), ...(chain === undefined ? {} : { chain }) };
}

function checkReport(report: Uint8Array, provider: ProviderName): Uint8Array {
  if (report.length < REPORT_SIZE) {
    throw new IoError("ATTESTATION_FAILED", `${provider}: report is ${report.length} bytes, expected ${REPORT_SIZE}`);
  }
  return report.slice(0, REPORT_SIZE);
}

/** What fetches a VCEK (and chain) when neither the host nor the local cache has one: lib/snp's KDS store. */
export interface CertificateResolver {
  resolveEvidence(
    report: Uint8Array,
    evidence?: { vcek?: Uint8Array; chain?: readonly Uint8Array[] },
  ): Promise<{ vcek: Uint8Array; chain?: readonly Uint8Array[] }>;
}

async function defaultResolver(): Promise<CertificateResolver> {
  const { createCertificateStore } = await import("../../lib/snp/index.ts");
  return createCertificateStore();
}

/** Last resort: AMD's KDS through lib/snp (cached under $PROVENANT_HOME/kds, throttled). */
async function resolveFromKds(
  report: Uint8Array,
  found: { vcek?: Uint8Array; chain?: Uint8Array[] },
  resolver: CertificateResolver | undefined,
  provider: ProviderName,
): Promise<{ vcek: Uint8Array; chain?: Uint8Array[] }> {
  if (found.vcek !== undefined)
    return { vcek: found.vcek, ...(found.chain === undefined ? {} : { chain: found.chain }) };
  try {
    const resolved = await (resolver ?? (await defaultResolver())).resolveEvidence(
      report,
      found.chain === undefined ? {} : { chain: found.chain },
    );
    return { vcek: resolved.vcek, ...(resolved.chain === undefined ? {} : { chain: [...resolved.chain] }) };
  } catch (error) {
    throw new IoError(
      "ATTESTATION_FAILED",
      `${provider}: no VCEK/VLEK from the host, the cache or AMD's KDS (${error instanceof Error ? error.message : String(error)}); ` +
        "put vcek.der in the certificate cache",
      { cause: error },
    );
  }
}

export interface TsmOptions {
  /** The configfs-tsm report directory; default /sys/kernel/config/tsm/report. */
  root?: string;
  /** Where cached certificates live when the host provides none; default $PROVENANT_HOME/certs. */
  certDir?: string;
  /** Milliseconds to wait for outblob (a real kernel answers on read; test doubles may be asynchronous). */
  timeoutMs?: number;
  /** Fetches a missing VCEK; default lib/snp's KDS certificate store. */
  certificates?: CertificateResolver;
}

/**
 * configfs-tsm (Documentation/ABI/testing/configfs-tsm): mkdir a report entry, write the 64 bytes to `inblob`,
 * read `outblob` (the report) and `auxblob` (the certificate table, when the host provides one), and check that
 * `generation` did not move while we read, which would mean someone else wrote to the entry.
 */
export function tsmProvider(options: TsmOptions = {}): AttestationProvider {
  const root = options.root ?? "/sys/kernel/config/tsm/report";
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    name: "tsm",
    async attest(reportData) {
      try {
        await access(root);
      } catch (error) {
        throw new IoError("ATTESTATION_UNAVAILABLE", `configfs-tsm is not available at ${root}`, { cause: error });
      }
      const entry = join(root, `provenant-${process.pid}-${randomBytes(4).toString("hex")}`);
      try {
        await mkdir(entry);
      } catch (error) {
        throw new IoError("ATTESTATION_UNAVAILABLE", `cannot create a report entry under ${root}`, { cause: error });
      }
      try {
        await writeFile(join(entry, "inblob"), reportData);
        const started = Date.now();
        const poll = async <T>(read: () => Promise<T | undefined>, what: string): Promise<T> => {
          for (;;) {
            const value = await read();
            if (value !== undefined) return value;
            if (Date.now() - started > timeoutMs) {
              throw new IoError("ATTESTATION_FAILED", `configfs-tsm gave no ${what} in ${entry}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        };
        const readGeneration = async (): Promise<string | undefined> => {
          const text = new TextDecoder().decode((await readIfPresent(join(entry, "generation"))) ?? new Uint8Array());
          return text.trim() === "" ? undefined : text.trim();
        };
        // The generation our inblob write produced (the kernel bumps it on every write): read at once, so that a
        // concurrent writer between our write and our reads shows up as a different value afterwards.
        const generation = await poll(readGeneration, "generation");
        const report = await poll(async () => {
          const bytes = await readIfPresent(join(entry, "outblob"));
          return bytes !== undefined && bytes.length > 0 ? bytes : undefined;
        }, "report (outblob)");
        const provider = (await readIfPresent(join(entry, "provider"))) ?? new Uint8Array();
        const providerName = new TextDecoder().decode(provider).trim();
        if (providerName !== "" && providerName !== "sev_guest") {
          throw new IoError("ATTESTATION_UNAVAILABLE", `configfs-tsm provider is ${providerName}, not sev_guest`);
        }
        const aux = await readIfPresent(join(entry, "auxblob"));
        const after = await readGeneration();
        if (generation !== after) {
          throw new IoError(
            "ATTESTATION_FAILED",
            `configfs-tsm entry changed while reading (${generation} → ${after})`,
          );
        }
        const table = aux !== undefined && aux.length > 0 ? parseCertTable(aux) : {};
        let vcek = table.vcek ?? table.vlek;
        let chain = table.ask !== undefined && table.ark !== undefined ? [table.ask, table.ark] : undefined;
        if (vcek === undefined || chain === undefined) {
          const cached = await cachedCerts(options.certDir ?? join(provenantHome(), "certs"));
          vcek ??= cached.vcek;
          chain ??= cached.chain;
        }
        const checked = checkReport(report, "tsm");
        const certs = await resolveFromKds(
          checked,
          { ...(vcek === undefined ? {} : { vcek }), ...(chain === undefined ? {} : { chain }) },
          options.certificates,
          "tsm",
        );
        return { provider: "tsm", report: checked, ...certs };
      } finally {
        // configfs removes an entry with rmdir; a plain directory (tests) needs its files removed first.
        await rmdir(entry).catch(() => rm(entry, { recursive: true, force: true }));
      }
    },
  };
}

export interface SevGuestOptions {
  /** The snpguest executable; default `snpguest` on the PATH. */
  command?: string;
  timeoutMs?: number;
  /** Fetches a missing VCEK; default lib/snp's KDS certificate store. */
  certificates?: CertificateResolver;
}

const run = promisify(execFile);

/**
 * The virtee `snpguest` tool: `snpguest report <report.bin> <request.bin>` with our 64 bytes as the request file,
 * then `snpguest certificates der <dir>` for the host-provided VCEK/ASK/ARK.
 */
export function sevGuestProvider(options: SevGuestOptions = {}): AttestationProvider {
  const command = options.command ?? "snpguest";
  const timeout = options.timeoutMs ?? 60_000;
  return {
    name: "sev-guest",
    async attest(reportData) {
      const dir = await mkdtemp(join(tmpdir(), "provenant-snpguest-"));
      try {
        const reportPath = join(dir, "report.bin");
        const requestPath = join(dir, "request.bin");
        const certDir = join(dir, "certs");
        await mkdir(certDir);
        await writeFile(requestPath, reportData);
        try {
          await run(command, ["report", reportPath, requestPath], { timeout });
        } catch (error) {
          const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
          throw new IoError(
            missing ? "ATTESTATION_UNAVAILABLE" : "ATTESTATION_FAILED",
            missing ? `${command} is not installed` : `${command} report failed: ${String(error)}`,
            { cause: error },
          );
        }
        try {
          await run(command, ["certificates", "der", certDir], { timeout });
        } catch {
          // The host may not provide certificates; the cache below is the fallback.
        }
        let found = await cachedCerts(certDir);
        if (found.vcek === undefined) found = { ...(await cachedCerts(join(provenantHome(), "certs"))), ...found };
        const report = checkReport(new Uint8Array(await readFile(reportPath)), "sev-guest");
        const certs = await resolveFromKds(report, found, options.certificates, "sev-guest");
        return { provider: "sev-guest", report, ...certs };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The development simulator of lib/snp: real-layout reports under a development root (never trusted by default).
 * `now` is the simulator's clock (its VCEK is dated around it); default the machine's clock at each attestation.
 */
export function simProvider(options: { keyDir?: string; now?: Date } = {}): AttestationProvider {
  return {
    name: "sim",
    async attest(reportData) {
      try {
        const { createSimulator } = await import("../../lib/snp/index.ts");
        const sim = await createSimulator({
          ...(options.keyDir === undefined ? {} : { keyDir: options.keyDir }),
          ...(options.now === undefined ? {} : { now: options.now }),
        });
        const report = sim.signReport({ reportData });
        const evidence = sim.evidence("vcek");
        return {
          provider: "sim",
          report,
          vcek: evidence.vcek,
          ...(evidence.chain === undefined ? {} : { chain: [...evidence.chain] }),
        };
      } catch (error) {
        if (error instanceof ProvenantError) throw error;
        throw new IoError("ATTESTATION_FAILED", `simulator: ${String(error)}`, { cause: error });
      }
    },
  };
}

export function providerByName(
  name: string,
  options: { tsmRoot?: string; snpguest?: string } = {},
): AttestationProvider {
  switch (name) {
    case "tsm":
      return tsmProvider(options.tsmRoot === undefined ? {} : { root: options.tsmRoot });
    case "sev-guest":
      return sevGuestProvider(options.snpguest === undefined ? {} : { command: options.snpguest });
    case "sim":
      return simProvider();
    default:
      throw new IoError("ATTESTATION_UNAVAILABLE", `unknown attestation provider ${name} (tsm, sev-guest, sim)`);
  }
}
