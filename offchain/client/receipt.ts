// Inference receipt verification for Node (DESIGN §12): the serving bundle through the verifier's own pipeline
// (verifyBundle, the same policy), then the browser-safe checks of receipt-core.ts over the chain facts that
// receipt-file.ts reads (shared with the page). The serving endpoint's answers (`GET /v1/attestation`,
// `GET /v1/receipts/:digest/proof`) are fetched here, with bounds.
import { manifestDigestOf, readBundle } from "../../lib/bundle/index.ts";
import { isPlainObject, type DsseEnvelope } from "../../lib/dsse/core.ts";
import { IoError, MalformedInputError, toErrorList, UsageError, type ErrorCode } from "../../lib/errors.ts";
import { parseStrictJsonBytes } from "../../lib/json/index.ts";
import type { CertificateSource } from "../../lib/snp/index.ts";
import { verifyBundle, type BundleVerdict, type RevocationSource, type VerifierPolicy } from "../pipeline/index.ts";
import type { RegistryClient } from "./core.ts";
import {
  checkReceipt,
  toReceiptProof,
  type ReceiptChainFacts,
  type ReceiptProof,
  type ReceiptVerification,
  type ServingEvidence,
} from "./receipt-core.ts";
import { receiptChainFacts, receiptClaims, servingEnvelopeOf } from "./receipt-file.ts";

/** A receipt's digest: hex SHA-256 of its payload as signed (the proof endpoint's key, the next prevReceipt). */
export { payloadDigestOf as receiptDigestOf } from "../../lib/receipt/index.ts";

export {
  checkReceipt,
  createReceiptLogVerifier,
  importWebKey,
  rootFromInclusion,
  toReceiptProof,
  verifyLeafProof,
  type CheckResult,
  type LeafProof,
  type ReceiptLogVerifier,
  type ReceiptChainFacts,
  type ReceiptChecks,
  type ReceiptProof,
  type ReceiptVerification,
  type RecordFact,
  type ServingEvidence,
} from "./receipt-core.ts";

// The file, claims, serving-statement and chain-fact readers are browser-safe, shared with the page (receipt-file.ts).
export {
  MAX_DIGESTED_FILE_BYTES,
  MAX_RECEIPT_FILE_BYTES,
  parseReceiptFile,
  receiptChainFacts,
  receiptClaims,
  servingEnvelopeOf,
  type ReceiptClaims,
  type ReceiptFile,
} from "./receipt-file.ts";

/** Largest proof answer read from a serving endpoint. */
export const MAX_PROOF_ANSWER_BYTES = 128 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface AttestationOptions {
  policy: VerifierPolicy;
  now: Date;
  revocation?: RevocationSource;
  certificates?: CertificateSource;
}

/**
 * A serving bundle judged by the verifier's pipeline (the same steps and policy that recorded it), and its serving
 * statement. The verdict is kept whole for the caller (warnings, crlNeeded); `evidence` is undefined when the bundle
 * cannot even be read as one.
 */
export function attestServingBundle(
  bytes: Uint8Array,
  options: AttestationOptions,
): { verdict: BundleVerdict; evidence?: ServingEvidence; error?: { code: ErrorCode; message: string }[] } {
  const verdict = verifyBundle(bytes, {
    policy: options.policy,
    now: options.now,
    ...(options.revocation === undefined ? {} : { revocation: options.revocation }),
    ...(options.certificates === undefined ? {} : { certificates: options.certificates }),
  });
  const attestation = { ok: verdict.ok, errors: verdict.errors };
  try {
    const bundle = readBundle(bytes, { maxBytes: options.policy.maxBundleBytes });
    const { envelope, signer } = servingEnvelopeOf(bundle);
    if (verdict.ok && verdict.manifestDigest !== manifestDigestOf(envelope))
      throw new MalformedInputError("STATEMENT_INVALID", "the bundle's manifest is not its serving statement");
    return { verdict, evidence: { envelope, signer, attestation } };
  } catch (error) {
    return { verdict, error: toErrorList(error) };
  }
}

export interface VerifyReceiptOptions extends AttestationOptions {
  proof?: ReceiptProof;
  /** The serving bundle (GET /v1/attestation) whose statement names the receipt's key S. */
  servingBundle: Uint8Array;
  /** The serving bundle of the key that signed a recovery checkpoint, when the proof's checkpoint is one. */
  successorBundle?: Uint8Array;
  salt?: Uint8Array;
  request?: Uint8Array;
  response?: Uint8Array;
  /** What the chain says (receiptChainFacts); without it the onchain checks stay unchecked and `ok` is false. */
  chain?: ReceiptChainFacts;
}

