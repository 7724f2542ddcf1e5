// The SEV-SNP certificate table that the host attaches to an extended report (GHCB specification 56421,
// "SNP Extended Guest Request"): entries of {GUID (16 bytes, RFC 4122 byte order), offset u32 LE, length u32 LE},
// ended by an all-zero entry; offsets count from the start of the table.
import { MalformedInputError } from "../../lib/errors.ts";

export const CERT_GUIDS = {
  vcek: "63da758d-e664-4564-adc5-f4b93be8accd",
  vlek: "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
  ask: "4ab7b379-bbac-4fe4-a02f-05aef327c782",
  ark: "c0b406a4-a803-4952-9743-3fb6014cd0ae",
} as const;

export type CertKind = keyof typeof CERT_GUIDS;

function guidToBytes(guid: string): Uint8Array {
  return new Uint8Array(Buffer.from(guid.replaceAll("-", ""), "hex"));
}

function bytesToGuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Reads the table into certificates by kind; unknown GUIDs (e.g. a CRL) are ignored. */
export function parseCertTable(table: Uint8Array): Partial<Record<CertKind, Uint8Array>> {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: Partial<Record<CertKind, Uint8Array>> = {};
  for (let pos = 0; ; pos += 24) {
    if (pos + 24 > table.length) {
      throw new MalformedInputError("SNP_MALFORMED", "certificate table has no terminating zero entry");
    }
    const guid = table.subarray(pos, pos + 16);
    if (guid.every((b) => b === 0)) break;
    const offset = view.getUint32(pos + 16, true);
    const length = view.getUint32(pos + 20, true);
    if (offset + length > table.length) {
      throw new MalformedInputError("SNP_MALFORMED", `certificate table entry ${pos / 24} points past the table`);
    }
    const name = bytesToGuid(guid);
    for (const [kind, known] of Object.entries(CERT_GUIDS)) {
      if (known === name) out[kind as CertKind] = table.slice(offset, offset + length);
    }
  }
  return out;
}

/** Builds a table (what a host does); used by tests and the fake configfs. */
export function buildCertTable(certs: Partial<Record<CertKind, Uint8Array>>): Uint8Array {
  const entries = Object.entries(certs).filter((e): e is [CertKind, Uint8Array] => e[1] !== undefined);
  const headerSize = (entries.length + 1) * 24;
  const total = headerSize + entries.reduce((sum, [, der]) => sum + der.length, 0);
  const table = new Uint8Array(total);
  const view = new DataView(table.buffer);
  let offset = headerSize;
  for (const [index, [kind, der]] of entries.entries()) {
    table.set(guidToBytes(CERT_GUIDS[kind]), index * 24);
    view.setUint32(index * 24 + 16, offset, true);
    view.setUint32(index * 24 + 20, der.length, true);
    table.set(der, offset);
    offset += der.length;
  }
  return table;
}
