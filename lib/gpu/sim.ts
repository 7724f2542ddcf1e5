// A development stand-in for an NVIDIA GPU in confidential-computing mode: a five-certificate device chain with
// NVIDIA's profile (P-384, ecdsa-with-SHA384, CA constraints, the TCG DICE FWID extension of Hopper or Blackwell),
// a four-certificate RIM signing chain, SPDM evidence with the real layout, matching signed RIMs and OCSP responses.
// Its roots are trusted only where a policy names their fingerprints in gpu.trustedRoots. Times come from `now`.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  type KeyObject,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  BasicOCSPResponse,
  CertID,
  CertStatus,
  KeyHash,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
  id_pkix_ocsp_basic,
} from "@peculiar/asn1-ocsp";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
} from "@peculiar/asn1-x509";

import { IoError, UsageError } from "../errors.ts";
import { writeOnce } from "../snp/sim.ts";
import {
  encodeDiceTcbInfo,
  OID_TCG_DICE_TCB_INFO,
  OID_TCG_DICE_TCB_INFO_BLACKWELL,
  readGpuCertificate,
  sha256Hex,
  type GpuArch,
  type GpuCertificate,
} from "./cert.ts";
import { encodeVbiosVersion, NONCE_LENGTH, SIGNATURE_LENGTH } from "./parse.ts";
import { RIM_ALGORITHMS, rimSignedXml, type RimKind } from "./rim.ts";
import type { GpuEvidenceInput } from "./verify.ts";

const DAY = 86_400_000;
const ECDSA_SHA384 = "1.2.840.10045.4.3.3";
const SHA384_OID = "2.16.840.1.101.3.4.2.2";
const SHA1_OID = "1.3.14.3.2.26";
const ID_KP_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9";

/** Golden indices NVIDIA's Hopper RIMs mark active (PROVENANCE.md): VBIOS 0-6 and 8-12, driver 7 and 21-40. */
export const SIM_VBIOS_INDICES: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12];
export const SIM_DRIVER_INDICES: readonly number[] = [7, ...Array.from({ length: 20 }, (_, i) => 21 + i)];

export interface GpuSimulatorOptions {
  /** The clock: certificate validity (root: created now - 1 day, 20 years; others: now - 1 day, 10 years). */
  now: Date;
  arch?: GpuArch;
  /** Where keys and root certificates are kept, so that one machine has one stable pair of roots. Default: memory. */
  keyDir?: string;
  driverVersion?: string;
  vbiosVersion?: string;
  /** The firmware id the leaf certifies (48 bytes). */
  fwid?: Uint8Array;
}

export interface SimEvidenceFields {
  /** The 32-byte request nonce (gpuNonceFor(REPORT_DATA) in a bundle). */
  nonce: Uint8Array;
  driverVersion?: string;
  vbiosVersion?: string;
  /** Overrides of block values by golden index (block index - 1). */
  measurements?: ReadonlyMap<number, Uint8Array>;
  /** 0x55 disabled (golden index 35 not compared), 0xAA enabled. Default 0x55, as on an H100 in CC mode. */
  nvdec0Status?: number;
  /** The FWID the report carries; `null` leaves it out (older firmware). Default: the leaf's. */
  fwid?: Uint8Array | null;
  /** "legacy" (type, size, value) or "nvdaod" (the newer header and value types). Default legacy. */
  opaqueFormat?: "legacy" | "nvdaod";
  /** More opaque fields, e.g. an unknown type. */
  extraOpaque?: readonly { type: number; value: Uint8Array }[];
}

export interface SimRimOptions {
  kind: RimKind;
  /** Default: the simulator's driver or VBIOS version. */
  version?: string;
  /** Active golden indices. Default NVIDIA's Hopper sets (SIM_DRIVER_INDICES, SIM_VBIOS_INDICES). */
  indices?: readonly number[];
  /** Values by golden index (alternatives); default the simulator's block value. */
  values?: ReadonlyMap<number, readonly Uint8Array[]>;
  /** The L4 signer's validity; default the simulator's window. */
  signerNotBefore?: Date;
  signerNotAfter?: Date;
}

export interface SimOcspOptions {
  status?: "good" | "revoked" | "unknown";
  thisUpdate?: Date;
  /** `null` leaves nextUpdate out. Default thisUpdate + 7 days. */
  nextUpdate?: Date | null;
  /** Sign with a delegated responder issued by the issuer (with or without the OCSP-signing purpose). */
  delegated?: "ocsp-signing" | "no-eku";
  /** Sign with this chain index's key instead of the issuer's. */
  signerIndex?: number;
}

