import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";

import { Store } from "../store/index.ts";
import { Metrics, parseListen, startApi, tokenMatches, type RecheckOutcome } from "./index.ts";

/** Sends raw bytes over TCP (no client-side URL normalisation) and returns the status code, or 0 when closed. */
export async function rawRequest(url: string, bytes: string | Buffer, timeoutMs = 5_000): Promise<number> {
  const { hostname, port } = new URL(url);
  return await new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let text = "";
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(m === null ? 0 : Number(m[1]));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (/\r\n\r\n/.test(text)) finish();
    });
    socket.on("error", finish);
    socket.on("close", finish);
    socket.write(bytes);
  });
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`;

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

describe("http api under hostile requests", () => {
  const store = new Store({ dataDir: ":memory:" });
  const metrics = new Metrics();
  const rechecks: string[] = [];
  let api: Awaited<ReturnType<typeof startApi>>;
  let open: Awaited<ReturnType<typeof startApi>>;
  before(async () => {
    store.recordSighting("repo", "c1", "bundles/a.provenance.json", D1);
    store.setVerdict(D1, { ok: false, errors: [{ code: "SNP_CERT_UNAVAILABLE", message: "no chain" }] });
    const request = (digest: string): RecheckOutcome => {
      rechecks.push(digest);
      return digest === D1 ? "queued" : digest === D2 ? "not-recheckable" : "not-found";
    };
    api = await startApi(
      {
        store,
        metrics,
        health: () => ({ ok: true }),
        recheck: { token: "s3cret-token-0123456789", request },
        limits: { maxConcurrent: 2, headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 },
      },
      { host: "127.0.0.1", port: 0 },
    );
    open = await startApi(
      { store, metrics, health: () => ({ ok: true }), recheck: { token: undefined, request } },
      { host: "127.0.0.1", port: 0 },
    );
  });
  after(async () => {
    await api.close();
    await open.close();
    store.close();
  });

  it("when the path is //, ///, //a:b, //[ or /\\ (new URL would throw), it answers 404 and keeps serving", async () => {
    for (const path of ["//", "///", "//a:b", "//[", "/\\", "/bundles//", "/%", "/bundles/%zz"])
      assert.equal(await rawRequest(api.url, get(path)), 404, path);
    assert.equal(await rawRequest(api.url, get("*")), 400);
    assert.equal(await rawRequest(api.url, get("http://x/healthz")), 400, "absolute-form is not served");
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
  });

  it("when a numeric query value is not an integer in range, it answers 400 (1e20 was a 500 datatype mismatch)", async () => {
    for (const q of ["offset=1e20", "offset=-1", "offset=1.5", "limit=0", "limit=1001", "limit=abc", "limit=1&limit=2"])
      assert.equal((await fetch(`${api.url}/bundles?${q}`)).status, 400, q);
    assert.equal((await fetch(`${api.url}/bundles?status=seen&status=rejected`)).status, 400);
    const ok = (await (await fetch(`${api.url}/bundles?offset=0&limit=1000`)).json()) as { limit: number };
    assert.equal(ok.limit, 1000);
  });

  it("when a request is too long, too large or of the wrong method, it answers 414, 431, 413 or 405", async () => {
    assert.equal(await rawRequest(api.url, get(`/${"a".repeat(3000)}`)), 414);
    assert.equal(
      await rawRequest(api.url, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${"b".repeat(9000)}\r\n\r\n`),
      431,
    );
    assert.equal(await rawRequest(api.url, `GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n`), 413);
    assert.equal((await fetch(`${api.url}/healthz`, { method: "PUT" })).status, 405);
    assert.equal((await fetch(`${api.url}/bundles/${D1}/recheck`)).status, 405);
    assert.equal(await rawRequest(api.url, "BREW /healthz HTTP/1.1\r\nhost: x\r\n\r\n"), 400);
    assert.equal(await rawRequest(api.url, "GET /healthz HTTP/9.9\r\n\r\n"), 400);
  });

  it("when more requests are in flight than allowed (slow bodies), the next one gets 503, then service resumes", async () => {
    const { hostname, port } = new URL(api.url);
    const slow = [0, 1].map(() => {
      const socket = connect(Number(port), hostname);
      socket.on("error", () => undefined);
      socket.write(
        `POST /bundles/${D1}/recheck HTTP/1.1\r\nhost: x\r\nauthorization: Bearer x\r\ncontent-length: 100\r\n\r\n`,
      );
      return socket;
    });
    try {
      let status = 0;
      for (let i = 0; i < 50 && status !== 503; i++) {
        status = await rawRequest(api.url, get("/healthz"));
        if (status !== 503) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(status, 503);
      assert.ok(metrics.httpBusy >= 1);
    } finally {
      for (const s of slow) s.destroy();
    }
    let back = 0;
    for (let i = 0; i < 50 && back !== 200; i++) {
      back = await rawRequest(api.url, get("/healthz"));
      if (back !== 200) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(back, 200);
  });

  it("when a client sends its headers one byte at a time too slowly, the server closes the connection", async () => {
    const { hostname, port } = new URL(api.url);
    const socket = connect(Number(port), hostname);
    socket.on("error", () => undefined);
    const closed = new Promise<number>((resolve) => {
      const started = performance.now();
      socket.on("close", () => resolve(performance.now() - started));
    });
    const text = "GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let i = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(text[i++ % text.length]!);
    }, 100);
    try {
      const ms = await closed;
      assert.ok(ms < 5_000, `closed after ${ms} ms`);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it("when a recheck is asked, it needs the bearer token: 401 without, 403 wrong or disabled, 202/404/409 with it", async () => {
    const post = (url: string, digest: string, auth?: string) =>
      fetch(`${url}/bundles/${digest}/recheck`, {
        method: "POST",
        ...(auth === undefined ? {} : { headers: { authorization: auth } }),
      });
    rechecks.length = 0;
    const none = await post(api.url, D1);
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await post(api.url, D1, "Basic abc")).status, 401);
    assert.equal((await post(api.url, D1, "Bearer wrong")).status, 403);
    assert.equal((await post(open.url, D1, "Bearer s3cret-token-0123456789")).status, 403, "no token configured");
    assert.deepEqual(rechecks, [], "nothing is queued without the right token");
    assert.equal((await post(api.url, D1, "Bearer s3cret-token-0123456789")).status, 202);
    assert.equal((await post(api.url, D2, "Bearer s3cret-token-0123456789")).status, 409);
    assert.equal((await post(api.url, "c".repeat(64), "Bearer s3cret-token-0123456789")).status, 404);
    assert.deepEqual(rechecks, [D1, D2, "c".repeat(64)]);
    assert.equal(tokenMatches("a", "a"), true);
    assert.equal(tokenMatches("a", "ab"), false);
  });

  it("when scraped, it exposes verification queue, workers, busy time, verdicts by code and time to verdict", async () => {
    metrics.pool = { size: 2, queued: 3, running: 1, busyMs: 1500 };
    metrics.waitingCertificates = () => 4;
    metrics.observeVerdict(false, ["BUNDLE_TOO_COMPLEX"], 120);
    metrics.observeVerdict(true, [], 2_000);
    const text = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(text, /^provenant_verification_queue_depth 4$/m);
    assert.match(text, /^provenant_verification_workers 2$/m);
    assert.match(text, /^provenant_verification_busy_seconds_total 1\.500$/m);
    assert.match(text, /^provenant_verdict_codes_total\{code="BUNDLE_TOO_COMPLEX"\} 1$/m);
    assert.match(text, /^provenant_verdicts_total\{result="accepted"\} 1$/m);
    assert.match(text, /^provenant_time_to_verdict_seconds_bucket\{le="0.25"\} 1$/m);
    assert.match(text, /^provenant_time_to_verdict_seconds_count 2$/m);
    assert.match(text, /^provenant_bundles_waiting_certificates 4$/m);
  });
});
