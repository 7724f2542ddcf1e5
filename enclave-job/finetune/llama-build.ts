// Building llama.cpp's fine-tune example and Provenant's recording trainer (native/trace-train.cpp) offline from the
// source node-llama-cpp ships (llama/gitRelease.bundle), once per machine: the build lives under
// $PROVENANT_HOME/llama-build (default ~/.provenant/llama-build). One build at a time per directory (a lock).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { access, constants, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

import { IoError } from "../../lib/errors.ts";

const exec = promisify(execFile);

/** Provenant's own native sources, compiled into the llama.cpp build as the `provenant-trace-train` target. */
export const TRACE_NATIVE_DIR = fileURLToPath(new URL("./native/", import.meta.url));
const TRACE_TARGET = "provenant-trace-train";

export function llamaBuildDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.PROVENANT_HOME ?? join(homedir(), ".provenant"), "llama-build");
}

export function finetuneBinary(env: NodeJS.ProcessEnv = process.env): string {
  return join(llamaBuildDir(env), "build", "bin", "llama-finetune");
}

/** The recording trainer (docs/training-trace.md). */
export function traceTrainerBinary(env: NodeJS.ProcessEnv = process.env): string {
  return join(llamaBuildDir(env), "build", "bin", TRACE_TARGET);
}

/** Beside the binary: the digest of the native sources it was built from, so that edited sources rebuild it. */
function traceStampPath(env: NodeJS.ProcessEnv): string {
  return `${traceTrainerBinary(env)}.sources-sha256`;
}

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** True when the cached build exists (tests that need it are skipped otherwise). */
export function hasFinetuneBuild(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return exists(finetuneBinary(env), constants.X_OK);
}

/** SHA-256 over the native sources (name, NUL, bytes, NUL; sorted by name): what the trainer binary was built from. */
export async function traceSourcesDigest(): Promise<string> {
  const names = (await readdir(TRACE_NATIVE_DIR)).filter((n) => /\.(cpp|h|cmake)$/.test(n)).sort();
  const hash = createHash("sha256");
  for (const name of names) {
    hash
      .update(name)
      .update("\0")
      .update(await readFile(join(TRACE_NATIVE_DIR, name)))
      .update("\0");
  }
  return hash.digest("hex");
}

/** True when the recording trainer is built from the current native sources. */
export async function hasTraceTrainerBuild(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (!(await exists(traceTrainerBinary(env), constants.X_OK))) return false;
  const stamp = await readFile(traceStampPath(env), "utf8").catch(() => "");
  return stamp.trim() === (await traceSourcesDigest());
}

export interface BuildOptions {
  env?: NodeJS.ProcessEnv;
  jobs?: number;
  log?: (line: string) => void;
  /** How long to wait for another process's build of the same directory (default 30 minutes). */
  lockTimeoutMs?: number;
}

/**
 * One build per directory at a time: a lock directory holding the owner's pid. A lock whose owner is gone is taken
 * over; a live one is waited for (polling), up to lockTimeoutMs.
 */
