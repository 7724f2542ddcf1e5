// The one strict JSON reader for signed content (DSSE payloads, in-toto statements), shared by the Node pipeline, the
// CLI, the SDK and the explorer page: browser-safe (no node:*), one linear pass, depth-bounded, iterative (no
// recursion, so no stack overflow on hostile nesting), no regular expressions. Every reader of a signed payload must
// see the same value, so everything that JSON.parse resolves silently is refused instead: duplicate keys (JSON.parse
// keeps the last), a byte order mark, invalid UTF-8 (a lenient decoder substitutes U+FFFD), lone surrogates (I-JSON,
// RFC 7493 §2.1). The grammar is RFC 8259's; numbers become what JSON.parse makes of the same text.
import { MalformedInputError, type ErrorCode } from "../errors.ts";

/** Deepest nesting read: a statement nests about 6 levels, a bundle 4. */
export const MAX_STRICT_JSON_DEPTH = 64;

export interface StrictJsonOptions {
  /** Deepest nesting of arrays and objects (default MAX_STRICT_JSON_DEPTH). */
  maxDepth?: number;
  /** The code of the error thrown for anything refused (default STATEMENT_INVALID). */
  code?: ErrorCode;
  /** What is being read, for the message (default "payload"). */
  what?: string;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads JSON from bytes: UTF-8 (decoded with a fatal decoder), no byte order mark, then parseStrictJsonText. Throws
 * MalformedInputError with `options.code` (default STATEMENT_INVALID) and `details.reason`.
 */
export function parseStrictJsonBytes(bytes: Uint8Array, options: StrictJsonOptions = {}): unknown {
  // RFC 8259 §8.1: a JSON text must not begin with a BOM. TextDecoder would strip it silently without ignoreBOM.
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    refuse(options, "byte-order-mark", "starts with a byte order mark", 0);
  let text: string;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    return refuse(options, "invalid-utf8", "is not valid UTF-8", undefined);
  }
  return parseStrictJsonText(text, options);
}

/**
 * Reads one JSON value from text (RFC 8259: whitespace is space, tab, LF, CR only; nothing may follow the value).
 * Refused: duplicate keys in any object at any depth, nesting deeper than `maxDepth`, control characters in strings,
 * lone surrogates (raw or escaped), a leading U+FEFF, and anything outside the grammar.
 */
export function parseStrictJsonText(text: string, options: StrictJsonOptions = {}): unknown {
  return new Reader(text, options).read();
}

function refuse(options: StrictJsonOptions, reason: string, message: string, offset: number | undefined): never {
  const what = options.what ?? "payload";
  const at = offset === undefined ? "" : ` (at offset ${offset})`;
  throw new MalformedInputError(options.code ?? "STATEMENT_INVALID", `${what} ${message}${at}`, {
    details: offset === undefined ? { reason } : { reason, offset },
  });
}

/** One open container on the explicit stack: an array, or an object with the key whose value is being read. */
interface Frame {
  array: unknown[] | undefined;
  object: Record<string, unknown> | undefined;
  key: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

class Reader {
  readonly #text: string;
  readonly #options: StrictJsonOptions;
  readonly #maxDepth: number;
  #i = 0;

  constructor(text: string, options: StrictJsonOptions) {
    this.#text = text;
    this.#options = options;
    this.#maxDepth = options.maxDepth ?? MAX_STRICT_JSON_DEPTH;
  }

  #fail(reason: string, message: string, offset: number = this.#i): never {
    return refuse(this.#options, reason, message, offset);
  }

  #skipWhitespace(): void {
    const t = this.#text;
    let i = this.#i;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.#i = i;
  }

