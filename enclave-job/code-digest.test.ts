import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import type { CliIo } from "../lib/cli/index.ts";
import { readBundle, findManifest } from "../lib/bundle/index.ts";
import { buildEvalStatement, buildFinetuneStatement, jobCodeDigestOf, validateStatement } from "../lib/intoto/index.ts";
import { cpuSigOf, measureLaunchFiles } from "../lib/measure/index.ts";
import { hashModel } from "../lib/oms/index.ts";
import { commands } from "./cli.ts";
import { jobCodeDigest, jobDigestFromCmdline, JOB_CODE_IGNORE_PATHS, PACKAGE_ROOT } from "./code-digest.ts";
import { jobCodeDigest as processJobCodeDigest, runAuditJob } from "./job.ts";
import { writeTinyModel } from "./model/tiny.ts";
import { testProvider } from "./testing.ts";

const INIT = fileURLToPath(new URL("./image/init.sh", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../test/fixtures/measure/", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "provenant-code-digest-"));
after(() => rmSync(work, { recursive: true, force: true }));

let counter = 0;
/** A small package tree: sources, a dependency, a .bin link, and the paths the digest leaves out. */
function makePackage(): string {
  const root = join(work, `pkg-${counter++}`);
  const files: Record<string, string> = {
    "package.json": '{"name":"provenant","version":"0.2.0"}\n',
    "bin/cli.ts": "console.log('job');\n",
    "a/b": "component order: a/b sorts before a-b\n",
    "a-b": "after a/b\n",
    "enclave-job/job.ts": "export const job = 1;\n",
    "node_modules/dep/package.json": '{"name":"dep","bin":"cli.js"}\n',
    "node_modules/dep/cli.js": "#!/usr/bin/env node\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    ".gitignore": "node_modules/\n",
    ".provenant/state.db": "runtime state\n",
  };
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, ".."), { recursive: true });
    writeFileSync(join(root, name), content);
  }
  mkdirSync(join(root, "node_modules/.bin"));
  symlinkSync("../dep/cli.js", join(root, "node_modules/.bin/dep"));
  return root;
}

async function runCommand(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const command = commands.find((c) => c.path.join(" ") === "job code-digest")!;
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTty: false, env: {}, cwd: work };
  return { code: await command.run(argv, io), out, err };
}

/** Runs the image's /init outside PID 1: it checks and exits, 0 when the command line names the files it holds. */
function runInit(init: string, jobRoot: string, cmdline: string): { status: number | null; stderr: string } {
  const cmdlineFile = join(work, `cmdline-${counter++}`);
  writeFileSync(cmdlineFile, `${cmdline}\n`);
  const result = spawnSync("sh", [init], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PROVENANT_JOB_ROOT: jobRoot,
      PROVENANT_CMDLINE_FILE: cmdlineFile,
    },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stderr: result.stderr };
}

