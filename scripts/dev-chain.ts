// The embedded development chain now lives in lib/registry/dev-chain.ts, where scripts and test helpers share it
// (offchain/testing must not import scripts/). This re-export keeps older imports working.
export { DEV_PRIVATE_KEYS, startDevChain } from "../lib/registry/dev-chain.ts";
export type { DevChain } from "../lib/registry/dev-chain.ts";
