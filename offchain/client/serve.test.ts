// The explorer's own server: /config.json names the verifier (forwarded at /verifier/) and the serving API the page
// reads; `provenant explorer --serving` refuses anything but an http(s) URL before it starts a server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { serveExplorer, type ExplorerServer } from "./serve.ts";

const PROVENANT = new URL("../../bin/provenant", import.meta.url).pathname;

describe("provenant explorer's config.json", () => {
  let distDir: string;
  let server: ExplorerServer;

  before(async () => {
    distDir = await mkdtemp(path.join(tmpdir(), "provenant-explorer-"));
    await writeFile(path.join(distDir, "index.html"), "<!doctype html><title>explorer</title>");
    server = await serveExplorer({
      port: 0,
      rpcUrl: "http://127.0.0.1:1",
      distDir,
      verifierUrl: "http://127.0.0.1:8780",
      servingUrl: "http://127.0.0.1:8790",
      config: { defaultNetwork: "localhost", networks: [] },
    });
  });

  after(async () => {
    await server?.close();
    await rm(distDir, { recursive: true, force: true });
  });

  it("when a verifier and a serving API are given, config.json names the forwarded verifier and the serving URL", async () => {
    const answer = await fetch(new URL("/config.json", server.url));
    assert.equal(answer.status, 200);
    const config = (await answer.json()) as { verifierUrl?: string; servingUrl?: string };
    assert.equal(config.verifierUrl, "/verifier/");
    assert.equal(config.servingUrl, "http://127.0.0.1:8790");
  });

  it("when --serving is not an http(s) URL, the command exits 2 with USAGE and starts nothing", async () => {
    const run = promisify(execFile);
    const failed = await run(PROVENANT, ["explorer", "--port", "0", "--serving", "javascript:alert(1)"], {
      timeout: 60_000,
    }).then(
      () => assert.fail("the command should have failed"),
      (error: { code?: number; stderr?: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr ?? "", /USAGE/);
    assert.match(failed.stderr ?? "", /--serving/);
  });
});
