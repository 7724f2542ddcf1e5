import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import { createGpuSimulator } from "./sim.ts";
import { encodeVbiosVersion, formatVbiosVersion, parseGpuEvidence, toEvidenceBytes } from "./parse.ts";

const fixtures = new URL("../../test/fixtures/gpu/", import.meta.url);
const reportText = readFileSync(new URL("hopperAttestationReport.txt", fixtures), "latin1");
const report = toEvidenceBytes(reportText);
const NOW = new Date("2026-11-27T00:00:00Z");

const hex = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString("hex"));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProvenantError) return error.code;
    throw error;
  }
  return "OK";
}

describe("parseGpuEvidence with the real H100 report (nvtrust sample)", () => {
  const e = parseGpuEvidence(report);

  it("when the hex text is read, it is the 4117-byte request and response", () => {
    assert.equal(report.length, 4117);
    assert.equal(e.raw.length, 4117);
  });

  it("when the request is read, it yields nvtrust's test nonce and the SPDM 1.1 GET_MEASUREMENTS fields", () => {
    assert.equal(hex(e.request.nonce), "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb");
    assert.deepEqual(
      [e.request.version, e.request.code, e.request.param1, e.request.param2, e.request.slotId],
      [0x11, 0xe0, 0x01, 0xff, 0x00],
    );
  });

  it("when the response is read, every length adds up: 64 blocks of 48 bytes, 3520-byte record, 422 bytes of opaque data", () => {
    assert.equal(e.response.code, 0x60);
    assert.equal(e.response.numberOfBlocks, 64);
    assert.equal(e.response.measurementRecordLength, 3520);
    assert.equal(e.blocks.length, 64);
    assert.deepEqual(
      e.blocks.map((b) => b.index),
      Array.from({ length: 64 }, (_, i) => i + 1),
    );
    assert.ok(e.blocks.every((b) => b.specification === 1 && b.valueType === 1 && b.value.length === 48));
    assert.equal(e.blocks.filter((b) => b.value.every((x) => x === 0)).length, 38);
    assert.equal(e.response.opaqueLength, 422);
    assert.equal(e.opaque.format, "legacy");
    assert.equal(e.opaque.fields.length, 14);
    assert.equal(hex(e.response.responderNonce)?.slice(0, 8), "b4b8a06a");
  });

  it("when the signature span is computed, it is bytes [0, 4021) and the last 96 bytes are the signature", () => {
    assert.equal(e.signedLength, 4021);
    assert.equal(e.signature.length, 96);
    assert.deepEqual(e.signature, report.subarray(4021));
  });

  it("when the opaque data is read, it yields the versions, ids, NVDEC0 status and FWID PROVENANCE.md states", () => {
    assert.equal(e.driverVersion, "550.90.07");
    assert.equal(hex(e.vbiosRaw), "009f009601000000");
    assert.equal(e.vbiosVersion, "96.00.9F.00.01");
    assert.deepEqual([e.project, e.projectSku, e.chipSku], ["1010", "0200", "882"]);
    assert.equal(e.nvdec0Status, 0x55);
    assert.equal(
      hex(e.fwid),
      "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d",
    );
    assert.equal(e.measurementCounts?.length, 64);
  });

  it("when the evidence comes as raw bytes, with a trailing newline or in upper case, it parses the same", () => {
    for (const input of [report, `${reportText}\n`, `  ${reportText.toUpperCase()}  `, Buffer.from(reportText)]) {
      assert.equal(hex(parseGpuEvidence(toEvidenceBytes(input)).raw), hex(report));
    }
  });

  it("when Buffer does not exist (a browser), hex text as a string or as bytes still reads the same", () => {
    const text = new TextEncoder().encode(`${reportText.toUpperCase()}\n`);
    const saved = Object.getOwnPropertyDescriptor(globalThis, "Buffer")!;
    Reflect.deleteProperty(globalThis, "Buffer");
    let fromText: Uint8Array;
    let fromBytes: Uint8Array;
    try {
      assert.equal(typeof (globalThis as { Buffer?: unknown }).Buffer, "undefined");
      fromText = toEvidenceBytes(reportText);
      fromBytes = toEvidenceBytes(text);
    } finally {
      Object.defineProperty(globalThis, "Buffer", saved);
    }
    assert.equal(hex(fromText), hex(report));
    assert.equal(hex(fromBytes), hex(report));
  });
});

describe("formatVbiosVersion", () => {
  it("when given NVIDIA's raw field, it reproduces nvtrust's format_vbios_version and encodeVbiosVersion inverts it", () => {
    assert.equal(formatVbiosVersion(Buffer.from("009f009601000000", "hex")), "96.00.9F.00.01");
    assert.equal(formatVbiosVersion(Buffer.from("00d900960f000000", "hex")), "96.00.D9.00.0F");
    assert.equal(formatVbiosVersion(Buffer.from("005e009601000000", "hex")), "96.00.5E.00.01");
    assert.equal(hex(encodeVbiosVersion("96.00.9F.00.01")), "009f009601000000");
  });

  it("when the field has an odd length or none, it is GPU_MALFORMED", () => {
    assert.equal(
      code(() => formatVbiosVersion(Uint8Array.of(1, 2, 3))),
      "GPU_MALFORMED",
    );
    assert.equal(
      code(() => formatVbiosVersion(new Uint8Array(0))),
      "GPU_MALFORMED",
    );
  });
});

