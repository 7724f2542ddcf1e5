// The `nvml` GPU provider: calls the NVIDIA driver's libnvidia-ml.so.1 directly from Node through koffi (no Python,
// no nvtrust install): the confidential-computing state, then for every GPU its certificate chain and an SPDM
// attestation report over our nonce, as NVIDIA's own collectors do (nvtrust / go-nvml GetConfComputeGpuAttestationReport
// and GetConfComputeGpuCertificate). Every NVML failure is a coded error naming the function and the NVML return code.
import type Koffi from "koffi";
import type { TypeObject } from "koffi";

import { IoError, ProvenantError, type ErrorCode } from "../../lib/errors.ts";
import { parseGpuEvidence, type GpuArch } from "../../lib/gpu/index.ts";
import {
  checkCollection,
  MAX_GPUS,
  type GpuCollection,
  type GpuEvidenceEntry,
  type GpuEvidenceProvider,
} from "./gpu.ts";
import { rimIdsFor, type RimSource } from "./gpu-rims.ts";

/** The library the driver installs (NVML is always loaded by its soname, never linked). */
export const NVML_LIBRARY = "libnvidia-ml.so.1";

// Constants and struct layouts from NVIDIA's nvml.h (NVML API 12, e.g. NVIDIA/go-nvml gen/nvml/nvml.h, copied from
// cuda-nvml-dev 12.x; the CC structs appeared with driver r535):
//   typedef struct nvmlConfComputeSystemState_st { unsigned int environment; unsigned int ccFeature;
//                                                  unsigned int devToolsMode; } nvmlConfComputeSystemState_t;
//   #define NVML_GPU_CERT_CHAIN_SIZE 0x1000, NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE 0x1400
//   typedef struct nvmlConfComputeGpuCertificate_st { unsigned int certChainSize; unsigned int attestationCertChainSize;
//       unsigned char certChain[0x1000]; unsigned char attestationCertChain[0x1400]; } nvmlConfComputeGpuCertificate_t;
//   #define NVML_CC_GPU_CEC_NONCE_SIZE 0x20, NVML_CC_GPU_ATTESTATION_REPORT_SIZE 0x2000,
//           NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE 0x1000
//   typedef struct nvmlConfComputeGpuAttestationReport_st { unsigned int isCecAttestationReportPresent;
//       unsigned int attestationReportSize; unsigned int cecAttestationReportSize; unsigned char nonce[0x20];
//       unsigned char attestationReport[0x2000]; unsigned char cecAttestationReport[0x1000]; } …_t;
export const NVML_GPU_CERT_CHAIN_SIZE = 0x1000;
export const NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE = 0x1400;
export const NVML_CC_GPU_CEC_NONCE_SIZE = 0x20;
export const NVML_CC_GPU_ATTESTATION_REPORT_SIZE = 0x2000;
export const NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE = 0x1000;
/** NVML_CC_SYSTEM_FEATURE_DISABLED 0 / _ENABLED 1. */
export const NVML_CC_SYSTEM_FEATURE_ENABLED = 1;
/** NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF 0 / _ON 1. */
export const NVML_CC_SYSTEM_DEVTOOLS_MODE_ON = 1;
/** NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE 0 / _SIM 1 / _PROD 2. */
export const NVML_CC_SYSTEM_ENVIRONMENT = { 0: "unavailable", 1: "sim", 2: "prod" } as const;
/** nvmlDeviceArchitecture_t: NVML_DEVICE_ARCH_HOPPER 9, NVML_DEVICE_ARCH_BLACKWELL 10. */
export const NVML_DEVICE_ARCH: Readonly<Record<number, string>> = {
  2: "Kepler",
  3: "Maxwell",
  4: "Pascal",
  5: "Volta",
  6: "Turing",
  7: "Ampere",
  8: "Ada",
  9: "Hopper",
  10: "Blackwell",
};
/** NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE. */
const NAME_BUFFER_SIZE = 96;
const DRIVER_VERSION_BUFFER_SIZE = 80;

