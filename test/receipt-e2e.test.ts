// Attested inference end to end, every part real: a Hardhat chain with the registry and an audit of the tiny model,
// `provenant serve` (node-llama-cpp, the simulator as provider at a fixed date) pushing its serving bundle to a bare
// git repository, the verifier service watching it and recording the serving statement as kind 3, the server's
// anchorer anchoring its checkpoint once its log is registered, and `provenant receipt verify` fetching the serving
// bundle and the inclusion proof over HTTP from the server and reading the chain.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { Contract, JsonRpcProvider, NonceManager, Wallet } from "ethers";
import pino from "pino";

import type { CliIo } from "../lib/cli/index.ts";
import { commands } from "../cli/receipt.ts";
import { hashModel } from "../lib/oms/index.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import { writeTinyModel } from "../enclave-job/model/tiny.ts";
import { simProvider } from "../enclave-job/attest/providers.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { startService, type RunningService } from "../offchain/service.ts";
import { DEV_PRIVATE_KEYS } from "../offchain/testing/chain.ts";
import { createTestRepo, type TestRepo } from "../offchain/testing/git.ts";
import { servingPolicy } from "../offchain/testing/serving.ts";
import { startServe, type ServeHandle } from "../serve/server.ts";
import { createTestWorld, tickingClock, waitFor, type TestWorld } from "../offchain/testing/world.ts";

/** The simulator's and the services' clock: certificates are checked at this date, whatever the machine's. */
const NOW = new Date("2026-02-02T10:00:00.000Z");
const ANCHOR_KEY = DEV_PRIVATE_KEYS[3];

async function run(argv: string[]): Promise<{ code: number; json: Record<string, unknown>; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTty: false, env: {}, cwd: "/" };
  const code = await commands[0]!.run(argv, io);
  return { code, json: JSON.parse(out) as Record<string, unknown>, err };
}

describe("attested inference: serve, verifier, anchor, receipt verify", () => {
  let world: TestWorld;
  let provider: JsonRpcProvider;
  let modelPath: string;
  let modelRoot: string;
  let repo: TestRepo;
  let service: RunningService;
  let handle: ServeHandle;
  let policyFile: string;

  before(async () => {
    // The chain, the registry and the simulator (its default key directory: the server's provider uses it too).
    world = await createTestWorld("receipt-e2e", { now: NOW });
    provider = new JsonRpcProvider(world.chain.url, undefined, { staticNetwork: true, batchMaxCount: 1 });
    const registry = new Contract(world.registry.address, MODEL_REGISTRY_ABI, provider);
    // The server anchors with its own key (PUBLISHER_ROLE, like the verifier's), so that it never races the
    // verifier's sender for a nonce.
    const admin = registry.connect(new NonceManager(new Wallet(DEV_PRIVATE_KEYS[0], provider))) as Contract;
    const role = (await registry.getFunction("PUBLISHER_ROLE")()) as string;
    await (await admin.getFunction("grantRole")(role, new Wallet(ANCHOR_KEY).address)).wait();
    // The tiny model and its audit record (the verifier's part for it, published with the publisher key).
    modelPath = path.join(world.work, "tiny.gguf");
    await writeTinyModel(modelPath);
    modelRoot = (await hashModel(modelPath)).rootDigest;
    const publisher = registry.connect(new NonceManager(new Wallet(world.registry.publisherKey, provider))) as Contract;
    const audit = [
      `0x${modelRoot}`,
      `0x${"5e".repeat(32)}`,
      `0x${"00".repeat(32)}`,
      `0x${"11".repeat(32)}`,
      `0x${"22".repeat(32)}`,
      0n,
      2,
    ];
    await (await publisher.getFunction("publish")([audit])).wait();
    // The verifier's development policy, admitting serving statements.
    const policy = servingPolicy(world.factory);
    policyFile = path.join(world.work, "policy.json");
    writeFileSync(policyFile, JSON.stringify(policy.json));
    repo = createTestRepo();
    service = await startService({
      repos: [repo.origin],
      rpcUrl: world.chain.url,
      registry: world.registry.address,
      policy,
      createSender: (p) => createLocalSender(p, world.registry.publisherKey),
      dataDir: path.join(world.work, "verifier"),
      intervalMs: 200,
      maxWaitMs: 50,
      workers: 1,
      logger: pino({ level: "silent" }),
      now: tickingClock(NOW),
    });
    handle = await startServe({
      modelPath,
      rpcUrl: world.chain.url,
      registry: world.registry.address,
      provider: simProvider({ now: NOW }),
      push: repo.origin,
      listen: { host: "127.0.0.1", port: 0 },
      require: "audit",
      checkSeconds: 1,
      epochReceipts: 1,
      epochSeconds: 3600,
      anchorIntervalMs: 200,
      createSender: (p) => createLocalSender(p, ANCHOR_KEY),
      dataDir: path.join(world.work, "serve"),
      threads: 1,
      gpu: false,
      contextSize: 512,
      now: tickingClock(NOW),
      logger: pino({ level: "silent" }),
      jobCodeDigest: async () => "c0de".repeat(16),
    });
  });

  after(async () => {
    await handle?.stop();
    await service?.stop();
    repo?.cleanup();
    provider?.destroy();
    await world?.close();
  });

  it("when a completion's receipt is anchored, receipt verify --server checks it all, and a wrong salt is refused", async () => {
    const request = Buffer.from(
      JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "Say something." }], max_tokens: 8 }),
    );
    const response = await fetch(`${handle.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: request,
    });
    assert.equal(response.status, 200);
    const completion = (await response.json()) as {
      choices: { message: { content: string } }[];
      provenant_receipt: { digest: string };
    };
    const files = {
      receipt: path.join(world.work, "completion.json"),
      request: path.join(world.work, "request.json"),
      response: path.join(world.work, "response.txt"),
    };
    writeFileSync(files.receipt, JSON.stringify(completion));
    writeFileSync(files.request, request);
    writeFileSync(files.response, completion.choices[0]!.message.content);

    // The verifier records the pushed serving bundle (kind 3); then the server anchors its checkpoint.
    const digest = completion.provenant_receipt.digest;
    await waitFor(
      "the receipt's checkpoint anchored",
      async () => ((await fetch(`${handle.url}/v1/receipts/${digest}/proof`)).status === 200 ? true : undefined),
      120_000,
    );
    const args = [
      files.receipt,
      "--server",
      handle.url,
      "--request",
      files.request,
      "--response",
      files.response,
      "--policy",
      policyFile,
      "--now",
      NOW.toISOString(),
      "--rpc",
      world.chain.url,
      "--registry",
      world.registry.address,
      "--json",
    ];
    const ok = await run(args);
    assert.equal(ok.code, 0, JSON.stringify(ok.json.errors));
    assert.deepEqual(ok.json.checks, {
      signature: true,
      servingStatement: true,
      attestation: true,
      modelRecorded: true,
      servingRecorded: true,
      notRevoked: true,
      inclusion: true,
      digests: true,
    });
    assert.equal(ok.json.receiptDigest, digest);
    assert.equal(ok.json.modelRoot, modelRoot);
    assert.equal(ok.json.servingManifest, handle.identity.servingManifest);

    const wrong = await run([...args, "--salt", "00".repeat(32)]);
    assert.equal(wrong.code, 1);
    assert.deepEqual(
      (wrong.json.errors as { code: string }[]).map((e) => e.code),
      ["RECEIPT_DIGEST_MISMATCH"],
    );
  });
});
