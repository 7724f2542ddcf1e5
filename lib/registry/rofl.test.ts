import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isProvenantError } from "../errors.ts";
import { decodeBech32, encodeBech32, toRoflAppIdBech32, toRoflAppIdBytes } from "./rofl.ts";

const isUsage = (error: unknown): boolean => isProvenantError(error) && error.code === "USAGE";

describe("ROFL app ids", () => {
  it("when given BIP-173 valid test vectors, it decodes them", () => {
    assert.deepEqual(decodeBech32("A12UEL5L"), { prefix: "a", bytes: new Uint8Array() });
    const { prefix, bytes } = decodeBech32("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw");
    assert.equal(prefix, "abcdef");
    assert.equal(Buffer.from(bytes).toString("hex"), "00443214c74254b635cf84653a56d7c675be77df");
  });

  it("when given BIP-173 invalid vectors (checksum, mixed case, no separator), it throws USAGE", () => {
    for (const bad of ["A12UEL5M", "A12uEL5L", "pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "a1qqqqqq"]) {
      assert.throws(() => decodeBech32(bad), isUsage, bad);
    }
  });

  it("when an app id goes to bech32 and back, it is unchanged, and a 0x form passes through", () => {
    const hex = "0x00" + "c0ffee".repeat(6) + "4242";
    const bech32 = toRoflAppIdBech32(hex);
    assert.match(bech32, /^rofl1[02-9ac-hj-np-z]+$/);
    assert.equal(toRoflAppIdBytes(bech32), hex);
    assert.equal(toRoflAppIdBytes(hex.toUpperCase().replace("0X", "0x")), hex);
    assert.equal(encodeBech32("rofl", Buffer.from(hex.slice(2), "hex")), bech32);
  });

  it("when the prefix or length is wrong, it throws USAGE", () => {
    assert.throws(() => toRoflAppIdBytes(encodeBech32("oasis", new Uint8Array(21))), isUsage);
    assert.throws(() => toRoflAppIdBytes(encodeBech32("rofl", new Uint8Array(20))), isUsage);
    assert.throws(() => toRoflAppIdBytes("0x1234"), isUsage);
  });
});
