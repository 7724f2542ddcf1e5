import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { fuzzSeed } from "../../test/reliability/fuzz.ts";
import { ProvenantError } from "../errors.ts";
import { createReportVerifier, createSimulator, parseCrl, parseReport, parseSnpPolicy } from "./index.ts";

const dir = new URL("../../test/fixtures/snp/", import.meta.url);
const report = new Uint8Array(readFileSync(new URL("milan-report-1.bin", dir)));
const vcek = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", dir)));
const pemToDer = (name: string) =>
  new Uint8Array(Buffer.from(readFileSync(new URL(name, dir), "latin1").replace(/-----[^-]+-----|\s+/g, ""), "base64"));
/** AMD's Milan ASK and ARK from testdata (no certificate is built into lib/snp). */
const milanChain = [pemToDer("milan-ask.pem"), pemToDer("milan-ark.pem")];
const NOW = new Date("2026-11-21T00:00:00Z");
/** A fixed number of inputs (not a time budget): the same seed replays the same run on any machine. */
const INPUTS = 2_000;

/** xorshift32: deterministic, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  const out = bytes.slice();
  const kind = next() % 4;
  if (kind === 3) return out.subarray(0, next() % (out.length + 1));
  const flips = 1 + (next() % 4);
  for (let i = 0; i < flips; i++) {
    const at = next() % out.length;
    out[at] = kind === 0 ? out[at]! ^ (1 << (next() % 8)) : next() & 0xff;
  }
  return out;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Runs fn; a success must satisfy `mayPass` (a mutated report verifies only when no byte changed). */
function expectCoded(fn: () => unknown, outcomes: Map<string, number>, mayPass: () => boolean = () => true): void {
  try {
    fn();
    assert.ok(mayPass(), "a mutated report verified");
    outcomes.set("OK", (outcomes.get("OK") ?? 0) + 1);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    if (!(error instanceof ProvenantError)) assert.fail(`uncoded ${String(error)}`);
    outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
  }
}

describe("fuzzing lib/snp", () => {
  it(`when fed ${INPUTS} random and mutated reports, certificates, CRLs and policies, every failure is a coded error`, async (t) => {
    const sim = await createSimulator({ product: "Turin", keyDir: join(tmpdir(), "provenant-test-sim"), now: NOW });
    const simReport = sim.signReport();
    const verifier = createReportVerifier({ trustedRoots: [sim.rootFingerprint] });
    const seed = fuzzSeed("lib/snp fuzz");
    const next = rng(seed);
    const outcomes = new Map<string, number>();
    for (let round = 0; round < INPUTS; round++) {
      const pick = next() % 8;
      if (pick === 0) {
        const random = Uint8Array.from({ length: next() % 2 === 0 ? 1184 : next() % 2000 }, () => next() & 0xff);
        expectCoded(() => verifier.verify(random, { vcek, chain: milanChain }, NOW), outcomes);
      } else if (pick === 1) {
        const mutated = mutate(report, next);
        expectCoded(
          () => verifier.verify(mutated, { vcek, chain: milanChain }, NOW),
          outcomes,
          () => sameBytes(mutated, report),
        );
      } else if (pick === 2)
        expectCoded(() => verifier.verify(report, { vcek: mutate(vcek, next), chain: milanChain }, NOW), outcomes);
      else if (pick === 3) {
        const mutated = mutate(simReport, next);
        expectCoded(
          () => verifier.verify(mutated, sim.evidence(), NOW),
          outcomes,
          () => sameBytes(mutated, simReport),
        );
      } else if (pick === 4) {
        const chain = [mutate(sim.askDer, next), sim.arkDer];
        expectCoded(() => verifier.verify(simReport, { vcek: sim.vcekDer, chain }, NOW), outcomes);
      } else if (pick === 5) expectCoded(() => parseCrl(mutate(sim.crl({ revoked: [1, 2, 3] }), next)), outcomes);
      else if (pick === 6) {
        const values: unknown[] = [null, 1, "x", [], {}, -1, 1e9, "ab".repeat(48), ["00"], { Milan: { snp: 300 } }];
        const keys = ["vmpl", "measurements", "minimumTcb", "hostData", "allowDebug", "minimumFirmware", "bogus"];
        const policy: Record<string, unknown> = {};
        for (let i = 0; i < 3; i++) policy[keys[next() % keys.length]!] = values[next() % values.length];
        expectCoded(() => parseSnpPolicy(policy), outcomes);
      } else {
        expectCoded(() => parseReport(mutate(report, next)), outcomes);
      }
    }
    t.diagnostic(`fuzz seed ${seed}: ${INPUTS} inputs ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok((outcomes.get("SNP_BAD_SIGNATURE") ?? 0) > 0);
    assert.ok((outcomes.get("SNP_MALFORMED") ?? 0) > 0);
    assert.ok((outcomes.get("SNP_CHAIN_INVALID") ?? 0) > 0);
  });

  it("when the evidence or the date is not what the types say, it still throws coded errors", () => {
    const verifier = createReportVerifier();
    const bad: unknown[] = [
      undefined,
      null,
      {},
      { vcek: "x" },
      { vcek: new Uint8Array(0) },
      { vcek, chain: [new Uint8Array(3)] },
    ];
    for (const evidence of bad) {
      assert.throws(
        () => verifier.verify(report, evidence as never, NOW),
        (e) => e instanceof ProvenantError,
      );
    }
    assert.throws(
      () => verifier.verify("report" as never, { vcek, chain: milanChain }, NOW),
      (e) => e instanceof ProvenantError && e.code === "SNP_MALFORMED",
    );
    assert.throws(
      () => verifier.verify(report, { vcek, chain: milanChain }, new Date("nope")),
      (e) => e instanceof ProvenantError && e.code === "SNP_CERT_EXPIRED",
    );
  });
});
