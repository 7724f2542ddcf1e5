import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import { createCertificateStore, kdsChainUrl, kdsCrlUrl, kdsVcekUrl, type FetchLike } from "./kds.ts";
import { parseReport } from "./parse.ts";
import { createReportVerifier } from "./verify.ts";

const dir = new URL("../../../shared/testdata/snp/", import.meta.url);
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
});
