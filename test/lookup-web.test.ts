// The explorer's in-browser code run under Node: its OMS root digest equals lib/oms hashModel, and its DSSE check
// accepts P-384/DER and P-256/P1363 signatures and refuses a tampered one.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

import { hashModel } from "../lib/oms/index.ts";
import { checkBundle } from "../web/src/bundle.ts";
import { hashModelFiles, toModelFiles } from "../web/src/oms.ts";
import { digestOf, makeTestBundle } from "./lookup-fixture.ts";

function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 32) Buffer.from(digestOf(`${seed}${i}`), "hex").copy(out, i);
  return out;
}

describe("explorer in-browser hashing", () => {
  it("when given a model folder, it computes the same OMS root digest as lib/oms", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "provenant-web-oms-"));
    const model = path.join(dir, "model");
    const files: Record<string, Buffer> = {
      "weights.gguf": bytesOf("w", 9 * 1024 * 1024 + 17),
      "config.json": Buffer.from('{"a":1}'),
      "tokenizer/vocab.txt": bytesOf("v", 4096),
      "a-b/x.bin": bytesOf("x", 100),
      "a/b.bin": bytesOf("y", 0),
      ".git/HEAD": Buffer.from("ref: main"),
      ".gitignore": Buffer.from("*.tmp"),
    };
    for (const [name, data] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(model, name)), { recursive: true });
      await writeFile(path.join(model, name), data);
    }
    const expected = await hashModel(model);
    const dropped = Object.entries(files).map(([name, data]) => ({
      file: new File([new Uint8Array(data)], path.basename(name)),
      relativePath: `model/${name}`,
    }));
    const got = await hashModelFiles(toModelFiles(dropped));
    assert.equal(got.rootDigest, expected.rootDigest);
    assert.equal(got.files.length, 5);
  });

  it("when given one file, it computes the same OMS root digest as lib/oms", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "provenant-web-oms-"));
    const data = bytesOf("single", 3 * 1024 * 1024);
    await writeFile(path.join(dir, "tiny.gguf"), data);
    const expected = await hashModel(path.join(dir, "tiny.gguf"));
    const got = await hashModelFiles(toModelFiles([{ file: new File([new Uint8Array(data)], "tiny.gguf") }]));
    assert.equal(got.rootDigest, expected.rootDigest);
  });
});

describe("explorer in-browser bundle check", () => {
  it("when signed with P-384 and DER, it verifies signatures and binding and computes the manifest digest", async () => {
    const b = await makeTestBundle(digestOf("m1"));
    const check = checkBundle(b.bytes);
    assert.equal(check.allSignaturesValid, true);
    assert.equal(check.curve, "P-384");
    assert.equal(check.bindingKeyOk && check.bindingNonceOk, true);
    assert.equal(check.manifestDigest, b.manifestDigest);
    assert.equal(check.modelHash, digestOf("m1"));
    assert.equal(check.evidence.measurementHash, b.measurementHash);
    assert.equal(check.evidence.product, "Genoa");
  });

  it("when signed with P-256 and IEEE-P1363, it verifies the signatures", async () => {
    const b = await makeTestBundle(digestOf("m2"), { curve: "P-256", encoding: "ieee-p1363" });
    const check = checkBundle(b.bytes);
    assert.equal(check.curve, "P-256");
    assert.equal(check.allSignaturesValid, true);
  });

  it("when the payload was changed after signing, the signature check fails", async () => {
    const b = await makeTestBundle(digestOf("m3"));
    const json = JSON.parse(Buffer.from(b.bytes).toString("utf8"));
    const payload = JSON.parse(Buffer.from(json.envelopes[0].payload, "base64").toString("utf8"));
    payload.subject[0].digest.sha256 = digestOf("other");
    json.envelopes[0].payload = Buffer.from(JSON.stringify(payload)).toString("base64");
    assert.equal(checkBundle(Buffer.from(JSON.stringify(json))).allSignaturesValid, false);
  });

  it("when the file is not a bundle, it throws BUNDLE_MALFORMED", () => {
    assert.throws(() => checkBundle(Buffer.from("{}")), { code: "BUNDLE_MALFORMED" });
    assert.throws(() => checkBundle(Buffer.from("nope")), { code: "BUNDLE_MALFORMED" });
  });
});
