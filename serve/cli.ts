// `provenant serve`: the OpenAI-compatible server with a receipt for every answer (DESIGN §12, docs/serving.md).
// A thin shell: flags checked before anything starts (exit 2), then the server runs until SIGINT/SIGTERM; its logs
// are JSON lines on stdout (the "serving" line names the URL). Refused at start: MODEL_NOT_RECORDED, MODEL_REVOKED (1).
import path from "node:path";

import { defineCommand, integerOption, requiredOption, type Command } from "../lib/cli/index.ts";
import { UsageError } from "../lib/errors.ts";
import { REQUIRE_KINDS, type RequireKind } from "../lib/receipt/index.ts";

export const SERVE_USAGE =
  "provenant serve --model <gguf> --rpc <url> --registry <address> [--provider tsm|sev-guest|sim] [--nonce <hex>] " +
  "[--push <repo>] [--listen 127.0.0.1:8790] [--require audit|finetune|any] [--check-seconds 10] " +
  "[--epoch-receipts 1000] [--epoch-seconds 60] [--anchor local|rofl] [--key-file <file>] [--rofl-socket <path>] " +
  "[--data-dir <dir>] [--threads <n>] [--gpu] [--context-size <n>] [--max-tokens <n>] [--max-queue <n>] " +
  "[--gpu-evidence nvml|sim|none] [--gpu-rims service|none|<dir>] [--nvml-library <path>] [--gpu-devtools] " +
  "[--tsm-root <dir>] [--snpguest <path>] [--json]";