describe("job-code digest", () => {
  it("when a package is hashed, the digest is the OMS root digest model_signing's rules give for it", async () => {
    const root = makePackage();
    const ours = await jobCodeDigest(root);
    const oms = await hashModel(root, { allowSymlinks: true, ignorePaths: [".provenant"] });
    assert.equal(ours.rootDigest, oms.rootDigest);
    assert.equal(ours.digest, `sha256:${oms.rootDigest}`);
    assert.equal(ours.files, oms.files.length);
    assert.deepEqual(JOB_CODE_IGNORE_PATHS, [".git", ".gitattributes", ".github", ".gitignore", ".provenant"]);
  });

  it("when one byte of a source or of node_modules changes, or a file is added, the digest changes", async () => {
    const root = makePackage();
    const seen = new Set([(await jobCodeDigest(root)).rootDigest]);
    const edits: [string, string][] = [
      ["enclave-job/job.ts", "export const job = 2;\n"],
      ["node_modules/dep/cli.js", "#!/usr/bin/env nodf\n"],
      ["node_modules/evil/index.js", "process.exit(0)\n"],
      ["docs/x.md", "anything in the package counts\n"],
    ];
    for (const [name, content] of edits) {
      mkdirSync(join(root, name, ".."), { recursive: true });
      writeFileSync(join(root, name), content);
      const digest = (await jobCodeDigest(root)).rootDigest;
      assert.ok(!seen.has(digest), name);
      seen.add(digest);
    }
  });

  it("when only .git or .provenant change, the digest stays the same", async () => {
    const root = makePackage();
    const before = (await jobCodeDigest(root)).rootDigest;
    writeFileSync(join(root, ".git/HEAD"), "ref: refs/heads/other\n");
    writeFileSync(join(root, ".provenant/state.db"), "other state\n");
    assert.equal((await jobCodeDigest(root)).rootDigest, before);
  });

  it("when a link points outside the package, it is OMS_SYMLINK; an empty package is OMS_MALFORMED", async () => {
    const root = makePackage();
    symlinkSync("/etc/hostname", join(root, "outside"));
    await assert.rejects(jobCodeDigest(root), { code: "OMS_SYMLINK" });
    const empty = join(work, "empty");
    mkdirSync(empty);
    await assert.rejects(jobCodeDigest(empty), { code: "OMS_MALFORMED" });
    await assert.rejects(jobCodeDigest(join(work, "missing")), { code: "IO_ERROR" });
  });

  it("when a command line is read, exactly one well-formed provenant.job= counts", () => {
    const d = "ab".repeat(32);
    assert.equal(jobDigestFromCmdline(`console=ttyS0 provenant.job=sha256:${d} quiet\n`), `sha256:${d}`);
    assert.equal(jobDigestFromCmdline("console=ttyS0"), undefined);
    assert.equal(jobDigestFromCmdline(`provenant.job=sha256:${d} provenant.job=sha256:${d}`), undefined);
    assert.equal(jobDigestFromCmdline(`provenant.job=sha256:${d.toUpperCase()}`), undefined);
    assert.equal(jobDigestFromCmdline(`xprovenant.job=sha256:${d}`), undefined);
  });

  it("when the image's shell init and this module hash the same package, they agree, and the init refuses others", async () => {
    const root = makePackage();
    const { digest } = await jobCodeDigest(root);
    assert.equal(runInit(INIT, root, `console=ttyS0 provenant.job=${digest} -- job audit`).status, 0);
    const wrong = runInit(INIT, root, `console=ttyS0 provenant.job=sha256:${"0".repeat(64)}`);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /refusing to start the job/);
    assert.equal(runInit(INIT, root, "console=ttyS0").status, 1);
    assert.equal(runInit(INIT, root, `provenant.job=${digest} provenant.job=${digest}`).status, 1);
  });
});

describe("provenant job code-digest", () => {
  it("when run on a package, it prints sha256:<root digest>, and --json gives the counts", async () => {
    const root = makePackage();
    const expected = await jobCodeDigest(root);
    const text = await runCommand(["--root", root]);
    assert.equal(text.code, 0);
    assert.equal(text.out, `${expected.digest}\n`);
    const json = await runCommand(["--root", root, "--json"]);
    const body = JSON.parse(json.out) as Record<string, unknown>;
    assert.equal(body.ok, true);
    assert.equal(body.rootDigest, expected.rootDigest);
    assert.equal(body.files, expected.files);
  });

  it("when --check-cmdline names these files it exits 0; other files, 1 with JOB_CODE_MISMATCH", async () => {
    const root = makePackage();
    const { digest } = await jobCodeDigest(root);
    const good = join(work, "good-cmdline");
    const bad = join(work, "bad-cmdline");
    writeFileSync(good, `console=ttyS0 provenant.job=${digest}\n`);
    writeFileSync(bad, `console=ttyS0 provenant.job=sha256:${"1".repeat(64)}\n`);
    assert.equal((await runCommand(["--root", root, "--check-cmdline", good])).code, 0);
    const refused = await runCommand(["--root", root, "--check-cmdline", bad, "--json"]);
    assert.equal(refused.code, 1);
    const body = JSON.parse(refused.out) as { errors: { code: string }[] };
    assert.deepEqual(
      body.errors.map((e) => e.code),
      ["JOB_CODE_MISMATCH"],
    );
    const usage = await runCommand(["--root", root, "extra"]);
    assert.equal(usage.code, 2);
  });
});

