// The command table of `provenant`. Each part of the project owns its commands in its own `cli.ts`;
// they are loaded lazily so that `provenant hash` does not pay for node-llama-cpp or ethers.
import type { Command } from "../lib/cli/index.ts";

export type CommandLoader = () => Promise<readonly Command[]>;

export const COMMAND_MODULES: readonly CommandLoader[] = [
  // one line per part, e.g. async () => (await import("../lib/snp/cli.ts")).commands,
  async () => (await import("../enclave-job/cli.ts")).commands,
  async () => (await import("../offchain/client/cli.ts")).commands,
  async () => (await import("../lib/oms/cli.ts")).commands,
  async () => (await import("../offchain/cli.ts")).commands,
  async () => (await import("../lib/snp/cli.ts")).commands,
];
