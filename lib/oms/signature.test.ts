import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../dsse/index.ts";
import { ProvenantError } from "../errors.ts";
import { PREDICATE_OMS } from "../intoto/index.ts";
import { checkSchema, type Schema } from "./schema-check.ts";
import { copyOmsSample } from "./testing.ts";
import {
  keyHintOf,
  paeCompat,
  parseOmsSignature,
  signModel,
  toOmsManifest,
  verifyModel,
  verifyOmsSignature,
  writeOmsSignature,
  type OmsSignature,
} from "./index.ts";

const T = new URL("../../test/fixtures/formats/", import.meta.url).pathname;
const SAMPLE = join(T, "model-transparency/v1.1.0-elliptic-key");
const KEYS = join(T, "model-transparency/keys/certificate");
const VECTORS = join(T, "oms-spec/test-vectors/v1.0");
const SCHEMAS = join(T, "oms-spec/schemas/v1.0");

const samplePublicKey = createPublicKey(readFileSync(join(KEYS, "signing-key-pub.pem")));
const rootCa = new X509Certificate(readFileSync(join(KEYS, "ca-cert.pem")));
const intCa = new X509Certificate(readFileSync(join(KEYS, "int-ca-cert.pem")));

const registry = new Map<string, Schema>();
for (const f of readdirSync(SCHEMAS)) {
  const schema = JSON.parse(readFileSync(join(SCHEMAS, f), "utf8")) as Schema;
  registry.set(schema.$id as string, schema);
}
const bundleSchema = registry.get("https://model_signing/bundle/v1.0/schema")!;
const statementSchema = registry.get("https://model_signing/statement/v1.0/schema")!;

function assertOmsSchemas(signatureBytes: Uint8Array): void {
  const json = JSON.parse(Buffer.from(signatureBytes).toString()) as { dsseEnvelope: { payload: string } };
  assert.deepEqual(checkSchema(json, bundleSchema, registry), []);
  const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, "base64").toString());
  assert.deepEqual(checkSchema(statement, statementSchema, registry), []);
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error.code;
  }
  assert.fail("expected an error");
}

