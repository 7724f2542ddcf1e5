// What a record attests, the I/O edge: fetches a record's bundle, its verdict and the policy that admitted it from a
// verifier's HTTP API (GET /bundles?manifest=, /bundles/:digest/bundle, /bundles/:digest, /policies/:digest), every
// answer bounded in size and time, and hands the bytes to details-core, which checks them against the onchain record
// before anything is shown. Browser-safe (fetch only): `provenant lookup --verifier` and the explorer page use it.
import { MAX_BUNDLE_BYTES } from "../../lib/bundle/core.ts";
import { IoError, ProvenantError } from "../../lib/errors.ts";
import {
  checkRecordBundle,
  describeRecord,
  MAX_POLICY_BYTES,
  readPolicyDocument,
  type AttestedBundle,
  type PolicyView,
  type RecordDetails,
  type RecordFacts,
  type VerdictGpu,
} from "./details-core.ts";

export * from "./details-core.ts";

/** Default time for each request to the verifier. */
export const DEFAULT_VERIFIER_TIMEOUT_MS = 10_000;
/** Largest JSON answer read from the verifier's list and verdict endpoints. */
export const MAX_VERIFIER_JSON_BYTES = 1024 * 1024;

export interface VerifierOptions {
  /** The verifier's HTTP API, e.g. http://127.0.0.1:8780 (a trailing slash is fine; a path prefix is kept). */
  verifierUrl: string;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Largest bundle read (default 16 MiB, the format's own limit). */
  maxBundleBytes?: number;
}

function unavailable(message: string, cause?: unknown): IoError {
  return new IoError("VERIFIER_UNAVAILABLE", message, cause === undefined ? {} : { cause });
}

/** The verifier URL with one trailing slash, so that relative paths keep any prefix ("/verifier/"). */
function baseOf(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

/**
 * GET `path` from the verifier: 404 is `null`; any other failure (unreachable, timeout, another status, more than
 * `maxBytes`) is VERIFIER_UNAVAILABLE. The body is read chunk by chunk and abandoned as soon as it passes `maxBytes`.
 */
export async function fetchBounded(
  options: VerifierOptions,
  path: string,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const doFetch = options.fetch ?? globalThis.fetch;
  let url: string;
  try {
    url = new URL(path, new URL(baseOf(options.verifierUrl), globalThis.location?.href)).href;
  } catch (error) {
    throw unavailable(`the verifier URL ${JSON.stringify(options.verifierUrl)} is not a URL`, error);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? DEFAULT_VERIFIER_TIMEOUT_MS);
  try {
    let response: Response;
    try {
      response = await doFetch(url, { signal: controller.signal, headers: { accept: "application/json" } });
    } catch (error) {
      throw unavailable(`cannot reach the verifier at ${url}: ${(error as Error).message}`, error);
    }
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw unavailable(`the verifier answered HTTP ${response.status} for ${url}`);
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw unavailable(`the verifier's answer for ${url} is ${declared} bytes, more than ${maxBytes}`);
    }
    const reader = response.body?.getReader();
    if (reader === undefined) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (error) {
        throw unavailable(`reading the verifier's answer for ${url} failed: ${(error as Error).message}`, error);
      }
      if (step.done) break;
      total += step.value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw unavailable(`the verifier's answer for ${url} is more than ${maxBytes} bytes`);
      }
      chunks.push(step.value);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } finally {
    clearTimeout(timer);
  }
}

async function fetchJson(options: VerifierOptions, path: string): Promise<unknown> {
  const bytes = await fetchBounded(options, path, MAX_VERIFIER_JSON_BYTES);
  if (bytes === null) return null;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown;
  } catch (error) {
    throw unavailable(`the verifier's answer for ${path} is not JSON`, error);
  }
}

const bare = (h: string): string => h.toLowerCase().replace(/^0x/, "");

/** The bundles a verifier holds for a manifest, best first (published, then accepted, then the rest). */
async function bundlesOf(options: VerifierOptions, manifestDigest: string): Promise<string[]> {
  const answer = (await fetchJson(options, `bundles?manifest=${bare(manifestDigest)}`)) as {
    bundles?: { digest?: unknown; status?: unknown }[];
  } | null;
  const rank = (s: unknown) => (s === "published" ? 0 : s === "accepted" ? 1 : 2);
  return (answer?.bundles ?? [])
    .filter((b) => typeof b.digest === "string" && /^[0-9a-f]{64}$/.test(b.digest))
    .sort((a, b) => rank(a.status) - rank(b.status))
    .map((b) => b.digest as string);
}

