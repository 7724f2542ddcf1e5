// NVIDIA's attestation roots, pinned by the SHA-256 of each root certificate's DER (DESIGN §10). No certificate
// bytes live in the code: the device chain and the RIM's KeyInfo bring their roots, and a root is trusted only when
// its fingerprint is one of these (or one a policy names in gpu.trustedRoots, for development roots).

/** "NVIDIA Device Identity CA" (O=NVIDIA), the root of every GPU's device identity chain. */
export const NVIDIA_DEVICE_ROOT_FINGERPRINT = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48";

/** "NVIDIA CoRIM signing Root CA" (C=US, O=NVIDIA), the root of the RIM signing chains. */
export const NVIDIA_RIM_ROOT_FINGERPRINT = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1";
