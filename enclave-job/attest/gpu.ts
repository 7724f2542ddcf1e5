// GPU evidence for the job: each GPU's SPDM report, requested with the nonce derived from the CPU report's
// REPORT_DATA (gpuNonceFor), its device certificate chain and its driver / VBIOS RIMs. Providers: `nvml` (the driver's
// libnvidia-ml.so.1 through koffi, ./gpu-nvml.ts) and `sim` (lib/gpu's simulator, development only). None of them
// verifies anything but that each report carries the nonce asked for: the verifier does the rest, with pinned roots.
import { IoError, ProvenantError, UsageError } from "../../lib/errors.ts";
import { parseGpuEvidence, type GpuArch } from "../../lib/gpu/index.ts";

export type GpuProviderName = "nvml" | "sim";

/** One GPU as the bundle carries it (DESIGN §3.3 `evidence.gpu[]`). */
export interface GpuEvidenceEntry {
  arch: GpuArch;
  /** The SPDM GET_MEASUREMENTS request ‖ response, raw. */
  evidence: Uint8Array;
  /** The device certificate chain, PEM, leaf first (what NVML returns). */
  certChainPem: string;
  /** Driver and VBIOS RIMs (SWID XML text); empty when none were bundled. */
  rims: string[];
  /** DER OCSP responses for the device and RIM chains, when collected. */
  ocsp?: Uint8Array[];
}

/**
 * What a GPU provider collected: the entries, and the confidential-computing state it saw. The state is written into
 * the job's signed statements (`runtime.gpuEvidence`), so that a verifier policy can refuse devtools mode.
 */
export interface GpuCollection {
  provider: GpuProviderName;
  /** NVML's confidential-computing environment: "prod", "sim" (NVIDIA's simulated CC) or "unavailable". */
  environment: "prod" | "sim" | "unavailable";
  /** True when the GPUs run in CC devtools mode (debugging allowed): never for production. */
  devToolsMode: boolean;
  /** The driver version NVML reports (also in every report), or null. */
  driverVersion: string | null;
  /** Device names by index (NVML's nvmlDeviceGetName), for the statements. */
  devices: string[];
  gpus: GpuEvidenceEntry[];
}

export interface GpuEvidenceProvider {
  name: GpuProviderName;
  /** Collects every GPU's evidence for `nonce` (32 bytes: gpuNonceFor(REPORT_DATA)). */
  collect(nonce: Uint8Array): Promise<GpuCollection>;
}

/** Most GPUs one bundle carries (an HGX board has 8); more is GPU_ATTESTATION_FAILED, never unbounded work. */
export const MAX_GPUS = 16;

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

/**
 * The provider relays what the GPUs answered: check, before any work is done, that every report parses and carries
 * exactly the nonce we asked for, so a stale or foreign report is never signed into a bundle (as the job checks the
 * CPU report's REPORT_DATA).
 */
export function checkCollection(collection: GpuCollection, nonce: Uint8Array, provider: string): GpuCollection {
  if (collection.gpus.length === 0) {
    throw new IoError("GPU_UNAVAILABLE", `${provider}: no GPU evidence was collected`);
  }
  if (collection.gpus.length > MAX_GPUS) {
    throw new IoError("GPU_ATTESTATION_FAILED", `${provider}: ${collection.gpus.length} GPUs, at most ${MAX_GPUS}`);
  }
  collection.gpus.forEach((gpu, i) => {
    let requestNonce: Uint8Array;
    try {
      requestNonce = parseGpuEvidence(gpu.evidence).request.nonce;
    } catch (error) {
      throw new IoError(
        "GPU_ATTESTATION_FAILED",
        `${provider}: GPU ${i}'s report is not SPDM evidence (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
    if (!Buffer.from(requestNonce).equals(Buffer.from(nonce))) {
      throw new IoError("GPU_ATTESTATION_FAILED", `${provider}: GPU ${i}'s report carries another nonce than asked`, {
        details: { gpu: i, expected: hex(nonce), actual: hex(requestNonce) },
      });
    }
  });
  return collection;
}

