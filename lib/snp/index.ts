// SEV-SNP attestation: parse (bytes → report), verify (signature, chain, binding), validate (policy), simulate.
export {
  decodeTcb,
  encodeTcb,
  parseReport,
  productFromCpuid,
  reportToJson,
  REPORT_SIZE,
  SIGNED_SIZE,
  PRODUCTS,
} from "./parse.ts";
export type { AttestationReport, FirmwareVersion, GuestPolicy, PlatformInfo, Product, TcbVersion } from "./parse.ts";
export { createReportVerifier, verifyReport } from "./verify.ts";
export type {
  CertificateSource,
  ReportVerifier,
  ReportVerifierOptions,
  SnpEvidence,
  VerifiedReport,
} from "./verify.ts";
export {
  DEFAULT_SNP_POLICY,
  isPinName,
  MAX_MEASUREMENT_NAME,
  measurementEntries,
  parseSnpPolicy,
  snpPolicyGaps,
  snpPolicyToJson,
  tcbComponents,
  validateReport,
} from "./validate.ts";
export type { MinimumTcb, SnpPolicy } from "./validate.ts";
export { checkChainRevocation, checkRevocation, parseCrl } from "./crl.ts";
export type { ChainRevocation } from "./crl.ts";
export { ARK_FINGERPRINTS } from "./amd-roots.ts";
export { createSimulator, defaultKeyDir } from "./sim.ts";
export type { SimCrlOptions, SimReportFields, SimTcb, SimulatorOptions, SnpSimulator } from "./sim.ts";
export { createCertificateStore, defaultCacheDir, kdsChainUrl, kdsCrlUrl, kdsVcekUrl, KDS_BASE } from "./kds.ts";
export type { CertificateStore, CertificateStoreOptions, FetchLike } from "./kds.ts";
