// Loading models with node-llama-cpp for the job: CPU unless asked, an explicit thread count (the library's
// default is very slow on small machines), a time limit on loading so that a bad file never hangs the job,
// and every failure mapped to a coded error (JOB_MODEL_UNREADABLE, JOB_MODEL_LOAD_FAILED).
import { access, constants, open } from "node:fs/promises";

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel } from "node-llama-cpp";

import { IoError, ProvenantError } from "../lib/errors.ts";

export interface RuntimeOptions {
  /** Run on CUDA (node-llama-cpp's CUDA build, `npm run gpu:enable`), or fail with CUDA_UNAVAILABLE; default CPU. */
  gpu?: boolean;
  threads?: number;
  /** Milliseconds before a model load is abandoned; default 120 s. */
  loadTimeoutMs?: number;
}

export interface LoadedModel {
  llama: Llama;
  model: LlamaModel;
  threads: number;
  createContext(options?: { contextSize?: number; adapter?: string; sequences?: number }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}

const llamas = new Map<string, Promise<Llama>>();

/** How to make CUDA available, for every CUDA_UNAVAILABLE message. */
const CUDA_HINT =
  "on a machine with an NVIDIA GPU and driver, install node-llama-cpp's CUDA build once with `npm run gpu:enable` " +
  "(docs/gpu.md); without --gpu the job runs on the CPU";

/**
 * node-llama-cpp on CUDA, or CUDA_UNAVAILABLE. `build: "never"`: a missing prebuilt CUDA binary is an error at once,
 * never a source build; and a binary that loads but did not get CUDA (no GPU, no driver) is refused too, so `--gpu`
 * never silently runs on the CPU.
 */
async function cudaLlama(): Promise<Llama> {
  let llama: Llama;
  try {
    llama = await getLlama({ gpu: "cuda", build: "never", logLevel: LlamaLogLevel.error });
  } catch (error) {
    throw new IoError(
      "CUDA_UNAVAILABLE",
      `--gpu: node-llama-cpp cannot run on CUDA here (${error instanceof Error ? error.message : String(error)}); ${CUDA_HINT}`,
      { cause: error },
    );
  }
  if (llama.gpu !== "cuda") {
    await llama.dispose().catch(() => {});
    throw new IoError(
      "CUDA_UNAVAILABLE",
      `--gpu: node-llama-cpp loaded ${String(llama.gpu)} instead of CUDA; ${CUDA_HINT}`,
    );
  }
  return llama;
}

/**
 * One Llama instance per process and backend: node-llama-cpp binds the native library once. `gpu` means CUDA and
 * fails with CUDA_UNAVAILABLE when it is not there (a failed attempt is not cached, so it is tried again next time).
 */
export function sharedLlama(gpu: boolean): Promise<Llama> {
  const key = gpu ? "cuda" : "cpu";
  let llama = llamas.get(key);
  if (llama === undefined) {
    llama = gpu ? cudaLlama() : getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
    llamas.set(key, llama);
    llama.catch(() => llamas.delete(key));
  }
  return llama;
}

/** The backend a job ran on and its GPUs (CUDA device names from node-llama-cpp), for the statements' runtime. */
export async function llamaRuntime(llama: Llama): Promise<{ backend: "cpu" | "cuda"; devices: string[] }> {
  if (llama.gpu !== "cuda") return { backend: "cpu", devices: [] };
  const names = await llama.getGpuDeviceNames().catch(() => [] as string[]);
  return { backend: "cuda", devices: names.slice(0, 16).map((n) => n.slice(0, 256)) };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new IoError("JOB_MODEL_LOAD_FAILED", `${what} did not finish within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Checks a model file is readable before native code touches it, so the error names the file. */
export async function assertReadable(path: string, what = "model"): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    throw new IoError("JOB_MODEL_UNREADABLE", `${what} ${path} is missing or unreadable`, { cause: error });
  }
}

/**
 * Reads a GGUF header (magic, version, tensor and key/value counts; docs/gguf.md) and refuses counts that the file
 * cannot hold. node-llama-cpp's reader trusts them, and a corrupt count makes it allocate without bound, which no
 * timeout can interrupt; this check keeps a bad file from hanging the job.
 */
export async function assertPlausibleGguf(path: string): Promise<void> {
  const file = await open(path, "r").catch((error: unknown) => {
    throw new IoError("JOB_MODEL_UNREADABLE", `model ${path} is missing or unreadable`, { cause: error });
  });
  try {
    const { size } = await file.stat();
    const header = Buffer.alloc(24);
    const { bytesRead } = await file.read(header, 0, 24, 0);
    const fail = (why: string): never => {
      throw new IoError("JOB_MODEL_LOAD_FAILED", `${path} is not a loadable GGUF model: ${why}`);
    };
    if (bytesRead < 24 || header.toString("latin1", 0, 4) !== "GGUF") fail("no GGUF magic");
    const version = header.readUInt32LE(4);
    if (version !== 2 && version !== 3) fail(`unsupported GGUF version ${version}`);
    const tensors = header.readBigUInt64LE(8);
    const kvs = header.readBigUInt64LE(16);
    // A tensor info takes at least 8 (name length) + 4 + 8 + 4 + 8 bytes; a key/value at least 8 + 4 + 1.
    if (tensors * 32n + kvs * 13n > BigInt(size))
      fail(`${tensors} tensors and ${kvs} keys do not fit in ${size} bytes`);
  } finally {
    await file.close();
  }
}

export async function loadModel(path: string, options: RuntimeOptions = {}): Promise<LoadedModel> {
  await assertReadable(path);
  await assertPlausibleGguf(path);
  const threads = options.threads ?? 2;
  const timeoutMs = options.loadTimeoutMs ?? 120_000;
  const llama = await sharedLlama(options.gpu ?? false);
  let model: LlamaModel;
  try {
    model = await withTimeout(llama.loadModel({ modelPath: path }), timeoutMs, `loading ${path}`);
  } catch (error) {
    if (error instanceof ProvenantError) throw error;
    throw new IoError("JOB_MODEL_LOAD_FAILED", `node-llama-cpp could not load ${path}: ${String(error)}`, {
      cause: error,
    });
  }
  return {
    llama,
    model,
    threads,
    async createContext(contextOptions = {}) {
      if (contextOptions.adapter !== undefined) {
        await assertReadable(contextOptions.adapter, "adapter");
        await assertPlausibleGguf(contextOptions.adapter);
      }
      try {
        return await withTimeout(
          model.createContext({
            threads,
            contextSize: contextOptions.contextSize ?? 1024,
            sequences: contextOptions.sequences ?? 1,
            ...(contextOptions.adapter === undefined
              ? {}
              : { lora: { adapters: [{ filePath: contextOptions.adapter }] } }),
          }),
          timeoutMs,
          `creating a context for ${path}`,
        );
      } catch (error) {
        if (error instanceof ProvenantError) throw error;
        throw new IoError("JOB_MODEL_LOAD_FAILED", `could not create a context for ${path}: ${String(error)}`, {
          cause: error,
        });
      }
    },
    async dispose() {
      await model.dispose();
    },
  };
}
