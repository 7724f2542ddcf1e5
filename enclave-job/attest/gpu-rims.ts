// NVIDIA Reference Integrity Manifests for the GPUs a job attests: the driver and VBIOS RIM ids named as nvtrust
// names them, read from a local directory or fetched from NVIDIA's RIM service (cached on disk, bounded in size and
// time). Nothing here verifies a RIM: the verifier does (lib/gpu rim.ts), against NVIDIA's pinned RIM root.
import { createHash } from "node:crypto";
import { mkdir, open, rename, writeFile, type FileHandle } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

import { IoError } from "../../lib/errors.ts";
import type { GpuArch, GpuEvidence } from "../../lib/gpu/index.ts";

/** NVIDIA's RIM service (nvtrust local_gpu_verifier config.py RIM_SERVICE_BASE_URL); `<base>/<id>` returns JSON. */
export const NVIDIA_RIM_SERVICE = "https://rim.attestation.nvidia.com/v1/rim/";
/** A RIM is a SWID tag of about 60 KiB; the verifier reads at most 1 MiB (lib/gpu rim.ts), so does the job. */
export const MAX_RIM_BYTES = 1024 * 1024;
/** The service wraps the XML in base64 inside JSON: 4/3 of the RIM plus a little. */
const MAX_RESPONSE_BYTES = 2 * MAX_RIM_BYTES;
const RIM_ID = /^NV_[A-Z0-9_.]{1,120}$/;

export interface RimIds {
  driver: string;
  vbios: string;
}

/**
 * The RIM ids of one GPU's report, as nvtrust builds them (cc_admin_utils.py, get_vbios_rim_file_id /
 * get_driver_rim_file_id; NVIDIA attestation SDK get_driver_rim_id): driver `NV_GPU_DRIVER_GH100_<driver>` on Hopper
 * and `NV_GPU_CC_DRIVER_GB100_<driver>` on Blackwell (the SDK's prefix when the report has no CHIP_INFO field);
 * VBIOS `NV_GPU_VBIOS_<project>_<project sku>_<chip sku>_<VBIOS version without dots>`, upper case.
 */
export function rimIdsFor(evidence: GpuEvidence, arch: GpuArch): RimIds {
  const { project, projectSku, chipSku } = evidence;
  if (project === undefined || projectSku === undefined || chipSku === undefined) {
    throw new IoError(
      "GPU_ATTESTATION_FAILED",
      "the GPU report names no PROJECT, PROJECT_SKU or CHIP_SKU, so its VBIOS RIM cannot be named",
    );
  }
  const driver = `${arch === "hopper" ? "NV_GPU_DRIVER_GH100_" : "NV_GPU_CC_DRIVER_GB100_"}${evidence.driverVersion}`;
  const vbios =
    `NV_GPU_VBIOS_${project}_${projectSku}_${chipSku}_${evidence.vbiosVersion.replaceAll(".", "")}`.toUpperCase();
  for (const id of [driver, vbios]) {
    if (!RIM_ID.test(id)) throw new IoError("GPU_ATTESTATION_FAILED", `the GPU report gives an unusable RIM id ${id}`);
  }
  return { driver, vbios };
}

/** Where a job's RIMs come from. */
export interface RimSource {
  /** A short description for messages, e.g. "NVIDIA's RIM service (cache ~/.provenant/rims)". */
  readonly description: string;
  /** The RIM (SWID XML text) with this id; GPU_ATTESTATION_FAILED when it cannot be had. */
  get(id: string): Promise<string>;
}

