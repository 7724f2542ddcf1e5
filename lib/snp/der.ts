// A minimal, strict DER reader for the few structures lib/snp needs (X.509 extensions, CRLs).
// It trusts nothing: every length is bounds-checked and any violation throws the caller's coded error.
import { MalformedInputError, type ErrorCode } from "../errors.ts";

export interface DerNode {
  tag: number;
  /** Offset of the tag byte in the buffer. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
}

export class DerReader {
  readonly bytes: Uint8Array;
  readonly code: ErrorCode;

  constructor(bytes: Uint8Array, code: ErrorCode = "SNP_MALFORMED") {
    this.bytes = bytes;
    this.code = code;
  }

  fail(message: string): never {
    throw new MalformedInputError(this.code, `DER: ${message}`);
  }

  /** Reads the node at `offset`, which must lie within `[offset, limit)`. */
  node(offset: number, limit: number = this.bytes.length): DerNode {
    const b = this.bytes;
    if (offset + 2 > limit) this.fail(`truncated header at ${offset}`);
    const tag = b[offset]!;
    if ((tag & 0x1f) === 0x1f) this.fail(`multi-byte tag at ${offset}`);
    let length = b[offset + 1]!;
    let contentStart = offset + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > 4) this.fail(`unsupported length form at ${offset}`);
      if (contentStart + count > limit) this.fail(`truncated length at ${offset}`);
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + b[contentStart + i]!;
      contentStart += count;
    }
    const end = contentStart + length;
    if (end > limit) this.fail(`length ${length} at ${offset} runs past its container`);
    return { tag, start: offset, contentStart, end };
  }

  /** The children of a constructed node. */
  children(parent: DerNode): DerNode[] {
    if ((parent.tag & 0x20) === 0) this.fail(`tag 0x${parent.tag.toString(16)} is not constructed`);
    const out: DerNode[] = [];
    let offset = parent.contentStart;
    while (offset < parent.end) {
      const child = this.node(offset, parent.end);
      out.push(child);
      offset = child.end;
    }
    return out;
  }

  expect(node: DerNode | undefined, tag: number, what: string): DerNode {
    if (node === undefined) this.fail(`missing ${what}`);
    if (node.tag !== tag) this.fail(`${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
    return node;
  }

  content(node: DerNode): Uint8Array {
    return this.bytes.subarray(node.contentStart, node.end);
  }

  /** The whole encoding of a node, tag and length included. */
  encoding(node: DerNode): Uint8Array {
    return this.bytes.subarray(node.start, node.end);
  }

  oid(node: DerNode): string {
    return decodeOid(this.content(this.expect(node, 0x06, "OBJECT IDENTIFIER")), this);
  }

  /** A non-negative INTEGER as a bigint; DER's leading 0x00 (for values with the top bit set) is accepted once. */
  unsignedInteger(node: DerNode): bigint {
    const c = this.content(this.expect(node, 0x02, "INTEGER"));
    if (c.length === 0) this.fail("empty INTEGER");
    if (c[0]! & 0x80) this.fail("negative INTEGER");
    if (c.length > 1 && c[0] === 0 && (c[1]! & 0x80) === 0) this.fail("non-minimal INTEGER");
    let value = 0n;
    for (const byte of c) value = (value << 8n) | BigInt(byte);
    return value;
  }
}

function decodeOid(c: Uint8Array, reader: DerReader): string {
  if (c.length === 0) reader.fail("empty OID");
  const parts: number[] = [];
  let value = 0;
  for (let i = 0; i < c.length; i++) {
    const byte = c[i]!;
    if (value === 0 && byte === 0x80) reader.fail("non-minimal OID arc");
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) reader.fail("OID arc too large");
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else parts.push(value);
      value = 0;
    } else if (i === c.length - 1) reader.fail("truncated OID");
  }
  return parts.join(".");
}

/** Parses a DER time (UTCTime or GeneralizedTime) node. */
export function readTime(reader: DerReader, node: DerNode): Date {
  const text = Buffer.from(reader.content(node)).toString("latin1");
  let match: RegExpExecArray | null;
  if (node.tag === 0x17) {
    match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match === null) reader.fail(`bad UTCTime ${JSON.stringify(text)}`);
    const yy = Number(match[1]);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    return new Date(
      Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])),
    );
  }
  if (node.tag === 0x18) {
    match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match === null) reader.fail(`bad GeneralizedTime ${JSON.stringify(text)}`);
    return new Date(
      Date.UTC(
        Number(match[1]),
        Number(match[2]) - 1,
        Number(match[3]),
        Number(match[4]),
        Number(match[5]),
        Number(match[6]),
      ),
    );
  }
  return reader.fail(`tag 0x${node.tag.toString(16)} is not a time`);
}

// ---- A tiny DER writer (the simulator's certificates) ----

export function derTlv(tag: number, ...parts: readonly Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  let header: number[];
  if (length < 0x80) header = [tag, length];
  else if (length < 0x100) header = [tag, 0x81, length];
  else if (length < 0x10000) header = [tag, 0x82, length >> 8, length & 0xff];
  else header = [tag, 0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
  const out = new Uint8Array(header.length + length);
  out.set(header, 0);
  let offset = header.length;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export const derSequence = (...parts: readonly Uint8Array[]) => derTlv(0x30, ...parts);

export function derOid(oid: string): Uint8Array {
  const arcs = oid.split(".").map(Number);
  const bytes: number[] = [];
  const push = (value: number) => {
    const stack = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    bytes.push(...stack);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  return derTlv(0x06, Uint8Array.from(bytes));
}

/** A non-negative INTEGER from big-endian magnitude bytes (adds the leading zero DER needs). */
export function derUnsigned(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = magnitude.subarray(start);
  return m.length > 0 && m[0]! & 0x80
    ? derTlv(0x02, Uint8Array.of(0), m)
    : derTlv(0x02, m.length === 0 ? Uint8Array.of(0) : m);
}

export function derTime(date: Date): Uint8Array {
  const iso = date.toISOString();
  const compact = iso.slice(0, 19).replace(/[-:T]/g, "") + "Z";
  return date.getUTCFullYear() < 2050
    ? derTlv(0x17, Buffer.from(compact.slice(2), "latin1"))
    : derTlv(0x18, Buffer.from(compact, "latin1"));
}
