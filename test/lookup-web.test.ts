// The explorer's own modules run under Node (no Web Workers here: the page's in-thread path, the same hashRange the
// workers run) against lib: the OMS root digest equals lib/oms hashModel for files and shards, through WebCrypto and
// through hash-wasm; the bundle check agrees with lib/dsse, lib/bundle and lib/snp on good, tampered and odd bundles.
import assert from "node:assert/strict";
import { createHash, createPublicKey } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { findManifest, manifestDigestOf, measurementHashOfBundle, readBundle } from "../lib/bundle/index.ts";
import { verifyEnvelope } from "../lib/dsse/index.ts";
import { hashModel } from "../lib/oms/index.ts";
import { parseReport } from "../lib/snp/parse.ts";
import { chainChecks, checkBundle, MANIFEST_KIND_LABELS } from "../web/src/bundle.ts";
import { fasterWholeEngine, hashRange } from "../web/src/hash.ts";
import { hashModelFiles, toModelFiles } from "../web/src/oms.ts";
import { parseVerifierPolicy, verifyBundle } from "../offchain/pipeline/index.ts";
import { createBundleFactory } from "../offchain/testing/bundles.ts";
import { createGpuBundleFactory } from "../offchain/testing/gpu-bundles.ts";
import { makeServingBundle, servingPolicy } from "../offchain/testing/serving.ts";
import { digestOf, makeTestBundle } from "./lookup-fixture.ts";

/** The simulators' clock and the verification time: nothing here depends on the day the tests run. */
const NOW = new Date("2026-11-27T12:00:00Z");

function bytesOf(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 32) Buffer.from(digestOf(`${seed}${i}`), "hex").copy(out, i);
  return out;
}

/** What lib says of a bundle: every envelope verifies with the bundle key, the manifest digest, the product. */
function libView(bytes: Uint8Array) {
  const bundle = readBundle(bytes);
  const key = createPublicKey({ key: Buffer.from(bundle.signer.publicKey, "base64"), format: "der", type: "spki" });
  const signed = bundle.envelopes.every((e) => {
    try {
      verifyEnvelope(e, key);
      return true;
    } catch {
      return false;
    }
  });
  const report = parseReport(new Uint8Array(Buffer.from(bundle.evidence.cpu.report, "base64")));
  return {
    signed,
    manifestDigest: manifestDigestOf(findManifest(bundle).envelope),
    product: report.productFromCpuid ?? "unknown",
  };
}

