import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  type CertificateSource,
  createCertificateStore,
  createReportVerifier,
  createSimulator,
  DEFAULT_SNP_POLICY,
  parseReport,
  validateReport,
  verifyReport,
} from "./index.ts";

const dir = new URL("../../test/fixtures/snp/", import.meta.url);
const report = new Uint8Array(readFileSync(new URL("milan-report-1.bin", dir)));
const vcek = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", dir)));
const pemToDer = (name: string) =>
  new Uint8Array(Buffer.from(readFileSync(new URL(name, dir), "latin1").replace(/-----[^-]+-----|\s+/g, ""), "base64"));
const NOW = new Date("2026-11-21T00:00:00Z");
const ask = pemToDer("milan-ask.pem");
const ark = pemToDer("milan-ark.pem");
/** The report with its VCEK and AMD's Milan chain (ASK, ARK) read from testdata: nothing is built in. */
const evidence = { vcek, chain: [ask, ark] };
const chainPem =
  readFileSync(new URL("milan-ask.pem", dir), "latin1") + readFileSync(new URL("milan-ark.pem", dir), "latin1");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, `not a ProvenantError: ${String(error)}`);
    return error.code;
  }
  return "OK";
}

describe("the real Milan report", () => {
  it("when verified with its VCEK and the testdata ASK and ARK, it passes the default policy", () => {
    const verified = verifyReport(report, evidence, NOW);
    assert.equal(verified.product, "Milan");
    assert.equal(verified.signer, "vcek");
    assert.equal(verified.rootFingerprint, "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd");
    validateReport(verified, DEFAULT_SNP_POLICY);
  });

  it("when parsed, its fields match PROVENANCE.md", () => {
    const r = parseReport(report);
    assert.equal(r.version, 3);
    assert.equal(r.guestSvn, 2);
    assert.equal(r.policy.raw, 0x3001fn);
    assert.equal(r.policy.debug, false);
    assert.equal(r.policy.migrateMa, false);
    assert.equal(r.policy.smt, true);
    assert.equal(r.vmpl, 0);
    assert.equal(r.signatureAlgo, 1);
    assert.equal(r.platformInfo.raw, 0x25n);
    assert.equal(r.signingKey, "vcek");
    assert.deepEqual(r.cpuid, { family: 0x19, model: 1, stepping: 1 });
    assert.equal(r.productFromCpuid, "Milan");
    assert.equal(
      hex(r.measurement),
      "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1",
    );
    assert.equal(hex(r.hostData), "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10");
    assert.equal(hex(r.chipId).slice(0, 16), "4ffb5cb4fd594f3f");
    for (const tcb of [r.currentTcb, r.reportedTcb, r.committedTcb, r.launchTcb]) {
      assert.deepEqual({ ...tcb, raw: 0n }, { bootloader: 4, tee: 0, snp: 24, microcode: 219, raw: 0n });
    }
    assert.deepEqual(r.currentVersion, { major: 1, minor: 55, build: 29 });
    assert.equal(r.launchMitigationVector, undefined);
  });

  it("when the chain comes ARK first or with the VCEK included, it verifies the same", () => {
    for (const chain of [
      [ark, ask],
      [vcek, ask, ark],
    ]) {
      assert.equal(verifyReport(report, { vcek, chain }, NOW).product, "Milan");
    }
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [ask, ask] }, NOW)),
      "SNP_CHAIN_INVALID",
    );
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [ark] }, NOW)),
      "SNP_CHAIN_INVALID",
    );
  });

  it("when the evidence carries no chain and no certificate source is configured, it fails with SNP_CERT_UNAVAILABLE", () => {
    assert.equal(
      codeOf(() => verifyReport(report, { vcek }, NOW)),
      "SNP_CERT_UNAVAILABLE",
    );
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [] }, NOW)),
      "SNP_CERT_UNAVAILABLE",
    );
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [ask] }, NOW)),
      "SNP_CERT_UNAVAILABLE",
    );
    const empty = createCertificateStore({ cacheDir: mkdtempSync(join(tmpdir(), "snp-kds-")), offline: true });
    assert.equal(
      codeOf(() => verifyReport(report, { vcek }, NOW, { certificates: empty })),
      "SNP_CERT_UNAVAILABLE",
    );
  });

  it("when the certificate store's disk cache holds the testdata cert_chain, the same report verifies without a chain", () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "snp-kds-"));
    writeFileSync(join(cacheDir, "vcek-Milan-cert_chain.pem"), chainPem, "latin1");
    const store = createCertificateStore({ cacheDir, offline: true });
    const verified = verifyReport(report, { vcek }, NOW, { certificates: store });
    assert.equal(verified.product, "Milan");
    assert.equal(verified.rootFingerprint, "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd");
    // The evidence's ASK alone: the cache supplies the ARK.
    assert.equal(verifyReport(report, { vcek, chain: [ask] }, NOW, { certificates: store }).product, "Milan");
  });

  it("when a store fetched the cert_chain through an injected fetch, the synchronous verify finds it", async () => {
    const urls: string[] = [];
    const store = createCertificateStore({
      cacheDir: mkdtempSync(join(tmpdir(), "snp-kds-")),
      minIntervalMs: 0,
      fetch: async (url) => {
        urls.push(url);
        const body = url.endsWith("/vcek/v1/Milan/cert_chain") ? Buffer.from(chainPem, "latin1") : undefined;
        return {
          ok: body !== undefined,
          status: body === undefined ? 404 : 200,
          arrayBuffer: async () => Uint8Array.from(body ?? []).buffer,
        };
      },
    });
    assert.equal(store.chain("Milan", "vcek"), undefined);
    await store.fetchChain("Milan", "vcek");
    assert.deepEqual(urls, ["https://kdsintf.amd.com/vcek/v1/Milan/cert_chain"]);
    assert.equal(verifyReport(report, { vcek }, NOW, { certificates: store }).product, "Milan");
  });

  it("when the certificate source serves an unpinned ARK, it fails with SNP_UNTRUSTED_ROOT", async () => {
    const sim = await createSimulator({ keyDir: join(tmpdir(), "provenant-test-sim"), now: NOW });
    const source: CertificateSource = { chain: () => [ask, sim.arkDer] };
    assert.equal(
      codeOf(() => verifyReport(report, { vcek }, NOW, { certificates: source })),
      "SNP_UNTRUSTED_ROOT",
    );
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [ask] }, NOW, { certificates: source })),
      "SNP_UNTRUSTED_ROOT",
    );
  });

  it("when a signed byte is flipped, it fails with SNP_BAD_SIGNATURE", () => {
    const bad = report.slice();
    bad[0x50] ^= 1;
    assert.equal(
      codeOf(() => verifyReport(bad, evidence, NOW)),
      "SNP_BAD_SIGNATURE",
    );
  });

  it("when an unsigned tail byte is non-zero, it fails with SNP_MALFORMED", () => {
    const bad = report.slice();
    bad[0x400] = 1;
    assert.equal(
      codeOf(() => verifyReport(bad, evidence, NOW)),
      "SNP_MALFORMED",
    );
  });

  it("when the chain carries the Genoa ARK, it fails with a chain error", () => {
    const code = codeOf(() => verifyReport(report, { vcek, chain: [ask, pemToDer("genoa-ark.pem")] }, NOW));
    assert.ok(["SNP_CHAIN_INVALID", "SNP_PRODUCT_MISMATCH"].includes(code), code);
  });

  it("when the chain carries an unpinned ARK, it fails with SNP_UNTRUSTED_ROOT even though the ARK came with the evidence", async () => {
    const sim = await createSimulator({ keyDir: join(tmpdir(), "provenant-test-sim"), now: NOW });
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [ask, sim.arkDer] }, NOW)),
      "SNP_UNTRUSTED_ROOT",
    );
  });

  it("when another chip's VCEK comes with the report, it fails with SNP_CHAIN_INVALID or SNP_BAD_SIGNATURE", async () => {
    const sim = await createSimulator({ keyDir: join(tmpdir(), "provenant-test-sim"), now: NOW });
    assert.equal(
      codeOf(() => verifyReport(report, { vcek: sim.vcekDer, chain: [ask, ark] }, NOW)),
      "SNP_CHAIN_INVALID",
    );
    assert.equal(
      codeOf(() => verifyReport(report, sim.evidence(), NOW, { trustedRoots: [sim.rootFingerprint] })),
      "SNP_BAD_SIGNATURE",
    );
  });

  it("when the chain carries the Milan ASVK for a VCEK, it fails with SNP_CHAIN_INVALID", () => {
    assert.equal(
      codeOf(() => verifyReport(report, { vcek, chain: [pemToDer("milan-asvk.pem"), ark] }, NOW)),
      "SNP_CHAIN_INVALID",
    );
  });

  it("when now is outside the VCEK's validity, it fails with SNP_CERT_EXPIRED", () => {
    assert.equal(
      codeOf(() => verifyReport(report, evidence, new Date("2034-01-01T00:00:00Z"))),
      "SNP_CERT_EXPIRED",
    );
    assert.equal(
      codeOf(() => verifyReport(report, evidence, new Date("2025-01-01T00:00:00Z"))),
      "SNP_CERT_EXPIRED",
    );
  });

  it("when a policy requires another measurement, it fails with POLICY_MEASUREMENT", () => {
    const verified = verifyReport(report, evidence, NOW);
    assert.equal(
      codeOf(() => validateReport(verified, { ...DEFAULT_SNP_POLICY, measurements: [new Uint8Array(48)] })),
      "POLICY_MEASUREMENT",
    );
  });

  it("when the report is truncated or of version 1 or 6, it fails with SNP_MALFORMED or SNP_UNSUPPORTED_VERSION", () => {
    assert.equal(
      codeOf(() => parseReport(report.subarray(0, 1000))),
      "SNP_MALFORMED",
    );
    for (const v of [1, 6]) {
      const bad = report.slice();
      bad[0] = v;
      assert.equal(
        codeOf(() => parseReport(bad)),
        "SNP_UNSUPPORTED_VERSION",
      );
    }
  });

  it("when verified twice through one verifier, the cached chain gives the same result", () => {
    const verifier = createReportVerifier();
    const a = verifier.verify(report, evidence, NOW);
    const b = verifier.verify(report, evidence, NOW);
    assert.equal(a.rootFingerprint, b.rootFingerprint);
    assert.equal(
      codeOf(() => verifier.verify(report, evidence, new Date("2040-01-01"))),
      "SNP_CERT_EXPIRED",
    );
  });
});