/** The policy that admitted a record, fetched by its digest and checked against it (details-core readPolicyDocument). */
export async function fetchPolicy(options: VerifierOptions, policyDigest: string): Promise<PolicyView> {
  const bytes = await fetchBounded(options, `policies/${bare(policyDigest)}`, MAX_POLICY_BYTES);
  if (bytes === null)
    throw new ProvenantError("io", "NOT_FOUND", `the verifier does not hold the policy ${bare(policyDigest)}`);
  return readPolicyDocument(bytes, policyDigest);
}

/** A verifier's stored verdict on a bundle (GET /bundles/:digest), for the GPUs it verified; null when unknown. */
async function verdictGpus(options: VerifierOptions, bundleDigest: string): Promise<VerdictGpu[] | null> {
  const view = (await fetchJson(options, `bundles/${bundleDigest}`)) as { gpus?: unknown } | null;
  if (view === null || !Array.isArray(view.gpus)) return null;
  return view.gpus.filter(
    (g): g is VerdictGpu =>
      typeof g === "object" &&
      g !== null &&
      Number.isSafeInteger((g as VerdictGpu).index) &&
      typeof (g as VerdictGpu).verified === "boolean",
  );
}

/**
 * A record's bundle from the verifier, checked against the record (details-core checkRecordBundle). Among several
 * bundles carrying the manifest, the first that holds is taken. Throws NOT_FOUND when the verifier holds none,
 * VERIFIER_UNAVAILABLE when it cannot be read, and the check's own codes (RECORD_MISMATCH, DSSE_BAD_SIGNATURE, …)
 * when what it serves does not match.
 */
export async function fetchRecordBundle(options: VerifierOptions, record: RecordFacts): Promise<AttestedBundle> {
  const digests = await bundlesOf(options, record.manifestDigest);
  if (digests.length === 0)
    throw new ProvenantError(
      "io",
      "NOT_FOUND",
      `the verifier holds no bundle for manifest ${bare(record.manifestDigest)}`,
    );
  let firstError: unknown;
  for (const digest of digests.slice(0, 4)) {
    const bytes = await fetchBounded(options, `bundles/${digest}/bundle`, options.maxBundleBytes ?? MAX_BUNDLE_BYTES);
    if (bytes === null) continue;
    try {
      return await checkRecordBundle(record, bytes, { maxBytes: options.maxBundleBytes ?? MAX_BUNDLE_BYTES });
    } catch (error) {
      firstError ??= error;
    }
  }
  if (firstError !== undefined) throw firstError;
  throw new ProvenantError(
    "io",
    "NOT_FOUND",
    `the verifier no longer holds the bytes of manifest ${bare(record.manifestDigest)}`,
  );
}

/**
 * Everything shown next to a record (RecordDetails): its bundle fetched from the verifier and checked against the
 * record, the policy fetched by the record's policyDigest, and the verifier's verdict on the bundle's GPUs. Never
 * throws: what could not be had is in `status`/`error` and `policyError`.
 */
export async function fetchRecordDetails(options: VerifierOptions, record: RecordFacts): Promise<RecordDetails> {
  const [bundle, policy] = await Promise.all([
    fetchRecordBundle(options, record).catch((error: unknown) => ({ error })),
    record.policyDigest === null
      ? Promise.resolve({ error: new ProvenantError("io", "NOT_FOUND", "the record's policyDigest is not known") })
      : fetchPolicy(options, record.policyDigest).catch((error: unknown) => ({ error })),
  ]);
  let gpus: VerdictGpu[] | null = null;
  if (!("error" in bundle) && bundle.gpus.length > 0)
    gpus = await verdictGpus(options, bundle.bundleDigest).catch(() => null);
  return describeRecord(record, { bundle, policy, verdictGpus: gpus });
}

/** fetchRecordDetails for several records, a few at a time, in their order. */
export async function fetchDetailsOf(
  options: VerifierOptions,
  records: readonly RecordFacts[],
  parallel = 4,
): Promise<RecordDetails[]> {
  const out: RecordDetails[] = new Array<RecordDetails>(records.length);
  let next = 0;
  const worker = async () => {
    while (next < records.length) {
      const i = next++;
      out[i] = await fetchRecordDetails(options, records[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, records.length) }, worker));
  return out;
}
