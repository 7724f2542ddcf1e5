import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Store } from "../store/index.ts";
import { Metrics, parseListen, startApi } from "./index.ts";

const D1 = "a".repeat(64);
const D2 = "b".repeat(64);

describe("http api", () => {
  const store = new Store({ dataDir: ":memory:" });
  const metrics = new Metrics();
  let api: Awaited<ReturnType<typeof startApi>>;
  let healthy = true;
  before(async () => {
    store.recordSighting("https://user:token@git.example/r.git", "c1", "bundles/a.provenance.json", D1);
    store.setVerdict(D1, {
      ok: true,
      errors: [],
      manifestDigest: "m1",
      record: {
        modelHash: "0x01",
        manifestDigest: "0xm1",
        parentModelHash: "0x00",
        measurementHash: "0x02",
        policyDigest: "0x03",
        reportedTcb: "5",
        kind: 1,
      },
    });
    store.markPublished(["m1"], "0xfeed", 12);
    store.recordSighting("repo", "c1", "bundles/b.provenance.json", D2);
    store.setVerdict(D2, { ok: false, errors: [{ code: "POLICY_DEBUG", message: "debug guest" }] });
    store.recordRefusal("repo", "c1", "bundles/l.provenance.json", "REPO_ENTRY_REFUSED", "symlink");
    metrics.observeLatency(800);
    api = await startApi({ store, metrics, health: () => ({ ok: healthy }) }, { host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await api.close();
    store.close();
  });

  it("when asked for a bundle by digest, it returns its verdict, reasons and transaction", async () => {
    const res = await fetch(`${api.url}/bundles/${D1}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; publication: { txHash: string; block: number } };
    assert.equal(body.status, "published");
    assert.deepEqual(
      { txHash: body.publication.txHash, block: body.publication.block },
      { txHash: "0xfeed", block: 12 },
    );
    const rejected = (await (await fetch(`${api.url}/bundles/0x${D2}`)).json()) as { errors: { code: string }[] };
    assert.deepEqual(
      rejected.errors.map((e) => e.code),
      ["POLICY_DEBUG"],
    );
    assert.ok(!JSON.stringify(body).includes("token"), "repository credentials are never served");
    assert.equal((await fetch(`${api.url}/bundles/${"c".repeat(64)}`)).status, 404);
    assert.equal((await fetch(`${api.url}/bundles/zz`)).status, 404);
  });

  it("when listing by status, it filters and refuses an unknown status", async () => {
    const body = (await (await fetch(`${api.url}/bundles?status=rejected`)).json()) as {
      bundles: { digest: string }[];
    };
    assert.deepEqual(
      body.bundles.map((b) => b.digest),
      [D2],
    );
    assert.equal((await fetch(`${api.url}/bundles?status=nope`)).status, 400);
    assert.equal((await fetch(`${api.url}/bundles`, { method: "POST" })).status, 405);
  });

  it("when scraped, it serves Prometheus text with counters by code, queue depth and latency", async () => {
    const res = await fetch(`${api.url}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^provenant_bundles_seen_total 2$/m);
    assert.match(text, /^provenant_bundles_published_total 1$/m);
    assert.match(text, /^provenant_bundles_rejected_total\{code="POLICY_DEBUG"\} 1$/m);
    assert.match(text, /^provenant_bundles_rejected_total\{code="REPO_ENTRY_REFUSED"\} 1$/m);
    assert.match(text, /^provenant_publish_queue_depth 0$/m);
    assert.match(text, /^provenant_publish_latency_seconds_bucket\{le="1"\} 1$/m);
    assert.match(text, /^provenant_publish_latency_seconds_count 1$/m);
  });

  it("when unhealthy, /healthz answers 503", async () => {
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
    healthy = false;
    assert.equal((await fetch(`${api.url}/healthz`)).status, 503);
    healthy = true;
  });

  it("when given a listen address, it parses host and port with 127.0.0.1 by default", () => {
    assert.deepEqual(parseListen("127.0.0.1:8780"), { host: "127.0.0.1", port: 8780 });
    assert.deepEqual(parseListen("8780"), { host: "127.0.0.1", port: 8780 });
    assert.deepEqual(parseListen("[::1]:9000"), { host: "::1", port: 9000 });
    assert.throws(() => parseListen("host:99999"));
  });
});