export interface GpuSimulator {
  arch: GpuArch;
  driverVersion: string;
  vbiosVersion: string;
  fwid: Uint8Array;
  /** Hex SHA-256 of the simulated device root and RIM root: what a development policy lists in gpu.trustedRoots. */
  deviceRootFingerprint: string;
  rimRootFingerprint: string;
  trustedRoots: readonly string[];
  /** Leaf first, root last (DER). */
  deviceChain: readonly Uint8Array[];
  /** The device chain as PEM, as NVML returns it. */
  certChainPem: string;
  /** Signer first, root last (DER). */
  rimChain: readonly Uint8Array[];
  /** The 64 block values the GPU reports by default; index i is block i + 1. */
  measurements: readonly Uint8Array[];
  signEvidence(fields: SimEvidenceFields): Uint8Array;
  /** A signed RIM (SWID XML) whose golden values match the default measurements. */
  makeRim(options: SimRimOptions): string;
  /** Everything one GPU entry of a bundle carries, for `nonce`: evidence, chain, arch, a driver and a VBIOS RIM. */
  bundleEntry(nonce: Uint8Array, fields?: Omit<SimEvidenceFields, "nonce">): Required<Omit<GpuEvidenceInput, "ocsp">>;
  /** A DER OCSP response for `chain[index]` (device or RIM chain), signed by its issuer unless told otherwise. */
  ocspResponse(chain: "device" | "rim", index: number, options?: SimOcspOptions): Uint8Array;
}

// ---- certificates with @peculiar/asn1-x509 ----

const ATTRIBUTE: Record<string, string> = { CN: "2.5.4.3", O: "2.5.4.10", C: "2.5.4.6", serialNumber: "2.5.4.5" };

function name(parts: readonly [string, string][]): Name {
  return new Name(
    parts.map(([type, value]) => {
      const v = type === "C" || type === "serialNumber" ? { printableString: value } : { utf8String: value };
      return new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: ATTRIBUTE[type]!, value: new AttributeValue(v) }),
      ]);
    }),
  );
}

export interface MintInput {
  serial: Uint8Array;
  subject: readonly [string, string][];
  issuer: readonly [string, string][];
  key: KeyObject;
  issuerKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca?: { pathLength?: number };
  keyUsage: number;
  extendedKeyUsage?: readonly string[];
  extra?: readonly { oid: string; critical?: boolean; value: Uint8Array }[];
}