export interface ReceiptResult extends ReceiptVerification {
  /** The pipeline's verdict on the serving bundle (its warnings, e.g. POLICY_OPEN, SNP_REVOCATION_UNCHECKED). */
  attestationVerdict: BundleVerdict;
}

/**
 * Verifies a receipt end to end, chain facts given: the serving bundle by the pipeline under `policy` at `now`,
 * then checkReceipt. Pure apart from the clock and the crypto: no network, no chain.
 */
export async function verifyReceipt(
  receipt: { envelope: DsseEnvelope } | DsseEnvelope,
  options: VerifyReceiptOptions,
): Promise<ReceiptResult> {
  const envelope = "envelope" in receipt ? receipt.envelope : receipt;
  const serving = attestServingBundle(options.servingBundle, options);
  const successor =
    options.successorBundle === undefined ? undefined : attestServingBundle(options.successorBundle, options);
  const result = await checkReceipt({
    envelope,
    serving: serving.evidence ?? {
      unreadable: serving.error ?? [],
      attestation: { ok: serving.verdict.ok, errors: serving.verdict.errors },
    },
    ...(successor?.evidence === undefined ? {} : { successor: successor.evidence }),
    ...(options.proof === undefined ? {} : { proof: options.proof }),
    ...(options.chain === undefined ? {} : { chain: options.chain }),
    ...(options.salt === undefined ? {} : { salt: options.salt }),
    ...(options.request === undefined ? {} : { request: options.request }),
    ...(options.response === undefined ? {} : { response: options.response }),
  });
  return { ...result, attestationVerdict: serving.verdict };
}

// ── the chain ────────────────────────────────────────────────────────────────────────────────────────────────────

/** verifyReceipt with the chain facts read from `client` for the receipt's claims. */
export async function verifyReceiptOnChain(
  client: RegistryClient,
  receipt: { envelope: DsseEnvelope } | DsseEnvelope,
  options: Omit<VerifyReceiptOptions, "chain">,
): Promise<ReceiptResult> {
  const envelope = "envelope" in receipt ? receipt.envelope : receipt;
  const claims = receiptClaims(envelope);
  const chain = await receiptChainFacts(client, {
    ...claims,
    ...(options.proof === undefined
      ? {}
      : { treeSize: options.proof.treeSize, signerLogId: options.proof.checkpoint.signerLogId }),
  });
  return verifyReceipt(envelope, { ...options, chain });
}

// ── the serving endpoint ─────────────────────────────────────────────────────────────────────────────────────────