describe("measured launch with the job's code in it", () => {
  const EPOCH = new Date(0);

  /** Packs an initrd directory as the kernel expects it: newc cpio, gzip; sorted names, fixed times and owners. */
  function packInitrd(dir: string, out: string): void {
    const names = execFileSync("find", [".", "-print0"], { cwd: dir })
      .toString("latin1")
      .split("\0")
      .filter((n) => n !== "")
      .sort();
    for (const name of names) utimesSync(join(dir, name), EPOCH, EPOCH);
    const cpio = execFileSync("cpio", ["-o", "-H", "newc", "--null", "--reproducible", "--owner=0:0", "--quiet"], {
      cwd: dir,
      input: Buffer.from(names.map((n) => `${n}\0`).join(""), "latin1"),
      maxBuffer: 64 * 1024 * 1024,
    });
    writeFileSync(out, execFileSync("gzip", ["-n", "-9"], { input: cpio, maxBuffer: 64 * 1024 * 1024 }));
  }

  /** An initrd tree: /init (the image's init script) and the job package under /opt/provenant. */
  function makeInitrdTree(jobSource: string): { dir: string; jobRoot: string } {
    const dir = join(work, `initrd-${counter++}`);
    const jobRoot = join(dir, "opt/provenant");
    mkdirSync(join(jobRoot, "bin"), { recursive: true });
    mkdirSync(join(jobRoot, "enclave-job"), { recursive: true });
    mkdirSync(join(jobRoot, "node_modules/dep"), { recursive: true });
    writeFileSync(join(jobRoot, "package.json"), '{"name":"provenant","version":"0.2.0"}\n');
    writeFileSync(join(jobRoot, "bin/provenant"), '#!/bin/sh\nexec node /opt/provenant/bin/cli.ts "$@"\n');
    writeFileSync(join(jobRoot, "enclave-job/job.ts"), jobSource);
    writeFileSync(join(jobRoot, "node_modules/dep/index.js"), "module.exports = 1;\n");
    copyFileSync(INIT, join(dir, "init"));
    chmodSync(join(dir, "init"), 0o755);
    chmodSync(join(jobRoot, "bin/provenant"), 0o755);
    return { dir, jobRoot };
  }

  async function measure(initrd: string, cmdline: string): Promise<string> {
    const result = await measureLaunchFiles({
      ovmf: join(FIXTURES, "ovmf_AmdSev_suffix.bin"),
      kernel: join(FIXTURES, "kernel-dev.bin"),
      initrd,
      append: cmdline,
      vcpus: 2,
      vcpuSig: cpuSigOf("EPYC-Milan")!.sig,
      vmm: "qemu",
      guestFeatures: 0x1n,
    });
    return Buffer.from(result.measurement).toString("hex");
  }

  it("when one byte of the job or of the command line changes, the launch measurement changes", async () => {
    const original = makeInitrdTree("export const job = 'audit';\n");
    const { digest } = await jobCodeDigest(original.jobRoot);
    const cmdline = `console=ttyS0 provenant.job=${digest} -- job audit --provider tsm`;
    // The init in the tree accepts its own files under the command line that names them.
    assert.equal(runInit(join(original.dir, "init"), original.jobRoot, cmdline).status, 0);
    const initrd = join(work, "initrd.img");
    packInitrd(original.dir, initrd);
    assert.equal(readFileSync(initrd).subarray(0, 2).toString("hex"), "1f8b");
    const listing = execFileSync("sh", ["-c", `gzip -dc '${initrd}' | cpio -t --quiet`], { encoding: "utf8" });
    assert.match(listing, /^init$/m);
    assert.match(listing, /^opt\/provenant\/enclave-job\/job\.ts$/m);
    const reference = await measure(initrd, cmdline);

    // The same tree packed again gives the same initrd and the same measurement (the recipe is reproducible).
    const again = join(work, "initrd-again.img");
    packInitrd(original.dir, again);
    assert.equal(await measure(again, cmdline), reference);

    // One byte of the job changed ('audit' → 'audiu'): another initrd, another measurement, and its init refuses
    // the old command line.
    const changed = makeInitrdTree("export const job = 'audiu';\n");
    const changedInitrd = join(work, "initrd-changed.img");
    packInitrd(changed.dir, changedInitrd);
    assert.notEqual(await measure(changedInitrd, cmdline), reference);
    assert.equal(runInit(join(changed.dir, "init"), changed.jobRoot, cmdline).status, 1);
    const changedDigest = (await jobCodeDigest(changed.jobRoot)).digest;
    assert.notEqual(changedDigest, digest);

    // One byte of the command line changed: another measurement.
    assert.notEqual(await measure(initrd, cmdline.replace("--provider tsm", "--provider tsn")), reference);
    assert.notEqual(
      await measure(initrd, `console=ttyS0 provenant.job=${changedDigest} -- job audit --provider tsm`),
      reference,
    );
  });
});