const serve = defineCommand({
  path: ["serve"],
  summary: "serve a recorded model (OpenAI-compatible) with a signed, anchored receipt for every answer",
  usage: SERVE_USAGE,
  options: {
    model: { type: "string" },
    rpc: { type: "string" },
    registry: { type: "string" },
    provider: { type: "string", default: "sim" },
    nonce: { type: "string" },
    push: { type: "string" },
    listen: { type: "string", default: "127.0.0.1:8790" },
    require: { type: "string", default: "audit" },
    "check-seconds": { type: "string", default: "10" },
    "epoch-receipts": { type: "string", default: "1000" },
    "epoch-seconds": { type: "string", default: "60" },
    anchor: { type: "string", default: "local" },
    "key-file": { type: "string" },
    "rofl-socket": { type: "string" },
    "data-dir": { type: "string" },
    threads: { type: "string", default: "2" },
    gpu: { type: "boolean" },
    "context-size": { type: "string" },
    "max-tokens": { type: "string" },
    "max-queue": { type: "string" },
    "gpu-evidence": { type: "string" },
    "gpu-rims": { type: "string" },
    "nvml-library": { type: "string" },
    "gpu-devtools": { type: "boolean" },
    "tsm-root": { type: "string" },
    snpguest: { type: "string" },
  },
  async run({ values, io }) {
    const model = path.resolve(io.cwd, requiredOption(values.model, "model", SERVE_USAGE));
    const rpc = requiredOption(values.rpc, "rpc", SERVE_USAGE);
    if (values.registry === undefined || !/^0x[0-9a-fA-F]{40}$/.test(values.registry))
      throw new UsageError(`--registry must be a 0x address\nusage: ${SERVE_USAGE}`);
    if (!REQUIRE_KINDS.includes(values.require as RequireKind))
      throw new UsageError(`--require must be one of ${REQUIRE_KINDS.join(", ")}`);
    if (values.anchor !== "local" && values.anchor !== "rofl") throw new UsageError("--anchor must be local or rofl");
    if (values.nonce !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.nonce))
      throw new UsageError("--nonce must be 64 hex characters (32 bytes)");
    const checkSeconds = integerOption(values["check-seconds"], "check-seconds", { min: 1, max: 3600 })!;
    const epochReceipts = integerOption(values["epoch-receipts"], "epoch-receipts", { min: 1, max: 1_000_000 })!;
    const epochSeconds = integerOption(values["epoch-seconds"], "epoch-seconds", { min: 1, max: 86_400 })!;
    const threads = integerOption(values.threads, "threads", { min: 1, max: 256 })!;
    const contextSize = integerOption(values["context-size"], "context-size", { min: 64, max: 1 << 20 });
    const maxTokens = integerOption(values["max-tokens"], "max-tokens", { min: 1, max: 1 << 20 });
    const maxQueue = integerOption(values["max-queue"], "max-queue", { min: 0, max: 4096 });
    const gpuEvidenceName = values["gpu-evidence"] ?? "none";
    if (
      gpuEvidenceName === "none" &&
      (values["gpu-rims"] ?? values["nvml-library"] ?? values["gpu-devtools"]) !== undefined
    )
      throw new UsageError("--gpu-rims, --nvml-library and --gpu-devtools go with --gpu-evidence nvml|sim");

    const { parseListen } = await import("../offchain/http/index.ts");
    let listen;
    try {
      listen = parseListen(values.listen);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { createLocalSender, createRoflSender } = await import("../offchain/chain/index.ts");
    const { readLocalSignerKey, runUntilSignal } = await import("../offchain/daemon.ts");
    // The anchoring key is the verifier's kind of key (a publisher): from the environment or a file, never a flag.
    const privateKey =
      values.anchor === "local"
        ? await readLocalSignerKey(
            io,
            values["key-file"],
            "--anchor local needs PROVENANT_PRIVATE_KEY or --key-file (a key with PUBLISHER_ROLE)",
          )
        : undefined;
    const { providerByName } = await import("../enclave-job/attest/providers.ts");
    const { gpuProviderByName } = await import("../enclave-job/attest/gpu.ts");
    const provider = providerByName(values.provider, {
      ...(values["tsm-root"] === undefined ? {} : { tsmRoot: values["tsm-root"] }),
      ...(values.snpguest === undefined ? {} : { snpguest: values.snpguest }),
    });
    const rims = values["gpu-rims"];
    const nvmlLibrary = values["nvml-library"] === undefined ? undefined : path.resolve(io.cwd, values["nvml-library"]);
    const gpuEvidence = await gpuProviderByName(gpuEvidenceName, {
      ...(rims === undefined
        ? {}
        : { rims: rims === "service" || rims === "none" ? rims : path.resolve(io.cwd, rims) }),
      ...(nvmlLibrary === undefined ? {} : { nvmlLibrary }),
      allowDevTools: values["gpu-devtools"] ?? false,
      env: io.env,
    });
    const dataDir = path.resolve(
      io.cwd,
      values["data-dir"] ?? path.join(io.env.PROVENANT_HOME ?? ".provenant", "serve"),
    );
    const roflSocket = values["rofl-socket"];

    const { startServe, createServeLogger } = await import("./server.ts");
    const logger = createServeLogger();
    const handle = await startServe({
      modelPath: model,
      rpcUrl: rpc,
      registry: values.registry,
      provider,
      gpuEvidence,
      ...(values.nonce === undefined ? {} : { nonce: values.nonce }),
      ...(values.push === undefined ? {} : { push: values.push }),
      listen,
      require: values.require as RequireKind,
      checkSeconds,
      epochReceipts,
      epochSeconds,
      createSender: async (chain) =>
        values.anchor === "rofl"
          ? createRoflSender(roflSocket === undefined ? {} : { socketPath: roflSocket })
          : await createLocalSender(chain, privateKey as string),
      dataDir,
      threads,
      gpu: values.gpu ?? false,
      ...(contextSize === undefined ? {} : { contextSize }),
      ...(maxTokens === undefined ? {} : { requestLimits: { maxTokens } }),
      ...(maxQueue === undefined ? {} : { maxQueue }),
      logger,
    });
    await runUntilSignal(handle, logger);
    return { ok: true };
  },
});

export const commands: readonly Command[] = [serve];
