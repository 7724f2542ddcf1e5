// A development stand-in for AMD hardware: mints an ARK → ASK → VCEK chain (and ASVK → VLEK) with the real
// certificate profile (RSASSA-PSS SHA-384, AMD extensions, hwID) and signs real-layout reports. Its root is trusted
// only where a policy names its fingerprint. Keys and root certificates are cached on disk (one stable root per machine).
// Time comes from the `now` option (the machine's clock only by default): VCEK/VLEK and CRLs are dated around it.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  constants,
  sign as cryptoSign,
  type KeyObject,
} from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { IoError } from "../errors.ts";
import { derOid, derSequence, derTime, derTlv, derUnsigned } from "./der.ts";
import {
  OID_BL_SPL,
  OID_CSP_ID,
  OID_FMC_SPL,
  OID_HWID,
  OID_PRODUCT_NAME,
  OID_SNP_SPL,
  OID_STRUCT_VERSION,
  OID_TEE_SPL,
  OID_UCODE_SPL,
  sha256Hex,
} from "./cert.ts";
import { encodeTcb, REPORT_SIZE, SIGNED_SIZE, type FirmwareVersion, type Product, type TcbVersion } from "./parse.ts";
import type { SnpEvidence } from "./verify.ts";

export type SimTcb = Omit<TcbVersion, "raw">;

/** Any report field, with safe defaults (a production-like guest at VMPL 0). */
export interface SimReportFields {
  version?: number;
  guestSvn?: number;
  /** GUEST_POLICY as a raw value; overrides the flags below. */
  policy?: bigint;
  debug?: boolean;
  migrateMa?: boolean;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  vmpl?: number;
  signatureAlgo?: number;
  currentTcb?: SimTcb | bigint;
  reportedTcb?: SimTcb | bigint;
  committedTcb?: SimTcb | bigint;
  launchTcb?: SimTcb | bigint;
  platformInfo?: bigint;
  /** What the report says signed it (SIGNING_KEY); defaults to the key that signs. */
  signingKey?: "vcek" | "vlek" | "none";
  /** Which simulated key signs it. Default "vcek". */
  signer?: "vcek" | "vlek";
  maskChipKey?: boolean;
  authorKeyEn?: boolean;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  hostData?: Uint8Array;
  idKeyDigest?: Uint8Array;
  authorKeyDigest?: Uint8Array;
  reportId?: Uint8Array;
  reportIdMa?: Uint8Array;
  /** CHIP_ID; defaults to the simulated chip's (zero when maskChipKey). */
  chipId?: Uint8Array;
  /** CPUID family/model/stepping (v3+); defaults to the product's. */
  cpuid?: { family: number; model: number; stepping: number };
  currentVersion?: FirmwareVersion;
  committedVersion?: FirmwareVersion;
  launchMitigationVector?: bigint;
  currentMitigationVector?: bigint;
}

export interface SnpSimulator {
  product: Product;
  /** Hex SHA-256 of the simulated ARK DER: what a development policy lists in trustedRoots. */
  rootFingerprint: string;
  arkDer: Uint8Array;
  askDer: Uint8Array;
  vcekDer: Uint8Array;
  asvkDer: Uint8Array;
  vlekDer: Uint8Array;
  chipId: Uint8Array;
  /** The TCB the VCEK/VLEK certify, and the default for every TCB field of a report. */
  tcb: SimTcb;
  signReport(fields?: SimReportFields): Uint8Array;
  /** A DER CRL signed by the simulated ARK, dated around the simulator's `now` unless the options say otherwise. */
  crl(options?: SimCrlOptions): Uint8Array;
  evidence(signer?: "vcek" | "vlek"): SnpEvidence;
}

export interface SimCrlOptions {
  /** Serials listed as revoked (e.g. 0x10001, the ASK), each with thisUpdate as its revocation date. Default none. */
  revoked?: readonly number[];
  /** Default: a day before the simulator's `now`. */
  thisUpdate?: Date;
  /** Default: a week after the simulator's `now`; `null` leaves it out, which verification must refuse. */
  nextUpdate?: Date | null;
}

