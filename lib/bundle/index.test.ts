import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope } from "../dsse/index.ts";
import { ProvenantError } from "../errors.ts";
import { buildEvalStatement, buildOmsStatement, validateStatement } from "../intoto/index.ts";
import { evalInput, sampleHash } from "../intoto/testing.ts";
import { checkSchema, type Schema } from "../oms/schema-check.ts";
import {
  BUNDLE_MEDIA_TYPE,
  findManifest,
  manifestDigestOf,
  readBundle,
  writeBundle,
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

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error.code;
  }
  assert.fail("expected an error");
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

  it("when GPU evidence is present and well formed, it is kept", () => {
    const bundle = makeBundle();
    bundle.evidence.gpu = [
      {
        type: "nvidia-hopper-spdm",
        report: "abcd",
        certChain: "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n",
      },
    ];
    assert.deepEqual(readBundle(writeBundle(bundle)), bundle);
  });
});
