// SEV-SNP report verification throughput on one core (one Node thread), with the real Milan report, its VCEK and
// AMD's Milan ASK and ARK (read from testdata; the ARK is pinned by fingerprint): (a) the whole chain verified every time (a fresh verifier per report), (b) one verifier
// with the chain cached per VCEK, beside (c) the raw node:crypto ECDSA P-384 verify of the same 672 signed bytes.
// Writes bench/results/snp.json. Usage: node bench/snp.ts
import { X509Certificate, verify as cryptoVerify } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { createReportVerifier, parseReport, verifyReport } from "../lib/snp/index.ts";
import { machineInfo } from "./machine.ts";

const data = new URL("../test/fixtures/snp/", import.meta.url);
const report = new Uint8Array(readFileSync(new URL("milan-report-1.bin", data)));
const vcek = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", data)));
const pemToDer = (name: string) =>
  new Uint8Array(
    Buffer.from(readFileSync(new URL(name, data), "latin1").replace(/-----[^-]+-----|\s+/g, ""), "base64"),
  );
const evidence = { vcek, chain: [pemToDer("milan-ask.pem"), pemToDer("milan-ark.pem")] };
const NOW = new Date("2026-11-21T00:00:00Z");
const ROUND_MS = 1500;
const ROUNDS = 3;

/** One timed round of `body`: calls per second. */
function round(body: () => void): number {
  for (let i = 0; i < 20; i++) body(); // warm-up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ROUND_MS) {
    for (let i = 0; i < 10; i++) body();
    n += 10;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

const key = new X509Certificate(vcek).publicKey;
const parsed = parseReport(report);
const signature = new Uint8Array(96);
signature.set(parsed.signatureR, 0);
signature.set(parsed.signatureS, 48);
const signed = report.subarray(0, 0x2a0);

const verifier = createReportVerifier();
const bodies = {
  raw: () => {
    if (!cryptoVerify("sha384", signed, { key, dsaEncoding: "ieee-p1363" }, signature)) throw new Error("raw verify");
  },
  full: () => void verifyReport(report, evidence, NOW),
  cached: () => void verifier.verify(report, evidence, NOW),
};
// The three measurements alternate round by round, so that load from other processes falls on all of them alike.
const best = { raw: 0, full: 0, cached: 0 };
for (let r = 0; r < ROUNDS; r++) {
  for (const name of ["raw", "cached", "full"] as const) best[name] = Math.max(best[name], round(bodies[name]));
}
const rawP384VerifyPerSec = Math.round(best.raw);
const fullChainPerSec = Math.round(best.full);
const cachedChainPerSec = Math.round(best.cached);

const result = {
  fullChainPerSec,
  cachedChainPerSec,
  rawP384VerifyPerSec,
  cachedVsRaw: Number((cachedChainPerSec / rawP384VerifyPerSec).toFixed(3)),
  target: "cachedChainPerSec >= 0.8 x rawP384VerifyPerSec",
  unit: "report verifications per second on one core (one Node thread), best of the rounds",
  workload: {
    report: "testdata/snp/milan-report-1.bin (v3, Milan) with its VCEK; ASK and ARK from testdata/snp (evidence chain)",
    rounds: ROUNDS,
    order: "raw, cached, full, alternating each round; best round of each",
    roundMs: ROUND_MS,
    full: "verifyReport: parse, X.509 parse of VCEK/ASK/ARK, 3 RSA-PSS-4096 verifies, P-384 verify, TCB/chip-id binding",
    cached: "createReportVerifier().verify: parse, SHA-256 cache key, validity at now, P-384 verify, binding",
    raw: "crypto.verify('sha384', bytes[0,0x2A0), P-384 KeyObject, ieee-p1363) only",
  },
  machine: { ...machineInfo(), note: "shared 2-core machine; other work may have been running" },
  date: new Date().toISOString(),
};

writeFileSync(fileURLToPath(new URL("results/snp.json", import.meta.url)), `${JSON.stringify(result, null, 2)}\n`);
console.table({
  "full chain": { perSec: fullChainPerSec },
  "cached chain": { perSec: cachedChainPerSec },
  "raw P-384 verify": { perSec: rawP384VerifyPerSec },
});
console.log(`cached / raw = ${result.cachedVsRaw} (target >= 0.8)`);
