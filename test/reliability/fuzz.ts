// Bounded fuzzing of every parser that reads untrusted bytes: SEV-SNP reports, AMD certificates (through the
// report verifier), provenance bundles, DSSE envelopes, in-toto statements, OMS signature files and policy files.
// Each input must end in a valid result or a coded ProvenantError: any other exception, a call slower than the hang
// limit, or a heap that keeps growing is a finding. Seeds are real or simulator-made documents; mutations are
// byte flips, truncations, splices, random bytes and JSON-structure edits. The mutations are deterministic for a
// given seed (fuzzSeed: PROVENANT_FUZZ_SEED, printed); a finding also carries the exact input, in base64.
import { randomInt } from "node:crypto";

import { isProvenantError } from "../../lib/errors.ts";

export interface FuzzTarget {
  name: string;
  /** Valid inputs to mutate. */
  seeds: readonly Uint8Array[];
  /** True when the input was accepted; throws a ProvenantError when refused. */
  run(input: Uint8Array): unknown;
  /** JSON targets get structure-aware mutations as well as byte mutations. */
  json?: boolean;
}

export interface FuzzFinding {
  target: string;
  kind: "uncoded-exception" | "hang";
  message: string;
  /** base64 of the input, to replay it. */
  input: string;
}

export interface FuzzResult {
  inputs: number;
  accepted: number;
  refused: number;
  byTarget: Record<string, { inputs: number; accepted: number; refused: number; codes: Record<string, number> }>;
  findings: FuzzFinding[];
  maxCallMs: number;
  heapGrowthMB: number;
  seconds: number;
}

/**
 * The seed of a fuzz run: PROVENANT_FUZZ_SEED when it is set (to replay a run), otherwise a fresh random one, so that
 * runs explore different inputs. Prints the seed, with the line that replays it, before the run starts: a failure is
 * never without its seed. The fuzz tests take their seed from here.
 */
export function fuzzSeed(what = "fuzz", env: NodeJS.ProcessEnv = process.env): number {
  const value = env.PROVENANT_FUZZ_SEED;
  let seed: number;
  if (value === undefined || value === "") seed = randomInt(0, 0x1_0000_0000);
  else {
    seed = Number(value);
    if (!/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(value) || !Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff)
      throw new Error(`PROVENANT_FUZZ_SEED must be an integer in [0, 2^32): ${value}`);
  }
  console.log(`${what}: fuzz seed ${seed} (replay: PROVENANT_FUZZ_SEED=${seed})`);
  return seed;
}

/** xorshift128+: fast, seedable, good enough to steer mutations. */
export function createRng(seed: number): () => number {
  let s0 = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let s1 = (seed * 0x85ebca6b) >>> 0 || 2;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= x << 23;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    s1 = x >>> 0;
    return ((s0 + s1) >>> 0) / 0x1_0000_0000;
  };
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a];

function mutateBytes(seed: Uint8Array, rng: () => number, others: readonly Uint8Array[]): Uint8Array {
  const pick = (n: number) => Math.floor(rng() * n);
  const strategy = pick(7);
  const out = Uint8Array.from(seed);
  switch (strategy) {
    case 0: {
      // flip a few bits
      const flips = 1 + pick(8);
      for (let i = 0; i < flips && out.length > 0; i++) out[pick(out.length)]! ^= 1 << pick(8);
      return out;
    }
    case 1: {
      // set bytes to interesting values
      const n = 1 + pick(4);
      for (let i = 0; i < n && out.length > 0; i++)
        out[pick(out.length)] = INTERESTING_BYTES[pick(INTERESTING_BYTES.length)]!;
      return out;
    }
    case 2:
      // truncate
      return out.subarray(0, pick(out.length + 1));
    case 3: {
      // extend with random bytes
      const extra = new Uint8Array(1 + pick(64));
      for (let i = 0; i < extra.length; i++) extra[i] = pick(256);
      const grown = new Uint8Array(out.length + extra.length);
      grown.set(out);
      grown.set(extra, out.length);
      return grown;
    }
    case 4: {
      // splice with another seed
      const other = others[pick(others.length)] ?? seed;
      const cut = pick(out.length + 1);
      const from = pick(other.length + 1);
      const spliced = new Uint8Array(cut + (other.length - from));
      spliced.set(out.subarray(0, cut));
      spliced.set(other.subarray(from), cut);
      return spliced;
    }
    case 5: {
      // overwrite a run with one value
      if (out.length === 0) return out;
      const start = pick(out.length);
      const len = Math.min(out.length - start, 1 + pick(48));
      out.fill(INTERESTING_BYTES[pick(INTERESTING_BYTES.length)]!, start, start + len);
      return out;
    }
    default: {
      // pure random bytes of a similar size
      const random = new Uint8Array(pick(Math.max(2, seed.length * 2)));
      for (let i = 0; i < random.length; i++) random[i] = pick(256);
      return random;
    }
  }
}

const JSON_REPLACEMENTS: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  "",
  "00",
  "zz",
  "A".repeat(300),
  [],
  {},
  [null],
  { "": null },
  "__proto__",
  "https://slsa.dev/provenance/v1",
];