// Tests poke arbitrary fields of parsed JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function edit(bytes: Uint8Array, change: (json: Record<string, any>) => void): Uint8Array {
  const json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  change(json);
  return new Uint8Array(Buffer.from(JSON.stringify(json)));
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "provenant-web-oms-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("explorer in-browser hashing (the page's code under Node)", () => {
  const files: Record<string, Buffer> = {
    "weights.gguf": bytesOf("w", 9 * 1024 * 1024 + 17),
    "config.json": Buffer.from('{"a":1}'),
    "tokenizer/vocab.txt": bytesOf("v", 4096),
    "a-b/x.bin": bytesOf("x", 100),
    "a/b.bin": bytesOf("y", 0),
    ".git/HEAD": Buffer.from("ref: main"),
    ".gitignore": Buffer.from("*.tmp"),
  };
  let model: string;
  const dropped = () =>
    toModelFiles(
      Object.entries(files).map(([name, data]) => ({
        file: new File([new Uint8Array(data)], path.basename(name)),
        relativePath: `model/${name}`,
      })),
    );
  before(async () => {
    model = path.join(dir, "model");
    for (const [name, data] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(model, name)), { recursive: true });
      await writeFile(path.join(model, name), data);
    }
  });

  it("when given a model folder, it computes lib/oms's root digest with WebCrypto, ignoring OMS's git paths", async () => {
    const expected = await hashModel(model);
    const progress: number[] = [];
    const got = await hashModelFiles(dropped(), { onProgress: (done) => progress.push(done) });
    assert.equal(got.rootDigest, expected.rootDigest);
    assert.deepEqual(got.files, expected.files);
    assert.deepEqual(got.engines, ["webcrypto"]);
    assert.equal(got.workers, 0, "Node has no Web Workers: the page-thread path");
    assert.equal(progress.at(-1), expected.totalBytes);
  });

  it("when a file is above the WebCrypto bound, it streams through hash-wasm to the same digest", async () => {
    const expected = await hashModel(model);
    const got = await hashModelFiles(dropped(), { webCryptoMaxBytes: 1024 * 1024 });
    assert.equal(got.rootDigest, expected.rootDigest);
    assert.deepEqual([...got.engines].sort(), ["hash-wasm", "webcrypto"]);
  });

  it("when an engine is forced, or measured for a file of 16 MiB or more, every range takes it, same digest", async () => {
    const expected = await hashModel(model);
    const wasm = await hashModelFiles(dropped(), { engine: "hash-wasm" });
    assert.equal(wasm.rootDigest, expected.rootDigest);
    assert.deepEqual(wasm.engines, ["hash-wasm"]);
    const big = Buffer.alloc(17 * 1024 * 1024, "a 17 MiB model");
    const one = toModelFiles([{ file: new File([new Uint8Array(big)], "big.bin") }]);
    const auto = await hashModelFiles(one);
    assert.deepEqual(auto.engines, [await fasterWholeEngine()]);
    assert.equal(auto.rootDigest, createHash("sha256").update(createHash("sha256").update(big).digest()).digest("hex"));
  });

  it("when the shards method is asked for, it gives lib/oms's shard resources and root", async () => {
    const expected = await hashModel(model, { method: "shards", shardSize: 4 * 1024 * 1024 });
    const got = await hashModelFiles(dropped(), { method: "shards", shardSize: 4 * 1024 * 1024 });
    assert.equal(got.rootDigest, expected.rootDigest);
    assert.deepEqual(
      got.resources,
      expected.resources.map((r) => ({ name: r.name, digest: r.digest })),
    );
    assert.deepEqual(got.files, expected.files);
  });

  it("when given one file, it is a single-file model with lib/oms's digest", async () => {
    const data = bytesOf("single", 3 * 1024 * 1024);
    await writeFile(path.join(dir, "tiny.gguf"), data);
    const expected = await hashModel(path.join(dir, "tiny.gguf"));
    const got = await hashModelFiles(toModelFiles([{ file: new File([new Uint8Array(data)], "tiny.gguf") }]));
    assert.equal(got.rootDigest, expected.rootDigest);
  });

  it("when only ignored files are dropped, it refuses with OMS_MALFORMED as lib/oms does", async () => {
    await assert.rejects(
      hashModelFiles(toModelFiles([{ file: new File(["x"], "HEAD"), relativePath: "m/.git/HEAD" }])),
      { code: "OMS_MALFORMED" },
    );
  });
});

/** A Blob whose stream() is not a byte stream (no BYOB reader), as in browsers without one. */
class PlainStreamBlob extends Blob {
  override slice(start?: number, end?: number): Blob {
    return new PlainStreamBlob([super.slice(start, end)]);
  }
  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const reader = super.stream().getReader();
    return new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    });
  }
}

/** A Blob that announces more bytes than it gives: a file that shrank after it was chosen. */
class ShrunkBlob extends Blob {
  override get size(): number {
    return super.size + 10;
  }
  override slice(): Blob {
    return this;
  }
}

describe("explorer range hashing", () => {
  const data = bytesOf("range", 5 * 1024 * 1024 + 5);
  const expected = new Uint8Array(
    createHash("sha256")
      .update(data.subarray(1000, 5 * 1024 * 1024))
      .digest(),
  );

  it("when the stream has a BYOB reader or not, both engines give the SHA-256 of the range", async () => {
    for (const blob of [new Blob([new Uint8Array(data)]), new PlainStreamBlob([new Uint8Array(data)])]) {
      for (const engine of ["webcrypto", "hash-wasm"] as const) {
        const got = await hashRange(blob, 1000, 5 * 1024 * 1024, { engine });
        assert.deepEqual(got.digest, expected, `${blob.constructor.name} ${got.engine}`);
      }
    }
  });

  it("when the file gives fewer bytes than it announced, it is IO_ERROR on either engine", async () => {
    for (const blob of [new ShrunkBlob([new Uint8Array(data)])]) {
      for (const engine of ["webcrypto", "hash-wasm"] as const) {
        await assert.rejects(hashRange(blob, 0, blob.size, { engine }), { code: "IO_ERROR" });
      }
    }
  });
});

