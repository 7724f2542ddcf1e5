// Revocation of a verified chain against AMD's ARK-signed CRLs (checkChainRevocation), and the CRL cache of the
// certificate store against a real HTTP server that answers like AMD's KDS: a stale CRL is fetched again.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { startFakeKds, type FakeKds } from "../../offchain/testing/kds.ts";
import { ProvenantError } from "../errors.ts";
import { checkChainRevocation } from "./crl.ts";
import { createCertificateStore, kdsCrlUrl } from "./kds.ts";
import { createSimulator, type SnpSimulator } from "./sim.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const DAY = 86_400_000;
const ASK = 0x10001;
const ASVK = 0x10101;
const VLEK = 0x10103;

describe("CRLs: checking a chain, fetching and caching", () => {
  let sim: SnpSimulator;
  let other: SnpSimulator;
  let keyDir: string;
  before(async () => {
    sim = await createSimulator({ product: "Milan", now: NOW });
    keyDir = mkdtempSync(join(tmpdir(), "crl-other-root-"));
    other = await createSimulator({ product: "Milan", keyDir, now: NOW });
  });
  after(() => rmSync(keyDir, { recursive: true, force: true }));

  const check = (crls: Uint8Array[], signer: "vcek" | "vlek" = "vcek", now = NOW) => {
    const evidence = sim.evidence(signer);
    return checkChainRevocation({
      leaf: evidence.vcek,
      chain: evidence.chain ?? [],
      rootFingerprint: sim.rootFingerprint,
      crls,
      now,
    });
  };
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof ProvenantError);
      return error.code;
    }
    return undefined;
  };

  it("when the ARK's current CRL lists nothing of the chain, it is good, with the CRL's window", () => {
    const result = check([sim.crl({ revoked: [0x12345] })]);
    assert.equal(result.status, "good");
    if (result.status === "good") assert.equal(result.nextUpdate.getTime(), NOW.getTime() + 7 * DAY);
  });

  it("when the CRL lists the ASK, a VCEK it issued is SNP_CERT_REVOKED; the ASVK or VLEK revoke a VLEK", () => {
    assert.equal(
      code(() => check([sim.crl({ revoked: [ASK] })])),
      "SNP_CERT_REVOKED",
    );
    assert.equal(
      code(() => check([sim.crl({ revoked: [ASVK] })], "vlek")),
      "SNP_CERT_REVOKED",
    );
    assert.equal(
      code(() => check([sim.crl({ revoked: [VLEK] })], "vlek")),
      "SNP_CERT_REVOKED",
    );
    assert.equal(check([sim.crl({ revoked: [ASK] })], "vlek").status, "good", "the ASK does not issue VLEKs");
    // A VCEK's serial is 0 on every chip: a listed 0 names no certificate.
    assert.equal(check([sim.crl({ revoked: [0] })]).status, "good");
    // Even an older CRL's entry counts: once revoked, always revoked.
    const old = sim.crl({
      revoked: [ASK],
      thisUpdate: new Date(NOW.getTime() - 30 * DAY),
      nextUpdate: new Date(NOW.getTime() - 20 * DAY),
    });
    assert.equal(
      code(() => check([old, sim.crl()])),
      "SNP_CERT_REVOKED",
    );
  });

  it("when no CRL is signed by the chain's ARK, it is unusable (not-signed), even one that lists the ASK", () => {
    const result = check([other.crl({ revoked: [ASK] }), Uint8Array.of(0x30, 0x00)]);
    assert.equal(result.status, "unusable");
    if (result.status === "unusable") assert.equal(result.reason, "not-signed");
    const none = check([]);
    assert.equal(none.status === "unusable" && none.reason, "none");
  });

  it("when the newest CRL is past nextUpdate, lacks one, or every CRL is issued later, it is unusable", () => {
    const stale = check([sim.crl()], "vcek", new Date(NOW.getTime() + 8 * DAY));
    assert.equal(stale.status === "unusable" && stale.reason, "stale");
    const open = check([sim.crl({ nextUpdate: null })]);
    assert.equal(open.status === "unusable" && open.reason, "no-next-update");
    const future = check([sim.crl({ thisUpdate: new Date(NOW.getTime() + DAY) })]);
    assert.equal(future.status === "unusable" && future.reason, "stale");
    // A current CRL beside a stale one: the newest issued by now is used.
    const both = check([
      sim.crl({ thisUpdate: new Date(NOW.getTime() - 20 * DAY), nextUpdate: new Date(NOW.getTime() - 13 * DAY) }),
      sim.crl(),
    ]);
    assert.equal(both.status, "good");
  });

  describe("the certificate store's CRL cache, over HTTP", () => {
    let kds: FakeKds;
    let cacheDir: string;
    before(async () => {
      kds = await startFakeKds({ crl: sim.crl() });
      cacheDir = mkdtempSync(join(tmpdir(), "crl-cache-"));
    });
    after(async () => {
      await kds.close();
      rmSync(cacheDir, { recursive: true, force: true });
    });

    it("when the cached CRL is current it is reused; once stale, or when refreshed, KDS is asked again", async () => {
      const store = createCertificateStore({ cacheDir, kdsBaseUrl: kds.url, minIntervalMs: 0 });
      const path = new URL(kdsCrlUrl("Milan", "vcek", kds.url)).pathname;
      const first = await store.fetchCrl("Milan", "vcek", NOW);
      assert.equal(check([first]).status, "good");
      await store.fetchCrl("Milan", "vcek", new Date(NOW.getTime() + DAY));
      assert.deepEqual(kds.requests, [path], "current: served from the cache");

      // A week later AMD has issued a new CRL that revokes the ASK; the cached one has expired.
      const later = new Date(NOW.getTime() + 8 * DAY);
      kds.crl = sim.crl({
        revoked: [ASK],
        thisUpdate: new Date(NOW.getTime() + 7 * DAY),
        nextUpdate: new Date(NOW.getTime() + 14 * DAY),
      });
      const fresh = await store.fetchCrl("Milan", "vcek", later);
      assert.equal(kds.requests.length, 2, "stale: fetched again");
      assert.equal(
        code(() => check([fresh], "vcek", later)),
        "SNP_CERT_REVOKED",
      );

      // A new store on the same directory reads it from disk, offline.
      const offline = createCertificateStore({ cacheDir, offline: true });
      assert.deepEqual(await offline.fetchCrl("Milan", "vcek", later), fresh);
      await store.fetchCrl("Milan", "vcek", later, { refresh: true });
      assert.equal(kds.requests.length, 3, "refresh: fetched even though current");
    });
  });
});