describe("parseGpuEvidence refuses what does not add up", () => {
  const mutate = (f: (b: Uint8Array) => Uint8Array | void) => {
    const copy = report.slice();
    return f(copy) ?? copy;
  };

  it("when the evidence is truncated anywhere, it is GPU_MALFORMED", () => {
    for (const n of [0, 1, 36, 37, 100, 2000, 4000, 4020, 4116]) {
      assert.equal(
        code(() => parseGpuEvidence(report.subarray(0, n))),
        "GPU_MALFORMED",
        `length ${n}`,
      );
    }
  });

  it("when a byte is appended or a length field is changed, it is GPU_MALFORMED", () => {
    assert.equal(
      code(() => parseGpuEvidence(Uint8Array.from([...report, 0]))),
      "GPU_MALFORMED",
    );
    // MeasurementRecordLength is at response offset 5 (evidence 42); OpaqueLength after the record and nonce.
    assert.equal(
      code(() => parseGpuEvidence(mutate((b) => void (b[42] = b[42]! + 1)))),
      "GPU_MALFORMED",
    );
    const opaqueLength = 37 + 8 + 3520 + 32;
    assert.equal(
      code(() => parseGpuEvidence(mutate((b) => void (b[opaqueLength] = b[opaqueLength]! - 1)))),
      "GPU_MALFORMED",
    );
    // First block's MeasurementSize (evidence 37 + 8 + 2).
    assert.equal(
      code(() => parseGpuEvidence(mutate((b) => void (b[47] = 0x34)))),
      "GPU_MALFORMED",
    );
  });

  it("when a code, version, spec or block index is wrong, it is GPU_MALFORMED", () => {
    const cases: [number, number][] = [
      [0, 0x10], // request version
      [1, 0xe1], // request code
      [2, 0x00], // no signature requested
      [37, 0x12], // response version differs
      [38, 0x61], // response code
      [41, 0x00], // no blocks
      [46, 0x02], // block 1 not DMTF
      [45, 0x02], // block index 2 twice
      [45, 0x00], // block index 0
    ];
    for (const [at, value] of cases) {
      assert.equal(
        code(() => parseGpuEvidence(mutate((b) => void (b[at] = value)))),
        "GPU_MALFORMED",
        `byte ${at}`,
      );
    }
  });

  it("when the evidence is neither hex text nor raw SPDM bytes, it is GPU_MALFORMED", () => {
    for (const input of ["", "abc", "zz", "0x", Uint8Array.of(0x12, 0xe0)]) {
      assert.equal(
        code(() => parseGpuEvidence(toEvidenceBytes(input))),
        "GPU_MALFORMED",
      );
    }
    assert.equal(
      code(() => parseGpuEvidence("11e0" as unknown as Uint8Array)),
      "GPU_MALFORMED",
    );
    assert.equal(
      code(() => parseGpuEvidence(new Uint8Array((1 << 20) + 1))),
      "GPU_MALFORMED",
    );
  });
});

describe("parseGpuEvidence with the simulator's layouts", () => {
  const sim = createGpuSimulator({ now: NOW });
  const nonce = new Uint8Array(32).fill(7);

  it("when the opaque data has an unknown type, it is kept and not fatal", () => {
    const e = parseGpuEvidence(
      sim.signEvidence({ nonce, extraOpaque: [{ type: 0x1234, value: Uint8Array.of(1, 2, 3) }] }),
    );
    const unknown = e.opaque.fields.find((f) => f.type === 0x1234);
    assert.equal(unknown?.name, "UNKNOWN_4660");
    assert.equal(hex(unknown?.value), "010203");
  });

  it("when the NVDAOD format is used, the header and value types are read and the fields are the same", () => {
    const e = parseGpuEvidence(sim.signEvidence({ nonce, opaqueFormat: "nvdaod" }));
    assert.equal(e.opaque.format, "nvdaod");
    assert.deepEqual(e.opaque.version, { major: 2, minor: 0 });
    assert.ok(e.opaque.fields.every((f) => f.valueType === 0x82));
    assert.equal(e.driverVersion, sim.driverVersion);
    assert.equal(e.vbiosVersion, sim.vbiosVersion);
    assert.equal(hex(e.fwid), hex(sim.fwid));
  });

  it("when a named field appears twice, or the opaque version is newer than known, it is GPU_MALFORMED", () => {
    const twice = sim.signEvidence({ nonce, extraOpaque: [{ type: 3, value: Buffer.from("1.2.3") }] });
    assert.equal(
      code(() => parseGpuEvidence(twice)),
      "GPU_MALFORMED",
    );
    const newer = sim.signEvidence({ nonce, extraOpaque: [{ type: 34, value: Uint8Array.of(3) }] });
    assert.equal(
      code(() => parseGpuEvidence(newer)),
      "GPU_MALFORMED",
    );
  });

  it("when the firmware reports no FWID, the evidence still parses and fwid is undefined", () => {
    assert.equal(parseGpuEvidence(sim.signEvidence({ nonce, fwid: null })).fwid, undefined);
  });
});
