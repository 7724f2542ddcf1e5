// A verification worker of the pool in pool.ts: parses the policy it was started with, keeps one warm report
// verifier, and answers each job (bundle bytes, `now`, certificates and CRLs fetched by the main thread) with the
// pure pipeline's verdict. All CPU work on untrusted bytes happens here, never on the service's event loop.
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";

import { createReportVerifier, type CertificateSource, type Product } from "../../lib/snp/index.ts";
import { parseVerifierPolicy, policyDigest, verifyBundle, type BundleVerdict, type RevocationSource } from "./index.ts";

export interface SuppliedChain {
  product: Product;
  signer: "vcek" | "vlek";
  /** DER ASK|ASVK then ARK, as KDS `cert_chain` serves them (the ARK is trusted only when pinned). */
  chain: Uint8Array[];
}

/** An ARK-signed CRL the main thread fetched (KDS `{vcek|vlek}/v1/{product}/crl`); its signature is checked here. */
export interface SuppliedCrl {
  product: Product;
  signer: "vcek" | "vlek";
  crl: Uint8Array;
}

export interface VerifyJob {
  id: number;
  bytes: Uint8Array;
  /** `now` as milliseconds since the epoch. */
  now: number;
  chains: SuppliedChain[];
  crls: SuppliedCrl[];
}

export type WorkerMessage =
  { type: "ready"; policyDigest: string } | { type: "verdict"; id: number; verdict: BundleVerdict; ms: number };

/**
 * Lowers this thread's scheduling priority (Linux: a thread id is a valid `setpriority` target), so that on a machine
 * with fewer free cores than busy threads the event loop that serves HTTP and git still gets the CPU first. Where
 * that is not possible, verification simply runs at the process's priority.
 */
function lowerPriority(niceness: number): void {
  if (niceness <= 0) return;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, niceness);
  } catch {
    // not Linux, or not allowed: keep the process's priority
  }
}

const port = parentPort;
if (port !== null) {
  const data = workerData as { policy: unknown; niceness?: number };
  lowerPriority(data.niceness ?? 0);
  const policy = parseVerifierPolicy(data.policy);
  const chains = new Map<string, Uint8Array[]>();
  const certificates: CertificateSource = { chain: (product, signer) => chains.get(`${signer}-${product}`) };
  const verifier = createReportVerifier({ trustedRoots: policy.trustedRoots, certificates });
  // The service is strict: a chain to one of AMD's roots needs a current CRL of its ARK (else the bundle waits).
  const crls = new Map<string, Uint8Array>();
  const revocation: RevocationSource = {
    crls: (product, signer) => {
      const crl = crls.get(`${signer}-${product}`);
      return crl === undefined ? [] : [crl];
    },
    required: true,
  };
  port.on("message", (job: VerifyJob) => {
    const started = performance.now();
    for (const c of job.chains) chains.set(`${c.signer}-${c.product}`, c.chain);
    for (const c of job.crls) crls.set(`${c.signer}-${c.product}`, c.crl);
    const verdict = verifyBundle(job.bytes, { policy, now: new Date(job.now), verifier, certificates, revocation });
    port.postMessage({
      type: "verdict",
      id: job.id,
      verdict,
      ms: performance.now() - started,
    } satisfies WorkerMessage);
  });
  port.postMessage({ type: "ready", policyDigest: policyDigest(policy) } satisfies WorkerMessage);
}