export interface SimulatorOptions {
  product?: Product;
  /** Where keys and root certificates are cached. Default $PROVENANT_HOME/sim or ~/.provenant/sim. */
  keyDir?: string;
  /** The TCB the VCEK certifies (default per product; microcode ≥ 0x80 to exercise SPL decoding). */
  tcb?: SimTcb;
  /** The chip id (64 bytes; Turin uses the first 8). Default derived from the VCEK key. */
  chipId?: Uint8Array;
  /**
   * The simulator's clock. The VCEK and VLEK are valid from 30 days before it (midnight UTC) for seven years, as
   * AMD's KDS issues them, and CRLs default to thisUpdate = now - 1 day, nextUpdate = now + 7 days. The roots (ARK,
   * ASK, ASVK) are fixed, 2024-01-01 to 2049-01-01. Default: the machine's clock when the simulator is created;
   * tests pass a fixed date so that nothing they check depends on the day they run.
   */
  now?: Date;
}

const DEFAULT_TCB: Record<Product, SimTcb> = {
  Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
  Genoa: { bootloader: 9, tee: 0, snp: 23, microcode: 72 },
  Turin: { fmc: 1, bootloader: 2, tee: 0, snp: 5, microcode: 0x80 },
};
const CPUID: Record<Product, { family: number; model: number; stepping: number }> = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  Turin: { family: 0x1a, model: 0x02, stepping: 0x01 },
};
const PRODUCT_NAME: Record<Product, string> = { Milan: "Milan-B0", Genoa: "Genoa-B1", Turin: "Turin-C1" };
const DN = "OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices";
const DAY = 86_400_000;

interface KeyFile {
  ark: string;
  ask: string;
  asvk: string;
  vcek: string;
  vlek: string;
}
interface RootFile {
  ark: string;
  ask: string;
  asvk: string;
}

export function defaultKeyDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env["PROVENANT_HOME"];
  return join(home !== undefined && home !== "" ? home : join(homedir(), ".provenant"), "sim");
}

/**
 * Writes `path` once: the first writer wins (link is atomic), later ones read what it wrote. The simulators' key
 * caches (this one's and lib/gpu/sim's, in the same key directory) are written with it, so parallel runs agree.
 */