describe("the job-code digest in the statements", () => {
  const NOW = new Date("2026-11-21T12:00:00Z");
  const d = (c: string) => c.repeat(64);

  it("when a manifest is built, jobCodeDigestOf reads the job code back from either kind", () => {
    const when = { startedOn: NOW, finishedOn: NOW };
    const evalStatement = buildEvalStatement({
      model: { name: "m", rootDigest: d("a") },
      suite: { name: "s", digest: d("b") },
      harness: { name: "provenant-audit", version: "0.2.0", digest: d("c") },
      metrics: [],
      ...when,
    });
    const finetune = buildFinetuneStatement({
      output: { name: "out", rootDigest: d("a") },
      baseModel: { name: "base", rootDigest: d("b") },
      dataset: { name: "data", digest: d("c") },
      jobCode: { name: "provenant-enclave-job", digest: d("e") },
      trainerConfig: {},
      invocationId: "i",
      byproducts: [],
      ...when,
    });
    assert.equal(jobCodeDigestOf(evalStatement), d("c"));
    assert.equal(jobCodeDigestOf(finetune), d("e"));
    const gitCommit = buildFinetuneStatement({
      output: { name: "out", rootDigest: d("a") },
      baseModel: { name: "base", rootDigest: d("b") },
      dataset: { name: "data", digest: d("c") },
      jobCode: { name: "job", digest: "f".repeat(40) },
      trainerConfig: {},
      invocationId: "i",
      byproducts: [],
      ...when,
    });
    assert.equal(jobCodeDigestOf(gitCommit), undefined);
  });

  it("when an audit job runs, its signed eval statement carries the job-code digest of the installed package", async () => {
    const dir = mkdtempSync(join(work, "audit-"));
    const { model } = await writeTinyModel(join(dir, "tiny.gguf"), { seed: 7 });
    const result = await runAuditJob({ model, suite: "builtin:mc", provider: testProvider(NOW), threads: 1, cwd: dir });
    const bundle = readBundle(readFileSync(result.bundlePath));
    const { envelope } = findManifest(bundle);
    const statement = validateStatement(JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8")));
    // The job hashed PACKAGE_ROOT once, at its start; the working tree may change after that (it is shared while
    // tests run), so the statement is held to the value the job computed, not to a second hash taken now.
    const computed = await processJobCodeDigest();
    assert.equal(jobCodeDigestOf(statement.statement), computed);
    assert.match(computed, /^[0-9a-f]{64}$/);
    assert.equal(
      (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { name: string }).name,
      "provenant",
    );
  });
});
