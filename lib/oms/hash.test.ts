import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import { comparePaths, hashModel } from "./hash.ts";

const sample = new URL("../../test/fixtures/formats/model-transparency/v1.1.0-elliptic-key", import.meta.url).pathname;
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const root = (hexes: string[]) => sha(Buffer.concat(hexes.map((h) => Buffer.from(h, "hex"))));
const EMPTY = sha("");

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    assert.ok(error instanceof ProvenantError, String(error));
    return error.code;
  }
  assert.fail("expected an error");
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "provenant-hash-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("hashModel", () => {
  it("when hashing the reference sample, it computes the root digest model_signing signed", async () => {
    const hash = await hashModel(sample, { ignorePaths: ["model.sig", "ignore-me"] });
    assert.equal(hash.rootDigest, "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");
    assert.deepEqual(
      hash.files.map((f) => [f.name, f.size]),
      [
        ["signme-1", 9],
        ["signme-2", 8],
      ],
    );
    assert.equal(hash.modelName, "v1.1.0-elliptic-key");
    assert.deepEqual(hash.ignorePaths, [".git", ".gitattributes", ".github", ".gitignore", "model.sig", "ignore-me"]);
  });

  it("when the model is a single file, its one resource is named '.' as the reference names it", async () => {
    const file = join(dir, "single.bin");
    writeFileSync(file, "hello");
    const hash = await hashModel(file);
    assert.deepEqual(hash.resources, [{ name: ".", digest: sha("hello"), algorithm: "sha256" }]);
    assert.equal(hash.rootDigest, root([sha("hello")]));
    assert.equal(hash.modelName, "single.bin");
  });

  it("when folders nest, resources sort by path component ('a/b' before 'a-b') and hash in that order", async () => {
    const m = join(dir, "nested");
    for (const d of ["a/c", "b", ".git", "sub/.git"]) mkdirSync(join(m, d), { recursive: true });
    const content: Record<string, string> = { "a/b": "1", "a-b": "2", "a/c/d": "3", "b/e": "4", "sub/.git/x": "5" };
    for (const [name, text] of Object.entries(content)) writeFileSync(join(m, name), text);
    writeFileSync(join(m, ".git/HEAD"), "ignored");
    writeFileSync(join(m, ".gitignore"), "ignored");
    const hash = await hashModel(m);
    const names = ["a/b", "a/c/d", "a-b", "b/e", "sub/.git/x"];
    assert.deepEqual(
      hash.resources.map((r) => r.name),
      names,
    );
    assert.equal(hash.rootDigest, root(names.map((n) => sha(content[n]!))));
    const ignoring = await hashModel(m, { ignorePaths: ["a", "sub/"] });
    assert.deepEqual(
      ignoring.resources.map((r) => r.name),
      ["a-b", "b/e"],
    );
    assert.ok(comparePaths("a/b", "a-b") < 0 && comparePaths("\u{10000}", "\uffff") > 0);
  });

  it("when a file is empty, files mode hashes it and shards mode gives it no shard", async () => {
    const m = join(dir, "empty");
    mkdirSync(m);
    writeFileSync(join(m, "empty"), "");
    writeFileSync(join(m, "x"), "xyz");
    const files = await hashModel(m);
    assert.deepEqual(
      files.resources.map((r) => [r.name, r.digest]),
      [
        ["empty", EMPTY],
        ["x", sha("xyz")],
      ],
    );
    const shards = await hashModel(m, { method: "shards" });
    assert.deepEqual(
      shards.resources.map((r) => r.name),
      ["x:0:3"],
    );
    assert.equal(shards.shardSize, 1_000_000_000);
    assert.equal(shards.files.length, 2);
  });

  it("when a file is larger than the shard size, it is cut at multiples of the size, shards sorted by offset", async () => {
    const m = join(dir, "shards");
    mkdirSync(m);
    const data = randomBytes(10_500);
    writeFileSync(join(m, "w"), data);
    const hash = await hashModel(m, { method: "shards", shardSize: 1000 });
    const expected: string[] = [];
    const names: string[] = [];
    for (let s = 0; s < data.length; s += 1000) {
      const e = Math.min(s + 1000, data.length);
      names.push(`w:${s}:${e}`);
      expected.push(sha(data.subarray(s, e)));
    }
    // 11 shards: numeric order puts w:2000 after w:1000, never w:10000 before w:2000.
    assert.deepEqual(
      hash.resources.map((r) => r.name),
      names,
    );
    assert.equal(hash.rootDigest, root(expected));
    assert.equal(hash.files[0]!.digest, root(expected));
  });

  it("when the thread count changes, the result does not", async () => {
    const m = join(dir, "threads");
    mkdirSync(join(m, "d"), { recursive: true });
    for (let i = 0; i < 12; i++)
      writeFileSync(join(m, i % 2 ? `d/f${i}` : `f${i}`), randomBytes(i === 3 ? 9 * 1024 * 1024 + 7 : 1000 * i));
    writeFileSync(join(m, "zero"), "");
    const results = [];
    for (const threads of [1, 2, 3]) {
      let last = [0, -1];
      const hash = await hashModel(m, { threads, onProgress: (d, t) => (last = [d, t]) });
      assert.equal(last[0], last[1]);
      results.push(hash);
      results.push(await hashModel(m, { threads, method: "shards", shardSize: 300_000 }));
    }
    for (let i = 2; i < results.length; i++) assert.deepEqual(results[i], results[i % 2]);
  });

  it("when a symlink is present, it fails with OMS_SYMLINK unless allowed", async () => {
    const m = join(dir, "links");
    mkdirSync(m);
    writeFileSync(join(m, "real"), "r");
    symlinkSync("real", join(m, "link"));
    assert.equal(await codeOf(hashModel(m)), "OMS_SYMLINK");
    const allowed = await hashModel(m, { allowSymlinks: true });
    assert.deepEqual(
      allowed.resources.map((r) => [r.name, r.digest]),
      [
        ["link", sha("r")],
        ["real", sha("r")],
      ],
    );
    symlinkSync("/etc/hostname", join(m, "outside"));
    assert.equal(await codeOf(hashModel(m, { allowSymlinks: true })), "OMS_SYMLINK");
  });

  it("when nothing is left to hash or the path does not exist, it fails with a code", async () => {
    const m = join(dir, "nothing");
    mkdirSync(join(m, ".git"), { recursive: true });
    writeFileSync(join(m, ".git/config"), "x");
    assert.equal(await codeOf(hashModel(m)), "OMS_MALFORMED");
    assert.equal(await codeOf(hashModel(join(dir, "absent"))), "IO_ERROR");
    assert.equal(await codeOf(hashModel(m, { method: "shards", shardSize: 0 })), "OMS_MALFORMED");
  });
});

describe("sha256File", () => {
  it("when given a file, it returns its SHA-256; a missing file fails with IO_ERROR", async () => {
    const { sha256File } = await import("./index.ts");
    assert.equal(
      await sha256File(join(sample, "signme-1")),
      "bc9a717db6064a32cbe9eae6fc40651dd6d36ef1757183f590eff2b1765d7ebc",
    );
    assert.equal(await codeOf(sha256File(join(sample, "absent"))), "IO_ERROR");
  });
});