function checkXml(bytes: Uint8Array, id: string, where: string): string {
  if (bytes.length === 0 || bytes.length > MAX_RIM_BYTES) {
    throw new IoError(
      "GPU_ATTESTATION_FAILED",
      `RIM ${id} from ${where} is ${bytes.length} bytes (1 to ${MAX_RIM_BYTES})`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new IoError("GPU_ATTESTATION_FAILED", `RIM ${id} from ${where} is not UTF-8`, { cause: error });
  }
  if (!text.includes("SoftwareIdentity")) {
    throw new IoError("GPU_ATTESTATION_FAILED", `RIM ${id} from ${where} is not a SWID tag`);
  }
  return text;
}

/** A RIM file, undefined when absent; one over MAX_RIM_BYTES is refused from its size, before it is read. */
async function readBounded(path: string): Promise<Uint8Array | undefined> {
  let file: FileHandle;
  try {
    file = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const { size } = await file.stat();
    if (size > MAX_RIM_BYTES) {
      throw new IoError("GPU_ATTESTATION_FAILED", `${path} is ${size} bytes, over a RIM's ${MAX_RIM_BYTES}`);
    }
    return new Uint8Array(await file.readFile());
  } finally {
    await file.close();
  }
}

/**
 * RIMs kept in a directory, as `<id>.xml` or `<id>.swidtag` (NVIDIA's file names) or `<id>`: for a VM without
 * network access, filled beforehand from the RIM service or NVIDIA's release.
 */
export function directoryRimSource(dir: string): RimSource {
  return {
    description: `the RIM directory ${dir}`,
    async get(id) {
      if (!RIM_ID.test(id)) throw new IoError("GPU_ATTESTATION_FAILED", `not a RIM id: ${id}`);
      for (const name of [`${id}.xml`, `${id}.swidtag`, id]) {
        let bytes: Uint8Array | undefined;
        try {
          bytes = await readBounded(join(dir, name));
        } catch (error) {
          if (error instanceof IoError) throw error;
          throw new IoError("GPU_ATTESTATION_FAILED", `cannot read ${join(dir, name)}: ${String(error)}`, {
            cause: error,
          });
        }
        if (bytes !== undefined) return checkXml(bytes, id, join(dir, name));
      }
      throw new IoError(
        "GPU_ATTESTATION_FAILED",
        `no RIM ${id} in ${dir} (as ${id}.xml or ${id}.swidtag): fetch it from ${NVIDIA_RIM_SERVICE}${id}`,
        { details: { id, dir } },
      );
    },
  };
}

export interface ServiceRimOptions {
  /** Base URL ending in `/`; default NVIDIA's. */
  baseUrl?: string;
  /** Where fetched RIMs are kept (`<id>.xml`); default `$PROVENANT_HOME/rims`. */
  cacheDir?: string;
  /** Per request; default 15 s. */
  timeoutMs?: number;
  /** The fetch to use (tests inject one); default the global fetch. */
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

export function defaultRimCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.PROVENANT_HOME;
  return join(home !== undefined && home !== "" ? home : join(homedir(), ".provenant"), "rims");
}

/** Reads a response body up to `limit` bytes; more is GPU_ATTESTATION_FAILED without reading the rest. */
async function boundedBody(response: Response, limit: number, what: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > limit) {
    await response.body?.cancel().catch(() => {});
    throw new IoError("GPU_ATTESTATION_FAILED", `${what}: the response is ${declared} bytes, over ${limit}`);
  }
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new IoError("GPU_ATTESTATION_FAILED", `${what}: the response is over ${limit} bytes`);
    }
    parts.push(value);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * NVIDIA's RIM service (`GET <base><id>` → `{"id", "rim": base64 SWID XML, "sha256"}`, as nvtrust's
 * rim/__init__.py fetch_rim_file reads it), each RIM cached as `<cacheDir>/<id>.xml` and read from there first.
 * Bounded: a time limit per request, 2 MiB per response, 1 MiB per RIM; the `sha256` the service names must match.
 */
export function serviceRimSource(options: ServiceRimOptions = {}): RimSource {
  const baseUrl = options.baseUrl ?? NVIDIA_RIM_SERVICE;
  const cacheDir = options.cacheDir ?? defaultRimCacheDir(options.env);
  const timeoutMs = options.timeoutMs ?? 15_000;
  const doFetch = options.fetch ?? fetch;
  return {
    description: `NVIDIA's RIM service ${baseUrl} (cache ${cacheDir})`,
    async get(id) {
      if (!RIM_ID.test(id)) throw new IoError("GPU_ATTESTATION_FAILED", `not a RIM id: ${id}`);
      const cachePath = join(cacheDir, `${id}.xml`);
      const cached = await readBounded(cachePath).catch(() => undefined);
      if (cached !== undefined) return checkXml(cached, id, cachePath);
      const url = `${baseUrl}${encodeURIComponent(id)}`;
      let body: Uint8Array;
      try {
        const response = await doFetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
        if (!response.ok) {
          await response.body?.cancel().catch(() => {});
          throw new IoError("GPU_ATTESTATION_FAILED", `${url} answered HTTP ${response.status}`, {
            details: { id, status: response.status },
          });
        }
        body = await boundedBody(response, MAX_RESPONSE_BYTES, url);
      } catch (error) {
        if (error instanceof IoError) throw error;
        throw new IoError(
          "GPU_ATTESTATION_FAILED",
          `cannot fetch RIM ${id} from ${url} (${error instanceof Error ? error.message : String(error)}); ` +
            "without network, pass --gpu-rims <dir> with the RIMs in it",
          { cause: error, details: { id } },
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(body).toString("utf8"));
      } catch (error) {
        throw new IoError("GPU_ATTESTATION_FAILED", `${url} did not answer JSON`, { cause: error });
      }
      const record = json as { rim?: unknown; sha256?: unknown } | null;
      if (record === null || typeof record !== "object" || typeof record.rim !== "string") {
        throw new IoError("GPU_ATTESTATION_FAILED", `${url} answered no "rim" field`);
      }
      const xmlBytes = new Uint8Array(Buffer.from(record.rim, "base64"));
      const xml = checkXml(xmlBytes, id, url);
      if (typeof record.sha256 === "string") {
        const actual = createHash("sha256").update(xmlBytes).digest("hex");
        if (actual !== record.sha256.toLowerCase()) {
          throw new IoError("GPU_ATTESTATION_FAILED", `RIM ${id} from ${url} does not have the SHA-256 it names`, {
            details: { expected: record.sha256, actual },
          });
        }
      }
      // Cached through a temporary file and a rename, so a reader never sees half a RIM.
      try {
        await mkdir(cacheDir, { recursive: true });
        const temp = `${cachePath}.${process.pid}.${Date.now()}.tmp`;
        await writeFile(temp, xmlBytes);
        await rename(temp, cachePath);
      } catch {
        // A cache that cannot be written only costs a fetch next time.
      }
      return xml;
    },
  };
}

/** `--gpu-rims`: `none` (bundle no RIMs), `service` (NVIDIA's, cached), or a directory. */
export function rimSourceFor(spec: string | undefined, env: NodeJS.ProcessEnv = process.env): RimSource | null {
  if (spec === "none") return null;
  if (spec === undefined || spec === "service") return serviceRimSource({ env });
  return directoryRimSource(spec);
}