describe("explorer in-browser bundle check agrees with lib", () => {
  it("when signed with P-384 and DER, it verifies like lib/dsse and finds lib's manifest digest and product", async () => {
    const b = await makeTestBundle(digestOf("m1"));
    const check = await checkBundle(b.bytes);
    const lib = libView(b.bytes);
    assert.equal(check.allSignaturesValid, lib.signed);
    assert.equal(check.allSignaturesValid, true);
    assert.equal(check.curve, "P-384");
    assert.equal(check.bindingKeyOk && check.bindingNonceOk, true);
    assert.equal(check.manifestDigest, lib.manifestDigest);
    assert.equal(check.manifestDigest, b.manifestDigest);
    assert.equal(check.modelHash, digestOf("m1"));
    assert.equal(check.measurementHash, b.measurementHash);
    assert.equal(check.measurementHash, measurementHashOfBundle(readBundle(b.bytes)));
    assert.equal(check.evidence?.product, lib.product);
    assert.equal(check.evidence?.product, "Genoa");
  });

  it("when signed with P-256 and IEEE-P1363, it verifies the signatures as lib does", async () => {
    const b = await makeTestBundle(digestOf("m2"), { curve: "P-256", encoding: "ieee-p1363" });
    const check = await checkBundle(b.bytes);
    assert.equal(check.curve, "P-256");
    assert.equal(check.allSignaturesValid, true);
    assert.equal(libView(b.bytes).signed, true);
  });

  it("when the payload was changed after signing, both the page and lib refuse the signature", async () => {
    const b = await makeTestBundle(digestOf("m3"));
    const tampered = edit(b.bytes, (json) => {
      const payload = JSON.parse(Buffer.from(json.envelopes[0].payload, "base64").toString("utf8"));
      payload.subject[0].digest.sha256 = digestOf("other");
      json.envelopes[0].payload = Buffer.from(JSON.stringify(payload)).toString("base64");
    });
    assert.equal((await checkBundle(tampered)).allSignaturesValid, false);
    assert.equal(libView(tampered).signed, false);
  });

  it("when the CPUID names a family 1Ah model lib does not map, the page says unknown as lib does (not Turin)", async () => {
    const b = await makeTestBundle(digestOf("m4"));
    for (const [family, model, expected] of [
      [0x1a, 0x02, "Turin"],
      [0x1a, 0x50, "unknown"],
      [0x19, 0x01, "Milan"],
      [0x19, 0xa1, "Genoa"],
    ] as const) {
      const bytes = edit(b.bytes, (json) => {
        const report = Buffer.from(json.evidence.cpu.report, "base64");
        report[0x188] = family;
        report[0x189] = model;
        json.evidence.cpu.report = report.toString("base64");
      });
      assert.equal((await checkBundle(bytes)).evidence?.product, expected);
      assert.equal(libView(bytes).product, expected);
    }
  });

  it("when the report does not parse for lib/snp, the page reports lib's code instead of inventing fields", async () => {
    const b = await makeTestBundle(digestOf("m5"));
    const bytes = edit(b.bytes, (json) => {
      const report = Buffer.from(json.evidence.cpu.report, "base64");
      report[0x4c] = 1; // reserved, must be zero (56860 Table 23)
      json.evidence.cpu.report = report.toString("base64");
    });
    const check = await checkBundle(bytes);
    assert.equal(check.evidence, null);
    assert.equal(check.reportError?.code, "SNP_MALFORMED");
    // REPORT_DATA is read by lib/snp too: a report it refuses binds neither the key nor the nonce.
    assert.equal(check.bindingKeyOk || check.bindingNonceOk, false);
    assert.equal((await checkBundle(b.bytes)).bindingKeyOk, true);
  });

  it("when a simulator bundle carries GPU evidence, the page's measurementHash and manifest digest are the record's", async () => {
    const keyDir = path.join(dir, "gpu-sim");
    const factory = await createGpuBundleFactory({ now: NOW, keyDir });
    const policy = parseVerifierPolicy(factory.policyJson);
    for (const gpus of [[], ["good"], ["good", "good"]] as "good"[][]) {
      const made = factory.make({ seed: `web-${gpus.length}`, gpus });
      const verdict = verifyBundle(made.bytes, { policy, now: NOW });
      assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
      const check = await checkBundle(made.bytes);
      assert.equal(check.allSignaturesValid && check.bindingKeyOk && check.bindingNonceOk, true);
      assert.equal(check.gpus, gpus.length);
      assert.equal(`0x${check.measurementHash}`, verdict.record!.measurementHash);
      assert.equal(check.manifestDigest, verdict.record!.manifestDigest.replace(/^0x/, ""));
      assert.equal(check.modelHash, made.modelHash);
      assert.equal(check.evidence?.product, libView(made.bytes).product);
    }
  });

  it("when the bundle is a serving bundle, the page labels its manifest serving (not eval) as lib/intoto does", async () => {
    const factory = await createBundleFactory({ now: NOW, keyDir: path.join(dir, "serving-sim") });
    const serving = makeServingBundle(factory, { seed: "web-serving" });
    const verdict = verifyBundle(serving.bytes, { policy: servingPolicy(factory), now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    assert.equal(verdict.record!.kind, 3);
    const check = await checkBundle(serving.bytes);
    assert.equal(check.manifestKind, "serving");
    assert.equal(MANIFEST_KIND_LABELS[check.manifestKind], "serving");
    assert.equal(check.allSignaturesValid && check.bindingKeyOk && check.bindingNonceOk, true);
    assert.equal(check.manifestDigest, serving.servingManifest);
    assert.equal(check.modelHash, serving.modelRoot);
    assert.equal(check.parentModelHash, serving.logId);
    // The other kinds keep their labels: a fine-tune is a fine-tune, an eval is shown as the audit it is recorded as.
    const finetune = await checkBundle(factory.make({ seed: "web-ft", kind: "finetune" }).bytes);
    assert.deepEqual([finetune.manifestKind, MANIFEST_KIND_LABELS[finetune.manifestKind]], ["finetune", "fine-tune"]);
    const audit = await checkBundle(factory.make({ seed: "web-eval", kind: "eval" }).bytes);
    assert.deepEqual([audit.manifestKind, MANIFEST_KIND_LABELS[audit.manifestKind]], ["eval", "audit"]);
  });

  it("when the chain's record differs from a fine-tune bundle in model, parent, measurement or is revoked, the page's chain checks fail as audit's do", async () => {
    const factory = await createBundleFactory({ now: NOW, keyDir: path.join(dir, "chain-sim") });
    const made = factory.make({ seed: "web-chain", kind: "finetune" });
    const verdict = verifyBundle(made.bytes, { policy: factory.policy, now: NOW });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    const check = await checkBundle(made.bytes);
    // The record as the registry client returns it: lowercase hex without 0x, null for no parent.
    const hex = (v: string) => v.replace(/^0x/, "").toLowerCase();
    const record: NonNullable<Parameters<typeof chainChecks>[1]> = {
      modelHash: hex(verdict.record!.modelHash),
      parentModelHash: hex(verdict.record!.parentModelHash),
      measurementHash: hex(verdict.record!.measurementHash),
      revoked: false,
      revocationReason: null,
    };
    const failed = (r: Parameters<typeof chainChecks>[1]) =>
      chainChecks(check, r)
        .filter((c) => !c.ok)
        .map((c) => c.text);
    assert.deepEqual(failed(record), []);
    assert.equal(chainChecks(check, record).length, 5);
    assert.deepEqual(failed(null), ["manifest not recorded on chain"]);
    assert.match(failed({ ...record, parentModelHash: digestOf("another base") }).join(), /^parent model: chain /);
    assert.match(failed({ ...record, parentModelHash: null }).join(), /^parent model: chain none, bundle /);
    assert.deepEqual(failed({ ...record, modelHash: digestOf("another model") }), ["same model hash on chain"]);
    assert.deepEqual(failed({ ...record, measurementHash: digestOf("another image") }), [
      "same measurement hash on chain",
    ]);
    assert.deepEqual(failed({ ...record, revoked: true, revocationReason: "bad" }), ["revoked: bad"]);
  });

  it("when the file is not a bundle lib accepts, the page throws lib's code", async () => {
    const b = await makeTestBundle(digestOf("m6"));
    await assert.rejects(checkBundle(Buffer.from("{}")), { code: "BUNDLE_MALFORMED" });
    await assert.rejects(checkBundle(Buffer.from("nope")), { code: "BUNDLE_MALFORMED" });
    const extra = edit(b.bytes, (json) => (json.extra = 1));
    assert.throws(() => readBundle(extra), { code: "BUNDLE_MALFORMED" });
    await assert.rejects(checkBundle(extra), { code: "BUNDLE_MALFORMED" });
    const badKey = edit(b.bytes, (json) => (json.signer.publicKey = Buffer.from("not a key").toString("base64")));
    await assert.rejects(checkBundle(badKey), { code: "BUNDLE_MALFORMED" });
  });
});
