// What the two long-running services (`provenant verifier run`, offchain/service.ts; `provenant serve`,
// serve/server.ts) share: a pino logger that never writes key material or RPC credentials, the local signer's key read
// from a file or the environment, and running until SIGINT or SIGTERM asks them to stop.
import pino, { type DestinationStream, type Logger } from "pino";

import { readInputFile, type CliIo } from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import { parsePrivateKey } from "./chain/index.ts";

/** Paths a log line's fields are redacted at: private keys, API keys and RPC URLs (which carry tokens), auth headers. */
const REDACTED_PATHS = ["privateKey", "*.privateKey", "key", "*.key", "rpcUrl", "*.rpcUrl", "headers.authorization"];

/** The service's logger: `service` in every line, at `level` (PROVENANT_LOG_LEVEL, else info), to stdout or `to`. */
export function createServiceLogger(
  service: string,
  level = process.env.PROVENANT_LOG_LEVEL ?? "info",
  to?: DestinationStream,
): Logger {
  const options = { level, base: { service }, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } };
  return to === undefined ? pino(options) : pino(options, to);
}

/**
 * The local signer's private key (the verifier's publisher, serve's anchorer): the file `keyFile` names, else
 * PROVENANT_PRIVATE_KEY; never a flag (it would show in a process listing). UsageError `missing` when neither is set.
 */
export async function readLocalSignerKey(io: CliIo, keyFile: string | undefined, missing: string): Promise<string> {
  const raw =
    keyFile !== undefined
      ? (await readInputFile(io, keyFile, "key file")).toString("utf8")
      : io.env.PROVENANT_PRIVATE_KEY;
  if (raw === undefined || raw === "") throw new UsageError(missing);
  return parsePrivateKey(raw);
}

/** Waits until `handle` is done, stopping it on the first SIGINT or SIGTERM; the listeners are removed after. */
export async function runUntilSignal(
  handle: { stop(): Promise<void>; done: Promise<void> },
  logger: Logger,
): Promise<void> {
  const onSignal = (signal: string): void => {
    logger.info({ signal }, "signal received");
    void handle.stop();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await handle.done;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
}
