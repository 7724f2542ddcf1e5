// Building llama.cpp's fine-tune example offline from the source node-llama-cpp ships (llama/gitRelease.bundle),
// once per machine: the build lives under $PROVENANT_HOME/llama-build (default ~/.provenant/llama-build).
import { execFile } from "node:child_process";
import { access, constants, mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

import { IoError } from "../../lib/errors.ts";

const exec = promisify(execFile);

export function llamaBuildDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.PROVENANT_HOME ?? join(homedir(), ".provenant"), "llama-build");
}

export function finetuneBinary(env: NodeJS.ProcessEnv = process.env): string {
  return join(llamaBuildDir(env), "build", "bin", "llama-finetune");
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

/** Returns the llama-finetune path, building it first when needed (cmake; no network, no CURL/OpenSSL). */
export async function ensureFinetuneBuild(
  options: { env?: NodeJS.ProcessEnv; jobs?: number; log?: (line: string) => void } = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const binary = finetuneBinary(env);
  if (await hasFinetuneBuild(env)) return binary;
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
      throw new IoError("JOB_TRAINER_FAILED", `building llama-finetune: ${what} failed: ${String(error)}`, {
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
    ],
    dir,
  );
  await step(
    "compiling llama-finetune",
    "cmake",
    ["--build", join(dir, "build"), "--target", "llama-finetune", `-j${options.jobs ?? 2}`],
    dir,
  );
  if (!(await hasFinetuneBuild(env))) throw new IoError("JOB_TRAINER_FAILED", `the build did not produce ${binary}`);
  return binary;
}
