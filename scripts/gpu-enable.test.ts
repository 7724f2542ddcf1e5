import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { CUDA_PACKAGES, enableCuda, packageState, type PackFn } from "./gpu-enable.ts";

const run = promisify(execFile);
const STUB = { name: "provenant-empty-stub", version: "0.0.0", private: true };

describe("npm run gpu:enable (offline, against tarballs made here)", () => {
  let dir = "";
  let nodeModules = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-gpu-enable-test-"));
    nodeModules = join(dir, "node_modules");
    await mkdir(join(nodeModules, "node-llama-cpp"), { recursive: true });
    await writeFile(join(nodeModules, "node-llama-cpp", "package.json"), JSON.stringify({ version: "3.22.1" }));
    for (const name of CUDA_PACKAGES) {
      await mkdir(join(nodeModules, ...name.split("/")), { recursive: true });
      await writeFile(join(nodeModules, ...name.split("/"), "package.json"), JSON.stringify(STUB));
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Plays `npm pack`: a tarball with `package/package.json` naming `spec` (or `as`), as the registry serves it. */
  const fakePack =
    (packed: string[], as?: { name: string; version: string }): PackFn =>
    async (spec, into) => {
      packed.push(spec);
      const at = spec.lastIndexOf("@");
      const src = await mkdtemp(join(dir, "src-"));
      await mkdir(join(src, "package", "bins"), { recursive: true });
      const pkg = as ?? { name: spec.slice(0, at), version: spec.slice(at + 1) };
      await writeFile(join(src, "package", "package.json"), JSON.stringify(pkg));
      await writeFile(join(src, "package", "bins", "llama-addon.node"), "binary");
      const tarball = join(into, "pkg.tgz");
      await run("tar", ["-czf", tarball, "-C", src, "package"]);
      return tarball;
    };

  it("when the CUDA packages are stubs, it installs both at node-llama-cpp's exact version, and a second run fetches nothing", async (t) => {
    if (process.platform !== "linux" || process.arch !== "x64") return t.skip("linux-x64 only");
    for (const name of CUDA_PACKAGES) assert.equal(await packageState(nodeModules, name, "3.22.1"), "stub");
    const packed: string[] = [];
    const result = await enableCuda({ nodeModules, pack: fakePack(packed) });
    assert.deepEqual(
      packed,
      CUDA_PACKAGES.map((name) => `${name}@3.22.1`),
    );
    for (const name of CUDA_PACKAGES) {
      assert.equal(result[name], "installed");
      const installed = join(nodeModules, ...name.split("/"));
      assert.deepEqual((await readdir(join(installed, "bins"))).sort(), ["llama-addon.node"]);
      assert.equal(JSON.parse(await readFile(join(installed, "package.json"), "utf8")).name, name);
    }
    const again: string[] = [];
    await enableCuda({ nodeModules, pack: fakePack(again) });
    assert.deepEqual(again, []);
    // Nothing is left beside the packages (the stubs moved aside were removed).
    assert.deepEqual((await readdir(join(nodeModules, "@node-llama-cpp"))).sort(), [
      "linux-x64-cuda",
      "linux-x64-cuda-ext",
    ]);
  });

  it("when the registry hands over another package or version, it refuses and keeps the stub", async (t) => {
    if (process.platform !== "linux" || process.arch !== "x64") return t.skip("linux-x64 only");
    const other = join(dir, "other", "node_modules");
    await mkdir(join(other, "node-llama-cpp"), { recursive: true });
    await writeFile(join(other, "node-llama-cpp", "package.json"), JSON.stringify({ version: "3.22.1" }));
    const stubDir = join(other, "@node-llama-cpp", "linux-x64-cuda");
    await mkdir(stubDir, { recursive: true });
    await writeFile(join(stubDir, "package.json"), JSON.stringify(STUB));
    await assert.rejects(
      enableCuda({
        nodeModules: other,
        pack: fakePack([], { name: "@node-llama-cpp/linux-x64-cuda", version: "3.0.0" }),
      }),
      /not @node-llama-cpp\/linux-x64-cuda@3\.22\.1/,
    );
    assert.equal(await packageState(other, "@node-llama-cpp/linux-x64-cuda", "3.22.1"), "stub");
  });
});
