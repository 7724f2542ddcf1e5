import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  importEcPublicKey,
  keyIdOf,
  pae,
  parseEnvelope,
  parseEnvelopeDecoded,
  signEnvelope,
  verifyEnvelope,
  verifyEnvelopeBytes,
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

  it("when an envelope is parsed with its bytes decoded, it is parseEnvelope's envelope and refusal, with the bytes", () => {
    const good = vector.envelope;
    const decoded = parseEnvelopeDecoded(good);
    assert.deepEqual(decoded.envelope, parseEnvelope(good));
    assert.deepEqual(decoded.payload, decodeBase64(good.payload, "DSSE_MALFORMED", "payload"));
    assert.deepEqual(
      decoded.signatures,
      good.signatures.map((s) => decodeBase64(s.sig, "DSSE_MALFORMED", "sig")),
    );
    const message = (fn: () => unknown): string => {
      try {
        fn();
        return "ok";
      } catch (error) {
        assert.ok(error instanceof ProvenantError);
        return `${error.code} ${error.message}`;
      }
    };
    const bad: unknown[] = [
      null,
      { ...good, payload: "not base64!" },
      { ...good, payload: "QQ" },
      { ...good, payload: "QQ=" },
      { ...good, signatures: [{ sig: "AAAA" }, { sig: "A A=" }] },
      { ...good, signatures: [{ sig: "AAAA", keyid: 3 }] },
      { ...good, signatures: [{ sig: "-_-_" }] },
    ];
    for (const input of bad)
      assert.equal(
        message(() => parseEnvelopeDecoded(input)),
        message(() => parseEnvelope(input)),
      );
  });

  it("when decoded bytes are verified, a signature of the key passes and a flipped payload byte is DSSE_BAD_SIGNATURE", () => {
    const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const payload = new TextEncoder().encode('{"a":1}');
    const envelope = signEnvelope(payload, INTOTO_PAYLOAD_TYPE, k.privateKey);
    const { signatures } = parseEnvelopeDecoded(envelope);
    assert.doesNotThrow(() => verifyEnvelopeBytes(INTOTO_PAYLOAD_TYPE, payload, signatures, k.publicKey));
    const flipped = payload.slice();
    flipped[0]! ^= 1;
    assert.equal(
      code(() => verifyEnvelopeBytes(INTOTO_PAYLOAD_TYPE, flipped, signatures, k.publicKey)),
      "DSSE_BAD_SIGNATURE",
    );
    assert.equal(
      code(() => verifyEnvelopeBytes("text/plain", payload, signatures, k.publicKey)),
      "DSSE_BAD_SIGNATURE",
      "the payload type is signed too",
    );
  });

  it("when a payload type is not ASCII, PAE counts its UTF-8 bytes", () => {
    const body = Uint8Array.of(1, 2, 3);
    const type = "application/é-😀";
    const bytes = new TextEncoder().encode(type);
    const expected = Buffer.concat([Buffer.from(`DSSEv1 ${bytes.length} `), bytes, Buffer.from(" 3 "), body]);
    assert.deepEqual(Buffer.from(pae(type, body)), expected);
  });

  it("when an SPKI is imported twice, the same key comes back; past the bound the oldest is imported again", () => {
    const spkiOf = (k: KeyObject) => new Uint8Array(k.export({ type: "spki", format: "der" }));
    const first = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    const key = importEcPublicKey(spkiOf(first));
    assert.ok(key.equals(first));
    assert.equal(importEcPublicKey(spkiOf(first)), key);
    for (let i = 0; i < 256; i++)
      importEcPublicKey(spkiOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey));
    const again = importEcPublicKey(spkiOf(first));
    assert.notEqual(again, key, "evicted after 256 newer keys");
    assert.ok(again.equals(first));
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    assert.equal(
      code(() => importEcPublicKey(spkiOf(rsa))),
      "DSSE_MALFORMED",
    );
    const offCurve = spkiOf(first);
    offCurve[offCurve.length - 1]! ^= 1;
    assert.throws(() => importEcPublicKey(offCurve), "a point off the curve is refused by node:crypto");
  });

  it("when keyid is absent, empty or null, it parses", () => {
    for (const keyid of [undefined, "", null]) {
      const sig = keyid === undefined ? { sig: "AAAA" } : { sig: "AAAA", keyid };
      assert.doesNotThrow(() => parseEnvelope({ ...vector.envelope, signatures: [sig] }));
    }
  });
});
