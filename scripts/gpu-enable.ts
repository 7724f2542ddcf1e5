// `npm run gpu:enable`: installs node-llama-cpp's prebuilt CUDA binaries (@node-llama-cpp/linux-x64-cuda and
// -cuda-ext) for the exact node-llama-cpp version in node_modules, in place of the empty stubs the default install
// puts there (package.json `overrides`), without touching package.json or the lockfile. `npm ci` restores the stubs.
// Uses npm's own client (`npm pack`) and `tar`; needs the registry once, nothing else. docs/gpu.md "CUDA".
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CUDA_PACKAGES = ["@node-llama-cpp/linux-x64-cuda", "@node-llama-cpp/linux-x64-cuda-ext"] as const;

export type PackageState = "installed" | "stub" | "missing" | "other-version";

async function readJson(file: string): Promise<{ name?: string; version?: string } | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/** node-llama-cpp's version in `nodeModules`: the CUDA packages must be exactly that version. */
export async function llamaVersion(nodeModules: string): Promise<string> {
  const pkg = await readJson(path.join(nodeModules, "node-llama-cpp", "package.json"));
  if (pkg?.version === undefined) throw new Error(`node-llama-cpp is not installed in ${nodeModules}: run npm ci`);
  return pkg.version;
}

export async function packageState(nodeModules: string, name: string, version: string): Promise<PackageState> {
  const pkg = await readJson(path.join(nodeModules, ...name.split("/"), "package.json"));
  if (pkg === undefined) return "missing";
  if (pkg.name !== name) return "stub";
  return pkg.version === version ? "installed" : "other-version";
}

/** Fetches `<name>@<version>` as a tarball into `dir` and returns its path: `npm pack` by default. */
export type PackFn = (spec: string, dir: string) => Promise<string>;

export const npmPack: PackFn = async (spec, dir) => {
  const { stdout } = await run("npm", ["pack", spec, "--pack-destination", dir, "--json", "--silent"], {
    timeout: 30 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const [entry] = JSON.parse(stdout) as { filename: string }[];
  if (entry === undefined) throw new Error(`npm pack ${spec} produced no tarball`);
  return path.join(dir, entry.filename);
};

/**
 * Installs each CUDA package that is not already the right version: pack, unpack, check its name and version,
 * then swap the directory in (the stub is moved aside first and removed after, so a failure leaves the stub).
 */
export async function enableCuda(
  options: { nodeModules?: string; pack?: PackFn; log?: (line: string) => void } = {},
): Promise<Record<string, PackageState>> {
  const nodeModules = options.nodeModules ?? path.join(ROOT, "node_modules");
  const pack = options.pack ?? npmPack;
  const log = options.log ?? (() => {});
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `node-llama-cpp's prebuilt CUDA binaries are for linux-x64; this is ${process.platform}-${process.arch}`,
    );
  }
  const version = await llamaVersion(nodeModules);
  const result: Record<string, PackageState> = {};
  for (const name of CUDA_PACKAGES) {
    const state = await packageState(nodeModules, name, version);
    if (state === "installed") {
      log(`${name}@${version}: already installed`);
      result[name] = state;
      continue;
    }
    const work = await mkdtemp(path.join(tmpdir(), "provenant-gpu-enable-"));
    try {
      log(`${name}@${version}: fetching (npm pack)`);
      const tarball = await pack(`${name}@${version}`, work);
      await run("tar", ["-xzf", tarball, "-C", work], { timeout: 10 * 60_000 });
      const unpacked = path.join(work, "package");
      const pkg = await readJson(path.join(unpacked, "package.json"));
      if (pkg?.name !== name || pkg.version !== version) {
        throw new Error(`${tarball} is ${pkg?.name}@${pkg?.version}, not ${name}@${version}`);
      }
      const target = path.join(nodeModules, ...name.split("/"));
      const aside = `${target}.stub-${process.pid}`;
      const had = await stat(target).then(
        () => true,
        () => false,
      );
      if (had) await rename(target, aside);
      try {
        await rename(unpacked, target).catch(async () => {
          // Another file system: copy instead of rename.
          await run("cp", ["-a", unpacked, target]);
        });
      } catch (error) {
        if (had) await rename(aside, target);
        throw error;
      }
      if (had) await rm(aside, { recursive: true, force: true });
      log(`${name}@${version}: installed`);
      result[name] = "installed";
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return result;
}

async function main(argv: string[]): Promise<number> {
  const nodeModules = path.join(ROOT, "node_modules");
  if (argv.includes("--check")) {
    const version = await llamaVersion(nodeModules);
    for (const name of CUDA_PACKAGES)
      console.log(`${name}@${version}: ${await packageState(nodeModules, name, version)}`);
    return 0;
  }
  if (argv.some((a) => a !== "--check")) {
    console.error("usage: npm run gpu:enable [-- --check]");
    return 2;
  }
  await enableCuda({ nodeModules, log: (line) => console.log(line) });
  // Prove it: node-llama-cpp on CUDA, as `provenant job … --gpu` starts it.
  const { sharedLlama, llamaRuntime } = await import("../enclave-job/llama.ts");
  try {
    const llama = await sharedLlama(true);
    const runtime = await llamaRuntime(llama);
    console.log(`CUDA ready: ${runtime.devices.join(", ") || "(no device name)"}`);
    return 0;
  } catch (error) {
    console.log(`installed, but CUDA does not start here: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`gpu:enable failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(2);
    },
  );
}
