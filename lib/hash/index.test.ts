// SHA-256 and digest comparison on both paths: Node's crypto (found at run time) and the browser's @noble/hashes,
// which a worker without process.getBuiltinModule takes; lib/merkle's core must give the RFC 6962 roots on both.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";

import { createSha256, equalDigests, sha256 } from "./index.ts";

const enc = new TextEncoder();

/** Runs `body` (an async function's text, given the two modules) in a worker that has no process.getBuiltinModule. */
function withoutNodeCrypto(body: string): Promise<unknown> {
  const hash = new URL("./index.ts", import.meta.url).href;
  const merkle = new URL("../merkle/core.ts", import.meta.url).href;
  const script = `
    const { parentPort } = require("node:worker_threads");
    process.getBuiltinModule = undefined;
    (async () => {
      const hash = await import(${JSON.stringify(hash)});
      const merkle = await import(${JSON.stringify(merkle)});
      return (${body})(hash, merkle);
    })().then((v) => parentPort.postMessage({ v }), (e) => parentPort.postMessage({ e: String(e) }));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { eval: true });
    worker.once("message", (m: { v?: unknown; e?: string }) => {
      void worker.terminate();
      if (m.e === undefined) resolve(m.v);
      else reject(new Error(m.e));
    });
    worker.once("error", reject);
  });
}

describe("SHA-256 on Node and in the browser", () => {
  it("when data is hashed, it is Node's SHA-256 as a plain Uint8Array, whole or in parts", () => {
    const data = enc.encode("provenant");
    const want = new Uint8Array(createHash("sha256").update(data).digest());
    assert.deepEqual(sha256(data), want);
    assert.deepEqual(
      new Uint8Array(createSha256().update(data.subarray(0, 4)).update(data.subarray(4)).digest()),
      want,
    );
  });

  it("when digests are compared, equal bytes are equal and a different byte or length is not", () => {
    const a = sha256(enc.encode("a"));
    assert.equal(equalDigests(a, a.slice()), true);
    const b = a.slice();
    b[31] ^= 1;
    assert.equal(equalDigests(a, b), false);
    assert.equal(equalDigests(a, a.subarray(0, 31)), false);
  });

  it("when Node's crypto is not found (the page), noble gives the same digests and lib/merkle the RFC 6962 roots", async () => {
    const result = (await withoutNodeCrypto(`async (hash, merkle) => {
      const enc = new TextEncoder();
      const tree = new merkle.MerkleTree();
      const roots = [];
      for (const leaf of ["", "00", "10", "2021", "3031"]) {
        tree.append(merkle.leafHash(Uint8Array.from(Buffer.from(leaf, "hex"))));
        roots.push(Buffer.from(tree.root()).toString("hex"));
      }
      const a = hash.sha256(enc.encode("provenant"));
      const kind = hash.createSha256().constructor.name;
      return { digest: Buffer.from(a).toString("hex"), roots, equal: hash.equalDigests(a, a.slice()), kind };
    }`)) as { digest: string; roots: string[]; equal: boolean; kind: string };
    // Node's Hash class here would mean the lookup found Node's crypto after all and the browser path went untested.
    assert.notEqual(result.kind, "Hash");
    assert.equal(createSha256().constructor.name, "Hash");
    assert.equal(result.digest, createHash("sha256").update("provenant").digest("hex"));
    assert.equal(result.equal, true);
    // certificate-transparency's reference roots for the first five leaves (as lib/merkle/index.test.ts).
    assert.deepEqual(result.roots, [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    ]);
  });
});
