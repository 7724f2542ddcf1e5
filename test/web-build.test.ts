// The explorer's production build (what `npx vite build web` makes) holds no Node built-in: lib's browser-safe cores
// are all it imports, the hash worker is its own chunk, and a Node module slipped into the page's graph fails the build.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { build } from "vite";

import { noNodeBuiltins } from "../web/vite.config.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), "provenant-web-build-"));
});
after(() => rm(work, { recursive: true, force: true }));

describe("explorer build", () => {
  it("when the page is built, no asset imports or inlines a Node built-in and the hash worker is a chunk", async () => {
    const outDir = path.join(work, "dist");
    await build({ configFile: path.join(ROOT, "web/vite.config.ts"), logLevel: "silent", build: { outDir } });
    const assets = await readdir(path.join(outDir, "assets"));
    assert.ok(
      assets.some((a) => /^hash-worker-.*\.js$/.test(a)),
      assets.join(", "),
    );
    for (const name of assets.filter((a) => a.endsWith(".js"))) {
      const code = await readFile(path.join(outDir, "assets", name), "utf8");
      assert.doesNotMatch(code, /["']node:[a-z_/]+["']|__vite-browser-external/, name);
    }
  });

  it("when a page module imports a Node module (lib/dsse/index.ts uses node:crypto), the build fails and says why", async () => {
    const entry = path.join(work, "entry.ts");
    await writeFile(
      entry,
      `import { signEnvelope } from ${JSON.stringify(path.join(ROOT, "lib/dsse/index.ts"))};\nconsole.log(signEnvelope);\n`,
    );
    await assert.rejects(
      build({
        configFile: false,
        root: work,
        logLevel: "silent",
        plugins: [noNodeBuiltins()],
        build: { outDir: path.join(work, "bad"), write: false, rollupOptions: { input: entry } },
      }),
      /imports the Node built-in 'node:crypto'/,
    );
  });
});