export interface SimGpuOptions {
  /** The simulator's clock (its certificates are dated around it); default the machine's clock at each collection. */
  now?: Date;
  /** Where the simulator keeps its keys and roots (one pair of roots per machine); default lib/snp's sim key dir. */
  keyDir?: string;
  arch?: GpuArch;
  /** How many simulated GPUs; default 1. */
  count?: number;
  /** Bundle the simulator's RIMs (default true). */
  rims?: boolean;
}

/**
 * lib/gpu's simulator as a GPU: real-layout evidence under development roots, with matching signed RIMs. A verifier
 * trusts it only when its policy lists the simulator's roots in `gpu.trustedRoots` (`provenant sim policy --gpu`).
 */
export function simGpuProvider(options: SimGpuOptions = {}): GpuEvidenceProvider {
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GPUS) {
    throw new IoError("GPU_UNAVAILABLE", `the GPU simulator makes 1 to ${MAX_GPUS} GPUs, not ${count}`);
  }
  return {
    name: "sim",
    async collect(nonce) {
      try {
        const [{ createGpuSimulator }, { defaultKeyDir }] = await Promise.all([
          import("../../lib/gpu/index.ts"),
          import("../../lib/snp/index.ts"),
        ]);
        const sim = createGpuSimulator({
          now: options.now ?? new Date(),
          keyDir: options.keyDir ?? defaultKeyDir(),
          ...(options.arch === undefined ? {} : { arch: options.arch }),
        });
        const gpus: GpuEvidenceEntry[] = [];
        for (let i = 0; i < count; i++) {
          const entry = sim.bundleEntry(nonce);
          gpus.push({
            arch: entry.arch,
            evidence: entry.evidence instanceof Uint8Array ? entry.evidence : new TextEncoder().encode(entry.evidence),
            certChainPem:
              typeof entry.certChainPem === "string"
                ? entry.certChainPem
                : Buffer.from(entry.certChainPem).toString("utf8"),
            rims:
              options.rims === false
                ? []
                : entry.rims.map((r) => (typeof r === "string" ? r : Buffer.from(r).toString("utf8"))),
          });
        }
        const collection: GpuCollection = {
          provider: "sim",
          environment: "sim",
          devToolsMode: false,
          driverVersion: sim.driverVersion,
          devices: gpus.map(() => (sim.arch === "hopper" ? "Simulated NVIDIA H100" : "Simulated NVIDIA B200")),
          gpus,
        };
        return checkCollection(collection, nonce, "GPU simulator");
      } catch (error) {
        if (error instanceof ProvenantError) throw error;
        throw new IoError("GPU_ATTESTATION_FAILED", `GPU simulator: ${String(error)}`, { cause: error });
      }
    },
  };
}

export interface GpuProviderOptions {
  /** `nvml`: the NVML library to load; default `libnvidia-ml.so.1` from the loader's path. */
  nvmlLibrary?: string;
  /** `nvml`: collect from GPUs in CC devtools mode (or NVIDIA's simulated CC environment); recorded, refusable. */
  allowDevTools?: boolean;
  /** `nvml`: `--gpu-rims` (`service`, `none` or a directory); default NVIDIA's RIM service, cached. */
  rims?: string;
  env?: NodeJS.ProcessEnv;
}

/** `--gpu-evidence nvml|sim|none`: the provider, or null for none; another name is USAGE. */
export function gpuProviderByName(name: string, options: GpuProviderOptions = {}): GpuEvidenceProvider | null {
  switch (name) {
    case "none":
      return null;
    case "sim":
      return simGpuProvider({ ...(options.rims === "none" ? { rims: false } : {}) });
    case "nvml":
      // koffi and NVML are loaded only when a job collects, so that a CPU-only job never touches native code.
      return {
        name: "nvml",
        async collect(nonce) {
          const [{ nvmlGpuProvider }, { rimSourceFor }] = await Promise.all([
            import("./gpu-nvml.ts"),
            import("./gpu-rims.ts"),
          ]);
          return nvmlGpuProvider({
            ...(options.nvmlLibrary === undefined ? {} : { libraryPath: options.nvmlLibrary }),
            allowDevTools: options.allowDevTools ?? false,
            rims: rimSourceFor(options.rims, options.env),
          }).collect(nonce);
        },
      };
    default:
      throw new UsageError(`--gpu-evidence must be nvml, sim or none, not ${JSON.stringify(name)}`);
  }
}