/** nvmlReturn_t (nvml.h `nvmlReturn_enum`): the names NVML's own docs and nvidia-smi use. */
export const NVML_RETURN_NAMES: Readonly<Record<number, string>> = {
  0: "NVML_SUCCESS",
  1: "NVML_ERROR_UNINITIALIZED",
  2: "NVML_ERROR_INVALID_ARGUMENT",
  3: "NVML_ERROR_NOT_SUPPORTED",
  4: "NVML_ERROR_NO_PERMISSION",
  5: "NVML_ERROR_ALREADY_INITIALIZED",
  6: "NVML_ERROR_NOT_FOUND",
  7: "NVML_ERROR_INSUFFICIENT_SIZE",
  8: "NVML_ERROR_INSUFFICIENT_POWER",
  9: "NVML_ERROR_DRIVER_NOT_LOADED",
  10: "NVML_ERROR_TIMEOUT",
  11: "NVML_ERROR_IRQ_ISSUE",
  12: "NVML_ERROR_LIBRARY_NOT_FOUND",
  13: "NVML_ERROR_FUNCTION_NOT_FOUND",
  14: "NVML_ERROR_CORRUPTED_INFOROM",
  15: "NVML_ERROR_GPU_IS_LOST",
  16: "NVML_ERROR_RESET_REQUIRED",
  17: "NVML_ERROR_OPERATING_SYSTEM",
  18: "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
  19: "NVML_ERROR_IN_USE",
  20: "NVML_ERROR_MEMORY",
  21: "NVML_ERROR_NO_DATA",
  22: "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED",
  23: "NVML_ERROR_INSUFFICIENT_RESOURCES",
  24: "NVML_ERROR_FREQ_NOT_SUPPORTED",
  25: "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
  26: "NVML_ERROR_DEPRECATED",
  27: "NVML_ERROR_NOT_READY",
  28: "NVML_ERROR_GPU_NOT_FOUND",
  29: "NVML_ERROR_INVALID_STATE",
  999: "NVML_ERROR_UNKNOWN",
};

export function nvmlReturnName(code: number): string {
  return NVML_RETURN_NAMES[code] ?? `NVML return ${code}`;
}

/** Return codes that mean "there is no usable NVIDIA driver or GPU here", not "a call failed". */
const UNAVAILABLE_RETURNS = new Set([9, 12, 18, 28]);

/** A failed NVML call as a coded error: `code` unless the return says the driver or GPU is absent. */
function nvmlFailure(fn: string, ret: number, code: ErrorCode, what: string): IoError {
  const chosen: ErrorCode = UNAVAILABLE_RETURNS.has(ret) ? "GPU_UNAVAILABLE" : code;
  return new IoError(chosen, `NVML ${fn} failed with ${nvmlReturnName(ret)} (${ret}): ${what}`, {
    details: { function: fn, nvmlReturn: ret, nvmlReturnName: nvmlReturnName(ret) },
  });
}

export interface CcState {
  environment: "prod" | "sim" | "unavailable";
  ccFeature: boolean;
  devToolsMode: boolean;
}

/** The NVML entry points the provider needs, each returning the raw nvmlReturn_t. */
export interface NvmlBinding {
  readonly path: string;
  init(): number;
  shutdown(): number;
  ccState(out: CcState[]): number;
  deviceCount(out: number[]): number;
  handle(index: number, out: unknown[]): number;
  architecture(device: unknown, out: number[]): number;
  name(device: unknown): string | null;
  driverVersion(): string | null;
  /** `out[0]`: the attestation certificate chain bytes (PEM text). */
  certificate(device: unknown, out: Uint8Array[]): number;
  /** `out[0]`: the SPDM report bytes for `nonce`. */
  attestationReport(device: unknown, nonce: Uint8Array, out: Uint8Array[]): number;
}

interface KoffiTypes {
  koffi: typeof Koffi;
  state: TypeObject;
  certificate: TypeObject;
  report: TypeObject;
  device: TypeObject;
}

let types: KoffiTypes | undefined;

