// Completing evidence whose chain is partial (ASK only, ARK only) or absent, against a real HTTP server that answers
// like AMD's KDS (offchain/testing/kds.ts): the chain fetched is the one the VCEK's issuer names, so every such
// evidence reaches a verdict instead of waiting forever.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { startFakeKds, type FakeKds } from "../../offchain/testing/kds.ts";
import { ProvenantError } from "../errors.ts";
import { chainNeeds, completeChain, createCertificateStore, kdsChainUrl, kdsVcekUrl } from "./kds.ts";
import { parseReport } from "./parse.ts";
import { createSimulator, type SnpSimulator } from "./sim.ts";
import { createReportVerifier } from "./verify.ts";

const dir = new URL("../../test/fixtures/snp/", import.meta.url);
const report = new Uint8Array(readFileSync(new URL("milan-report-1.bin", dir)));
const vcek = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", dir)));
const derOf = (name: string): Uint8Array => {
  const pem = readFileSync(new URL(name, dir), "latin1");
  return new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));
};
const ask = derOf("milan-ask.pem");
const ark = derOf("milan-ark.pem");
const NOW = new Date("2026-11-21T00:00:00Z");

const code = (e: unknown): string | undefined => (e instanceof ProvenantError ? e.code : undefined);

describe("KDS: completing partial chains", () => {
  let kds: FakeKds;
  let genoa: SnpSimulator;
  const dirs: string[] = [];
  const cache = (): string => {
    const d = mkdtempSync(join(tmpdir(), "kds-resolve-"));
    dirs.push(d);
    return d;
  };
  before(async () => {
    genoa = await createSimulator({ product: "Genoa", keyDir: join(tmpdir(), "provenant-test-sim"), now: NOW });
    kds = await startFakeKds({
      chains: [
        { product: "Milan", chain: [ask, ark] },
        { product: "Genoa", chain: [genoa.askDer, genoa.arkDer] },
      ],
      vceks: { [Buffer.from(parseReport(report).chipId).toString("hex")]: vcek },
    });
  });
  after(async () => {
    await kds.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("when the chain holds only the ASK, it fetches the product's cert_chain over HTTP and adds the ARK", async () => {
    kds.requests.length = 0;
    const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
    const evidence = await store.resolveEvidence(report, { vcek, chain: [ask] });
    assert.equal(evidence.chain?.length, 2);
    assert.deepEqual(kds.requests, [new URL(kdsChainUrl("Milan", "vcek", kds.url)).pathname]);
    const verified = createReportVerifier().verify(report, evidence, NOW);
    assert.equal(verified.product, "Milan");
  });

  it("when the chain holds only the ARK, it fetches the cert_chain and adds the ASK", async () => {
    const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
    const evidence = await store.resolveEvidence(report, { vcek, chain: [ark] });
    assert.equal(evidence.chain?.length, 2);
    assert.equal(createReportVerifier().verify(report, evidence, NOW).product, "Milan");
  });

  it("when the evidence is complete, it asks KDS nothing", async () => {
    kds.requests.length = 0;
    const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
    const evidence = await store.resolveEvidence(report, { vcek, chain: [ask, ark] });
    assert.equal(evidence.chain?.length, 2);
    assert.deepEqual(kds.requests, []);
  });

  it("when nothing but the report is given, it fetches the VCEK and the chain over HTTP", async () => {
    kds.requests.length = 0;
    const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
    const evidence = await store.resolveEvidence(report);
    const parsed = parseReport(report);
    assert.deepEqual(
      kds.requests,
      [kdsVcekUrl("Milan", parsed.chipId, parsed.reportedTcb, kds.url), kdsChainUrl("Milan", "vcek", kds.url)].map(
        (u) => new URL(u).pathname + new URL(u).search,
      ),
    );
    assert.equal(createReportVerifier().verify(report, evidence, NOW).product, "Milan");
  });

  it("when the report's CPUID names another product than the VCEK's issuer, it fetches the issuer's chain and the verdict is SNP_PRODUCT_MISMATCH", async () => {
    // A Genoa-certified VCEK signs a report whose CPUID says Milan (family 19h model 01h).
    const lying = genoa.signReport({ cpuid: { family: 0x19, model: 0x01, stepping: 0x01 } });
    assert.equal(parseReport(lying).productFromCpuid, "Milan");
    kds.requests.length = 0;
    const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
    const evidence = await store.resolveEvidence(lying, { vcek: genoa.vcekDer });
    assert.deepEqual(kds.requests, [new URL(kdsChainUrl("Genoa", "vcek", kds.url)).pathname]);
    assert.throws(
      () => createReportVerifier({ trustedRoots: [genoa.rootFingerprint] }).verify(lying, evidence, NOW),
      (e) => code(e) === "SNP_PRODUCT_MISMATCH",
    );
  });

  it("when KDS answers 503 or drops the connection, resolving fails with SNP_CERT_UNAVAILABLE", async () => {
    for (const mode of ["busy", "down"] as const) {
      kds.mode = mode;
      try {
        const store = createCertificateStore({ cacheDir: cache(), kdsBaseUrl: kds.url, minIntervalMs: 0 });
        await assert.rejects(store.resolveEvidence(report, { vcek, chain: [ask] }), (e) => {
          return code(e) === "SNP_CERT_UNAVAILABLE";
        });
      } finally {
        kds.mode = "up";
      }
    }
  });

  it("when asked what a chain lacks, it names the VCEK issuer's product and the missing roles", () => {
    assert.deepEqual(chainNeeds(vcek, undefined), {
      product: "Milan",
      signer: "vcek",
      missing: ["intermediate", "ark"],
    });
    assert.deepEqual(chainNeeds(vcek, [ask]), { product: "Milan", signer: "vcek", missing: ["ark"] });
    assert.deepEqual(chainNeeds(vcek, [ark, vcek]), { product: "Milan", signer: "vcek", missing: ["intermediate"] });
    assert.deepEqual(chainNeeds(vcek, [ark, ask]), { product: "Milan", signer: "vcek", missing: [] });
    assert.equal(chainNeeds(new Uint8Array([1, 2, 3]), undefined), undefined, "an unreadable leaf is the verifier's");
    assert.equal(chainNeeds(vcek, [ask, ark, ask, ark]), undefined, "an oversized chain is the verifier's");
    const source = { chain: () => [ask, ark] };
    assert.equal(completeChain(vcek, [ask], source)?.chain?.length, 2);
    assert.equal(completeChain(vcek, [ask], { chain: () => undefined }), undefined);
    assert.equal(completeChain(vcek, [ask], { chain: () => [ask] }), undefined, "a source without the ARK");
  });
});
