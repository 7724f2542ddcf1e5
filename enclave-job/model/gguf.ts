// A minimal GGUF v3 writer: header, typed key/value metadata, tensor infos, aligned tensor data.
// Layout and type ids from ggml's docs/gguf.md (gguf_metadata_value_type, ggml_type); all integers little-endian.
// It writes only what Provenant generates itself (F32 tensors), so it trusts its input.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_metadata_value_type (docs/gguf.md). */
const T_UINT32 = 4;
const T_INT32 = 5;
const T_FLOAT32 = 6;
const T_BOOL = 7;
const T_STRING = 8;
const T_ARRAY = 9;

/** ggml_type ids used here. */
export const GGML_TYPE_F32 = 0;

export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "f32[]"; value: readonly number[] }
  | { type: "i32[]"; value: readonly number[] };

export interface GgufTensor {
  name: string;
  /** ggml order: ne[0] is the row length (the fastest-moving dimension). */
  dims: readonly number[];
  data: Float32Array;
}

/** A growable little-endian byte sink. */
class ByteWriter {
  private buffer = new Uint8Array(1 << 16);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }
  i32(value: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, value, true);
    this.length += 4;
  }
  f32(value: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, value, true);
    this.length += 4;
  }
  u64(value: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(value), true);
    this.length += 8;
  }
  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }
  bytes(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }
  string(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u64(encoded.length);
    this.bytes(encoded);
  }
  pad(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function writeValue(out: ByteWriter, value: GgufValue): void {
  switch (value.type) {
    case "u32":
      out.u32(T_UINT32);
      out.u32(value.value);
      return;
    case "i32":
      out.u32(T_INT32);
      out.i32(value.value);
      return;
    case "f32":
      out.u32(T_FLOAT32);
      out.f32(value.value);
      return;
    case "bool":
      out.u32(T_BOOL);
      out.u8(value.value ? 1 : 0);
      return;
    case "string":
      out.u32(T_STRING);
      out.string(value.value);
      return;
    case "string[]":
      out.u32(T_ARRAY);
      out.u32(T_STRING);
      out.u64(value.value.length);
      for (const item of value.value) out.string(item);
      return;
    case "f32[]":
      out.u32(T_ARRAY);
      out.u32(T_FLOAT32);
      out.u64(value.value.length);
      for (const item of value.value) out.f32(item);
      return;
    case "i32[]":
      out.u32(T_ARRAY);
      out.u32(T_INT32);
      out.u64(value.value.length);
      for (const item of value.value) out.i32(item);
      return;
  }
}

/** Serialises a GGUF v3 file. Metadata keys keep their insertion order; tensor data is aligned to `alignment`. */
export function writeGguf(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensor[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Uint8Array {
  const out = new ByteWriter();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  const kvCount = metadata.size + (metadata.has("general.alignment") ? 0 : 1);
  out.u64(kvCount);
  if (!metadata.has("general.alignment")) {
    out.string("general.alignment");
    writeValue(out, { type: "u32", value: alignment });
  }
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const tensor of tensors) {
    const elements = tensor.dims.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      throw new RangeError(`tensor ${tensor.name}: ${tensor.data.length} values for dims ${tensor.dims.join("x")}`);
    }
    out.string(tensor.name);
    out.u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(dim);
    out.u32(GGML_TYPE_F32);
    out.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((elements * 4) / alignment) * alignment;
  }
  out.pad(alignment);
  const dataStart = out.length;
  for (const [index, tensor] of tensors.entries()) {
    while (out.length < dataStart + (offsets[index] ?? 0)) out.u8(0);
    const bytes = new Uint8Array(tensor.data.length * 4);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < tensor.data.length; i++) view.setFloat32(i * 4, tensor.data[i] ?? 0, true);
    out.bytes(bytes);
  }
  out.pad(alignment);
  return out.result();
}