/** koffi and the three CC structs, declared once per process (koffi types live for the process). */
async function koffiTypes(): Promise<KoffiTypes> {
  if (types !== undefined) return types;
  const koffi = (await import("koffi")).default;
  const u8 = (n: number) => koffi.array("uint8_t", n, "Typed");
  types = {
    koffi,
    state: koffi.struct({ environment: "unsigned int", ccFeature: "unsigned int", devToolsMode: "unsigned int" }),
    certificate: koffi.struct({
      certChainSize: "unsigned int",
      attestationCertChainSize: "unsigned int",
      certChain: u8(NVML_GPU_CERT_CHAIN_SIZE),
      attestationCertChain: u8(NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE),
    }),
    report: koffi.struct({
      isCecAttestationReportPresent: "unsigned int",
      attestationReportSize: "unsigned int",
      cecAttestationReportSize: "unsigned int",
      nonce: u8(NVML_CC_GPU_CEC_NONCE_SIZE),
      attestationReport: u8(NVML_CC_GPU_ATTESTATION_REPORT_SIZE),
      cecAttestationReport: u8(NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE),
    }),
    device: koffi.pointer(koffi.opaque()),
  };
  return types;
}

function cString(buffer: Uint8Array): string {
  const end = buffer.indexOf(0);
  return Buffer.from(buffer.subarray(0, end === -1 ? buffer.length : end)).toString("utf8");
}

/**
 * Loads NVML (default `libnvidia-ml.so.1` from the dynamic loader's path) and declares the entry points. A missing
 * library, or one without the confidential-computing functions (a driver older than r535), is GPU_UNAVAILABLE.
 */