let dir: string;
/** A writable copy of the reference sample in a fresh temp folder. */
const copySample = (): string => copyOmsSample(dir);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "provenant-oms-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("OMS signatures: the reference sample and test vectors", () => {
  it("when the sample is verified with its public key, it passes with the signed root digest", async () => {
    const verdict = await verifyModel(SAMPLE, readFileSync(join(SAMPLE, "model.sig")), {
      publicKey: samplePublicKey,
      signaturePath: join(SAMPLE, "model.sig"),
    });
    assert.equal(verdict.rootDigest, "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");
    assert.equal(keyHintOf(samplePublicKey), "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e");
  });

  it("when the sample is verified with its certificate-mode signature and chain, it passes", async () => {
    const model = copySample();
    writeFileSync(join(model, "model.sig"), readFileSync(join(VECTORS, "valid/certificate.bundle.json")));
    for (const trusted of [[rootCa], [rootCa, intCa]]) {
      const verdict = await verifyModel(model, readFileSync(join(model, "model.sig")), {
        trustedCertificates: trusted,
        signaturePath: join(model, "model.sig"),
      });
      assert.equal(verdict.rootDigest, "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");
    }
    const sig = readFileSync(join(model, "model.sig"));
    const opts = { signaturePath: join(model, "model.sig") };
    assert.equal(await codeOf(verifyModel(model, sig, { ...opts, trustedCertificates: [intCa] })), "OMS_CHAIN_INVALID");
    const other = execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "/dev/null",
        "-subj",
        "/CN=root-ca",
        "-days",
        "1",
        "-outform",
        "PEM",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    assert.equal(
      await codeOf(verifyModel(model, sig, { ...opts, trustedCertificates: [new X509Certificate(other)] })),
      "OMS_CHAIN_INVALID",
    );
    // The signer's key itself is also accepted for a certificate-mode file.
    await verifyModel(model, sig, { ...opts, publicKey: samplePublicKey });
  });

  it("when a file changes, disappears or is added, verification fails with the matching code", async () => {
    const sigOf = (m: string) => readFileSync(join(m, "model.sig"));
    const opts = (m: string) => ({ publicKey: samplePublicKey, signaturePath: join(m, "model.sig") });
    const changed = copySample();
    appendFileSync(join(changed, "signme-1"), "x");
    assert.equal(await codeOf(verifyModel(changed, sigOf(changed), opts(changed))), "OMS_FILE_CHANGED");
    const gone = copySample();
    unlinkSync(join(gone, "signme-2"));
    assert.equal(await codeOf(verifyModel(gone, sigOf(gone), opts(gone))), "OMS_FILE_MISSING");
    const added = copySample();
    mkdirSync(join(added, "extra"));
    writeFileSync(join(added, "extra/new"), "new");
    assert.equal(await codeOf(verifyModel(added, sigOf(added), opts(added))), "OMS_FILE_UNSIGNED");
    const ignored = copySample();
    writeFileSync(join(ignored, "ignore-me"), "anything: the signature ignores it");
    mkdirSync(join(ignored, ".git"));
    writeFileSync(join(ignored, ".git/HEAD"), "ref");
    await verifyModel(ignored, sigOf(ignored), opts(ignored));
    const allGone = copySample();
    unlinkSync(join(allGone, "signme-1"));
    unlinkSync(join(allGone, "signme-2"));
    assert.equal(await codeOf(verifyModel(allGone, sigOf(allGone), opts(allGone))), "OMS_FILE_MISSING");
  });

  it("when the key or any signed byte is wrong, it fails with OMS_BAD_SIGNATURE", async () => {
    const sig = parseOmsSignature(readFileSync(join(SAMPLE, "model.sig")));
    const other = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey;
    assert.equal(await codeOf(() => verifyOmsSignature(sig, { publicKey: other })), "OMS_BAD_SIGNATURE");
    const noHint = structuredClone(sig);
    noHint.verificationMaterial.publicKey = { hint: "" };
    assert.equal(await codeOf(() => verifyOmsSignature(noHint, { publicKey: other })), "OMS_BAD_SIGNATURE");
    const payload = Buffer.from(sig.dsseEnvelope.payload, "base64");
    for (let i = 0; i < payload.length; i += 97) {
      const t = Buffer.from(payload);
      t[i]! ^= 1;
      const bad = structuredClone(sig);
      bad.dsseEnvelope.payload = t.toString("base64");
      assert.equal(await codeOf(() => verifyOmsSignature(bad, { publicKey: samplePublicKey })), "OMS_BAD_SIGNATURE");
    }
    const s = Buffer.from(sig.dsseEnvelope.signatures[0]!.sig, "base64");
    for (let i = 0; i < s.length; i += 9) {
      const t = Buffer.from(s);
      t[i]! ^= 4;
      const bad = structuredClone(sig);
      bad.dsseEnvelope.signatures[0]!.sig = t.toString("base64");
      assert.equal(await codeOf(() => verifyOmsSignature(bad, { publicKey: samplePublicKey })), "OMS_BAD_SIGNATURE");
    }
  });

  it("when keyid is absent or null, or the key is given as publicKey.rawBytes, it still verifies", async () => {
    const base = JSON.parse(readFileSync(join(SAMPLE, "model.sig"), "utf8")) as OmsSignature;
    const variants: OmsSignature[] = [structuredClone(base), structuredClone(base), structuredClone(base)];
    delete variants[0]!.dsseEnvelope.signatures[0]!.keyid;
    variants[1]!.dsseEnvelope.signatures[0]!.keyid = null;
    variants[2]!.verificationMaterial.publicKey = {
      rawBytes: samplePublicKey.export({ type: "spki", format: "der" }).toString("base64"),
    };
    for (const v of variants) {
      const bytes = new TextEncoder().encode(JSON.stringify(v));
      await verifyModel(SAMPLE, bytes, { publicKey: samplePublicKey, signaturePath: join(SAMPLE, "model.sig") });
    }
  });

  it("when verificationMaterial holds two kinds of material or a bad certificate DER, it is OMS_MALFORMED", async () => {
    const key = JSON.parse(readFileSync(join(SAMPLE, "model.sig"), "utf8")) as OmsSignature;
    const cert = JSON.parse(readFileSync(join(VECTORS, "valid/certificate.bundle.json"), "utf8")) as OmsSignature;
    const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
    const both = structuredClone(key);
    both.verificationMaterial.x509CertificateChain = cert.verificationMaterial.x509CertificateChain!;
    assert.equal(await codeOf(() => parseOmsSignature(encode(both))), "OMS_MALFORMED");
    const keyAndCertificate = structuredClone(key);
    keyAndCertificate.verificationMaterial.certificate = { rawBytes: "MAA=" };
    assert.equal(await codeOf(() => parseOmsSignature(encode(keyAndCertificate))), "OMS_MALFORMED");
    // Base64 that decodes, but not to a certificate: in the chain, and as a keyless leaf certificate.
    const badChain = structuredClone(cert);
    badChain.verificationMaterial.x509CertificateChain!.certificates.push({ rawBytes: "MAMCAQE=" });
    assert.equal(await codeOf(() => parseOmsSignature(encode(badChain))), "OMS_MALFORMED");
    const badLeaf = structuredClone(cert);
    delete badLeaf.verificationMaterial.x509CertificateChain;
    badLeaf.verificationMaterial.certificate = { rawBytes: "AAEC" };
    badLeaf.verificationMaterial.tlogEntries = [{}];
    assert.equal(await codeOf(() => parseOmsSignature(encode(badLeaf))), "OMS_MALFORMED");
    // A signature object built in code (never parsed) with a bad leaf DER: OMS_MALFORMED too, not a TypeError.
    const built = structuredClone(cert);
    built.verificationMaterial.x509CertificateChain!.certificates = [{ rawBytes: "AAEC" }];
    assert.equal(await codeOf(() => verifyOmsSignature(built, { publicKey: samplePublicKey })), "OMS_MALFORMED");
    assert.equal(
      await codeOf(() => verifyOmsSignature(built, { trustedCertificates: [rootCa, intCa] })),
      "OMS_MALFORMED",
    );
  });

  it("when reading the OMS test vectors, valid ones parse and meet the schema, invalid ones fail with a code", async () => {
    for (const f of readdirSync(join(VECTORS, "valid"))) {
      const bytes = readFileSync(join(VECTORS, "valid", f));
      parseOmsSignature(bytes);
      assertOmsSchemas(bytes);
    }
    for (const f of readdirSync(join(VECTORS, "invalid"))) {
      assert.equal(
        await codeOf(() => parseOmsSignature(readFileSync(join(VECTORS, "invalid", f)))),
        "OMS_MALFORMED",
        f,
      );
    }
    const wrong = parseOmsSignature(readFileSync(join(VECTORS, "invalid-payload/wrong-predicate.bundle.json")));
    // Its payload was edited after signing: the signature fails, and the statement on its own is refused too.
    assert.equal(await codeOf(() => verifyOmsSignature(wrong, { publicKey: samplePublicKey })), "OMS_BAD_SIGNATURE");
    const payload = Buffer.from(wrong.dsseEnvelope.payload, "base64");
    assert.equal(await codeOf(() => toOmsManifest(payload)), "OMS_MALFORMED");
    const keyless = parseOmsSignature(readFileSync(join(VECTORS, "valid/sigstore.bundle.json")));
    assert.equal(await codeOf(() => verifyOmsSignature(keyless, { publicKey: samplePublicKey })), "OMS_MALFORMED");
  });
});

