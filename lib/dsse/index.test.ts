import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  keyIdOf,
  pae,
  parseEnvelope,
  signEnvelope,
  verifyEnvelope,
  type DsseEnvelope,
} from "./index.ts";

const vectorUrl = new URL("../../test/fixtures/formats/dsse-spec/hello-world-vector.json", import.meta.url);
const vector = JSON.parse(readFileSync(vectorUrl, "utf8")) as {
  payloadType: string;
  serializedBody: string;
  expectedPAE: string;
  key: { x_decimal: string; y_decimal: string; d_decimal: string; spki_pem_derived: string };
  envelope: DsseEnvelope;
};

function b64url(decimal: string, bytes: number): string {
  return Buffer.from(
    BigInt(decimal)
      .toString(16)
      .padStart(bytes * 2, "0"),
    "hex",
  ).toString("base64url");
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, `expected a ProvenantError, got ${String(error)}`);
    return error.code;
  }
  assert.fail("expected an error");
}

const vectorPublic = createPublicKey(vector.key.spki_pem_derived);

describe("DSSE", () => {
  it("when given the spec vector, it computes the expected PAE", () => {
    const out = pae(vector.payloadType, new TextEncoder().encode(vector.serializedBody));
    assert.equal(Buffer.from(out).toString("utf8"), vector.expectedPAE);
  });

  it("when given the spec vector envelope (P1363 signature), it verifies and returns the body", () => {
    const payload = verifyEnvelope(vector.envelope, vectorPublic);
    assert.equal(Buffer.from(payload).toString("utf8"), vector.serializedBody);
  });

  it("when the spec key signs, its DER signature verifies and the JWK matches the SPKI", () => {
    const jwk = {
      kty: "EC",
      crv: "P-256",
      x: b64url(vector.key.x_decimal, 32),
      y: b64url(vector.key.y_decimal, 32),
      d: b64url(vector.key.d_decimal, 32),
    };
    const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
    assert.equal(keyIdOf(privateKey), keyIdOf(vectorPublic));
    const envelope = signEnvelope(new TextEncoder().encode("hello world"), vector.payloadType, privateKey);
    assert.equal(decodeBase64(envelope.signatures[0]!.sig, "DSSE_MALFORMED", "sig")[0], 0x30);
    assert.equal(envelope.signatures[0]!.keyid, keyIdOf(vectorPublic));
    assert.equal(Buffer.from(verifyEnvelope(envelope, vectorPublic)).toString(), "hello world");
  });

  for (const curve of ["P-256", "P-384"] as const) {
    it(`when signed with ${curve}, it round-trips and any flipped byte fails with DSSE_BAD_SIGNATURE`, () => {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
      const body = new TextEncoder().encode('{"_type":"https://in-toto.io/Statement/v1"}');
      const envelope = signEnvelope(body, INTOTO_PAYLOAD_TYPE, privateKey);
      assert.deepEqual(verifyEnvelope(envelope, publicKey), body);
      for (let i = 0; i < body.length; i += 7) {
        const tampered = Uint8Array.from(body);
        tampered[i] ^= 1;
        const bad = { ...envelope, payload: Buffer.from(tampered).toString("base64") };
        assert.equal(
          code(() => verifyEnvelope(bad, publicKey)),
          "DSSE_BAD_SIGNATURE",
        );
      }
      const sig = decodeBase64(envelope.signatures[0]!.sig, "DSSE_MALFORMED", "sig");
      for (let i = 0; i < sig.length; i += 5) {
        const tampered = Uint8Array.from(sig);
        tampered[i] ^= 0x10;
        const bad = { ...envelope, signatures: [{ sig: Buffer.from(tampered).toString("base64") }] };
        assert.equal(
          code(() => verifyEnvelope(bad, publicKey)),
          "DSSE_BAD_SIGNATURE",
        );
      }
      const otherType = { ...envelope, payloadType: "application/json" };
      assert.equal(
        code(() => verifyEnvelope(otherType, publicKey)),
        "DSSE_BAD_SIGNATURE",
      );
      const other: KeyObject = generateKeyPairSync("ec", { namedCurve: curve }).publicKey;
      assert.equal(
        code(() => verifyEnvelope(envelope, other)),
        "DSSE_BAD_SIGNATURE",
      );
    });
  }

  it("when the envelope is malformed, it throws DSSE_MALFORMED", () => {
    const good = vector.envelope;
    const cases: unknown[] = [
      null,
      [],
      "x",
      { ...good, payload: 5 },
      { ...good, payload: "not base64!" },
      { ...good, payloadType: "" },
      { ...good, signatures: [] },
      { ...good, signatures: [{ sig: "" }] },
      { ...good, signatures: [{ sig: "AAAA", keyid: 3 }] },
      { ...good, extra: true },
    ];
    for (const input of cases)
      assert.equal(
        code(() => parseEnvelope(input)),
        "DSSE_MALFORMED",
      );
  });

  it("when keyid is absent, empty or null, it parses", () => {
    for (const keyid of [undefined, "", null]) {
      const sig = keyid === undefined ? { sig: "AAAA" } : { sig: "AAAA", keyid };
      assert.doesNotThrow(() => parseEnvelope({ ...vector.envelope, signatures: [sig] }));
    }
  });
});
