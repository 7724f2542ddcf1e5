// The fuzz targets: every parser that reads untrusted bytes, seeded with real documents (the Milan report and its
// VCEK, AMD's certificates, the OMS reference signature) and simulator-made ones (reports of every version and
// product, bundles of both kinds, their statements and envelopes, the verifier policy).
import { readFileSync } from "node:fs";

import { findManifest, readBundle, parseStrictJson } from "../../lib/bundle/index.ts";
import { parseEnvelope } from "../../lib/dsse/index.ts";
import { MalformedInputError } from "../../lib/errors.ts";
import { validateStatement } from "../../lib/intoto/index.ts";
import { parseOmsSignature } from "../../lib/oms/index.ts";
import { createReportVerifier, parseReport, parseSnpPolicy, type SnpSimulator } from "../../lib/snp/index.ts";
import { parseVerifierPolicyBytes, verifyBundle, type VerifierPolicy } from "../../offchain/pipeline/index.ts";
import { createBundleFactory } from "../../offchain/testing/bundles.ts";
import type { FuzzTarget } from "./fuzz.ts";

const TESTDATA = new URL("../fixtures/", import.meta.url);
const read = (relative: string): Uint8Array => new Uint8Array(readFileSync(new URL(relative, TESTDATA)));
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function pemToDer(pem: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(pem);
  const body = text.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(body, "base64"));
}

/** JSON documents must not fail with SyntaxError: the harness parses like a caller would, with the coded reader. */
function json(bytes: Uint8Array): unknown {
  return parseStrictJson(bytes, "BUNDLE_MALFORMED");
}

export async function createFuzzTargets(): Promise<{
  targets: FuzzTarget[];
  policy: VerifierPolicy;
  sim: SnpSimulator;
}> {
  // The simulator's VCEK is minted at a fixed date and everything is verified then: no outcome depends on the day.
  const now = new Date("2026-11-21T12:00:00Z");
  const factory = await createBundleFactory({ now });
  const sim = factory.sim;
  const policy = factory.policy;

  const milanReport = read("snp/milan-report-1.bin");
  const milanVcek = read("snp/milan-report-1-vcek.der");
  const reportSeeds = [
    milanReport,
    sim.signReport({ version: 2 }),
    sim.signReport({ version: 3 }),
    sim.signReport({ version: 5 }),
  ];

  const bundles = [
    factory.make({ seed: "fuzz-eval", kind: "eval" }),
    factory.make({ seed: "fuzz-finetune", kind: "finetune" }),
  ];
  const bundleSeeds = bundles.map((b) => b.bytes);
  const envelopeSeeds = bundles.flatMap((b) => b.bundle.envelopes.map((e) => encode(e)));
  const statementSeeds = bundles.flatMap((b) =>
    b.bundle.envelopes.map((e) => new Uint8Array(Buffer.from(e.payload, "base64"))),
  );
  const manifestSeeds = bundles.map(
    (b) => new Uint8Array(Buffer.from(findManifest(b.bundle).envelope.payload, "base64")),
  );

  const milanAsk = pemToDer(read("snp/milan-ask.pem"));
  const milanChain = [milanAsk, pemToDer(read("snp/milan-ark.pem"))];
  // One verifier for the whole run: the chain cache is part of what is under test (a mutated VCEK must miss it).
  const reportVerifier = createReportVerifier({ trustedRoots: [sim.rootFingerprint] });
  // The Milan VCEK is valid from 2026-02-05 for seven years.
  const milanNow = new Date("2026-06-01T00:00:00Z");
  const simReport = sim.signReport({ version: 3 });
  const simEvidence = sim.evidence("vcek");

  const omsSignature = read("formats/model-transparency/v1.1.0-elliptic-key/model.sig");
  const policySeeds = [encode(factory.policyJson), encode({}), encode({ trustedRoots: [sim.rootFingerprint] })];
  const snpPolicySeeds = [encode((factory.policyJson as { snp: unknown }).snp)];

  const targets: FuzzTarget[] = [
    { name: "snp report (parse)", seeds: reportSeeds, run: (b) => parseReport(b) },
    {
      name: "snp report (verify, Milan chain)",
      seeds: [milanReport],
      run: (b) => reportVerifier.verify(b, { vcek: milanVcek, chain: milanChain }, milanNow),
    },
    {
      name: "amd certificate (VCEK)",
      seeds: [milanVcek],
      run: (b) => reportVerifier.verify(milanReport, { vcek: b, chain: milanChain }, milanNow),
    },
    {
      name: "amd certificate (ASK)",
      seeds: [milanAsk],
      run: (b) => reportVerifier.verify(milanReport, { vcek: milanVcek, chain: [b, milanChain[1]!] }, milanNow),
    },
    {
      name: "simulator certificate (VCEK)",
      seeds: [sim.vcekDer],
      run: (b) => reportVerifier.verify(simReport, { ...simEvidence, vcek: b }, now),
    },
    { name: "provenance bundle (read)", seeds: bundleSeeds, json: true, run: (b) => readBundle(b) },
    {
      name: "provenance bundle (full pipeline)",
      seeds: bundleSeeds,
      json: true,
      run: (b) => {
        // verifyBundle never throws: its verdict carries the codes. A throw of any kind is a finding.
        const verdict = verifyBundle(b, { policy, now });
        if (!verdict.ok && verdict.errors.length === 0) throw new Error("refused without a reason code");
        if (!verdict.ok) throw new MalformedInputError(verdict.errors[0]!.code, verdict.errors[0]!.message);
        return verdict;
      },
    },
    { name: "dsse envelope", seeds: envelopeSeeds, json: true, run: (b) => parseEnvelope(json(b)) },
    {
      name: "in-toto statement",
      seeds: [...statementSeeds, ...manifestSeeds],
      json: true,
      run: (b) => validateStatement(json(b)),
    },
    { name: "oms signature file", seeds: [omsSignature], json: true, run: (b) => parseOmsSignature(b) },
    { name: "verifier policy file", seeds: policySeeds, json: true, run: (b) => parseVerifierPolicyBytes(b) },
    { name: "snp policy", seeds: snpPolicySeeds, json: true, run: (b) => parseSnpPolicy(json(b)) },
  ];
  return { targets, policy, sim };
}