export async function openNvml(libraryPath: string = NVML_LIBRARY): Promise<NvmlBinding> {
  let t: KoffiTypes;
  try {
    t = await koffiTypes();
  } catch (error) {
    throw new IoError("GPU_UNAVAILABLE", `koffi (the FFI library) cannot be loaded: ${String(error)}`, {
      cause: error,
    });
  }
  const { koffi } = t;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(libraryPath);
  } catch (error) {
    throw new IoError(
      "GPU_UNAVAILABLE",
      `NVML (${libraryPath}) cannot be loaded: no NVIDIA driver here (${error instanceof Error ? error.message : String(error)}); ` +
        "GPU evidence needs the NVIDIA driver r535 or later in the confidential VM, or --gpu-evidence sim for development",
      { cause: error, details: { library: libraryPath } },
    );
  }
  type Signature = [result: string, args: Parameters<typeof koffi.out>[0][]];
  const declare = (prototype: string, ...signature: Signature | []) => {
    try {
      return signature.length === 0 ? lib.func(prototype) : lib.func(prototype, signature[0], signature[1]);
    } catch (error) {
      throw new IoError(
        "GPU_UNAVAILABLE",
        `NVML ${libraryPath} has no ${prototype} (a driver without confidential computing, older than r535): ${String(error)}`,
        { cause: error, details: { library: libraryPath, function: prototype } },
      );
    }
  };
  const { state, certificate, report, device } = t;
  const nvmlInit = declare("int nvmlInit_v2(void)");
  const nvmlShutdown = declare("int nvmlShutdown(void)");
  const getCcState = declare("nvmlSystemGetConfComputeState", "int", [koffi.out(koffi.pointer(state))]);
  const getCount = declare("int nvmlDeviceGetCount_v2(_Out_ unsigned int *count)");
  const getHandle = declare("nvmlDeviceGetHandleByIndex_v2", "int", ["unsigned int", koffi.out(koffi.pointer(device))]);
  const getArch = declare("nvmlDeviceGetArchitecture", "int", [device, koffi.out(koffi.pointer("unsigned int"))]);
  const getCertificate = declare("nvmlDeviceGetConfComputeGpuCertificate", "int", [
    device,
    koffi.out(koffi.pointer(certificate)),
  ]);
  const getReport = declare("nvmlDeviceGetConfComputeGpuAttestationReport", "int", [
    device,
    koffi.inout(koffi.pointer(report)),
  ]);
  // Names and the driver version only label the statements: optional, never fatal.
  const optional = (prototype: string, ...signature: Signature | []) => {
    try {
      return declare(prototype, ...signature);
    } catch {
      return undefined;
    }
  };
  const getName = optional("nvmlDeviceGetName", "int", [device, "uint8_t *", "unsigned int"]);
  const getDriverVersion = optional("int nvmlSystemGetDriverVersion(uint8_t *version, unsigned int length)");
  return {
    path: libraryPath,
    init: () => nvmlInit() as number,
    shutdown: () => nvmlShutdown() as number,
    ccState(out) {
      const raw: Record<string, number> = {};
      const ret = getCcState(raw) as number;
      if (ret === 0) {
        out[0] = {
          environment: NVML_CC_SYSTEM_ENVIRONMENT[(raw.environment ?? 0) as 0 | 1 | 2] ?? "unavailable",
          ccFeature: raw.ccFeature === NVML_CC_SYSTEM_FEATURE_ENABLED,
          devToolsMode: raw.devToolsMode === NVML_CC_SYSTEM_DEVTOOLS_MODE_ON,
        };
      }
      return ret;
    },
    deviceCount(out) {
      const count = [0];
      const ret = getCount(count) as number;
      out[0] = count[0]!;
      return ret;
    },
    handle(index, out) {
      const handle: unknown[] = [null];
      const ret = getHandle(index, handle) as number;
      out[0] = handle[0];
      return ret;
    },
    architecture(dev, out) {
      const arch = [0];
      const ret = getArch(dev, arch) as number;
      out[0] = arch[0]!;
      return ret;
    },
    name(dev) {
      if (getName === undefined) return null;
      const buffer = Buffer.alloc(NAME_BUFFER_SIZE);
      return (getName(dev, buffer, buffer.length) as number) === 0 ? cString(buffer) : null;
    },
    driverVersion() {
      if (getDriverVersion === undefined) return null;
      const buffer = Buffer.alloc(DRIVER_VERSION_BUFFER_SIZE);
      return (getDriverVersion(buffer, buffer.length) as number) === 0 ? cString(buffer) : null;
    },
    certificate(dev, out) {
      const raw: { attestationCertChainSize?: number; attestationCertChain?: Uint8Array } = {};
      const ret = getCertificate(dev, raw) as number;
      if (ret !== 0) return ret;
      const size = raw.attestationCertChainSize ?? 0;
      if (size === 0 || size > NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE || raw.attestationCertChain === undefined) {
        throw new IoError(
          "GPU_ATTESTATION_FAILED",
          `NVML nvmlDeviceGetConfComputeGpuCertificate gave a ${size}-byte attestation chain (1 to ${NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE})`,
        );
      }
      out[0] = new Uint8Array(raw.attestationCertChain.subarray(0, size));
      return ret;
    },
    attestationReport(dev, nonce, out) {
      // In/out: NVML reads `nonce` and fills the sizes and the report (nvtrust's pynvml sets the nonce the same way).
      const raw: Record<string, unknown> = {
        isCecAttestationReportPresent: 0,
        attestationReportSize: 0,
        cecAttestationReportSize: 0,
        nonce: new Uint8Array(nonce),
        attestationReport: new Uint8Array(NVML_CC_GPU_ATTESTATION_REPORT_SIZE),
        cecAttestationReport: new Uint8Array(NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE),
      };
      const ret = getReport(dev, raw) as number;
      if (ret !== 0) return ret;
      const size = raw.attestationReportSize as number;
      if (!Number.isInteger(size) || size <= 0 || size > NVML_CC_GPU_ATTESTATION_REPORT_SIZE) {
        throw new IoError(
          "GPU_ATTESTATION_FAILED",
          `NVML nvmlDeviceGetConfComputeGpuAttestationReport gave a ${size}-byte report (1 to ${NVML_CC_GPU_ATTESTATION_REPORT_SIZE})`,
        );
      }
      out[0] = new Uint8Array((raw.attestationReport as Uint8Array).subarray(0, size));
      return ret;
    },
  };
}

export interface NvmlProviderOptions {
  /** The NVML library to load; default `libnvidia-ml.so.1`. Tests point it at a fake NVML they build. */
  libraryPath?: string;
  /**
   * Collect from GPUs in CC devtools mode or NVIDIA's simulated CC environment. Default false: refused
   * (GPU_CC_OFF). When allowed, the mode is written into the signed statements, where a policy refuses it.
   */
  allowDevTools?: boolean;
  /** Where the driver and VBIOS RIMs come from; null bundles none. */
  rims: RimSource | null;
}

