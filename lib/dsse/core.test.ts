import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  EC_CURVES,
  derToP1363,
  p1363ToDer,
  parseEcSpki,
  signatureCandidates,
  verifyEcSignatureWeb,
  type EcCurve,
} from "./core.ts";
import * as core from "./core.ts";
import * as node from "./index.ts";

const NODE_NAMES: Record<EcCurve, string> = { "P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1" };
const keys = Object.fromEntries(
  (Object.keys(NODE_NAMES) as EcCurve[]).map((c) => [c, generateKeyPairSync("ec", { namedCurve: NODE_NAMES[c] })]),
) as Record<EcCurve, { publicKey: KeyObject; privateKey: KeyObject }>;
const spkiOf = (c: EcCurve) => new Uint8Array(keys[c].publicKey.export({ type: "spki", format: "der" }));

/** The order n of each curve, to make the high-S twin (r, n - s) of a signature, which OpenSSL also accepts. */
const ORDER: Record<EcCurve, bigint> = {
  "P-256": 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  "P-384": 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  "P-521":
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

function toBig(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`);
}
function fromBig(value: bigint, size: number): Uint8Array {
  return new Uint8Array(Buffer.from(value.toString(16).padStart(size * 2, "0"), "hex"));
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error.code;
  }
  return assert.fail("expected an error");
}

describe("DSSE core (shared with the explorer page)", () => {
  it("when lib/dsse is imported, it re-exports the very functions of the core", () => {
    for (const name of ["pae", "parseEnvelope", "decodeBase64", "isPlainObject", "parseEcSpki"] as const) {
      assert.equal(node[name], core[name], name);
    }
  });

  it("when given EC SPKIs of each curve, it reads the curve and the point as node:crypto does", () => {
    for (const curve of Object.keys(NODE_NAMES) as EcCurve[]) {
      const key = parseEcSpki(spkiOf(curve));
      assert.equal(key.curve, curve);
      const jwk = keys[curve].publicKey.export({ format: "jwk" });
      const size = EC_CURVES[curve].fieldBytes;
      assert.equal(key.point.length, 1 + 2 * size);
      assert.equal(Buffer.from(key.point.subarray(1, 1 + size)).toString("base64url"), jwk.x);
    }
  });

  it("when an SPKI is not an uncompressed P-256/384/521 key, it is DSSE_MALFORMED (or the code asked for)", () => {
    const p384 = spkiOf("P-384");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" });
    const ed = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey.export({ type: "spki", format: "der" });
    // 30 46 {AlgorithmIdentifier} 03 32 00 02|03 X: the same key with a compressed point (SEC 1 §2.3.3).
    const x = p384.subarray(p384.length - 96, p384.length - 48);
    const compressed = new Uint8Array([
      0x30,
      0x46,
      ...p384.subarray(2, 20),
      0x03,
      0x32,
      0x00,
      0x02 | (p384[p384.length - 1]! & 1),
      ...x,
    ]);
    assert.equal(
      createPublicKey({ key: Buffer.from(compressed), format: "der", type: "spki" }).asymmetricKeyType,
      "ec",
    );
    const trailing = new Uint8Array([...p384, 0]);
    const truncated = p384.subarray(0, p384.length - 1);
    // The same bytes with the point's first byte 0x02: a compressed-point header on an uncompressed-sized point.
    const wrongForm = Uint8Array.from(p384);
    wrongForm[p384.length - 97] = 0x02;
    const bads = [
      rsa,
      ed,
      k1,
      compressed,
      trailing,
      truncated,
      wrongForm,
      new Uint8Array(0),
      new Uint8Array([0x30, 0x81]),
    ];
    for (const bad of bads) {
      assert.equal(
        code(() => parseEcSpki(new Uint8Array(bad))),
        "DSSE_MALFORMED",
      );
    }
    assert.equal(
      code(() => parseEcSpki(new Uint8Array(rsa), "BUNDLE_MALFORMED")),
      "BUNDLE_MALFORMED",
    );
  });

  it("when a DER signature is converted to r‖s and back, it gives the bytes Node produced", () => {
    for (const curve of Object.keys(NODE_NAMES) as EcCurve[]) {
      const size = EC_CURVES[curve].fieldBytes;
      for (let i = 0; i < 20; i++) {
        const message = Buffer.from(`message ${i}`);
        const der = new Uint8Array(sign("sha256", message, { key: keys[curve].privateKey, dsaEncoding: "der" }));
        const raw = derToP1363(der, size);
        assert.ok(raw !== undefined);
        assert.equal(raw.length, 2 * size);
        assert.deepEqual(p1363ToDer(raw), der);
      }
    }
  });

  it("when DER is not strict, it is not read as a signature", () => {
    const raw = new Uint8Array(96).fill(0x11);
    const der = p1363ToDer(raw);
    assert.deepEqual(derToP1363(der, 48), raw);
    const variants: number[][] = [
      [...der, 0], // trailing byte
      [0x30, 0x81, der[1]!, ...der.subarray(2)], // long-form length where short suffices
      [0x30, der[1]! + 1, 0x02, 0x31, 0x00, ...der.subarray(4)], // leading zero not needed
      [0x31, ...der.subarray(1)], // SET, not SEQUENCE
    ];
    for (const v of variants) assert.equal(derToP1363(new Uint8Array(v), 48), undefined);
    // A negative r, and an r longer than the field.
    assert.equal(derToP1363(new Uint8Array([0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01]), 48), undefined);
    assert.equal(derToP1363(p1363ToDer(new Uint8Array(98).fill(0x11)), 48), undefined);
    assert.equal(signatureCandidates(new Uint8Array(95), 48).length, 0);
    assert.equal(signatureCandidates(raw, 48).length, 1);
  });

  it("when Node and WebCrypto check the same signatures, they agree (DER, r‖s, high S, tampered, other key)", async () => {
    for (const curve of Object.keys(NODE_NAMES) as EcCurve[]) {
      const size = EC_CURVES[curve].fieldBytes;
      const hash = EC_CURVES[curve].hash.replace("-", "").toLowerCase();
      const message = new TextEncoder().encode(`DSSEv1 ${curve}`);
      const der = new Uint8Array(sign(hash, message, { key: keys[curve].privateKey, dsaEncoding: "der" }));
      const raw = derToP1363(der, size)!;
      const s = toBig(raw.subarray(size));
      const highS = new Uint8Array([...raw.subarray(0, size), ...fromBig(ORDER[curve] - s, size)]);
      const tampered = Uint8Array.from(raw);
      tampered[5]! ^= 1;
      const other = curve === "P-256" ? "P-384" : "P-256";
      const cases: [Uint8Array, Uint8Array, boolean][] = [
        [spkiOf(curve), der, true],
        [spkiOf(curve), raw, true],
        [spkiOf(curve), highS, true],
        [spkiOf(curve), p1363ToDer(highS), true],
        [spkiOf(curve), tampered, false],
        [spkiOf(curve), new Uint8Array([...der, 0]), false],
        [spkiOf(other), der, false],
      ];
      for (const [spki, signature, expected] of cases) {
        const key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
        assert.equal(node.verifySignatureBytes(key, message, signature), expected, `node ${curve}`);
        assert.equal(await verifyEcSignatureWeb(spki, message, signature), expected, `webcrypto ${curve}`);
      }
    }
  });
});