function mutateJsonValue(value: unknown, rng: () => number, depth: number): unknown {
  const pick = (n: number) => Math.floor(rng() * n);
  if (depth > 0 && value !== null && typeof value === "object") {
    if (Array.isArray(value)) {
      if (value.length === 0 || rng() < 0.2)
        return rng() < 0.5 ? [...value, JSON_REPLACEMENTS[pick(JSON_REPLACEMENTS.length)]] : [];
      const copy = [...value];
      const i = pick(copy.length);
      copy[i] = mutateJsonValue(copy[i], rng, depth - 1);
      return copy;
    }
    const record = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(record);
    if (keys.length === 0 || rng() < 0.15) {
      record[rng() < 0.5 ? "unexpected" : "__proto__"] = JSON_REPLACEMENTS[pick(JSON_REPLACEMENTS.length)];
      return record;
    }
    const key = keys[pick(keys.length)]!;
    if (rng() < 0.2) delete record[key];
    else record[key] = mutateJsonValue(record[key], rng, depth - 1);
    return record;
  }
  if (typeof value === "string" && value.length > 0 && rng() < 0.5) {
    // keep the shape, change a character: catches base64/hex decoders that accept garbage
    const i = pick(value.length);
    return value.slice(0, i) + String.fromCharCode(32 + pick(95)) + value.slice(i + 1);
  }
  return JSON_REPLACEMENTS[pick(JSON_REPLACEMENTS.length)];
}

function mutateJson(seed: Uint8Array, rng: () => number): Uint8Array {
  const parsed: unknown = JSON.parse(new TextDecoder().decode(seed));
  return new TextEncoder().encode(JSON.stringify(mutateJsonValue(parsed, rng, 1 + Math.floor(rng() * 6))));
}

/**
 * Runs `totalInputs` inputs spread evenly over the targets, or stops at `maxSeconds`, whichever comes first.
 * A single call slower than `hangMs` is reported as a hang (the parsers are synchronous, so it cannot be interrupted;
 * the limit catches pathological slowness rather than infinite loops, which the time bound of the test catches).
 */
export function runFuzz(
  targets: readonly FuzzTarget[],
  options: { totalInputs: number; maxSeconds: number; seed?: number; hangMs?: number },
): FuzzResult {
  const rng = createRng(options.seed ?? 1);
  const hangMs = options.hangMs ?? 2000;
  const started = performance.now();
  const heapStart = process.memoryUsage().heapUsed;
  const result: FuzzResult = {
    inputs: 0,
    accepted: 0,
    refused: 0,
    byTarget: {},
    findings: [],
    maxCallMs: 0,
    heapGrowthMB: 0,
    seconds: 0,
  };
  for (const t of targets) result.byTarget[t.name] = { inputs: 0, accepted: 0, refused: 0, codes: {} };

  const deadline = started + options.maxSeconds * 1000;
  for (let i = 0; i < options.totalInputs; i++) {
    if ((i & 255) === 0 && performance.now() > deadline) break;
    const target = targets[i % targets.length]!;
    const seed = target.seeds[Math.floor(rng() * target.seeds.length)]!;
    let input: Uint8Array;
    try {
      input = target.json === true && rng() < 0.6 ? mutateJson(seed, rng) : mutateBytes(seed, rng, target.seeds);
    } catch {
      input = mutateBytes(seed, rng, target.seeds);
    }
    const stats = result.byTarget[target.name]!;
    const t0 = performance.now();
    try {
      target.run(input);
      result.accepted++;
      stats.accepted++;
    } catch (error) {
      if (isProvenantError(error)) {
        result.refused++;
        stats.refused++;
        stats.codes[error.code] = (stats.codes[error.code] ?? 0) + 1;
      } else {
        result.findings.push({
          target: target.name,
          kind: "uncoded-exception",
          message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          input: Buffer.from(input).toString("base64"),
        });
      }
    }
    const ms = performance.now() - t0;
    if (ms > result.maxCallMs) result.maxCallMs = ms;
    if (ms > hangMs) {
      result.findings.push({
        target: target.name,
        kind: "hang",
        message: `${ms.toFixed(0)} ms`,
        input: Buffer.from(input).toString("base64"),
      });
    }
    result.inputs++;
    stats.inputs++;
  }
  result.seconds = (performance.now() - started) / 1000;
  result.heapGrowthMB = (process.memoryUsage().heapUsed - heapStart) / (1024 * 1024);
  return result;
}

/** The seeds themselves must be accepted, or the mutations explore only the refusal paths. Returns the failures. */
export function checkSeeds(targets: readonly FuzzTarget[]): string[] {
  const failures: string[] = [];
  for (const target of targets) {
    for (const [i, seed] of target.seeds.entries()) {
      try {
        target.run(seed);
      } catch (error) {
        const code = isProvenantError(error) ? error.code : "uncoded";
        failures.push(`${target.name} seed ${i}: ${code} ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  return failures;
}