export function writeOnce(path: string, content: string): string {
  const tmp = `${path}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(path, "utf8");
}

const generate = promisify(generateKeyPair);

async function loadKeys(dir: string): Promise<Record<keyof KeyFile, KeyObject>> {
  const path = join(dir, "keys.json");
  let text: string;
  if (existsSync(path)) text = readFileSync(path, "utf8");
  else {
    const rsa = () => generate("rsa", { modulusLength: 4096 });
    const ec = () => generate("ec", { namedCurve: "secp384r1" });
    const [ark, ask, asvk, vcek, vlek] = await Promise.all([rsa(), rsa(), rsa(), ec(), ec()]);
    const pem = (k: { privateKey: KeyObject }) => k.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const file: KeyFile = { ark: pem(ark), ask: pem(ask), asvk: pem(asvk), vcek: pem(vcek), vlek: pem(vlek) };
    text = writeOnce(path, JSON.stringify(file));
  }
  const file = JSON.parse(text) as KeyFile;
  return {
    ark: createPrivateKey(file.ark),
    ask: createPrivateKey(file.ask),
    asvk: createPrivateKey(file.asvk),
    vcek: createPrivateKey(file.vcek),
    vlek: createPrivateKey(file.vlek),
  };
}

const DN_ATTRIBUTES: Record<string, string> = {
  OU: "2.5.4.11",
  C: "2.5.4.6",
  L: "2.5.4.7",
  ST: "2.5.4.8",
  O: "2.5.4.10",
  CN: "2.5.4.3",
};

function derName(dn: string): Uint8Array {
  return derSequence(
    ...dn.split(", ").map((part) => {
      const [type, value] = part.split("=") as [string, string];
      const tag = type === "C" ? 0x13 : 0x0c;
      return derTlv(0x31, derSequence(derOid(DN_ATTRIBUTES[type]!), derTlv(tag, Buffer.from(value, "utf8"))));
    }),
  );
}

/** RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (trailer field default, omitted), as on AMD's VCEKs. */
const PSS_ALGORITHM = derSequence(
  derOid("1.2.840.113549.1.1.10"),
  derSequence(
    derTlv(0xa0, derSequence(derOid("2.16.840.1.101.3.4.2.2"), Uint8Array.of(5, 0))),
    derTlv(
      0xa1,
      derSequence(derOid("1.2.840.113549.1.1.8"), derSequence(derOid("2.16.840.1.101.3.4.2.2"), Uint8Array.of(5, 0))),
    ),
    derTlv(0xa2, derTlv(0x02, Uint8Array.of(48))),
  ),
);

interface SimExtension {
  oid: string;
  critical?: boolean;
  value: Uint8Array;
}

function mint(input: {
  serial: number;
  subject: string;
  issuer: string;
  key: KeyObject;
  issuerKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions?: SimExtension[];
}): Uint8Array {
  const spki = new Uint8Array(createPublicKey(input.key).export({ type: "spki", format: "der" }));
  const serial = Buffer.from(input.serial.toString(16).padStart(6, "0"), "hex");
  const extensions = (input.extensions ?? []).map((e) =>
    derSequence(derOid(e.oid), ...(e.critical === true ? [Uint8Array.of(1, 1, 0xff)] : []), derTlv(0x04, e.value)),
  );
  const tbs = derSequence(
    derTlv(0xa0, derTlv(0x02, Uint8Array.of(2))),
    derUnsigned(serial),
    PSS_ALGORITHM,
    derName(input.issuer),
    derSequence(derTime(input.notBefore), derTime(input.notAfter)),
    derName(input.subject),
    spki,
    ...(extensions.length > 0 ? [derTlv(0xa3, derSequence(...extensions))] : []),
  );
  const signature = cryptoSign("sha384", tbs, {
    key: input.issuerKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 48,
  });
  return derSequence(tbs, PSS_ALGORITHM, derTlv(0x03, Uint8Array.of(0), signature));
}

function derInteger(n: number): Uint8Array {
  return n >= 0x80 ? Uint8Array.of(0x02, 0x02, 0x00, n) : Uint8Array.of(0x02, 0x01, n);
}
function derString(tag: number, s: string): Uint8Array {
  return derTlv(tag, Buffer.from(s, "latin1"));
}

const CA_EXTENSIONS: SimExtension[] = [
  { oid: "2.5.29.19", critical: true, value: derSequence(Uint8Array.of(1, 1, 0xff)) },
];

function loadRoots(dir: string, product: Product, keys: Record<keyof KeyFile, KeyObject>): RootFile {
  const path = join(dir, `${product.toLowerCase()}-roots.json`);
  if (existsSync(path)) return JSON.parse(readFileSync(path, "utf8")) as RootFile;
  const notBefore = new Date(Date.UTC(2024, 0, 1));
  const notAfter = new Date(Date.UTC(2049, 0, 1));
  const arkName = `${DN}, CN=ARK-${product}`;
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
  const ca = CA_EXTENSIONS;
  const file: RootFile = {
    ark: b64(
      mint({
        serial: 0x10000,
        subject: arkName,
        issuer: arkName,
        key: keys.ark,
        issuerKey: keys.ark,
        notBefore,
        notAfter,
        extensions: ca,
      }),
    ),
    ask: b64(
      mint({
        serial: 0x10001,
        subject: `${DN}, CN=SEV-${product}`,
        issuer: arkName,
        key: keys.ask,
        issuerKey: keys.ark,
        notBefore,
        notAfter,
        extensions: ca,
      }),
    ),
    asvk: b64(
      mint({
        serial: 0x10101,
        subject: `${DN}, CN=SEV-VLEK-${product}`,
        issuer: arkName,
        key: keys.asvk,
        issuerKey: keys.ark,
        notBefore,
        notAfter,
        extensions: ca,
      }),
    ),
  };
  return JSON.parse(writeOnce(path, JSON.stringify(file))) as RootFile;
}

function tcbExtensions(product: Product, tcb: SimTcb): SimExtension[] {
  const ext = (oid: string, value: Uint8Array): SimExtension => ({ oid, value });
  const out = [
    ext(OID_STRUCT_VERSION, derInteger(0)),
    ext(OID_PRODUCT_NAME, derString(0x16, PRODUCT_NAME[product])),
    ext(OID_BL_SPL, derInteger(tcb.bootloader)),
    ext(OID_TEE_SPL, derInteger(tcb.tee)),
    ext(OID_SNP_SPL, derInteger(tcb.snp)),
    ext(OID_UCODE_SPL, derInteger(tcb.microcode)),
  ];
  if (product === "Turin") out.push(ext(OID_FMC_SPL, derInteger(tcb.fmc ?? 0)));
  return out;
}

function tcbValue(value: SimTcb | bigint | undefined, fallback: SimTcb, product: Product): bigint {
  if (typeof value === "bigint") return value;
  return encodeTcb(value ?? fallback, product);
}

function put(buffer: Uint8Array, offset: number, bytes: Uint8Array | undefined, length: number): void {
  if (bytes === undefined) return;
  buffer.set(bytes.subarray(0, length), offset);
}

/** Creates (or loads from keyDir) a simulated AMD platform of one product. */
export async function createSimulator(options: SimulatorOptions = {}): Promise<SnpSimulator> {
  const product = options.product ?? "Milan";
  const dir = options.keyDir ?? defaultKeyDir();
  let keys: Record<keyof KeyFile, KeyObject>;
  let roots: RootFile;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    keys = await loadKeys(dir);
    roots = loadRoots(dir, product, keys);
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot create or read the simulator keys in ${dir}`, { cause: error });
  }
  const tcb = options.tcb ?? DEFAULT_TCB[product];
  const now = new Date(options.now ?? Date.now());
  const vcekSpki = createPublicKey(keys.vcek).export({ type: "spki", format: "der" });
  const chipId = new Uint8Array(64);
  if (options.chipId !== undefined) chipId.set(options.chipId.subarray(0, 64));
  else chipId.set(createHash("sha512").update("provenant-sim-chip").update(vcekSpki).digest());
  if (product === "Turin") chipId.fill(0, 8);

  const arkDer = new Uint8Array(Buffer.from(roots.ark, "base64"));
  const askDer = new Uint8Array(Buffer.from(roots.ask, "base64"));
  const asvkDer = new Uint8Array(Buffer.from(roots.asvk, "base64"));
  const notBefore = new Date(now.getTime() - 30 * DAY);
  notBefore.setUTCHours(0, 0, 0, 0);
  const notAfter = new Date(notBefore.getTime() + 7 * 365 * DAY);
  const hwidLength = product === "Turin" ? 8 : 64;
  const vcekDer = mint({
    serial: 0,
    subject: `${DN}, CN=SEV-VCEK`,
    issuer: `${DN}, CN=SEV-${product}`,
    key: keys.vcek,
    issuerKey: keys.ask,
    notBefore,
    notAfter,
    extensions: [...tcbExtensions(product, tcb), { oid: OID_HWID, value: chipId.slice(0, hwidLength) }],
  });
  const vlekDer = mint({
    serial: 0x10103,
    subject: `${DN}, CN=SEV-VLEK`,
    issuer: `${DN}, CN=SEV-VLEK-${product}`,
    key: keys.vlek,
    issuerKey: keys.asvk,
    notBefore,
    notAfter,
    extensions: [...tcbExtensions(product, tcb), { oid: OID_CSP_ID, value: derString(0x0c, "provenant-sim") }],
  });

  const signReport = (fields: SimReportFields = {}): Uint8Array => {
    const raw = new Uint8Array(REPORT_SIZE);
    const view = new DataView(raw.buffer);
    const version = fields.version ?? 5;
    const signer = fields.signer ?? "vcek";
    const signingKey = fields.signingKey ?? signer;
    const maskChipKey = fields.maskChipKey ?? false;
    let policy = fields.policy ?? 0x30000n; // ABI 0.0, SMT allowed, reserved bit 17 set
    if (fields.policy === undefined) {
      if (fields.debug === true) policy |= 1n << 19n;
      if (fields.migrateMa === true) policy |= 1n << 18n;
    }
    view.setUint32(0x00, version, true);
    view.setUint32(0x04, fields.guestSvn ?? 1, true);
    view.setBigUint64(0x08, policy, true);
    put(raw, 0x10, fields.familyId, 16);
    put(raw, 0x20, fields.imageId, 16);
    view.setUint32(0x30, fields.vmpl ?? 0, true);
    view.setUint32(0x34, fields.signatureAlgo ?? 1, true);
    view.setBigUint64(0x38, tcbValue(fields.currentTcb, tcb, product), true);
    view.setBigUint64(0x40, fields.platformInfo ?? 0x25n, true);
    const keySel = signingKey === "vcek" ? 0 : signingKey === "vlek" ? 1 : 7;
    view.setUint32(0x48, (fields.authorKeyEn === true ? 1 : 0) | (maskChipKey ? 2 : 0) | (keySel << 2), true);
    put(raw, 0x50, fields.reportData, 64);
    put(raw, 0x90, fields.measurement ?? createHash("sha384").update("provenant-sim-measurement").digest(), 48);
    put(raw, 0xc0, fields.hostData, 32);
    put(raw, 0xe0, fields.idKeyDigest, 48);
    put(raw, 0x110, fields.authorKeyDigest, 48);
    put(raw, 0x140, fields.reportId ?? createHash("sha256").update("provenant-sim-report-id").digest(), 32);
    put(raw, 0x160, fields.reportIdMa ?? new Uint8Array(32).fill(0xff), 32);
    view.setBigUint64(0x180, tcbValue(fields.reportedTcb, tcb, product), true);
    if (version >= 3) {
      const cpuid = fields.cpuid ?? CPUID[product];
      raw[0x188] = cpuid.family;
      raw[0x189] = cpuid.model;
      raw[0x18a] = cpuid.stepping;
    }
    put(raw, 0x1a0, fields.chipId ?? (maskChipKey ? new Uint8Array(64) : chipId), 64);
    view.setBigUint64(0x1e0, tcbValue(fields.committedTcb, tcb, product), true);
    const current = fields.currentVersion ?? { major: 1, minor: 55, build: 29 };
    const committed = fields.committedVersion ?? current;
    raw.set([current.build, current.minor, current.major], 0x1e8);
    raw.set([committed.build, committed.minor, committed.major], 0x1ec);
    view.setBigUint64(0x1f0, tcbValue(fields.launchTcb, tcb, product), true);
    if (version >= 4) {
      view.setBigUint64(0x1f8, fields.launchMitigationVector ?? 0n, true);
      view.setBigUint64(0x200, fields.currentMitigationVector ?? 0n, true);
    }
    const p1363 = cryptoSign("sha384", raw.subarray(0, SIGNED_SIZE), {
      key: signer === "vcek" ? keys.vcek : keys.vlek,
      dsaEncoding: "ieee-p1363",
    });
    for (let i = 0; i < 48; i++) {
      raw[0x2a0 + i] = p1363[47 - i]!;
      raw[0x2e8 + i] = p1363[95 - i]!;
    }
    return raw;
  };

  return {
    product,
    rootFingerprint: sha256Hex(arkDer),
    arkDer,
    askDer,
    vcekDer,
    asvkDer,
    vlekDer,
    chipId,
    tcb,
    signReport,
    crl(crlOptions: SimCrlOptions = {}) {
      const thisUpdate = crlOptions.thisUpdate ?? new Date(now.getTime() - DAY);
      const nextUpdate =
        crlOptions.nextUpdate === undefined ? new Date(now.getTime() + 7 * DAY) : crlOptions.nextUpdate;
      const entries = (crlOptions.revoked ?? []).map((serial) =>
        derSequence(derUnsigned(Buffer.from(serial.toString(16).padStart(6, "0"), "hex")), derTime(thisUpdate)),
      );
      const tbs = derSequence(
        derTlv(0x02, Uint8Array.of(1)),
        PSS_ALGORITHM,
        derName(`${DN}, CN=ARK-${product}`),
        derTime(thisUpdate),
        ...(nextUpdate === null ? [] : [derTime(nextUpdate)]),
        ...(entries.length > 0 ? [derSequence(...entries)] : []),
      );
      const signature = cryptoSign("sha384", tbs, {
        key: keys.ark,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 48,
      });
      return derSequence(tbs, PSS_ALGORITHM, derTlv(0x03, Uint8Array.of(0), signature));
    },
    evidence(signer = "vcek") {
      return signer === "vcek"
        ? { vcek: vcekDer, chain: [askDer, arkDer] }
        : { vcek: vlekDer, chain: [asvkDer, arkDer] };
    },
  };
}
