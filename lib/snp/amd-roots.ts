// AMD's SEV-SNP roots, pinned by the SHA-256 of each ARK certificate's DER (DESIGN §3.4). No certificate bytes live
// in the code: the ARK and the ASK/ASVK come from the bundle, from the certificate cache, or from AMD's KDS
// (kds.ts), and an ARK is trusted only when its fingerprint is one of these (or one a policy names).

/** SHA-256 of each ARK certificate DER (values as published in testdata/snp/PROVENANCE.md). */
export const ARK_FINGERPRINTS = {
  Milan: "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
  Genoa: "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
  Turin: "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
} as const;
