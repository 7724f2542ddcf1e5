import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { isProvenantError } from "../../lib/errors.ts";
import { directorySource, pushTrace, urlSource } from "./store.ts";

const exec = promisify(execFile);
const code = (c: string) => (e: unknown) => isProvenantError(e) && e.code === c;
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

describe("trace store", () => {
  let dir: string;
  let server: Server;
  let base: string;
  const payload = Buffer.alloc(5000, 7);
  const name = `${sha(payload)}.data`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-trace-store-"));
    await mkdir(join(dir, "src"));
    await writeFile(join(dir, "src", name), payload);
    server = createServer((req, res) => {
      if (req.url === `/t/${name}`) return void res.end(payload);
      if (req.url === `/t/${"e".repeat(64)}.data`) {
        // No content-length: the size cap must stop the stream itself.
        res.writeHead(200, { "transfer-encoding": "chunked" });
        res.write(Buffer.alloc(4096));
        res.write(Buffer.alloc(4096));
        return void res.end();
      }
      if (req.url === `/t/${"f".repeat(64)}.data`) return; // never answers
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("when a file is read from a directory, it is copied and hashed; absent or too large is TRACE_MISSING", async () => {
    const source = directorySource(join(dir, "src"));
    const got = await source.fetch(name, join(dir, "copy1"), 1 << 20);
    assert.equal(got.sha256, sha(payload));
    assert.deepEqual(await readFile(got.path), payload);
    await assert.rejects(source.fetch(`${"0".repeat(64)}.gguf`, join(dir, "x"), 1 << 20), code("TRACE_MISSING"));
    await assert.rejects(source.fetch(name, join(dir, "x"), 100), code("TRACE_MISSING"));
    await assert.rejects(source.fetch("../../etc/passwd", join(dir, "x"), 100), code("TRACE_MISSING"));
  });

  it("when a file is read from a URL, size caps and the time limit hold; a 404 is TRACE_MISSING", async () => {
    // A generous limit for the requests that answer (a loaded machine must not fail them), a short one for the
    // request that never does: it ends by the time limit, not by the test's own timeout.
    const source = urlSource(base, { timeoutMs: 60_000 });
    const got = await source.fetch(name, join(dir, "copy2"), 1 << 20);
    assert.equal(got.sha256, sha(payload));
    await assert.rejects(source.fetch(name, join(dir, "x"), 1000), code("TRACE_MISSING"));
    await assert.rejects(source.fetch(`${"e".repeat(64)}.data`, join(dir, "x"), 5000), code("TRACE_MISSING"));
    await assert.rejects(source.fetch(`${"d".repeat(64)}.data`, join(dir, "x"), 5000), code("TRACE_MISSING"));
    const started = performance.now();
    const hanging = urlSource(base, { timeoutMs: 300 });
    await assert.rejects(hanging.fetch(`${"f".repeat(64)}.data`, join(dir, "x"), 5000), code("TRACE_MISSING"));
    assert.ok(performance.now() - started < 30_000);
    assert.throws(() => urlSource("file:///etc"), code("TRACE_MISSING"));
  });

  it("when a trace directory is pushed to a directory store, new files are copied and present ones kept", async () => {
    const store = join(dir, "store-dir");
    const first = await pushTrace(join(dir, "src"), store);
    assert.deepEqual(first.added, [name]);
    const second = await pushTrace(join(dir, "src"), store);
    assert.deepEqual(second.present, [name]);
    assert.deepEqual(await readdir(store), [name]);
    await assert.rejects(pushTrace(join(dir, "store-dir-none"), store), code("IO_ERROR"));
  });

  it("when a trace directory is pushed to a git repository, its files are committed at the top level", async () => {
    const bare = join(dir, "store.git");
    await exec("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
    const seed = join(dir, "seed");
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@t",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@t",
    };
    await exec("git", ["clone", "--quiet", bare, seed]);
    await writeFile(join(seed, "README"), "traces\n");
    await exec("git", ["-C", seed, "add", "README"], { env });
    await exec("git", ["-C", seed, "commit", "--quiet", "-m", "init"], { env });
    await exec("git", ["-C", seed, "push", "--quiet", "origin", "HEAD:main"], { env });
    const result = await pushTrace(join(dir, "src"), bare);
    assert.equal(result.kind, "git");
    assert.deepEqual(result.added, [name]);
    const { stdout } = await exec("git", ["-C", bare, "show", `main:${name}`], { encoding: "buffer" });
    assert.equal(sha(stdout), sha(payload));
    const again = await pushTrace(join(dir, "src"), bare);
    assert.deepEqual(again.present, [name]);
    assert.equal(again.commit, undefined);
  });
});
