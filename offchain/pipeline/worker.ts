// A verification worker of the pool in pool.ts: parses the policy it was started with, keeps one warm report
// verifier, and answers each job (bundle bytes, `now`, certificates and CRLs fetched by the main thread) with the
// pure pipeline's verdict. All CPU work on untrusted bytes happens here, never on the service's event loop.
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

const port = parentPort;
if (port !== null) {
  const policy = parseVerifierPolicy((workerData as { policy: unknown }).policy);
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