/** GET with a timeout and a body bound; IO_ERROR for a failed request, an unexpected status or an oversized body. */
async function boundedGet(
  url: string,
  maxBytes: number,
  timeoutMs: number,
  accept: readonly number[],
): Promise<{ status: number; body: Uint8Array }> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  } catch (error) {
    throw new IoError("IO_ERROR", `GET ${url} failed: ${(error as Error).message}`, { cause: error });
  }
  if (!accept.includes(response.status)) {
    await response.body?.cancel();
    throw new IoError("IO_ERROR", `GET ${url} answered HTTP ${response.status}`, {
      details: { status: response.status },
    });
  }
  const length = Number(response.headers.get("content-length") ?? "0");
  if (length > maxBytes) {
    await response.body?.cancel();
    throw new IoError("IO_ERROR", `GET ${url}: the answer is ${length} bytes, more than ${maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    for await (const chunk of response.body) {
      total += chunk.length;
      if (total > maxBytes) {
        await response.body.cancel().catch(() => undefined);
        throw new IoError("IO_ERROR", `GET ${url}: the answer is more than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return { status: response.status, body };
}

function serverUrl(base: string, path: string): string {
  if (!/^https?:\/\/[^\s]+$/.test(base))
    throw new UsageError(`a serving endpoint is an http(s) URL, got ${JSON.stringify(base)}`);
  return `${base.replace(/\/+$/, "")}${path}`;
}

/**
 * The serving bundle a server attests with (`GET /v1/attestation`), or with `logId` that of a log of its data
 * directory (`?logId=`: an earlier identity's after a restart; a server without it answers with its current one, which
 * verification then tells apart), at most `maxBytes` (the policy's bundle limit).
 */
export async function fetchServingBundle(
  base: string,
  options: { maxBytes: number; timeoutMs?: number; logId?: string },
): Promise<Uint8Array> {
  if (options.logId !== undefined && !/^[0-9a-f]{64}$/.test(options.logId))
    throw new UsageError(`a log id is 64 lower-case hex, got ${JSON.stringify(options.logId)}`);
  const { body } = await boundedGet(
    serverUrl(base, options.logId === undefined ? "/v1/attestation" : `/v1/attestation?logId=${options.logId}`),
    options.maxBytes,
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    [200],
  );
  return body;
}

/**
 * The serving bundle of a serving statement from a verifier's HTTP API (`GET /bundles?manifest=<digest>`, then
 * `GET /bundles/:digest/bundle`, published ones first, at most 4 tried): the first whose serving statement has that
 * manifest digest. Every answer bounded (details.ts fetchBounded); NOT_FOUND when the verifier holds none,
 * VERIFIER_UNAVAILABLE when it cannot be read. What it serves is only data: verifyReceipt checks it all.
 */
export async function fetchServingBundleFromVerifier(
  verifierUrl: string,
  servingManifest: string,
  options: { maxBytes: number; timeoutMs?: number },
): Promise<Uint8Array> {
  const { fetchBounded, MAX_VERIFIER_JSON_BYTES } = await import("./details.ts");
  const verifier = {
    verifierUrl,
    maxBundleBytes: options.maxBytes,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  const list = await fetchBounded(verifier, `bundles?manifest=${servingManifest}`, MAX_VERIFIER_JSON_BYTES);
  let digests: string[];
  try {
    const json = list === null ? null : (parseStrictJsonBytes(list, { code: "RECEIPT_INVALID" }) as unknown);
    const bundles = isPlainObject(json) && Array.isArray(json.bundles) ? json.bundles : [];
    const rank = (status: unknown) => (status === "published" ? 0 : status === "accepted" ? 1 : 2);
    digests = bundles
      .filter(
        (b): b is { digest: string; status?: unknown } =>
          isPlainObject(b) && typeof b.digest === "string" && /^[0-9a-f]{64}$/.test(b.digest),
      )
      .sort((a, b) => rank(a.status) - rank(b.status))
      .map((b) => b.digest);
  } catch (error) {
    throw new IoError("VERIFIER_UNAVAILABLE", "the verifier's bundle list is not JSON", { cause: error });
  }
  for (const digest of digests.slice(0, 4)) {
    const bytes = await fetchBounded(verifier, `bundles/${digest}/bundle`, options.maxBytes);
    if (bytes === null) continue;
    try {
      const bundle = readBundle(bytes, { maxBytes: options.maxBytes });
      if (manifestDigestOf(servingEnvelopeOf(bundle).envelope) === servingManifest) return bytes;
    } catch {
      // not this one: try the next
    }
  }
  throw new IoError(
    "NOT_FOUND",
    `the verifier at ${verifierUrl} holds no serving bundle of manifest ${servingManifest}`,
  );
}

/**
 * The inclusion proof of a receipt from its server (`GET /v1/receipts/:digest/proof`): `anchored` when the server
 * says a registry anchor covers it (200), otherwise `pending` with the server's reason (202: the epoch is open, the
 * log is not registered yet, the anchor is pending) and the proof against the latest signed checkpoint if any.
 */
export async function fetchReceiptProof(
  base: string,
  receiptDigest: string,
  options: { timeoutMs?: number } = {},
): Promise<{ status: "anchored" | "pending"; reason: string | null; proof?: ReceiptProof }> {
  if (!/^[0-9a-f]{64}$/.test(receiptDigest))
    throw new MalformedInputError("RECEIPT_INVALID", "a receipt digest is 64 lower-case hex");
  const { status, body } = await boundedGet(
    serverUrl(base, `/v1/receipts/${receiptDigest}/proof`),
    MAX_PROOF_ANSWER_BYTES,
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    [200, 202],
  );
  const json = parseStrictJsonBytes(body, { code: "MERKLE_INVALID", what: "proof answer" });
  const reason = isPlainObject(json) && typeof json.reason === "string" ? json.reason.slice(0, 200) : null;
  const hasProof = isPlainObject(json) && json.proof !== undefined;
  return {
    status: status === 200 ? "anchored" : "pending",
    reason,
    ...(hasProof ? { proof: toReceiptProof(json) } : {}),
  };
}
