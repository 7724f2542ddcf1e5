// The enclave job's public surface: the audit and fine-tune jobs, the attestation providers, the tiny model.
export { runAuditJob, harnessDigest, jobCodeDigest, silentReporter } from "./job.ts";
export type { AuditOptions, AuditResult, CommonJobOptions, HashFn, JobReporter, JobResult } from "./job.ts";
export { runFinetuneJob } from "./finetune/job.ts";
export type { FinetuneOptions, FinetuneResult, Probe } from "./finetune/job.ts";
export { ensureFinetuneBuild, finetuneBinary, hasFinetuneBuild } from "./finetune/llama-build.ts";
export { providerByName, sevGuestProvider, simProvider, tsmProvider } from "./attest/providers.ts";
export type { AttestationProvider, Evidence, ProviderName, SevGuestOptions, TsmOptions } from "./attest/providers.ts";
export { generateJobKey, reportDataFor, toNonce } from "./attest/key.ts";
export type { JobKey } from "./attest/key.ts";
export { buildCertTable, CERT_GUIDS, parseCertTable } from "./attest/certtable.ts";
export { assembleBundle, bundleFileName } from "./bundle.ts";
export { pushBundle } from "./push.ts";
export type { PushOptions, PushResult } from "./push.ts";
export { loadSuite } from "./audit/suites.ts";
export type { GenSuite, McSuite, Suite } from "./audit/suites.ts";
export { adapterPathFor, tinyAdapterBytes, tinyModelBytes, TINY_SIZES, writeTinyModel } from "./model/tiny.ts";
export type { TinySize } from "./model/tiny.ts";