const ARCH_OF: Readonly<Record<number, GpuArch>> = { 9: "hopper", 10: "blackwell" };

function pemText(bytes: Uint8Array, index: number): string {
  const text = Buffer.from(bytes).toString("latin1").replace(/\0+$/, "");
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new IoError("GPU_ATTESTATION_FAILED", `NVML gave GPU ${index} a certificate chain that is not PEM`);
  }
  return text;
}

/**
 * Collects every GPU's evidence through NVML: nvmlInit_v2; nvmlSystemGetConfComputeState (CC must be on; devtools
 * mode or the simulated environment only when allowed); nvmlDeviceGetCount_v2; per GPU nvmlDeviceGetHandleByIndex_v2,
 * nvmlDeviceGetArchitecture (Hopper or Blackwell), nvmlDeviceGetConfComputeGpuCertificate (the attestation chain)
 * and nvmlDeviceGetConfComputeGpuAttestationReport with our nonce; then the RIMs; nvmlShutdown always.
 */
export function nvmlGpuProvider(options: NvmlProviderOptions): GpuEvidenceProvider {
  return {
    name: "nvml",
    async collect(nonce) {
      if (nonce.length !== NVML_CC_GPU_CEC_NONCE_SIZE) {
        throw new IoError("GPU_ATTESTATION_FAILED", `the GPU nonce must be ${NVML_CC_GPU_CEC_NONCE_SIZE} bytes`);
      }
      const nvml = await openNvml(options.libraryPath);
      const initRet = nvml.init();
      if (initRet !== 0) throw nvmlFailure("nvmlInit_v2", initRet, "GPU_UNAVAILABLE", "NVML did not start");
      let collection: GpuCollection;
      try {
        collection = collectWith(nvml, nonce, options.allowDevTools ?? false);
      } finally {
        nvml.shutdown();
      }
      // Every report must parse and carry our nonce before its RIMs are named from it or fetched for it.
      checkCollection(collection, nonce, "NVML");
      if (options.rims !== null) {
        for (const [i, gpu] of collection.gpus.entries()) {
          const ids = rimIdsFor(parseGpuEvidence(gpu.evidence), gpu.arch);
          try {
            gpu.rims = [await options.rims.get(ids.driver), await options.rims.get(ids.vbios)];
          } catch (error) {
            if (error instanceof ProvenantError) {
              throw new IoError(
                "GPU_ATTESTATION_FAILED",
                `GPU ${i}: ${error.message} (from ${options.rims.description})`,
                {
                  cause: error,
                  details: { gpu: i, ...ids },
                },
              );
            }
            throw error;
          }
        }
      }
      return collection;
    },
  };
}

