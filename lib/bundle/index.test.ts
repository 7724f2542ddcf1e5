import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope } from "../dsse/index.ts";
import { ProvenantError } from "../errors.ts";
import { buildEvalStatement, buildOmsStatement, validateStatement } from "../intoto/index.ts";
import { evalInput, sampleHash } from "../intoto/testing.ts";
import { checkSchema, type Schema } from "../oms/schema-check.ts";
import { MAX_EVIDENCE_BYTES } from "../gpu/index.ts";
import {
  buildServingStatement,
  encodeStatement,
  generateServingKey,
  logIdOf,
  signStatementPayload,
} from "../receipt/index.ts";
import {
  BUNDLE_MEDIA_TYPE,
  findManifest,
  manifestDigestOf,
  MAX_BUNDLE_GPUS,
  MAX_GPU_CERT_CHAIN_CHARS,
  MAX_GPU_EVIDENCE_BYTES,
  MAX_GPU_OCSP,
  MAX_GPU_OCSP_BYTES,
  MAX_GPU_RIM_BYTES,
  MAX_GPU_RIMS,
  MAX_JSON_DEPTH,
  measurementHashOf,
  parseStrictJson,
  readBundle,
  readBundleDecoded,
  writeBundle,
  type GpuEvidence,
  type ProvenanceBundle,
} from "./index.ts";

// Tests poke arbitrary fields of parsed JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
const enc = new TextEncoder();

function makeBundle(): ProvenanceBundle {
  const oms = signEnvelope(
    enc.encode(JSON.stringify(buildOmsStatement("model", sampleHash))),
    INTOTO_PAYLOAD_TYPE,
    privateKey,
  );
  const manifest = signEnvelope(
    enc.encode(JSON.stringify(buildEvalStatement(evalInput()))),
    INTOTO_PAYLOAD_TYPE,
    privateKey,
  );
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes: [oms, manifest],
    signer: { publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64") },
    nonce: "0".repeat(64),
    evidence: {
      cpu: {
        type: "sev-snp",
        report: Buffer.alloc(1184, 1).toString("base64"),
        vcek: Buffer.from("vcek").toString("base64"),
        provider: "sim",
      },
    },
  };
}

function errorOf(fn: () => unknown): ProvenantError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error;
  }
  assert.fail("expected an error");
}

function codeOf(fn: () => unknown): string {
  return errorOf(fn).code;
}

