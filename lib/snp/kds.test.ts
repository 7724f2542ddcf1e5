import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  createCertificateStore,
  kdsChainUrl,
  kdsCrlUrl,
  kdsVcekUrl,
  MAX_CERTIFICATE_BYTES,
  type FetchLike,
} from "./kds.ts";
import { parseReport } from "./parse.ts";
import { createSimulator } from "./sim.ts";
import { createReportVerifier } from "./verify.ts";

const dir = new URL("../../test/fixtures/snp/", import.meta.url);
const report = new Uint8Array(readFileSync(new URL("milan-report-1.bin", dir)));
const vcek = new Uint8Array(readFileSync(new URL("milan-report-1-vcek.der", dir)));
const chainPem =
  readFileSync(new URL("milan-ask.pem", dir), "latin1") + readFileSync(new URL("milan-ark.pem", dir), "latin1");
const NOW = new Date("2026-11-21T00:00:00Z");

function fakeKds(): { fetch: FetchLike; urls: string[] } {
  const urls: string[] = [];
  const fetch: FetchLike = async (url) => {
    urls.push(url);
    const body = url.endsWith("/cert_chain")
      ? Buffer.from(chainPem, "latin1")
      : url.includes("/vcek/v1/Milan/")
        ? Buffer.from(vcek)
        : undefined;
    return {
      ok: body !== undefined,
      status: body === undefined ? 404 : 200,
      arrayBuffer: async () => Uint8Array.from(body ?? []).buffer,
    };
  };
  return { fetch, urls };
}