describe("OMS signatures: round trips", () => {
  let chain: { key: KeyObject; leaf: Uint8Array; root: X509Certificate } | undefined;
  before(() => {
    // A P-256 root and a signing certificate made with openssl (node:crypto cannot issue certificates).
    const d = join(dir, "pki");
    mkdirSync(d);
    const run = (...args: string[]) => execFileSync("openssl", args, { cwd: d, stdio: "ignore" });
    run(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "root.key",
      "-out",
      "root.pem",
      "-subj",
      "/CN=test-root",
      "-days",
      "2",
    );
    run(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
      "-subj",
      "/CN=signer",
    );
    writeFileSync(join(d, "ext"), "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n");
    run(
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "root.pem",
      "-CAkey",
      "root.key",
      "-CAcreateserial",
      "-out",
      "leaf.pem",
      "-days",
      "1",
      "-extfile",
      "ext",
    );
    chain = {
      key: createPrivateKey(readFileSync(join(d, "leaf.key"))),
      leaf: new Uint8Array(new X509Certificate(readFileSync(join(d, "leaf.pem"))).raw),
      root: new X509Certificate(readFileSync(join(d, "root.pem"))),
    };
  });

  for (const curve of ["P-256", "P-384"] as const) {
    for (const method of ["files", "shards"] as const) {
      it(`when a model is signed with ${curve} by ${method}, it verifies, meets the OMS schemas, and fails once changed`, async () => {
        const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
        const model = copySample();
        writeFileSync(join(model, "empty"), "");
        mkdirSync(join(model, "sub"));
        writeFileSync(join(model, "sub/w"), "0123456789".repeat(100));
        const sigPath = join(model, "model.sig");
        const { bytes, hash } = await signModel(model, {
          privateKey,
          signaturePath: sigPath,
          method,
          ...(method === "shards" ? { shardSize: 64 } : {}),
        });
        writeFileSync(sigPath, bytes);
        assertOmsSchemas(bytes);
        const verdict = await verifyModel(model, bytes, { publicKey, signaturePath: sigPath });
        assert.equal(verdict.rootDigest, hash.rootDigest);
        assert.equal(verdict.method, method);
        writeFileSync(join(model, "sub/w"), "0123456789".repeat(99) + "012345678X");
        assert.equal(
          await codeOf(verifyModel(model, bytes, { publicKey, signaturePath: sigPath })),
          "OMS_FILE_CHANGED",
        );
        writeFileSync(join(model, "sub/w"), "short");
        assert.equal(
          await codeOf(verifyModel(model, bytes, { publicKey, signaturePath: sigPath })),
          "OMS_FILE_CHANGED",
        );
      });
    }
  }

  it("when a model is signed in certificate mode, it verifies against the root and meets the schemas", async () => {
    const model = copySample();
    const { bytes } = await signModel(model, {
      privateKey: chain!.key,
      certificates: [chain!.leaf],
      ignorePaths: ["ignore-me", "model.sig"],
    });
    assertOmsSchemas(bytes);
    await verifyModel(model, bytes, { trustedCertificates: [chain!.root], ignorePaths: ["model.sig"] });
    assert.equal(
      await codeOf(verifyModel(model, bytes, { trustedCertificates: [rootCa], ignorePaths: ["model.sig"] })),
      "OMS_CHAIN_INVALID",
    );
  });

  it("when the model is a single file, it signs the resource '.' and verifies", async () => {
    const file = join(dir, "weights.gguf");
    writeFileSync(file, "GGUF");
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const { bytes } = await signModel(file, { privateKey });
    const statement = JSON.parse(Buffer.from(parseOmsSignature(bytes).dsseEnvelope.payload, "base64").toString());
    assert.equal(statement.predicate.resources[0].name, ".");
    assert.equal(statement.subject[0].name, "weights.gguf");
    await verifyModel(file, bytes, { publicKey });
  });

  it("when a signature carries older quirks (float shard size, sha256-sharded-N, v0.2 PAE), it verifies", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const { signature } = await signModel(SAMPLE, {
      privateKey,
      method: "shards",
      ignorePaths: ["ignore-me", "model.sig"],
    });
    let text = Buffer.from(signature.dsseEnvelope.payload, "base64").toString();
    assert.ok(text.includes('"shard_size": 1000000000'));
    text = text
      .replace('"shard_size": 1000000000', '"shard_size": 1000000000.0')
      .replaceAll('"algorithm": "sha256"', '"algorithm": "sha256-sharded-1000000000"');
    const quirky: OmsSignature = {
      ...signature,
      dsseEnvelope: signEnvelope(new TextEncoder().encode(text), INTOTO_PAYLOAD_TYPE, privateKey, ""),
    };
    await verifyModel(SAMPLE, writeOmsSignature(quirky), { publicKey, signaturePath: join(SAMPLE, "model.sig") });
    // model_signing v0.2 signed a PAE with a Python bytes repr in it (sign_sigstore_pb.pae_compat).
    const payload = Buffer.from(signature.dsseEnvelope.payload, "base64");
    const { sign } = await import("node:crypto");
    const compat = structuredClone(signature);
    compat.dsseEnvelope.signatures = [{ sig: sign("sha256", paeCompat(payload), privateKey).toString("base64") }];
    await verifyModel(SAMPLE, writeOmsSignature(compat), { publicKey, signaturePath: join(SAMPLE, "model.sig") });
    assert.equal(JSON.parse(text).predicateType, PREDICATE_OMS);
  });
});