export async function withBuildLock<T>(dir: string, options: BuildOptions, body: () => Promise<T>): Promise<T> {
  const lock = join(dir, ".build.lock");
  const deadline = performance.now() + (options.lockTimeoutMs ?? 30 * 60_000);
  await mkdir(dir, { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const text = await readFile(join(lock, "pid"), "utf8").catch(() => "");
      const owner = /^[1-9][0-9]*$/.test(text.trim()) ? Number(text.trim()) : undefined;
      const info = await stat(lock).catch(() => undefined);
      // A lock without a pid for a minute (its owner died between making it and writing the pid, or is writing it
      // now), or whose process is gone, is stale. An empty pid file is no pid: kill(0) would ask about our own group.
      const stale = owner !== undefined ? !isAlive(owner) : (info?.mtimeMs ?? 0) < Date.now() - 60_000;
      if (stale) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (performance.now() > deadline) {
        throw new IoError(
          "JOB_TRAINER_FAILED",
          `another process (pid ${owner ?? "not yet written"}) is building in ${dir}; try again later`,
        );
      }
      options.log?.(`waiting for the llama.cpp build of process ${owner ?? "(pid not yet written)"}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Clones the source bundle if needed, configures (with the trace-trainer hook) and builds the given targets. */
async function buildTargets(targets: string[], options: BuildOptions): Promise<void> {
  const env = options.env ?? process.env;
  const dir = llamaBuildDir(env);
  const source = join(dir, "src");
  const bundle = resolve(
    fileURLToPath(new URL("../../node_modules/node-llama-cpp/llama/gitRelease.bundle", import.meta.url)),
  );
  const step = async (what: string, command: string, args: string[], cwd: string): Promise<void> => {
    options.log?.(what);
    try {
      await exec(command, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } });
    } catch (error) {
      throw new IoError("JOB_TRAINER_FAILED", `building ${targets.join(", ")}: ${what} failed: ${String(error)}`, {
        cause: error,
      });
    }
  };
  await mkdir(dir, { recursive: true });
  if (!(await exists(join(source, "CMakeLists.txt")))) {
    if (!(await exists(bundle))) {
      throw new IoError("JOB_TRAINER_FAILED", `node-llama-cpp's llama.cpp source bundle is missing (${bundle})`);
    }
    await step("cloning the llama.cpp source bundle", "git", ["clone", "--quiet", bundle, source], dir);
  }
  await step(
    "configuring llama.cpp",
    "cmake",
    [
      "-S",
      source,
      "-B",
      join(dir, "build"),
      "-DCMAKE_BUILD_TYPE=Release",
      "-DBUILD_SHARED_LIBS=OFF",
      "-DLLAMA_OPENSSL=OFF",
      "-DLLAMA_BUILD_TESTS=OFF",
      "-DLLAMA_BUILD_SERVER=OFF",
      "-DLLAMA_BUILD_TOOLS=OFF",
      "-DLLAMA_BUILD_APP=OFF",
      "-DLLAMA_BUILD_EXAMPLES=ON",
      "-DGGML_NATIVE=ON",
      "-DGGML_OPENMP=OFF",
      // Adds the provenant-trace-train target without touching the llama.cpp tree (native/provenant.cmake).
      `-DCMAKE_PROJECT_llama.cpp_INCLUDE=${join(TRACE_NATIVE_DIR, "provenant.cmake")}`,
    ],
    dir,
  );
  await step(
    `compiling ${targets.join(", ")}`,
    "cmake",
    ["--build", join(dir, "build"), "--target", ...targets, `-j${options.jobs ?? 2}`],
    dir,
  );
}

/**
 * Returns the llama-finetune path, building it first when needed (no network). Only that target: the recording
 * trainer is built by ensureTraceTrainerBuild (seconds once these libraries exist), so a problem with it can never
 * stop the untraced trainer.
 */
export async function ensureFinetuneBuild(options: BuildOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const binary = finetuneBinary(env);
  if (await hasFinetuneBuild(env)) return binary;
  await withBuildLock(llamaBuildDir(env), options, async () => {
    if (await hasFinetuneBuild(env)) return;
    await buildTargets(["llama-finetune"], options);
  });
  if (!(await hasFinetuneBuild(env))) throw new IoError("JOB_TRAINER_FAILED", `the build did not produce ${binary}`);
  return binary;
}

/** Returns the recording trainer's path, building it first when it is missing or its sources changed. */
export async function ensureTraceTrainerBuild(options: BuildOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const binary = traceTrainerBinary(env);
  if (await hasTraceTrainerBuild(env)) return binary;
  await withBuildLock(llamaBuildDir(env), options, async () => {
    if (await hasTraceTrainerBuild(env)) return;
    const digest = await traceSourcesDigest();
    await buildTargets([TRACE_TARGET], options);
    await writeFile(traceStampPath(env), digest);
  });
  if (!(await hasTraceTrainerBuild(env))) {
    throw new IoError("JOB_TRAINER_FAILED", `the build did not produce ${binary}`);
  }
  return binary;
}