describe("KDS certificates", () => {
  it("when building URLs, it uses the 64-byte hwid for Milan/Genoa and 8 bytes plus fmcSPL for Turin", () => {
    const r = parseReport(report);
    assert.equal(
      kdsVcekUrl("Milan", r.chipId, r.reportedTcb),
      `https://kdsintf.amd.com/vcek/v1/Milan/${Buffer.from(r.chipId).toString("hex")}?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219`,
    );
    assert.equal(
      kdsVcekUrl("Turin", r.chipId, { fmc: 1, bootloader: 2, tee: 0, snp: 5, microcode: 77, raw: 0n }),
      "https://kdsintf.amd.com/vcek/v1/Turin/4ffb5cb4fd594f3f?fmcSPL=01&blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=77",
    );
    assert.equal(kdsChainUrl("Genoa", "vlek"), "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain");
    assert.equal(kdsCrlUrl("Turin", "vcek"), "https://kdsintf.amd.com/vcek/v1/Turin/crl");
  });

  it("when evidence lacks the VCEK and chain, it fetches them once, caches them on disk, and the report verifies", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
    const kds = fakeKds();
    const slept: number[] = [];
    let t = 0;
    const store = createCertificateStore({
      cacheDir,
      fetch: kds.fetch,
      clock: () => t,
      sleep: async (ms) => {
        slept.push(ms);
        t += ms;
      },
    });
    const evidence = await store.resolveEvidence(report);
    assert.equal(kds.urls.length, 2);
    assert.ok(slept.length >= 1 && slept[0]! >= 1999, "the second request waited for the throttle");
    createReportVerifier({ certificates: store }).verify(report, evidence, NOW);

    const offline = createCertificateStore({ cacheDir, offline: true });
    const again = await offline.resolveEvidence(report);
    assert.deepEqual(again.vcek, vcek);
    assert.equal(offline.chain("Milan", "vcek")?.length, 2);
  });

  it("when KDS cannot be reached or the cache is empty offline, it fails with SNP_CERT_UNAVAILABLE", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
    const failing: FetchLike = async () => {
      throw new Error("ECONNREFUSED");
    };
    for (const store of [
      createCertificateStore({ cacheDir, fetch: failing, minIntervalMs: 0 }),
      createCertificateStore({ cacheDir, offline: true }),
    ]) {
      await assert.rejects(
        store.resolveEvidence(report),
        (e) => e instanceof ProvenantError && e.code === "SNP_CERT_UNAVAILABLE",
      );
    }
  });

  const isUnavailable = (e: unknown) => e instanceof ProvenantError && e.code === "SNP_CERT_UNAVAILABLE";
  const answering =
    (body: (url: string) => Uint8Array | Error, headers?: Record<string, string>): FetchLike =>
    async (url) => ({
      ok: true,
      status: 200,
      headers: { get: (name: string) => headers?.[name] ?? null },
      arrayBuffer: async () => {
        const b = body(url);
        if (b instanceof Error) throw b;
        return Uint8Array.from(b).buffer;
      },
    });

  it("when reading the KDS body fails or times out, it fails with SNP_CERT_UNAVAILABLE", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
    const store = createCertificateStore({
      cacheDir,
      fetch: answering(() => new DOMException("The operation was aborted due to timeout", "TimeoutError")),
      minIntervalMs: 0,
    });
    await assert.rejects(store.resolveEvidence(report), isUnavailable);
    await assert.rejects(store.fetchChain("Milan", "vcek"), isUnavailable);
    await assert.rejects(store.fetchCrl("Milan", "vcek", NOW), isUnavailable);
  });

  it("when KDS answers more than the size cap, it fails with SNP_CERT_UNAVAILABLE and caches nothing", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
    const big = new Uint8Array(MAX_CERTIFICATE_BYTES + 1);
    for (const fetch of [
      answering(() => big),
      answering(() => Buffer.from(chainPem, "latin1"), { "content-length": String(MAX_CERTIFICATE_BYTES + 1) }),
    ]) {
      const store = createCertificateStore({ cacheDir, fetch, minIntervalMs: 0 });
      await assert.rejects(store.fetchChain("Milan", "vcek"), isUnavailable);
      await assert.rejects(store.resolveEvidence(report), isUnavailable);
    }
    assert.deepEqual(readdirSync(cacheDir), []);
  });

  it("when KDS answers something that is not the expected VCEK or chain, it fails with SNP_CERT_UNAVAILABLE and caches nothing", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
    const ask = chainPem.slice(0, chainPem.indexOf("-----END CERTIFICATE-----") + 26);
    const bodies: ((url: string) => Uint8Array)[] = [
      () => Buffer.from("<html>maintenance</html>"),
      // the chain answer for a VCEK, and the VCEK for a chain
      (url) => (url.endsWith("/cert_chain") ? Uint8Array.from(vcek) : Buffer.from(chainPem, "latin1")),
      // two ASKs: the right count, the wrong certificates
      (url) =>
        url.endsWith("/cert_chain") ? Buffer.from(ask + ask, "latin1") : Uint8Array.from(vcek).subarray(0, 100),
    ];
    for (const body of bodies) {
      const store = createCertificateStore({ cacheDir, fetch: answering(body), minIntervalMs: 0 });
      await assert.rejects(store.resolveEvidence(report), isUnavailable);
      await assert.rejects(store.fetchChain("Milan", "vcek"), isUnavailable);
      // the Milan chain is not Genoa's
      const milanChain = createCertificateStore({
        cacheDir,
        fetch: answering(() => Buffer.from(chainPem, "latin1")),
        minIntervalMs: 0,
      });
      await assert.rejects(milanChain.fetchChain("Genoa", "vcek"), isUnavailable);
    }
    assert.deepEqual(readdirSync(cacheDir), []);
  });

  it("when the cached CRL has no nextUpdate or is past it, it fetches a new one, and a failed fetch is SNP_CERT_UNAVAILABLE", async () => {
    const now = NOW;
    const sim = await createSimulator({ product: "Milan", keyDir: join(tmpdir(), "provenant-test-sim"), now });
    for (const stale of [sim.crl({ nextUpdate: null }), sim.crl({ nextUpdate: new Date(now.getTime() - 1000) })]) {
      const cacheDir = mkdtempSync(join(tmpdir(), "kds-"));
      writeFileSync(join(cacheDir, "vcek-Milan-crl.der"), stale);
      const fresh = sim.crl();
      const urls: string[] = [];
      const store = createCertificateStore({
        cacheDir,
        minIntervalMs: 0,
        fetch: async (url) => {
          urls.push(url);
          return { ok: true, status: 200, arrayBuffer: async () => Uint8Array.from(fresh).buffer };
        },
      });
      assert.deepEqual(await store.fetchCrl("Milan", "vcek", now), fresh);
      assert.deepEqual(urls, [kdsCrlUrl("Milan", "vcek")]);
      const offline = createCertificateStore({ cacheDir: mkdtempSync(join(tmpdir(), "kds-")), offline: true });
      writeFileSync(join(cacheDir, "vcek-Milan-crl.der"), stale);
      await assert.rejects(
        createCertificateStore({ cacheDir, offline: true }).fetchCrl("Milan", "vcek", now),
        (e) => e instanceof ProvenantError && e.code === "SNP_CERT_UNAVAILABLE",
      );
      await assert.rejects(offline.fetchCrl("Milan", "vcek", now), isUnavailable);
    }
  });
});
