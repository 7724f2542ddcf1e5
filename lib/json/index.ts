// The one strict JSON reader for signed content (DSSE payloads, in-toto statements), shared by the Node pipeline, the
// CLI, the SDK and the explorer page: browser-safe (no node:*), one linear pass, depth-bounded, iterative (no
// recursion, so no stack overflow on hostile nesting), no regular expressions. Every reader of a signed payload must
// see the same value, so everything that JSON.parse resolves silently is refused instead: duplicate keys (JSON.parse
// keeps the last), a byte order mark, invalid UTF-8 (a lenient decoder substitutes U+FFFD), lone surrogates (I-JSON,
// RFC 7493 §2.1). The grammar is RFC 8259's; numbers become what JSON.parse makes of the same text.
// Fast path: JSON.parse (native) between a linear pre-scan (depth, member count) and a walk of its value (own keys
// counted, strings checked): it takes only text the reader below accepts, with the same value; for anything it does not
// take, the reader runs and gives the reason and offset.
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
  // A fatal UTF-8 decoder never yields a lone surrogate: only escapes can make one.
  const maxDepth = options.maxDepth ?? MAX_STRICT_JSON_DEPTH;
  const value = parseJsonUnique(text, maxDepth, { refuseLoneSurrogates: true, wellFormed: true });
  return value !== undefined ? value : new Reader(text, options).read();
}

/**
 * Reads one JSON value from text (RFC 8259: whitespace is space, tab, LF, CR only; nothing may follow the value).
 * Refused: duplicate keys in any object at any depth, nesting deeper than `maxDepth`, control characters in strings,
 * lone surrogates (raw or escaped), a leading U+FEFF, and anything outside the grammar.
 */
export function parseStrictJsonText(text: string, options: StrictJsonOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? MAX_STRICT_JSON_DEPTH;
  const value = parseJsonUnique(text, maxDepth, { refuseLoneSurrogates: true, wellFormed: false });
  return value !== undefined ? value : new Reader(text, options).read();
}

/** The reader alone, without the fast path: what parseStrictJsonText falls back to, and what tests compare it with. */
export function parseStrictJsonTextSlow(text: string, options: StrictJsonOptions = {}): unknown {
  return new Reader(text, options).read();
}

const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * JSON.parse's value of `text` when it is JSON with no duplicate key in any object, nested at most `maxDepth` levels,
 * not starting with U+FEFF and, with `refuseLoneSurrogates`, with no lone surrogate in any string or key (raw or
 * escaped; `wellFormed`: the text is known to hold none raw, as text from a fatal UTF-8 decoder); undefined for
 * anything else, whose reason a slower reader then finds. Linear and without recursion: a scan counts nesting before
 * JSON.parse runs (megabytes of "[[[[…" cost JSON.parse seconds) and counts the members (":" outside strings); the
 * walk of the parsed value counts own keys, which JSON.parse collapses on a duplicate (keeping the last value), so a
 * lower count means a duplicate key somewhere. `{"a":{…},"a":1}` drops the first value's members too: lower still.
 */
export function parseJsonUnique(
  text: string,
  maxDepth: number,
  options: { refuseLoneSurrogates: boolean; wellFormed: boolean },
): unknown {
  if (text.charCodeAt(0) === 0xfeff) return undefined;
  const members = scanMembers(text, maxDepth);
  if (members < 0) return undefined;
  if (options.refuseLoneSurrogates && !options.wellFormed && LONE_SURROGATE.test(text)) return undefined;
  // Only a \u escape can make a lone surrogate in text that holds none raw.
  const checkStrings = options.refuseLoneSurrogates && text.includes("\\u");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // The walk: an explicit stack (the depth is bounded, but no recursion anyway).
  let keys = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (checkStrings && LONE_SURROGATE.test(v)) return undefined;
    } else if (typeof v === "object" && v !== null) {
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          if (typeof item === "object" || typeof item === "string") stack.push(item);
        }
      } else {
        const object = v as Record<string, unknown>;
        const names = Object.keys(object);
        keys += names.length;
        for (let i = 0; i < names.length; i++) {
          const name = names[i]!;
          if (checkStrings && LONE_SURROGATE.test(name)) return undefined;
          const item = object[name];
          if (typeof item === "object" || typeof item === "string") stack.push(item);
        }
      }
    }
  }
  return keys === members ? value : undefined;
}

/**
 * One pass over `text` outside its strings: -1 when brackets nest deeper than `maxDepth` or a string is not closed,
 * else the number of ":" (in JSON, one per object member). Strings are skipped with indexOf: a quote ends one when
 * an even number of backslashes precedes it; each backslash is looked at once, so the pass stays linear.
 */
function scanMembers(text: string, maxDepth: number): number {
  const n = text.length;
  let depth = 0;
  let members = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end === -1) return -1;
        let b = end - 1;
        while (text.charCodeAt(b) === BACKSLASH) b--;
        if ((end - 1 - b) % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end;
    } else if (c === 0x3a /* : */) members++;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return -1;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return members;
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