/** Mints a DER certificate with NVIDIA's profile (ecdsa-with-SHA384); also used by tests for forged roots. */
export function mintCertificate(input: MintInput): Uint8Array {
  const spki = AsnConvert.parse(
    createPublicKey(input.key).export({ type: "spki", format: "der" }),
    SubjectPublicKeyInfo,
  );
  const ext = (oid: string, critical: boolean, value: ArrayBuffer | Uint8Array) =>
    new Extension({ extnID: oid, critical, extnValue: new OctetString(value) });
  const extensions: Extension[] = [];
  if (input.ca !== undefined) {
    const bc = new BasicConstraints({ cA: true });
    if (input.ca.pathLength !== undefined) bc.pathLenConstraint = input.ca.pathLength;
    extensions.push(ext(id_ce_basicConstraints, true, AsnConvert.serialize(bc)));
  }
  extensions.push(ext(id_ce_keyUsage, true, AsnConvert.serialize(new KeyUsage(input.keyUsage))));
  if (input.extendedKeyUsage !== undefined) {
    extensions.push(
      ext(id_ce_extKeyUsage, false, AsnConvert.serialize(new ExtendedKeyUsage([...input.extendedKeyUsage]))),
    );
  }
  for (const e of input.extra ?? []) extensions.push(ext(e.oid, e.critical ?? false, e.value));
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_SHA384 });
  const tbs = new TBSCertificate({
    version: 2,
    serialNumber: input.serial.buffer.slice(
      input.serial.byteOffset,
      input.serial.byteOffset + input.serial.length,
    ) as ArrayBuffer,
    signature: algorithm,
    issuer: name(input.issuer),
    validity: new Validity({ notBefore: input.notBefore, notAfter: input.notAfter }),
    subject: name(input.subject),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = cryptoSign("sha384", tbsDer, input.issuerKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return new Uint8Array(AsnConvert.serialize(cert));
}

function serialOf(label: string): Uint8Array {
  const out = createHash("sha256").update(label).digest().subarray(0, 16);
  out[0] = (out[0]! & 0x7f) | 0x10; // positive and without a leading zero byte
  return Uint8Array.from(out);
}

/** Hopper's legacy 2.23.133.5.4.1 value: SEQUENCE { OID, SEQUENCE { version, SPKI, FWID { hashAlg, digest } } }. */
function hopperDiceValue(spki: Uint8Array, fwid: Uint8Array): Uint8Array {
  const tlv = (tag: number, ...parts: Uint8Array[]) => {
    const body = Buffer.concat(parts);
    const len = body.length;
    const header = len < 0x80 ? [tag, len] : len < 0x100 ? [tag, 0x81, len] : [tag, 0x82, len >> 8, len & 0xff];
    return new Uint8Array(Buffer.concat([Buffer.from(header), body]));
  };
  const oid = (dotted: string) => {
    const [a, b, ...rest] = dotted.split(".").map(Number);
    const bytes = [a! * 40 + b!];
    for (const n of rest) {
      const stack = [n & 0x7f];
      for (let v = n >> 7; v > 0; v >>= 7) stack.unshift((v & 0x7f) | 0x80);
      bytes.push(...stack);
    }
    return tlv(0x06, Uint8Array.from(bytes));
  };
  return tlv(
    0x30,
    oid(OID_TCG_DICE_TCB_INFO),
    tlv(0x30, tlv(0x02, Uint8Array.of(1)), spki, tlv(0x30, oid(SHA384_OID), tlv(0x04, fwid))),
  );
}

// ---- keys: in memory, or written once to keyDir ----

const KEY_NAMES = [
  "deviceRoot",
  "identity",
  "provisioner",
  "brom",
  "leaf",
  "rimRoot",
  "rimCa",
  "rimL3",
  "rimSigner",
  "ocspResponder",
] as const;
type KeyName = (typeof KEY_NAMES)[number];

function newKeys(): Record<KeyName, string> {
  const out = {} as Record<KeyName, string>;
  for (const k of KEY_NAMES) {
    out[k] = generateKeyPairSync("ec", { namedCurve: "secp384r1" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
  }
  return out;
}

function loadState(
  options: GpuSimulatorOptions,
  mintRoots: (keys: Record<KeyName, KeyObject>) => { device: string; rim: string },
) {
  const parse = (text: Record<KeyName, string>) => {
    const keys = {} as Record<KeyName, KeyObject>;
    for (const k of KEY_NAMES) keys[k] = createPrivateKey(text[k]);
    return keys;
  };
  if (options.keyDir === undefined) {
    const keys = parse(newKeys());
    return { keys, roots: mintRoots(keys) };
  }
  try {
    mkdirSync(options.keyDir, { recursive: true, mode: 0o700 });
    const keyPath = join(options.keyDir, "gpu-keys.json");
    const keys = parse(
      JSON.parse(existsSync(keyPath) ? readFileSync(keyPath, "utf8") : writeOnce(keyPath, JSON.stringify(newKeys()))),
    );
    const rootPath = join(options.keyDir, "gpu-roots.json");
    const roots = existsSync(rootPath)
      ? (JSON.parse(readFileSync(rootPath, "utf8")) as { device: string; rim: string })
      : (JSON.parse(writeOnce(rootPath, JSON.stringify(mintRoots(keys)))) as { device: string; rim: string });
    return { keys, roots };
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot create or read the GPU simulator keys in ${options.keyDir}`, {
      cause: error,
    });
  }
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const pemOf = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${b64(der)
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`;

/** Creates a simulated GPU (Hopper by default) whose certificates are valid around `now`. */
export function createGpuSimulator(options: GpuSimulatorOptions): GpuSimulator {
  const now = options.now;
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new UsageError("the GPU simulator needs a valid `now`");
  const arch = options.arch ?? "hopper";
  const chip = arch === "hopper" ? "GH100" : "GB100";
  const driverVersion = options.driverVersion ?? "570.124.06";
  const vbiosVersion = options.vbiosVersion ?? (arch === "hopper" ? "96.00.9F.00.01" : "97.00.6F.00.04");
  encodeVbiosVersion(vbiosVersion); // refuses a malformed version early
  const fwid = options.fwid ?? new Uint8Array(createHash("sha384").update(`provenant-sim-fwid-${arch}`).digest());
  const start = new Date(Math.floor(now.getTime() / DAY) * DAY - DAY);
  const end = new Date(start.getTime() + 10 * 365 * DAY);

  const deviceRootName: [string, string][] = [
    ["CN", "Provenant Simulated NVIDIA Device Identity CA"],
    ["O", "Provenant Development"],
  ];
  const rimRootName: [string, string][] = [
    ["C", "US"],
    ["O", "Provenant Development"],
    ["CN", "Provenant Simulated CoRIM signing Root CA"],
  ];
  const { keys, roots } = loadState(options, (k) => {
    const rootEnd = new Date(start.getTime() + 20 * 365 * DAY);
    const root = (nameParts: [string, string][], key: KeyObject, label: string) =>
      b64(
        mintCertificate({
          serial: serialOf(label),
          subject: nameParts,
          issuer: nameParts,
          key,
          issuerKey: key,
          notBefore: start,
          notAfter: rootEnd,
          ca: {},
          keyUsage: KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign,
        }),
      );
    return { device: root(deviceRootName, k.deviceRoot, "device-root"), rim: root(rimRootName, k.rimRoot, "rim-root") };
  });
  const deviceRoot = new Uint8Array(Buffer.from(roots.device, "base64"));
  const rimRoot = new Uint8Array(Buffer.from(roots.rim, "base64"));

  const ca = (
    subject: [string, string][],
    issuer: [string, string][],
    key: KeyName,
    issuerKey: KeyName,
    pathLength?: number,
  ) =>
    mintCertificate({
      serial: serialOf(`${key}-${arch}`),
      subject,
      issuer,
      key: keys[key],
      issuerKey: keys[issuerKey],
      notBefore: start,
      notAfter: end,
      ca: pathLength === undefined ? {} : { pathLength },
      keyUsage: KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign,
    });
  const identityName: [string, string][] = [
    ["CN", `Provenant Simulated ${chip} Identity`],
    ["O", "Provenant Development"],
  ];
  const provisionerName: [string, string][] = [
    ["CN", `Provenant Simulated ${chip} Provisioner ICA 1`],
    ["O", "Provenant Development"],
    ["C", "US"],
  ];
  const bromName: [string, string][] = [
    ["serialNumber", "5157A11D0C0FFEE0"],
    ["C", "US"],
    ["O", "Provenant Development"],
    ["CN", `${chip} A01 GSP BROM`],
  ];
  const identity = ca(identityName, deviceRootName, "identity", "deviceRoot");
  const provisioner = ca(provisionerName, identityName, "provisioner", "identity");
  const brom = ca(bromName, provisionerName, "brom", "provisioner", 0);
  const leafSpki = new Uint8Array(createPublicKey(keys.leaf).export({ type: "spki", format: "der" }));
  const dice =
    arch === "hopper"
      ? { oid: OID_TCG_DICE_TCB_INFO, value: hopperDiceValue(leafSpki, fwid) }
      : {
          oid: OID_TCG_DICE_TCB_INFO_BLACKWELL,
          value: encodeDiceTcbInfo({
            vendor: "NVIDIA",
            model: chip,
            svn: 1,
            layer: 1,
            fwids: [{ hashAlg: SHA384_OID, digest: fwid }],
          }),
        };
  const leaf = mintCertificate({
    serial: serialOf(`leaf-${arch}`),
    subject: [
      ["serialNumber", "5157A11D0C0FFEE1"],
      ["C", "US"],
      ["O", "Provenant Development"],
      ["CN", `${chip} A01 GSP FMC LF`],
    ],
    issuer: bromName,
    key: keys.leaf,
    issuerKey: keys.brom,
    notBefore: start,
    notAfter: end,
    keyUsage: KeyUsageFlags.digitalSignature,
    extra: [{ ...dice, critical: arch === "blackwell" }],
  });
  const deviceChain = [leaf, brom, provisioner, identity, deviceRoot];

  const rimCaName: [string, string][] = [
    ["CN", `Provenant Simulated Reference Value ${chip} CA`],
    ["O", "Provenant Development"],
    ["C", "US"],
  ];
  const rimL3Name: [string, string][] = [
    ["CN", `Provenant Simulated Reference Value L3 ${chip} 001`],
    ["O", "Provenant Development"],
    ["C", "US"],
  ];
  const rimCa = ca(rimCaName, rimRootName, "rimCa", "rimRoot");
  const rimL3 = ca(rimL3Name, rimCaName, "rimL3", "rimCa", 0);
  const signerName: [string, string][] = [
    ["C", "US"],
    ["O", "Provenant Development"],
    ["CN", "Provenant Simulated RIM L4 Signer"],
  ];
  const rimSignerCert = (notBefore: Date, notAfter: Date) =>
    mintCertificate({
      serial: serialOf(`rim-signer-${notBefore.getTime()}-${notAfter.getTime()}`),
      subject: signerName,
      issuer: rimL3Name,
      key: keys.rimSigner,
      issuerKey: keys.rimL3,
      notBefore,
      notAfter,
      keyUsage: KeyUsageFlags.digitalSignature,
    });
  const rimChain = [rimSignerCert(start, end), rimL3, rimCa, rimRoot];

  const measurements = Array.from(
    { length: 64 },
    (_, i) => new Uint8Array(createHash("sha384").update(`provenant-sim-measurement-${arch}-${i}`).digest()),
  );

  const signEvidence = (fields: SimEvidenceFields): Uint8Array => {
    if (!(fields.nonce instanceof Uint8Array) || fields.nonce.length !== NONCE_LENGTH) {
      throw new UsageError("the simulated request needs a 32-byte nonce");
    }
    const request = Buffer.concat([Buffer.from([0x11, 0xe0, 0x01, 0xff]), fields.nonce, Buffer.from([0x00])]);
    const record = Buffer.concat(
      measurements.map((value, i) => {
        const v = fields.measurements?.get(i) ?? value;
        const block = Buffer.alloc(7);
        block[0] = i + 1;
        block[1] = 1;
        block.writeUInt16LE(3 + v.length, 2);
        block[4] = 0x01;
        block.writeUInt16LE(v.length, 5);
        return Buffer.concat([block, v]);
      }),
    );
    const nvdaod = fields.opaqueFormat === "nvdaod";
    const text = (s: string) => Buffer.from(s, "latin1");
    const opaqueFields: { type: number; value: Uint8Array }[] = [
      { type: 6, value: encodeVbiosVersion(fields.vbiosVersion ?? vbiosVersion) },
      { type: 15, value: Buffer.concat([text("882"), Buffer.alloc(6)]) },
      { type: 17, value: text("1010\0") },
      { type: 18, value: text("0200\0") },
      { type: 3, value: text(`${fields.driverVersion ?? driverVersion}\0`) },
      { type: 11, value: Uint8Array.of(fields.nvdec0Status ?? 0x55) },
      ...(fields.fwid === null ? [] : [{ type: 20, value: fields.fwid ?? fwid }]),
      ...(nvdaod ? [{ type: 34, value: Uint8Array.of(2, 0) }] : []),
      ...(fields.extraOpaque ?? []),
    ];
    const opaque = Buffer.concat([
      nvdaod ? Buffer.from([0x4e, 0x56, 0x44, 0x41, 0x4f, 0x44, 0, 0, 2, 0, 0, 0]) : Buffer.alloc(0),
      ...opaqueFields.map((f) => {
        const header = Buffer.alloc(nvdaod ? 6 : 4);
        header.writeUInt16LE(f.type, 0);
        if (nvdaod) header.writeUInt16LE(0x82, 2);
        header.writeUInt16LE(f.value.length, nvdaod ? 4 : 2);
        return Buffer.concat([header, f.value]);
      }),
    ]);
    const head = Buffer.alloc(8);
    head[0] = 0x11;
    head[1] = 0x60;
    head[4] = measurements.length;
    head.writeUIntLE(record.length, 5, 3);
    const opaqueLength = Buffer.alloc(2);
    opaqueLength.writeUInt16LE(opaque.length);
    const responderNonce = createHash("sha256").update("provenant-sim-responder").update(fields.nonce).digest();
    const signed = Buffer.concat([request, head, record, responderNonce, opaqueLength, opaque]);
    const signature = cryptoSign("sha384", signed, { key: keys.leaf, dsaEncoding: "ieee-p1363" });
    if (signature.length !== SIGNATURE_LENGTH) throw new Error("unexpected signature length");
    return new Uint8Array(Buffer.concat([signed, signature]));
  };

  const makeRim = (rim: SimRimOptions): string => {
    const version = rim.version ?? (rim.kind === "driver" ? driverVersion : vbiosVersion);
    const active = new Set(rim.indices ?? (rim.kind === "driver" ? SIM_DRIVER_INDICES : SIM_VBIOS_INDICES));
    const resources = measurements.map((value, i) => {
      const alternatives = rim.values?.get(i) ?? [value];
      const hashes = alternatives.map((a, n) => `ns2:Hash${n}="${Buffer.from(a).toString("hex")}"`).join(" ");
      return `        <ns0:Resource type="Measurement" index="${i}" active="${active.has(i) ? "True" : "False"}" alternatives="${alternatives.length}" ${hashes} name="Measurement_${i}" size="${alternatives[0]!.length}"/>`;
    });
    const tagId = createHash("sha384").update(`${rim.kind}-${version}-${arch}`).digest("hex");
    const xml =
      `<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384" corpus="false" name="${chip}" patch="false" supplemental="false" tagId="${tagId}" version="1.0" tagVersion="0">\n` +
      `    <ns0:Entity name="Provenant Development" role="softwareCreator tagCreator"/>\n` +
      `    <ns0:Meta xmlns:ns1="https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/" colloquialVersion="${version}" edition="GPU" product="${chip}" revision="r1" PayloadType="direct" ns1:BindingSpec="RIMIM" ns1:BindingSpecVersion="1.01" ns1:PlatformManufacturerId="5703" ns1:PlatformManufacturerStr="Provenant Development" ns1:PlatformModel="${chip}" ns1:FirmwareManufacturer="Provenant Development" ns1:FirmwareManufacturerId="5703"/>\n` +
      `    <ns0:Payload xmlns:SHA384="http://www.w3.org/2001/04/xmlenc#sha384">\n${resources.join("\n")}\n    </ns0:Payload>\n` +
      `</SoftwareIdentity>`;
    const chain =
      rim.signerNotBefore === undefined && rim.signerNotAfter === undefined
        ? rimChain
        : [rimSignerCert(rim.signerNotBefore ?? start, rim.signerNotAfter ?? end), rimL3, rimCa, rimRoot];
    const sx = rimSignedXml({
      privateKey: keys.rimSigner as unknown as string,
      signatureAlgorithm: RIM_ALGORITHMS.ECDSA_SHA384,
      canonicalizationAlgorithm: RIM_ALGORITHMS.C14N_11,
      getKeyInfoContent: (args) => {
        const prefix = args?.prefix;
        const p = prefix === undefined || prefix === null || prefix === "" ? "" : `${prefix}:`;
        return `<${p}X509Data>${chain.map((c) => `<${p}X509Certificate>${b64(c)}</${p}X509Certificate>`).join("")}</${p}X509Data>`;
      },
    });
    sx.addReference({
      xpath: "/*",
      transforms: [RIM_ALGORITHMS.ENVELOPED, RIM_ALGORITHMS.C14N_11],
      digestAlgorithm: RIM_ALGORITHMS.SHA384,
      uri: "",
      isEmptyUri: true,
    });
    sx.computeSignature(xml, { prefix: "ds", location: { reference: "/*", action: "append" } });
    return sx.getSignedXml();
  };

  const certsOf = (which: "device" | "rim"): GpuCertificate[] =>
    (which === "device" ? deviceChain : rimChain).map((d, i) =>
      readGpuCertificate(d, `${which}[${i}]`, "GPU_CHAIN_INVALID"),
    );
  const keyOf = (which: "device" | "rim", index: number): KeyObject => {
    const names: KeyName[] =
      which === "device"
        ? ["leaf", "brom", "provisioner", "identity", "deviceRoot"]
        : ["rimSigner", "rimL3", "rimCa", "rimRoot"];
    const name = names[index];
    if (name === undefined) throw new UsageError(`no certificate ${index} in the ${which} chain`);
    return keys[name];
  };

  const ocspResponse = (which: "device" | "rim", index: number, o: SimOcspOptions = {}): Uint8Array => {
    const certs = certsOf(which);
    const target = certs[index];
    const issuer = certs[index + 1];
    if (target === undefined || issuer === undefined)
      throw new UsageError(`no issued certificate ${index} in the ${which} chain`);
    const thisUpdate = o.thisUpdate ?? new Date(now.getTime() - DAY);
    const nextUpdate = o.nextUpdate === undefined ? new Date(thisUpdate.getTime() + 7 * DAY) : o.nextUpdate;
    const sha1 = (b: Uint8Array) => new OctetString(createHash("sha1").update(b).digest());
    const status =
      o.status === "revoked"
        ? new CertStatus({ revoked: new RevokedInfo({ revocationTime: thisUpdate }) })
        : o.status === "unknown"
          ? new CertStatus({ unknown: null })
          : new CertStatus({ good: null });
    const single = new SingleResponse({
      certID: new CertID({
        hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA1_OID, parameters: null }),
        issuerNameHash: sha1(issuer.subjectDer),
        issuerKeyHash: sha1(issuer.subjectPublicKey),
        serialNumber: new Uint8Array(
          Buffer.from(target.serial.length % 2 === 0 ? target.serial : `0${target.serial}`, "hex"),
        ).buffer,
      }),
      certStatus: status,
      thisUpdate,
    });
    if (nextUpdate !== null) single.nextUpdate = nextUpdate;
    let signerKey = keyOf(which, o.signerIndex ?? index + 1);
    let signerCert: GpuCertificate = certs[o.signerIndex ?? index + 1]!;
    const extraCerts: Uint8Array[] = [];
    if (o.delegated !== undefined) {
      const responderDer = mintCertificate({
        serial: serialOf(`ocsp-${which}-${index}-${o.delegated}`),
        subject: [
          ["CN", `Provenant Simulated OCSP Responder ${which} ${index}`],
          ["O", "Provenant Development"],
        ],
        issuer: subjectParts(issuer),
        key: keys.ocspResponder,
        issuerKey: keyOf(which, index + 1),
        notBefore: start,
        notAfter: end,
        keyUsage: KeyUsageFlags.digitalSignature,
        ...(o.delegated === "ocsp-signing" ? { extendedKeyUsage: [ID_KP_OCSP_SIGNING] } : {}),
      });
      extraCerts.push(responderDer);
      signerKey = keys.ocspResponder;
      signerCert = readGpuCertificate(responderDer, "responder", "GPU_CHAIN_INVALID");
    }
    const data = new ResponseData({
      responderID: new ResponderID({
        byKey: new KeyHash(createHash("sha1").update(signerCert.subjectPublicKey).digest()),
      }),
      producedAt: thisUpdate,
      responses: [single],
    });
    const tbs = new Uint8Array(AsnConvert.serialize(data));
    const basic = new BasicOCSPResponse({
      tbsResponseData: data,
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_SHA384 }),
      signature: new Uint8Array(cryptoSign("sha384", tbs, signerKey)).buffer,
    });
    if (extraCerts.length > 0) basic.certs = extraCerts.map((d) => AsnConvert.parse(d, Certificate));
    const response = new OCSPResponse({
      responseStatus: OCSPResponseStatus.successful,
      responseBytes: new ResponseBytes({
        responseType: id_pkix_ocsp_basic,
        response: new OctetString(AsnConvert.serialize(basic)),
      }),
    });
    return new Uint8Array(AsnConvert.serialize(response));
  };

  const subjectNames = new Map<string, [string, string][]>([
    [sha256Hex(deviceRoot), deviceRootName],
    [sha256Hex(identity), identityName],
    [sha256Hex(provisioner), provisionerName],
    [sha256Hex(brom), bromName],
    [sha256Hex(rimRoot), rimRootName],
    [sha256Hex(rimCa), rimCaName],
    [sha256Hex(rimL3), rimL3Name],
  ]);
  function subjectParts(cert: GpuCertificate): [string, string][] {
    const parts = subjectNames.get(cert.fingerprint);
    if (parts === undefined) throw new UsageError(`${cert.subjectCn} issues no OCSP responder here`);
    return parts;
  }

  const deviceRootFingerprint = sha256Hex(deviceRoot);
  const rimRootFingerprint = sha256Hex(rimRoot);
  return {
    arch,
    driverVersion,
    vbiosVersion,
    fwid,
    deviceRootFingerprint,
    rimRootFingerprint,
    trustedRoots: [deviceRootFingerprint, rimRootFingerprint],
    deviceChain,
    certChainPem: deviceChain.map(pemOf).join(""),
    rimChain,
    measurements,
    signEvidence,
    makeRim,
    bundleEntry(nonce, fields = {}) {
      return {
        evidence: signEvidence({ ...fields, nonce }),
        certChainPem: deviceChain.map(pemOf).join(""),
        arch,
        rims: [makeRim({ kind: "driver" }), makeRim({ kind: "vbios" })],
      };
    },
    ocspResponse,
  };
}
