import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { decodeChecked, equalBytes, fromBase64, fromHex, isBase64, isHex, toBase64, toHex } from "./index.ts";

// Seeded so that a failure can be replayed: PROVENANT_FUZZ_SEED=<n>.
const SEED = Number(process.env.PROVENANT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`lib/encoding fuzz seed ${SEED} (replay with PROVENANT_FUZZ_SEED=${SEED})`);

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

describe("encoding", () => {
  it("when given random bytes, base64 and hex round-trip and match Node's Buffer", () => {
    const rand = prng(SEED);
    for (let n = 0; n < 400; n++) {
      const bytes = new Uint8Array(Math.floor(rand() * 70)).map(() => Math.floor(rand() * 256));
      const b64 = Buffer.from(bytes).toString("base64");
      assert.equal(toBase64(bytes), b64);
      assert.deepEqual(fromBase64(b64), bytes);
      assert.deepEqual(decodeChecked(b64), bytes, "the browser's loop gives Node's bytes");
      assert.deepEqual(decodeChecked(Buffer.from(bytes).toString("base64url")), bytes);
      assert.deepEqual(fromBase64(Buffer.from(bytes).toString("base64url")), bytes);
      assert.equal(toHex(bytes), Buffer.from(bytes).toString("hex"));
      assert.deepEqual(fromHex(toHex(bytes).toUpperCase()), bytes);
    }
  });

  it("when the bytes are large, Node's decoder (written into an exact-size array) gives the browser loop's bytes", () => {
    const rand = prng(SEED ^ 0x7777);
    for (let n = 0; n < 40; n++) {
      const bytes = new Uint8Array(Math.floor(rand() * 20_000)).map(() => Math.floor(rand() * 256));
      for (const text of [Buffer.from(bytes).toString("base64"), Buffer.from(bytes).toString("base64url")]) {
        const got = fromBase64(text);
        assert.ok(got !== undefined && got.constructor === Uint8Array && got.byteOffset === 0);
        assert.equal(got.buffer.byteLength, bytes.length, "no pooled or oversized buffer behind it");
        assert.deepEqual(got, bytes);
        assert.deepEqual(decodeChecked(text), bytes);
      }
    }
  });

  it("when given random strings, it accepts exactly what the strict grammar accepts and decodes as Buffer does", () => {
    const rand = prng(SEED ^ 0x5a5a);
    const chars = "AZaz09+/-_=. \n";
    for (let n = 0; n < 2000; n++) {
      const text = Array.from({ length: Math.floor(rand() * 9) }, () => chars[Math.floor(rand() * chars.length)]).join(
        "",
      );
      const got = fromBase64(text);
      assert.equal(got !== undefined, isBase64(text), text);
      if (got !== undefined) {
        const url = /[-_]/.test(text);
        assert.deepEqual(got, new Uint8Array(Buffer.from(text, url ? "base64url" : "base64")), text);
        assert.deepEqual(decodeChecked(text), got, text);
      }
    }
  });

  it("when checked against the grammar as a regular expression, the linear check agrees on random strings", () => {
    const rand = prng(SEED ^ 0x1234);
    const standard = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
    const urlSafe = /^[A-Za-z0-9_-]*$/;
    const chars = "Aa9+/-_===é";
    for (let n = 0; n < 5000; n++) {
      const text = Array.from({ length: Math.floor(rand() * 13) }, () => chars[Math.floor(rand() * chars.length)]).join(
        "",
      );
      assert.equal(isBase64(text), standard.test(text) || (urlSafe.test(text) && text.length % 4 !== 1), text);
    }
  });

  it("when a base64 string is 12 MiB long, it is checked and decoded in linear time without overflowing the stack", () => {
    const bytes = new Uint8Array(9 * 1024 * 1024).map((_, i) => (i * 7919) & 0xff);
    const text = Buffer.from(bytes).toString("base64");
    assert.ok(text.length >= 12 * 1024 * 1024);
    assert.equal(isBase64(text), true);
    assert.deepEqual(fromBase64(text), bytes);
    // the same string with one stray character at the end is refused, not a RangeError
    assert.equal(fromBase64(`${text.slice(0, -4)}AA*=`), undefined);
    assert.equal(isBase64(`${text.slice(0, -1)}\n`), false);
  });

  it("when base64 is not strict, it is refused", () => {
    for (const bad of ["YQ=", "YQ===", "Y", "YW Jj", "YWJj\n", "YW+j_A", "YQ==YQ==", "Y!==", "YWJ=j"]) {
      assert.equal(fromBase64(bad), undefined, bad);
    }
    assert.deepEqual(fromBase64(""), new Uint8Array(0));
    assert.deepEqual(fromBase64("YQ"), new Uint8Array([0x61]));
  });

  it("when hex is checked, every code unit outside 0-9 a-f A-F is refused, also in a 12 MiB string", () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      assert.equal(isHex(`0${ch}`), /^[0-9a-fA-F]$/.test(ch), `U+${c.toString(16)}`);
    }
    const big = "ab".repeat(6 * 1024 * 1024);
    assert.equal(isHex(big), true);
    assert.equal(isHex(`${big.slice(0, -1)}g`), false);
  });

  it("when given random strings, fromHex decodes exactly what isHex accepts, as Buffer does", () => {
    const rand = prng(SEED ^ 0x4e4e);
    const chars = "09afAFgG/:@`é\u0130 ";
    for (let n = 0; n < 5000; n++) {
      const text = Array.from({ length: Math.floor(rand() * 9) }, () => chars[Math.floor(rand() * chars.length)]).join(
        "",
      );
      const got = fromHex(text);
      assert.equal(got !== undefined, isHex(text), text);
      if (got !== undefined) assert.deepEqual(got, new Uint8Array(Buffer.from(text, "hex")), text);
    }
  });

  it("when hex is odd or not hex, it is refused; equalBytes compares lengths and bytes", () => {
    assert.equal(fromHex("abc"), undefined);
    assert.equal(fromHex("zz"), undefined);
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(equalBytes(new Uint8Array([1]), new Uint8Array([1, 0])), false);
  });
});