  read(): unknown {
    const t = this.#text;
    if (t.charCodeAt(0) === 0xfeff) this.#fail("byte-order-mark", "starts with a byte order mark", 0);
    const stack: Frame[] = [];
    let value: unknown;
    for (;;) {
      // Read one value at #i. A container that is not empty is pushed, and the loop reads its first member.
      this.#skipWhitespace();
      const c = t.charCodeAt(this.#i);
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= this.#maxDepth) this.#fail("too-deep", `is nested deeper than ${this.#maxDepth} levels`);
        this.#i++;
        this.#skipWhitespace();
        if (c === 0x7b) {
          const object: Record<string, unknown> = {};
          if (t.charCodeAt(this.#i) === 0x7d /* } */) {
            this.#i++;
            value = object;
          } else {
            stack.push({ array: undefined, object, key: this.#readKey(object) });
            continue;
          }
        } else {
          const array: unknown[] = [];
          if (t.charCodeAt(this.#i) === 0x5d /* ] */) {
            this.#i++;
            value = array;
          } else {
            stack.push({ array, object: undefined, key: "" });
            continue;
          }
        }
      } else if (c === QUOTE) value = this.#readString();
      else if (c === 0x74 /* t */) value = this.#literal("true", true);
      else if (c === 0x66 /* f */) value = this.#literal("false", false);
      else if (c === 0x6e /* n */) value = this.#literal("null", null);
      else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) value = this.#readNumber();
      else if (Number.isNaN(c)) this.#fail("truncated", "ends where a value was expected");
      else this.#fail("syntax", `has an unexpected character ${JSON.stringify(t[this.#i])}`);

      // A complete value: store it in its container, then either read the next member or close the container
      // (which is itself a complete value for the container around it).
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.#skipWhitespace();
          if (this.#i !== t.length) this.#fail("trailing", "has characters after the JSON value");
          return value;
        }
        this.#skipWhitespace();
        const next = t.charCodeAt(this.#i);
        if (top.array !== undefined) {
          top.array.push(value);
          if (next === 0x2c /* , */) {
            this.#i++;
            break;
          }
          if (next !== 0x5d /* ] */) this.#fail("syntax", "expected , or ] in an array");
          this.#i++;
          value = top.array;
        } else {
          const object = top.object!;
          // "__proto__" as an assignment would set the prototype; JSON.parse makes it an own property, as here.
          if (top.key === "__proto__")
            Object.defineProperty(object, top.key, { value, writable: true, enumerable: true, configurable: true });
          else object[top.key] = value;
          if (next === 0x2c /* , */) {
            this.#i++;
            this.#skipWhitespace();
            top.key = this.#readKey(object);
            break;
          }
          if (next !== 0x7d /* } */) this.#fail("syntax", "expected , or } in an object");
          this.#i++;
          value = object;
        }
        stack.pop();
      }
    }
  }

  /** A member's key and its colon; a key the object already has is refused (JSON.parse would keep the last). */
  #readKey(object: Record<string, unknown>): string {
    const start = this.#i;
    if (this.#text.charCodeAt(start) !== QUOTE) this.#fail("syntax", "expected a string key in an object");
    const key = this.#readString();
    if (Object.prototype.hasOwnProperty.call(object, key))
      this.#fail("duplicate-key", `has a duplicate key ${JSON.stringify(key)}`, start);
    this.#skipWhitespace();
    if (this.#text.charCodeAt(this.#i) !== 0x3a /* : */) this.#fail("syntax", "expected : after an object key");
    this.#i++;
    return key;
  }

  #literal<T>(word: string, value: T): T {
    if (!this.#text.startsWith(word, this.#i)) this.#fail("syntax", `has an unexpected character`);
    this.#i += word.length;
    return value;
  }

  /** RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, read by hand. */
  #readNumber(): number {
    const t = this.#text;
    const start = this.#i;
    let i = start;
    const digit = (at: number) => {
      const d = t.charCodeAt(at);
      return d >= 0x30 && d <= 0x39;
    };
    if (t.charCodeAt(i) === 0x2d) i++;
    if (t.charCodeAt(i) === 0x30) i++;
    else if (digit(i)) while (digit(i)) i++;
    else this.#fail("number", "has a malformed number", start);
    if (t.charCodeAt(i) === 0x2e /* . */) {
      i++;
      if (!digit(i)) this.#fail("number", "has a malformed number", start);
      while (digit(i)) i++;
    }
    const e = t.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = t.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!digit(i)) this.#fail("number", "has a malformed number", start);
      while (digit(i)) i++;
    }
    this.#i = i;
    return Number(t.slice(start, i));
  }

  /** A string at #i (on its opening quote): escapes decoded, control characters and lone surrogates refused. */
  #readString(): string {
    const t = this.#text;
    let i = this.#i + 1;
    let chunk = i;
    let out = "";
    for (;;) {
      if (i >= t.length) this.#fail("truncated", "ends inside a string", this.#i);
      const c = t.charCodeAt(i);
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        out += t.slice(chunk, i);
        const e = t.charCodeAt(i + 1);
        i += 2;
        switch (e) {
          case QUOTE:
            out += '"';
            break;
          case BACKSLASH:
            out += "\\";
            break;
          case 0x2f:
            out += "/";
            break;
          case 0x62:
            out += "\b";
            break;
          case 0x66:
            out += "\f";
            break;
          case 0x6e:
            out += "\n";
            break;
          case 0x72:
            out += "\r";
            break;
          case 0x74:
            out += "\t";
            break;
          case 0x75: {
            const unit = this.#hex4(i);
            i += 4;
            if (unit >= 0xd800 && unit <= 0xdbff) {
              // A high surrogate must be followed by an escaped low one (I-JSON: no lone surrogates).
              const low = t.charCodeAt(i) === BACKSLASH && t.charCodeAt(i + 1) === 0x75 ? this.#hex4(i + 2) : -1;
              if (low < 0xdc00 || low > 0xdfff) this.#fail("lone-surrogate", "has a lone surrogate escape", i - 6);
              out += String.fromCharCode(unit, low);
              i += 6;
            } else if (unit >= 0xdc00 && unit <= 0xdfff) {
              this.#fail("lone-surrogate", "has a lone surrogate escape", i - 6);
            } else out += String.fromCharCode(unit);
            break;
          }
          default:
            if (Number.isNaN(e)) this.#fail("truncated", "ends inside a string", i - 2);
            this.#fail("escape", "has an invalid escape in a string", i - 2);
        }
        chunk = i;
        continue;
      }
      if (c < 0x20) this.#fail("control-character", "has a control character in a string", i);
      if (c >= 0xd800 && c <= 0xdfff) {
        // Only reachable from text given as a JS string: decoded UTF-8 never holds a lone surrogate.
        const low = t.charCodeAt(i + 1);
        if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff))
          this.#fail("lone-surrogate", "has a lone surrogate in a string", i);
        i += 2;
        continue;
      }
      i++;
    }
    out += t.slice(chunk, i);
    this.#i = i + 1;
    return out;
  }

  #hex4(at: number): number {
    let value = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.#text.charCodeAt(at + k);
      const v =
        c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
      if (v < 0) this.#fail("escape", "has an invalid \\u escape in a string", at - 2);
      value = value * 16 + v;
    }
    return value;
  }
}
