import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../dsse/index.ts";
import { ProvenantError } from "../errors.ts";
import * as core from "./core.ts";
import * as node from "./index.ts";

function bundleWithKey(spki: Buffer): unknown {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const statement = { _type: "https://in-toto.io/Statement/v1", predicateType: "https://provenant.dev/eval/v1" };
  return {
    mediaType: core.BUNDLE_MEDIA_TYPE,
    envelopes: [signEnvelope(new TextEncoder().encode(JSON.stringify(statement)), INTOTO_PAYLOAD_TYPE, privateKey)],
    signer: { publicKey: spki.toString("base64") },
    nonce: "0".repeat(64),
    evidence: { cpu: { type: "sev-snp", report: Buffer.alloc(1184).toString("base64"), vcek: "AAAA" } },
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error.code;
  }
  return assert.fail("expected an error");
}

const spkiOf = (curve: string) =>
  generateKeyPairSync("ec", { namedCurve: curve }).publicKey.export({ type: "spki", format: "der" });

describe("bundle core (shared with the explorer page)", () => {
  it("when lib/bundle is imported, it re-exports the very reader the page uses", () => {
    for (const name of ["readBundle", "toBundle", "writeBundle", "findManifest", "parseStrictJson"] as const) {
      assert.equal(node[name], core[name], name);
    }
  });

  it("when the signer key is P-384 or P-256, it reads; P-521, Ed25519 or junk DER is BUNDLE_MALFORMED", () => {
    assert.equal(core.toBundle(bundleWithKey(spkiOf("P-384"))).nonce, "0".repeat(64));
    assert.equal(core.toBundle(bundleWithKey(spkiOf("P-256"))).nonce, "0".repeat(64));
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
    for (const key of [spkiOf("P-521"), ed, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])]) {
      assert.equal(
        codeOf(() => core.toBundle(bundleWithKey(key))),
        "BUNDLE_MALFORMED",
      );
    }
  });

  it("when the bundle has its manifest, findManifest finds it from the bytes alone", () => {
    const bytes = new TextEncoder().encode(JSON.stringify(bundleWithKey(spkiOf("P-384"))));
    assert.equal(core.findManifest(core.readBundle(bytes)).index, 0);
  });
});
