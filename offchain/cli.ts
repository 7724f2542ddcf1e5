// Commands of the verifier part: `provenant bundle verify` (the full pipeline, offline) and `provenant verifier run`
// (the service). The service stops gracefully on SIGINT/SIGTERM: the batch in flight finishes or is abandoned
// before its transaction is sent, and the chain check on restart makes either case safe.
import { readFileSync } from "node:fs";
import path from "node:path";

import {
  EXIT_OK,
  EXIT_REFUSED,
  parseCommandArgs,
  printJson,
  requirePositional,
  runGuarded,
  type CliIo,
  type Command,
  integerOption,
  numberOption,
} from "../lib/cli/index.ts";
import { IoError, UsageError } from "../lib/errors.ts";

function readInput(file: string, io: CliIo, what: string): Uint8Array {
  try {
    return readFileSync(path.resolve(io.cwd, file));
  } catch (error) {
    throw new IoError("IO_ERROR", `cannot read ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
}

const VERIFY_USAGE = "provenant bundle verify <bundle.json> [--policy <json>] [--now <iso>] [--json]";

const bundleVerify: Command = {
  path: ["bundle", "verify"],
  summary: "verify a provenance bundle offline with the verifier's full pipeline",
  usage: VERIFY_USAGE,
  async run(argv, io) {
    const json = argv.includes("--json");
    return await runGuarded(io, json, async () => {
      const { values, positionals } = parseCommandArgs(
        argv,
        { policy: { type: "string" }, now: { type: "string" }, json: { type: "boolean" } },
        VERIFY_USAGE,
      );
      const file = requirePositional(positionals, 0, "bundle.json", VERIFY_USAGE);
      const { defaultVerifierPolicy, parseVerifierPolicyBytes, policyDigest, verifyBundle } =
        await import("./pipeline/index.ts");
      const policy =
        values.policy === undefined
          ? defaultVerifierPolicy()
          : parseVerifierPolicyBytes(readInput(values.policy, io, "policy"));
      const now = values.now === undefined ? new Date() : new Date(values.now);
      if (Number.isNaN(now.getTime())) throw new UsageError(`--now is not an ISO date: ${values.now}`);
      const bytes = readInput(file, io, "bundle");
      const verdict = verifyBundle(bytes, { policy, now });
      const fields = {
        bundleDigest: verdict.bundleDigest,
        manifestDigest: verdict.manifestDigest,
        modelHash: verdict.modelHash,
        kind: verdict.kind,
        policyDigest: policyDigest(policy),
        record: verdict.record,
        evidence: verdict.evidence,
      };
      if (json) printJson(io, verdict.ok, fields, verdict.errors);
      else if (verdict.ok) {
        io.stdout(
          `ok: bundle accepted\n  kind ${verdict.kind}\n  model ${verdict.modelHash}\n  manifest ${verdict.manifestDigest}\n` +
            `  platform ${verdict.evidence?.product} (${verdict.evidence?.signer}, provider ${verdict.evidence?.provider})\n` +
            `  policy ${fields.policyDigest}\n`,
        );
      } else {
        io.stdout(`refused: ${verdict.errors.length} reason(s)\n`);
        for (const e of verdict.errors) io.stderr(`error ${e.code}: ${e.message}\n`);
      }
      return verdict.ok ? EXIT_OK : EXIT_REFUSED;
    });
  },
};

const RUN_USAGE =
  "provenant verifier run --repo <path|url> [--repo …] --rpc <url> --registry <address> [--policy <json>] " +
  "[--signer local|rofl] [--key-file <file>] [--rofl-socket <path>] [--listen 127.0.0.1:8780] [--data-dir <dir>] " +
  "[--interval <seconds>] [--branch <name>] [--max-batch <n>] [--max-wait <seconds>]";

const verifierRun: Command = {
  path: ["verifier", "run"],
  summary: "watch repositories, verify bundles, publish records onchain (the verifier service)",
  usage: RUN_USAGE,
  async run(argv, io) {
    return await runGuarded(io, false, async () => {
      const { values } = parseCommandArgs(
        argv,
        {
          repo: { type: "string", multiple: true },
          rpc: { type: "string" },
          registry: { type: "string" },
          policy: { type: "string" },
          signer: { type: "string", default: "local" },
          "key-file": { type: "string" },
          "rofl-socket": { type: "string" },
          listen: { type: "string", default: "127.0.0.1:8780" },
          "data-dir": { type: "string" },
          interval: { type: "string", default: "30" },
          branch: { type: "string" },
          "max-batch": { type: "string", default: "64" },
          "max-wait": { type: "string", default: "1" },
        },
        RUN_USAGE,
      );
      const repos = values.repo ?? [];
      if (repos.length === 0) throw new UsageError(`missing --repo\nusage: ${RUN_USAGE}`);
      if (values.rpc === undefined) throw new UsageError(`missing --rpc\nusage: ${RUN_USAGE}`);
      if (values.registry === undefined || !/^0x[0-9a-fA-F]{40}$/.test(values.registry))
        throw new UsageError(`--registry must be a 0x address\nusage: ${RUN_USAGE}`);
      if (values.signer !== "local" && values.signer !== "rofl") throw new UsageError("--signer must be local or rofl");
      const interval = numberOption(values.interval, "interval", { min: 0.05 })!;
      const maxBatch = integerOption(values["max-batch"], "max-batch", { min: 1, max: 128 })!;
      const maxWait = numberOption(values["max-wait"], "max-wait", { min: 0 })!;

      const { createLocalSender, createRoflSender, parsePrivateKey } = await import("./chain/index.ts");
      const { parseListen } = await import("./http/index.ts");
      const { defaultVerifierPolicy, parseVerifierPolicyBytes, policyDigest } = await import("./pipeline/index.ts");
      const { createLogger, startService } = await import("./service.ts");

      const policy =
        values.policy === undefined
          ? defaultVerifierPolicy()
          : parseVerifierPolicyBytes(readInput(values.policy, io, "policy"));
      let privateKey: string | undefined;
      if (values.signer === "local") {
        const raw =
          values["key-file"] !== undefined
            ? Buffer.from(readInput(values["key-file"], io, "key file")).toString("utf8")
            : io.env.PROVENANT_PRIVATE_KEY;
        if (raw === undefined || raw === "")
          throw new UsageError("the local signer needs PROVENANT_PRIVATE_KEY or --key-file");
        privateKey = parsePrivateKey(raw);
      }
      let listen;
      try {
        listen = values.listen === "off" ? undefined : parseListen(values.listen);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const dataDir = path.resolve(
        io.cwd,
        values["data-dir"] ?? path.join(io.env.PROVENANT_HOME ?? ".provenant", "verifier"),
      );
      const logger = createLogger();
      logger.info({ policyDigest: policyDigest(policy) }, "policy loaded");
      const roflSocket = values["rofl-socket"];
      const service = await startService({
        repos,
        ...(values.branch === undefined ? {} : { branch: values.branch }),
        rpcUrl: values.rpc,
        registry: values.registry,
        policy,
        createSender: async (provider) =>
          values.signer === "rofl"
            ? createRoflSender(roflSocket === undefined ? {} : { socketPath: roflSocket })
            : await createLocalSender(provider, privateKey as string),
        dataDir,
        listen,
        intervalMs: interval * 1000,
        maxBatch,
        maxWaitMs: maxWait * 1000,
        logger,
      });
      const onSignal = (signal: string): void => {
        logger.info({ signal }, "signal received");
        void service.stop();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      await service.done;
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
      return EXIT_OK;
    });
  },
};

export const commands: readonly Command[] = [bundleVerify, verifierRun];