describe("provenance bundle", () => {
  it("when written and read back, it is identical and the bytes are deterministic", () => {
    const bundle = makeBundle();
    const bytes = writeBundle(bundle);
    const read = readBundle(bytes);
    assert.deepEqual(read, bundle);
    assert.deepEqual(writeBundle(read), bytes);
  });

  it("when asked for the manifest, it finds the eval envelope and digests its payload as signed", () => {
    const bundle = makeBundle();
    const { envelope, index } = findManifest(bundle);
    assert.equal(index, 1);
    const payload = verifyEnvelope(envelope, publicKey);
    assert.equal(validateStatement(JSON.parse(Buffer.from(payload).toString())).kind, "eval");
    assert.equal(manifestDigestOf(envelope), createHash("sha256").update(payload).digest("hex"));
  });

  it("when the manifest is a serving statement (provenant serve), it finds it; beside an eval manifest, BUNDLE_MALFORMED", () => {
    const bundle = makeBundle();
    const s = generateServingKey();
    const logId = logIdOf(s.spki);
    const statement = buildServingStatement({
      modelName: "model",
      modelRoot: sampleHash.rootDigest,
      servingKey: s.spki,
      jobCodeDigest: "ef".repeat(32),
      startedOn: new Date("2026-03-01T12:00:00Z"),
      epoch: { maxReceipts: 1000, maxSeconds: 60 },
      admission: { require: "audit", manifestDigest: "cd".repeat(32) },
      runtime: { name: "provenant-serve", version: "0.1.0", gpu: false },
    });
    const serving = signStatementPayload(encodeStatement(statement), s.privateKey, logId);
    const { envelope, index } = findManifest({ ...bundle, envelopes: [bundle.envelopes[0]!, serving] });
    assert.equal(index, 1);
    const read = validateStatement(JSON.parse(Buffer.from(verifyEnvelope(envelope, s.publicKey)).toString()));
    assert.equal(read.kind, "serving");
    assert.equal(read.parentModelHash, logId);
    assert.equal(
      codeOf(() => findManifest({ ...bundle, envelopes: [...bundle.envelopes, serving] })),
      "BUNDLE_MALFORMED",
    );
  });

  it("when there is no manifest or two, it throws BUNDLE_MALFORMED", () => {
    const bundle = makeBundle();
    assert.equal(
      codeOf(() => findManifest({ ...bundle, envelopes: [bundle.envelopes[0]!] })),
      "BUNDLE_MALFORMED",
    );
    assert.equal(
      codeOf(() => findManifest({ ...bundle, envelopes: [bundle.envelopes[1]!, bundle.envelopes[1]!] })),
      "BUNDLE_MALFORMED",
    );
  });

  it("when larger than the limit, it throws BUNDLE_TOO_LARGE", () => {
    assert.equal(
      codeOf(() => readBundle(new Uint8Array(100), { maxBytes: 99 })),
      "BUNDLE_TOO_LARGE",
    );
    assert.equal(
      codeOf(() => readBundle(new Uint8Array(16 * 1024 * 1024 + 1))),
      "BUNDLE_TOO_LARGE",
    );
  });

  it("when not JSON, not UTF-8, duplicated or of the wrong shape, it throws BUNDLE_MALFORMED", () => {
    const good = JSON.parse(Buffer.from(writeBundle(makeBundle())).toString()) as Loose;
    const mutate = (f: (b: Loose) => void) => {
      const b = structuredClone(good);
      f(b);
      return enc.encode(JSON.stringify(b));
    };
    const cases: Uint8Array[] = [
      enc.encode(""),
      enc.encode("{"),
      new Uint8Array([0xff, 0xfe]),
      enc.encode('{"mediaType":"a","mediaType":"b"}'),
      enc.encode("[]"),
      mutate((b) => (b.mediaType = "application/json")),
      mutate((b) => (b.extra = 1)),
      mutate((b) => (b.envelopes = [])),
      mutate((b) => (b.envelopes[0].signatures = [])),
      mutate((b) => (b.signer.publicKey = "AAAA")),
      mutate((b) => (b.nonce = "xyz")),
      mutate((b) => (b.evidence.cpu.type = "tdx")),
      mutate((b) => (b.evidence.cpu.report = Buffer.alloc(100).toString("base64"))),
      mutate((b) => (b.evidence.cpu.report = "!!!")),
      mutate((b) => (b.evidence.cpu.provider = "qemu")),
      mutate((b) => (b.evidence.cpu.chain = ["%%%"])),
      mutate((b) => (b.evidence.gpu = [{ type: "nvidia-hopper-spdm", report: "zz", certChain: "x" }])),
      mutate((b) => (b.evidence.gpu = [])),
    ];
    for (const bytes of cases)
      assert.equal(
        codeOf(() => readBundle(bytes)),
        "BUNDLE_MALFORMED",
        Buffer.from(bytes).toString().slice(0, 80),
      );
    const dupInner = Buffer.from(writeBundle(makeBundle())).toString().replace('"nonce": ', '"nonce": "x", "nonce": ');
    assert.equal(
      codeOf(() => readBundle(enc.encode(dupInner))),
      "BUNDLE_MALFORMED",
    );
  });

  it("when read with its bytes decoded, it is readBundle's bundle with every base64 field's bytes, and the same refusals", () => {
    const made = makeBundle();
    made.evidence.cpu.chain = [Buffer.from("ask").toString("base64"), Buffer.from("ark").toString("base64url")];
    const bytes = writeBundle(made);
    const { bundle, decoded } = readBundleDecoded(bytes);
    assert.deepEqual(bundle, readBundle(bytes));
    const b64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
    assert.deepEqual(decoded.spki, b64(made.signer.publicKey));
    assert.equal(decoded.curve, "P-384");
    assert.deepEqual(decoded.report, b64(made.evidence.cpu.report));
    assert.deepEqual(decoded.vcek, b64(made.evidence.cpu.vcek));
    assert.deepEqual(decoded.chain, made.evidence.cpu.chain.map(b64));
    assert.deepEqual(
      decoded.envelopes,
      made.envelopes.map((e) => ({ payload: b64(e.payload), signatures: e.signatures.map((s) => b64(s.sig)) })),
    );
    const good = JSON.parse(Buffer.from(bytes).toString()) as Loose;
    const mutate = (f: (b: Loose) => void) => {
      const b = structuredClone(good);
      f(b);
      return enc.encode(JSON.stringify(b));
    };
    const refusal = (read: () => unknown) => {
      const error = errorOf(read);
      return `${error.code} ${error.message}`;
    };
    for (const bad of [
      mutate((b) => (b.envelopes[1].payload = "QQ=")),
      mutate((b) => (b.envelopes[0].signatures = [{ sig: "AAAA" }, { sig: "A-A+" }])),
      mutate((b) => (b.signer.publicKey = "AAAA")),
      mutate((b) => (b.evidence.cpu.vcek = "")),
      mutate((b) => (b.evidence.cpu.chain = ["AAAA", "%"])),
      enc.encode('{"mediaType":1,"mediaType":2}'),
    ])
      assert.equal(
        refusal(() => readBundleDecoded(bad)),
        refusal(() => readBundle(bad)),
      );
  });

  it("when bundle JSON is sound, the one-scan path reads what JSON.parse reads; a key repeated at any depth is refused", () => {
    const text = Buffer.from(writeBundle(makeBundle())).toString();
    assert.deepEqual(parseStrictJson(enc.encode(text)), JSON.parse(text));
    // A bundle's strings may hold escaped lone surrogates (JSON.parse's reading; payloads are what lib/json refuses).
    assert.deepEqual(parseStrictJson(enc.encode('{"a":"\\ud800"}')), { a: "\ud800" });
    const refusal = (input: string) => errorOf(() => parseStrictJson(enc.encode(input))).message;
    assert.match(refusal('{"a":{"b":[{"c":1,"c":2}]}}'), /bundle has a duplicate key "c" \(at offset 18\)/);
    assert.match(refusal('{"a":{"b":1},"a":2}'), /bundle has a duplicate key "a"/);
    assert.match(refusal('{"a":1,"\\u0061":2}'), /duplicate key/);
    const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    assert.deepEqual(parseStrictJson(enc.encode(deep(MAX_JSON_DEPTH))), JSON.parse(deep(MAX_JSON_DEPTH)));
    assert.match(refusal(deep(MAX_JSON_DEPTH + 1)), /deeper than 64/);
    assert.match(refusal("\ufeff{}"), /byte order mark/);
    assert.equal(errorOf(() => parseStrictJson(Uint8Array.of(0x22, 0xc3, 0x28, 0x22))).code, "BUNDLE_MALFORMED");
  });

  it("when a bundle carries an OMS statement, the statement meets the OMS v1.0 statement schema", () => {
    const schemas = new URL("../../test/fixtures/formats/oms-spec/schemas/v1.0/", import.meta.url);
    const registry = new Map<string, Schema>();
    for (const name of ["statement", "predicate"]) {
      const schema = JSON.parse(readFileSync(new URL(`${name}.schema.json`, schemas), "utf8")) as Schema;
      registry.set(schema.$id as string, schema);
    }
    const oms = readBundle(writeBundle(makeBundle())).envelopes[0]!;
    const statement = JSON.parse(Buffer.from(verifyEnvelope(oms, publicKey)).toString());
    assert.deepEqual(
      checkSchema(statement, registry.get("https://model_signing/statement/v1.0/schema")!, registry),
      [],
    );
  });

  const PEM = "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n";
  const gpuEntry = (): GpuEvidence => ({
    type: "nvidia-spdm",
    arch: "hopper",
    evidence: Buffer.from([0x11, 0xe0, 1, 0xff]).toString("base64"),
    certChain: PEM,
    rims: [Buffer.from("<SoftwareIdentity/>").toString("base64")],
    ocsp: [Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x00]).toString("base64")],
  });

  it("when GPU evidence is present and well formed, it is kept, with and without RIMs and OCSP, in a fixed key order", () => {
    const bundle = makeBundle();
    const bare: GpuEvidence = { type: "nvidia-spdm", arch: "blackwell", evidence: "EeA=", certChain: PEM };
    bundle.evidence.gpu = [gpuEntry(), bare];
    const bytes = writeBundle(bundle);
    assert.deepEqual(readBundle(bytes), bundle);
    const written = JSON.parse(Buffer.from(bytes).toString()) as Loose;
    assert.deepEqual(Object.keys(written.evidence.gpu[0]), ["type", "arch", "evidence", "certChain", "rims", "ocsp"]);
    assert.deepEqual(Object.keys(written.evidence.gpu[1]), ["type", "arch", "evidence", "certChain"]);
  });

  it("when a GPU entry has the old hopper shape, another type or arch, or a bad field, it is BUNDLE_MALFORMED naming the path", () => {
    const good = JSON.parse(Buffer.from(writeBundle(makeBundle())).toString()) as Loose;
    const withGpu = (f: (g: Loose) => void) => {
      const b = structuredClone(good);
      const g = gpuEntry() as unknown as Loose;
      f(g);
      b.evidence.gpu = [g];
      return enc.encode(JSON.stringify(b));
    };
    const cases: [Uint8Array, string][] = [
      [withGpu((g) => ((g.type = "nvidia-hopper-spdm"), (g.report = "abcd"))), "evidence.gpu[0]"],
      [withGpu((g) => (g.report = "abcd")), "evidence.gpu[0]"],
      [withGpu((g) => (g.type = "nvidia-spdm-v2")), "evidence.gpu[0].type"],
      [withGpu((g) => (g.arch = "ampere")), "evidence.gpu[0].arch"],
      [withGpu((g) => delete g.arch), "evidence.gpu[0].arch"],
      [withGpu((g) => (g.evidence = "")), "evidence.gpu[0].evidence"],
      [withGpu((g) => (g.evidence = "%%%")), "evidence.gpu[0].evidence"],
      [withGpu((g) => (g.certChain = "not pem")), "evidence.gpu[0].certChain"],
      [withGpu((g) => (g.rims = [])), "evidence.gpu[0].rims"],
      [withGpu((g) => (g.rims = "AAAA")), "evidence.gpu[0].rims"],
      [withGpu((g) => (g.rims = [7])), "evidence.gpu[0].rims[0]"],
      [withGpu((g) => (g.ocsp = ["!!"])), "evidence.gpu[0].ocsp[0]"],
      [withGpu((g) => (g.extra = true)), "evidence.gpu[0].extra"],
    ];
    for (const [bytes, path] of cases) {
      const error = errorOf(() => readBundle(bytes));
      assert.equal(error.code, "BUNDLE_MALFORMED", path);
      assert.equal(error.details?.path, path);
    }
  });

  it("when GPU entries exceed their bounds (count, sizes), they are refused before the content is decoded", () => {
    const good = JSON.parse(Buffer.from(writeBundle(makeBundle())).toString()) as Loose;
    const withGpus = (gpus: unknown[]) => {
      const b = structuredClone(good);
      b.evidence.gpu = gpus;
      return enc.encode(JSON.stringify(b));
    };
    const oversized = (field: "evidence" | "rims" | "ocsp", bytes: number) => {
      const g = gpuEntry() as unknown as Loose;
      const text = "A".repeat(Math.ceil(bytes / 3) * 4 + 4);
      if (field === "evidence") g.evidence = text;
      else g[field] = [text];
      return withGpus([g]);
    };
    const cases: [Uint8Array, string][] = [
      [withGpus(Array.from({ length: MAX_BUNDLE_GPUS + 1 }, gpuEntry)), "evidence.gpu"],
      [oversized("evidence", MAX_GPU_EVIDENCE_BYTES), "evidence.gpu[0].evidence"],
      [oversized("rims", MAX_GPU_RIM_BYTES), "evidence.gpu[0].rims[0]"],
      [oversized("ocsp", MAX_GPU_OCSP_BYTES), "evidence.gpu[0].ocsp[0]"],
      [withGpus([{ ...gpuEntry(), rims: Array(MAX_GPU_RIMS + 1).fill("AAAA") }]), "evidence.gpu[0].rims"],
      [withGpus([{ ...gpuEntry(), ocsp: Array(MAX_GPU_OCSP + 1).fill("AAAA") }]), "evidence.gpu[0].ocsp"],
      [
        withGpus([{ ...gpuEntry(), certChain: PEM + "x".repeat(MAX_GPU_CERT_CHAIN_CHARS) }]),
        "evidence.gpu[0].certChain",
      ],
    ];
    for (const [bytes, path] of cases) {
      const error = errorOf(() => readBundle(bytes));
      assert.equal(error.code, "BUNDLE_MALFORMED", path);
      assert.equal(error.details?.path, path);
    }
    // At the bounds exactly, it reads.
    assert.equal(readBundle(withGpus(Array.from({ length: MAX_BUNDLE_GPUS }, gpuEntry))).evidence.gpu?.length, 16);
  });

  it("when lib/bundle bounds GPU evidence, the bounds are lib/gpu's own", () => {
    assert.equal(MAX_GPU_EVIDENCE_BYTES, MAX_EVIDENCE_BYTES);
  });

  it("when the measurementHash is computed, it is SHA-256(MEASUREMENT) alone, else over the GPU digests' raw bytes", () => {
    // Vectors computed outside Node (Python hashlib): 48 bytes of 0x11, then 32 of 0xab and 32 of 0xcd.
    const measurement = new Uint8Array(48).fill(0x11);
    assert.equal(measurementHashOf(measurement), "eaa127dff9f9bbfa1dff5275a99464123998e95bf11dd579f2ffcab301bc7350");
    assert.equal(
      measurementHashOf(measurement, ["ab".repeat(32), "cd".repeat(32)]),
      "fabef5b510fcc13c4f8189db84b035db737486d517813dba402d50a71f3fb5c4",
    );
  });
});
