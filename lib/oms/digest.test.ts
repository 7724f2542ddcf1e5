import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { planTasks, rootDigestInput, shardSummaryInputs } from "./digest.ts";
import { hashModel } from "./hash.ts";
import { comparePaths, DEFAULT_IGNORE_PATHS } from "./index.ts";

const sha = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The model as the page sees it: names relative to the root, bytes in memory; hashed with digest.ts only. */
function hashWithCore(files: Record<string, Buffer>, method: "files" | "shards", shardSize?: number) {
  const list = Object.entries(files).map(([name, data]) => ({ name, size: data.length, data }));
  const tasks = planTasks(list, method, shardSize);
  const digests = tasks.map((t) => sha(list[t.file]!.data.subarray(t.start, t.end)));
  const { input } = rootDigestInput(
    method,
    tasks.map((t, i) => ({ name: t.name, digest: digests[i]! })),
  );
  const summaries = method === "shards" ? shardSummaryInputs(tasks, digests, list.length).map((s) => hex(sha(s))) : [];
  return { root: hex(sha(input)), tasks, summaries, list };
}

let dir: string;
const files: Record<string, Buffer> = {
  "weights.bin": Buffer.alloc(2500, 7),
  "a/b.bin": Buffer.from("b"),
  "a-b.bin": Buffer.from("a-b"),
  "é.txt": Buffer.from("accent"),
  "\u{1F600}.txt": Buffer.from("astral"),
  "\uFFFD.txt": Buffer.from("bmp"),
  "empty.bin": Buffer.alloc(0),
};
before(() => {
  dir = mkdtempSync(join(tmpdir(), "provenant-oms-digest-"));
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, "model", name, ".."), { recursive: true });
    writeFileSync(join(dir, "model", name), data);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("OMS digest core (shared with the explorer page)", () => {
  it("when given the files of a model, it gives the root digest of lib/oms hashModel (files method)", async () => {
    const expected = await hashModel(join(dir, "model"));
    const got = hashWithCore(files, "files");
    assert.equal(got.root, expected.rootDigest);
    assert.deepEqual(
      got.tasks.map((t) => t.name),
      expected.files.map((f) => f.name),
    );
  });

  it("when given the files of a model, it gives the root digest and summaries of hashModel (shards method)", async () => {
    const expected = await hashModel(join(dir, "model"), { method: "shards", shardSize: 1000 });
    const got = hashWithCore(files, "shards", 1000);
    assert.equal(got.root, expected.rootDigest);
    assert.deepEqual(
      got.tasks.map((t) => t.name),
      expected.resources.map((r) => r.name),
    );
    const byName = Object.fromEntries(expected.files.map((f) => [f.name, f.digest]));
    got.list.forEach((f, i) => assert.equal(got.summaries[i], byName[f.name], f.name));
    assert.ok(got.tasks.some((t) => t.name === "weights.bin:2000:2500"));
    assert.ok(!got.tasks.some((t) => t.name.startsWith("empty.bin")), "an empty file has no shard");
  });

  it("when names differ only past the BMP or by separator, it orders them by code point and component", () => {
    assert.ok(comparePaths("a/b", "a-b") < 0);
    assert.ok(comparePaths("\uFFFD", "\u{1F600}") < 0, "U+FFFD sorts before U+1F600 though its UTF-16 unit is larger");
    assert.deepEqual(DEFAULT_IGNORE_PATHS, [".git", ".gitattributes", ".github", ".gitignore"]);
  });

  it("when the shard size is not a positive integer, planning refuses it", () => {
    assert.throws(() => planTasks([{ name: "x", size: 1 }], "shards", 0), RangeError);
    assert.throws(() => planTasks([{ name: "x", size: 1 }], "shards", 1.5), RangeError);
  });
});
