import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createRng, fuzzSeed } from "../../test/reliability/fuzz.ts";
import { MalformedInputError } from "../errors.ts";
import {
  MAX_STRICT_JSON_DEPTH,
  parseJsonUnique,
  parseStrictJsonBytes,
  parseStrictJsonText,
  parseStrictJsonTextSlow,
} from "./index.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const LONE = /[\ud800-\udfff]/u;

/** The reason a strict read refused `text`, or "ok". */
function reason(input: string | Uint8Array): string {
  try {
    if (typeof input === "string") parseStrictJsonText(input);
    else parseStrictJsonBytes(input);
    return "ok";
  } catch (error) {
    assert.ok(error instanceof MalformedInputError, String(error));
    assert.equal(error.code, "STATEMENT_INVALID");
    return String(error.details?.reason);
  }
}

/** A random JSON value of bounded size (keys unique, strings with escapes, non-ASCII and surrogate pairs). */
function randomValue(rng: () => number, depth = 0): unknown {
  const pick = (n: number) => Math.floor(rng() * n);
  const kind = depth > 4 ? pick(4) : pick(6);
  const str = () => {
    const alphabet = ["a", "Z", '"', "\\", "/", "\n", "\t", "\u0001", "é", "€", "😀", "\u2028", " ", "__proto__"];
    let s = "";
    for (let n = pick(6); n > 0; n--) s += alphabet[pick(alphabet.length)];
    return s;
  };
  switch (kind) {
    case 0:
      return [null, true, false][pick(3)];
    case 1:
      return [0, -0.5, 1e21, 123456789012, 5e-324, -17, 3.14159][pick(7)];
    case 2:
      return str();
    case 3:
      return str().length;
    case 4:
      return Array.from({ length: pick(5) }, () => randomValue(rng, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let n = pick(5); n > 0; n--)
        Object.defineProperty(out, str(), {
          value: randomValue(rng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return out;
    }
  }
}

describe("strict JSON reader", () => {
  it("when the JSON is valid and has no duplicate keys, it reads what JSON.parse reads (seeded property test)", () => {
    const rng = createRng(fuzzSeed("lib/json round trip"));
    for (let n = 0; n < 2000; n++) {
      const value = randomValue(rng);
      const text = JSON.stringify(value, null, n % 3 === 0 ? 2 : undefined);
      assert.deepEqual(parseStrictJsonText(text), JSON.parse(text), text);
      assert.deepEqual(parseStrictJsonBytes(utf8(text)), JSON.parse(text), text);
    }
  });

  it("when a key is repeated at any depth, it refuses the text (JSON.parse would keep the last)", () => {
    assert.equal(reason('{"subject":1,"subject":2}'), "duplicate-key");
    assert.equal(reason('{"a":{"b":[{"predicateType":"x","predicateType":"y"}]}}'), "duplicate-key");
    assert.equal(reason('{"a":1,"\\u0061":2}'), "duplicate-key", "escapes are decoded before keys are compared");
    assert.equal(reason('{"__proto__":1,"__proto__":2}'), "duplicate-key");
    assert.equal(reason('[{"a":1},{"a":2}]'), "ok", "the same key in two objects is fine");
  });

  it("when a key is __proto__, it is an own property as JSON.parse makes it, never the prototype", () => {
    const value = parseStrictJsonText('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), ["__proto__"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("when the bytes carry a BOM, invalid UTF-8 or an encoded surrogate, it refuses them", () => {
    assert.equal(reason(Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d)), "byte-order-mark");
    assert.equal(reason("\ufeff{}"), "byte-order-mark");
    assert.equal(reason(Uint8Array.of(0x22, 0xc3, 0x28, 0x22)), "invalid-utf8");
    assert.equal(reason(Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22)), "invalid-utf8", "CESU surrogate");
    assert.equal(reason(Uint8Array.of(0x22, 0xc0, 0xaf, 0x22)), "invalid-utf8", "overlong /");
    assert.equal(reason(Uint8Array.of(0x22, 0xe2, 0x82)), "invalid-utf8", "truncated sequence");
    assert.equal(reason(utf8('"é😀"')), "ok");
  });

  it("when a string holds a lone surrogate or a control character, it refuses it (I-JSON)", () => {
    assert.equal(reason('"\\ud800"'), "lone-surrogate");
    assert.equal(reason('"\\udc00"'), "lone-surrogate");
    assert.equal(reason('"\\ud83d\\u0041"'), "lone-surrogate");
    assert.equal(reason('"\ud800"'), "lone-surrogate");
    assert.equal(reason('"\\ud83d\\ude00"'), "ok");
    assert.equal(reason('"a\u0000b"'), "control-character");
    assert.equal(reason('"a\nb"'), "control-character");
  });

  it("when the text breaks the grammar, it refuses it with a reason and an offset, where JSON.parse throws too", () => {
    const bad = [
      "",
      " ",
      "{",
      "[1,]",
      '{"a":1,}',
      "[1 2]",
      "{'a':1}",
      "01",
      "1.",
      ".5",
      "-",
      "1e",
      "+1",
      "NaN",
      "Infinity",
      "tru",
      "nul",
      "[] []",
      '"abc',
      '"\\x"',
      '"\\u12g4"',
      "{a:1}",
      '{"a" 1}',
      "\u00a0[]",
      "[1]\u000b",
    ];
    for (const text of bad) {
      assert.throws(() => JSON.parse(text), SyntaxError, text);
      try {
        parseStrictJsonText(text);
        assert.fail(`accepted ${JSON.stringify(text)}`);
      } catch (error) {
        assert.ok(error instanceof MalformedInputError, String(error));
        assert.equal(error.code, "STATEMENT_INVALID");
        assert.equal(typeof error.details?.reason, "string");
      }
    }
  });

  it("when nesting passes the bound, it refuses it quickly and without recursion, however deep", () => {
    const ok = `${"[".repeat(MAX_STRICT_JSON_DEPTH)}${"]".repeat(MAX_STRICT_JSON_DEPTH)}`;
    assert.equal(reason(ok), "ok");
    assert.equal(reason(`[${ok}]`), "too-deep");
    const started = performance.now();
    assert.equal(reason("[".repeat(5_000_000)), "too-deep");
    assert.equal(reason('{"a":'.repeat(1_000_000)), "too-deep");
    assert.throws(() => parseStrictJsonText("[[[1]]]", { maxDepth: 2 }), { code: "STATEMENT_INVALID" });
    assert.ok(performance.now() - started < 2000);
  });

  it("when the input is large, its time stays within a small factor of JSON.parse's (a million members, 16 MiB)", () => {
    const members = `[${Array.from({ length: 1_000_000 }, (_, i) => i).join(",")}]`;
    const big = `"${"A".repeat(16 * 1024 * 1024)}"`;
    for (const text of [members, big]) {
      let started = performance.now();
      const expected = JSON.parse(text) as unknown;
      const baseline = performance.now() - started;
      started = performance.now();
      const value = parseStrictJsonText(text);
      const strict = performance.now() - started;
      assert.deepEqual(value, expected);
      // Linear like JSON.parse; the margin absorbs a loaded machine.
      assert.ok(strict < 10 * baseline + 1000, `strict ${strict.toFixed(0)} ms, JSON.parse ${baseline.toFixed(0)} ms`);
    }
  });

  it("when the caller names a code and what it reads, the error carries them", () => {
    assert.throws(() => parseStrictJsonText("{", { code: "BUNDLE_MALFORMED", what: "bundle" }), {
      code: "BUNDLE_MALFORMED",
      message: /^bundle /,
    });
  });

  it("when the fast path takes a text, the reader alone takes it too, with the same value (differential fuzz)", () => {
    const rng = createRng(fuzzSeed("lib/json fast path"));
    const pick = (n: number) => Math.floor(rng() * n);
    // JSON text written piece by piece, so that it is often valid and yet holds what the fast path must never take:
    // keys repeated (also through escapes, and after a nested value), escaped and raw lone surrogates, a BOM,
    // control characters, nesting around the bound; then, sometimes, a character inserted or dropped.
    const keys = ['"a"', '"b"', '"\\u0061"', '"__proto__"', '"\\ud800"', '"é"', '"a\\\\"', '"1"', '"01"'];
    const chars = [
      "x",
      "é",
      "😀",
      '\\"',
      "\\\\",
      "\\u0041",
      "\\ud83d\\ude00",
      "\\ud800",
      "\\udc00",
      "\ud800",
      "\u0001",
      "\\n",
    ];
    const ws = () => ["", "", " ", "\n", "\t", "\r"][pick(6)]!;
    const text = (depth: number): string => {
      const kind = depth > 5 ? pick(4) : pick(6);
      if (kind === 0) return ["null", "true", "false", "-0", "1e400", "0.5", "12"][pick(7)]!;
      if (kind <= 2) return `"${Array.from({ length: pick(4) }, () => chars[pick(chars.length)]).join("")}"`;
      if (kind === 3) return `[${Array.from({ length: pick(4) }, () => ws() + text(depth + 1) + ws()).join(",")}]`;
      const members = Array.from(
        { length: pick(5) },
        () => `${ws()}${keys[pick(keys.length)]!}${ws()}:${text(depth + 1)}`,
      );
      return `{${members.join(",")}}`;
    };
    let fast = 0;
    let sound = 0;
    const outcome = (read: () => unknown): { ok: true; value: unknown } | { ok: false; error: string } => {
      try {
        return { ok: true, value: read() };
      } catch (error) {
        assert.ok(error instanceof MalformedInputError, String(error));
        return { ok: false, error: `${error.code} ${String(error.details?.reason)} ${error.message}` };
      }
    };
    for (let n = 0; n < 8000; n++) {
      let input = ws() + text(0) + ws();
      if (pick(4) === 0) {
        const at = pick(input.length + 1);
        const extra = ["[", "]", "{", "}", ",", ":", '"', "\\", "\ufeff", "\ud800"][pick(10)]!;
        input = pick(2) === 0 ? input.slice(0, at) + extra + input.slice(at) : input.slice(0, at) + input.slice(at + 1);
      }
      if (pick(10) === 0) {
        const around = MAX_STRICT_JSON_DEPTH - 3 + pick(4);
        input = "[".repeat(around) + input + "]".repeat(around);
      }
      if (pick(50) === 0) input = "\ufeff" + input;
      const quick = parseJsonUnique(input, MAX_STRICT_JSON_DEPTH, { refuseLoneSurrogates: true, wellFormed: false });
      const slow = outcome(() => parseStrictJsonTextSlow(input));
      if (slow.ok) sound++;
      if (quick !== undefined) {
        fast++;
        assert.ok(slow.ok, `the fast path took what the reader refuses: ${JSON.stringify(input)}`);
        assert.deepStrictEqual(quick, slow.value, JSON.stringify(input));
        assert.equal(JSON.stringify(quick), JSON.stringify(slow.value), "same key order");
      }
      // Whatever path runs, the public reader answers as the reader alone: same value, or same code, reason, message.
      assert.deepStrictEqual(
        outcome(() => parseStrictJsonText(input)),
        slow,
        JSON.stringify(input),
      );
      if (!LONE.test(input)) {
        const bytes = outcome(() => parseStrictJsonBytes(utf8(input)));
        if (input.charCodeAt(0) === 0xfeff) assert.equal(bytes.ok, false);
        else assert.deepStrictEqual(bytes, slow, JSON.stringify(input));
      }
    }
    // The fast path takes every text the reader takes (else it is a slow path with extra steps), and the inputs mix
    // both outcomes.
    assert.equal(fast, sound);
    assert.ok(sound > 1000 && sound < 7000, `${sound} of 8000 inputs sound`);
  });

  it("when a text is sound, the fast path takes it; when it repeats a key or nests too deep, it leaves it to the reader", () => {
    const opts = { refuseLoneSurrogates: true, wellFormed: false };
    const sound = '{"_type":"x","subject":[{"name":"a","digest":{"sha256":"00"}}],"p":{"q":[1,-0,"\\"\\u00e9"]}}';
    assert.deepStrictEqual(parseJsonUnique(sound, 64, opts), JSON.parse(sound));
    assert.equal(parseJsonUnique('{"a":{"b":1,"b":1}}', 64, opts), undefined);
    assert.equal(parseJsonUnique('{"a":{"b":{"c":1}},"a":1}', 64, opts), undefined);
    assert.equal(parseJsonUnique('{"a":"\\ud800"}', 64, opts), undefined);
    assert.equal(parseJsonUnique('{"\\udfff":1}', 64, opts), undefined);
    assert.equal(parseJsonUnique("[[1]]", 1, opts), undefined);
    assert.deepStrictEqual(parseJsonUnique("[[1]]", 2, opts), [[1]]);
    assert.equal(parseJsonUnique('{"a":"\\"}', 64, opts), undefined, "unterminated string");
    assert.deepStrictEqual(parseJsonUnique('{"a\\\\":"\\\\"}', 64, opts), { "a\\": "\\" });
  });

  it("when mutated JSON is read, it accepts only what JSON.parse accepts, and refuses only for a strict reason", () => {
    const rng = createRng(fuzzSeed("lib/json mutations"));
    const pick = (n: number) => Math.floor(rng() * n);
    const pieces = ['"', "\\", "{", "}", "[", "]", ",", ":", "1", "-", "e", ".", " ", "\u0000", "\ud800", "é", "u"];
    for (let n = 0; n < 5000; n++) {
      let text = JSON.stringify(randomValue(rng));
      for (let m = 1 + pick(3); m > 0; m--) {
        const at = pick(text.length + 1);
        text =
          pick(2) === 0
            ? text.slice(0, at) + pieces[pick(pieces.length)]! + text.slice(at)
            : text.slice(0, at) + text.slice(at + 1);
      }
      let expected: unknown;
      let parsed = true;
      try {
        expected = JSON.parse(text);
      } catch {
        parsed = false;
      }
      const why = reason(text);
      if (!parsed) assert.notEqual(why, "ok", `accepted what JSON.parse refuses: ${JSON.stringify(text)}`);
      else if (why === "ok") assert.deepEqual(parseStrictJsonText(text), expected);
      else assert.ok(["duplicate-key", "lone-surrogate"].includes(why), `${why}: ${JSON.stringify(text)}`);
    }
  });
});
