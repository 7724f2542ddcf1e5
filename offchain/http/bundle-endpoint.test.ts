// GET /bundles/:digest/bundle, GET /policies/:digest and GET /bundles?manifest= over real HTTP against a real SQLite
// store on disk: the bytes come back exactly (their SHA-256 is the digest), after a restart too; a bundle whose bytes
// were not kept is read again through readBundle (and served only when its digest holds); unknown digests are 404;
// the policy text's SHA-256 is its digest; the guards of the API (methods, malformed paths) still hold.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { canonicalPolicyJson, parseVerifierPolicy, policyDigest } from "../pipeline/policy.ts";
import { Store } from "../store/index.ts";
import { Metrics, startApi } from "./index.ts";

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");
const NOW = new Date("2026-11-21T12:00:00Z");

/** A bundle-like byte string whose exact bytes (odd spacing, a trailing newline) a re-serialiser would change. */
const BYTES = new TextEncoder().encode('{ "mediaType" :"application/vnd.provenant.bundle.v1+json",\n"x": [1,2 ,3]}\n');
const DIGEST = sha256(BYTES);
const MANIFEST = sha256("manifest");
const OLD_BYTES = new TextEncoder().encode('{"old": true}');
const OLD = sha256(OLD_BYTES);

describe("verifier HTTP: the bundle and policy endpoints", () => {
  let dir: string;
  let store: Store;
  let api: Awaited<ReturnType<typeof startApi>>;
  const policy = parseVerifierPolicy({ development: true, acceptedKinds: ["eval"] });
  const reads: string[] = [];

  async function start(): Promise<void> {
    store = new Store({ dataDir: dir, now: () => NOW });
    api = await startApi(
      {
        store,
        metrics: new Metrics(),
        health: () => ({ ok: true }),
        // Stands for the service's git read: OLD's bytes are still in "the repository", nothing else is.
        readBundle: async (row) => {
          reads.push(row.digest);
          return row.digest === OLD ? OLD_BYTES : row.digest === sha256("gone") ? BYTES : undefined;
        },
      },
      { host: "127.0.0.1", port: 0 },
    );
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "provenant-bundle-endpoint-"));
    await start();
    store.recordSighting("repo", "c1", "bundles/a.provenance.json", DIGEST);
    store.setVerdict(DIGEST, { ok: true, errors: [], manifestDigest: MANIFEST });
    store.keepBundleBytes(DIGEST, BYTES);
    store.markPublished([MANIFEST], "0xfeed", 7);
    // A second file with the same manifest that was refused, and a bundle accepted before bytes were kept.
    store.recordSighting("repo", "c1", "bundles/b.provenance.json", sha256("other"));
    store.setVerdict(sha256("other"), { ok: false, errors: [], manifestDigest: MANIFEST });
    store.recordSighting("repo", "c1", "bundles/old.provenance.json", OLD);
    store.setVerdict(OLD, { ok: true, errors: [], manifestDigest: sha256("old manifest") });
    // A bundle whose "repository" now answers with other bytes than its digest.
    store.recordSighting("repo", "c1", "bundles/gone.provenance.json", sha256("gone"));
    store.keepPolicy(policyDigest(policy), canonicalPolicyJson(policy));
  });
  after(async () => {
    await api.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("when a kept bundle is asked for, it answers its exact bytes as application/json, readable from any origin", async () => {
    const response = await fetch(`${api.url}/bundles/${DIGEST}/bundle`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    const body = new Uint8Array(await response.arrayBuffer());
    assert.deepEqual(body, BYTES);
    assert.equal(sha256(body), DIGEST);
    // 0x prefix and upper case name the same bundle; HEAD answers the headers only.
    assert.equal((await fetch(`${api.url}/bundles/0x${DIGEST.toUpperCase()}/bundle`)).status, 200);
    const head = await fetch(`${api.url}/bundles/${DIGEST}/bundle`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(BYTES.length));
  });

  it("when a bundle is unknown, or its bytes can no longer be had or do not hash to it, it answers 404", async () => {
    const unknown = await fetch(`${api.url}/bundles/${sha256("never seen")}/bundle`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: string }).error, "NOT_FOUND");
    assert.equal((await fetch(`${api.url}/bundles/${sha256("other")}/bundle`)).status, 404);
    // The "repository" answers bytes of another digest: never served as this bundle.
    assert.equal((await fetch(`${api.url}/bundles/${sha256("gone")}/bundle`)).status, 404);
    assert.ok(reads.includes(sha256("gone")));
  });

  it("when a bundle's bytes were not kept, they are read again through readBundle", async () => {
    reads.length = 0;
    const first = await fetch(`${api.url}/bundles/${OLD}/bundle`);
    assert.equal(first.status, 200);
    assert.deepEqual(new Uint8Array(await first.arrayBuffer()), OLD_BYTES);
    assert.deepEqual(reads, [OLD]);
  });

  it("when the bundles of a manifest are listed, the published one comes first", async () => {
    const response = await fetch(`${api.url}/bundles?manifest=0x${MANIFEST}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    const { bundles } = (await response.json()) as { bundles: { digest: string; status: string }[] };
    assert.deepEqual(
      bundles.map((b) => [b.digest, b.status]),
      [
        [DIGEST, "published"],
        [sha256("other"), "rejected"],
      ],
    );
    const published = (await (await fetch(`${api.url}/bundles?manifest=${MANIFEST}&status=published`)).json()) as {
      bundles: unknown[];
    };
    assert.equal(published.bundles.length, 1);
    // The status is applied before the page is cut: the published row does not take the one place of the page.
    const rejected = (await (
      await fetch(`${api.url}/bundles?manifest=${MANIFEST}&status=rejected&limit=1`)
    ).json()) as { bundles: { digest: string }[] };
    assert.deepEqual(
      rejected.bundles.map((b) => b.digest),
      [sha256("other")],
    );
    assert.equal((await fetch(`${api.url}/bundles?manifest=${sha256("none")}`)).status, 200);
    for (const bad of ["abc", `${MANIFEST}&manifest=${MANIFEST}`, `${MANIFEST}zz`])
      assert.equal((await fetch(`${api.url}/bundles?manifest=${bad}`)).status, 400, bad);
  });

  it("when a policy the service ran with is asked for by its digest, the text's SHA-256 is that digest", async () => {
    const digest = policyDigest(policy);
    const response = await fetch(`${api.url}/policies/${digest}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    const text = new Uint8Array(await response.arrayBuffer());
    assert.equal(sha256(text), digest);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(text)), policy.json);
    assert.equal((await fetch(`${api.url}/policies/${sha256("other policy")}`)).status, 404);
    assert.equal((await fetch(`${api.url}/policies/xyz`)).status, 404);
  });

  it("when these paths are asked with another method or a malformed digest, the API's guards answer", async () => {
    const post = await fetch(`${api.url}/bundles/${DIGEST}/bundle`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal((await fetch(`${api.url}/policies/${DIGEST}`, { method: "DELETE" })).status, 405);
    for (const bad of [`/bundles/${DIGEST.slice(1)}/bundle`, `/bundles/${DIGEST}/bundle/x`, `/bundles/${DIGEST}/bytes`])
      assert.equal((await fetch(`${api.url}${bad}`)).status, 404, bad);
  });

  it("when the service restarts on its data directory, the kept bytes and policies are served as before", async () => {
    await api.close();
    store.close();
    reads.length = 0;
    await start();
    const response = await fetch(`${api.url}/bundles/${DIGEST}/bundle`);
    assert.equal(response.status, 200);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BYTES);
    assert.deepEqual(reads, []);
    assert.equal((await fetch(`${api.url}/bundles/${OLD}/bundle`)).status, 200);
    assert.equal((await fetch(`${api.url}/policies/${policyDigest(policy)}`)).status, 200);
  });
});