function collectWith(nvml: NvmlBinding, nonce: Uint8Array, allowDevTools: boolean): GpuCollection {
  const stateOut: CcState[] = [];
  const stateRet = nvml.ccState(stateOut);
  if (stateRet !== 0) {
    throw nvmlFailure(
      "nvmlSystemGetConfComputeState",
      stateRet,
      stateRet === 3 || stateRet === 13 ? "GPU_CC_OFF" : "GPU_ATTESTATION_FAILED",
      "the confidential-computing state cannot be read (this driver or GPU has no CC support)",
    );
  }
  const cc = stateOut[0]!;
  if (!cc.ccFeature) {
    throw new IoError(
      "GPU_CC_OFF",
      "the GPUs are not in confidential-computing mode (nvmlSystemGetConfComputeState: ccFeature off): turn CC on " +
        "(nvidia_gpu_tools.py --set-cc-mode=on, then reset the GPU) and run the job in the confidential VM",
      { details: { ...cc } },
    );
  }
  if ((cc.devToolsMode || cc.environment !== "prod") && !allowDevTools) {
    throw new IoError(
      "GPU_CC_OFF",
      `the GPUs run CC in ${cc.devToolsMode ? "devtools mode" : `the ${cc.environment} environment`}, which allows ` +
        "debugging: refused for evidence unless --gpu-devtools is given (it is then recorded in the signed " +
        "statements and a production policy refuses the bundle)",
      { details: { ...cc } },
    );
  }
  const countOut: number[] = [];
  const countRet = nvml.deviceCount(countOut);
  if (countRet !== 0) throw nvmlFailure("nvmlDeviceGetCount_v2", countRet, "GPU_ATTESTATION_FAILED", "no GPU count");
  const count = countOut[0] ?? 0;
  if (count === 0) throw new IoError("GPU_UNAVAILABLE", "NVML sees no GPU (is the GPU passed through to this VM?)");
  if (count > MAX_GPUS) {
    throw new IoError("GPU_ATTESTATION_FAILED", `NVML reports ${count} GPUs; a bundle carries at most ${MAX_GPUS}`);
  }
  const gpus: GpuEvidenceEntry[] = [];
  const devices: string[] = [];
  for (let i = 0; i < count; i++) {
    const handleOut: unknown[] = [];
    const handleRet = nvml.handle(i, handleOut);
    if (handleRet !== 0) {
      throw nvmlFailure("nvmlDeviceGetHandleByIndex_v2", handleRet, "GPU_ATTESTATION_FAILED", `GPU ${i}`);
    }
    const dev = handleOut[0];
    const archOut: number[] = [];
    const archRet = nvml.architecture(dev, archOut);
    if (archRet !== 0) throw nvmlFailure("nvmlDeviceGetArchitecture", archRet, "GPU_ATTESTATION_FAILED", `GPU ${i}`);
    const arch = ARCH_OF[archOut[0]!];
    if (arch === undefined) {
      throw new IoError(
        "GPU_UNAVAILABLE",
        `GPU ${i} is ${NVML_DEVICE_ARCH[archOut[0]!] ?? `architecture ${archOut[0]}`}: only Hopper and Blackwell GPUs attest in CC mode`,
      );
    }
    const certOut: Uint8Array[] = [];
    const certRet = nvml.certificate(dev, certOut);
    if (certRet !== 0) {
      throw nvmlFailure("nvmlDeviceGetConfComputeGpuCertificate", certRet, "GPU_ATTESTATION_FAILED", `GPU ${i}`);
    }
    const reportOut: Uint8Array[] = [];
    const reportRet = nvml.attestationReport(dev, nonce, reportOut);
    if (reportRet !== 0) {
      throw nvmlFailure(
        "nvmlDeviceGetConfComputeGpuAttestationReport",
        reportRet,
        "GPU_ATTESTATION_FAILED",
        `GPU ${i}`,
      );
    }
    gpus.push({ arch, evidence: reportOut[0]!, certChainPem: pemText(certOut[0]!, i), rims: [] });
    devices.push(nvml.name(dev) ?? `GPU ${i}`);
  }
  return {
    provider: "nvml",
    environment: cc.environment,
    devToolsMode: cc.devToolsMode,
    driverVersion: nvml.driverVersion(),
    devices,
    gpus,
  };
}

/**
 * The driver version and GPU names, for the statements of a `--gpu` run (no CC requirement); null when NVML is absent
 * or does not start. Never throws.
 */
export async function nvmlRuntimeInfo(
  libraryPath?: string,
): Promise<{ driverVersion: string | null; devices: string[] } | null> {
  let nvml: NvmlBinding;
  try {
    nvml = await openNvml(libraryPath);
  } catch {
    return null;
  }
  if (nvml.init() !== 0) return null;
  try {
    const count: number[] = [];
    const devices: string[] = [];
    if (nvml.deviceCount(count) === 0) {
      for (let i = 0; i < Math.min(count[0] ?? 0, MAX_GPUS); i++) {
        const handle: unknown[] = [];
        if (nvml.handle(i, handle) === 0) devices.push(nvml.name(handle[0]) ?? `GPU ${i}`);
      }
    }
    return { driverVersion: nvml.driverVersion(), devices };
  } catch {
    return null;
  } finally {
    nvml.shutdown();
  }
}
