// The command table of `provenant`. Command modules live in cli/<area>.ts or beside the part they drive
// (`<part>/cli.ts`), all built on defineCommand (lib/cli). A module is imported only when its first word is asked
// for, so that `provenant hash` does not pay for node-llama-cpp or ethers.
import type { Command } from "../lib/cli/index.ts";

export interface CommandModule {
  /** The first words of the commands the module exports (a test checks they agree). */
  words: readonly string[];
  load: () => Promise<readonly Command[]>;
}

export const COMMAND_MODULES: readonly CommandModule[] = [
  { words: ["model", "job"], load: async () => (await import("../enclave-job/cli.ts")).commands },
  { words: ["lookup", "audit", "explorer"], load: async () => (await import("../offchain/client/cli.ts")).commands },
  { words: ["hash", "oms"], load: async () => (await import("../cli/oms.ts")).commands },
  { words: ["bundle", "verifier"], load: async () => (await import("../offchain/cli.ts")).commands },
  { words: ["snp", "sim"], load: async () => (await import("../cli/snp.ts")).commands },
  { words: ["gpu"], load: async () => (await import("../cli/gpu.ts")).commands },
  { words: ["measure"], load: async () => (await import("../cli/measure.ts")).commands },
  { words: ["receipt"], load: async () => (await import("../cli/receipt.ts")).commands },
  { words: ["audit", "trace"], load: async () => (await import("../enclave-job/trace/cli.ts")).commands },
  { words: ["serve"], load: async () => (await import("../serve/cli.ts")).commands },
  { words: ["registry"], load: async () => (await import("../cli/registry.ts")).commands },
];
