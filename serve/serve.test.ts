// `provenant serve` end to end, in process: a real Hardhat chain with the registry, node-llama-cpp with the tiny GGUF,
// real HTTP, the simulator as attestation provider on a fixed clock. Receipts verified against S from the served
// bundle, streaming against non-streaming, the `openai` package unchanged, anchoring and proofs against the chain,
// usage and metrics, revocation (the off-switch command) within one interval, and hostile HTTP.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import OpenAI from "openai";

import { readBundle } from "../lib/bundle/index.ts";
import { parseEnvelope } from "../lib/dsse/index.ts";
import { verifyConsistency } from "../lib/merkle/index.ts";
import {
  clientKeyIdOf,
  decodeReceiptHeader,
  parseSalt,
  toReceiptInput,
  verifyReceipt,
  verifyReceiptBytes,
  verifyReceiptInclusion,
  verifyServingCheckpoint,
  verifyServingStatement,
  verifyUsageStatement,
  type ReceiptObject,
  type VerifiedServing,
} from "../lib/receipt/index.ts";
import { isProvenantError } from "../lib/errors.ts";
import { hashModel } from "../lib/oms/index.ts";
import type { CliIo } from "../lib/cli/index.ts";
import { commands as registryCommands } from "../cli/registry.ts";
import { simGpuProvider } from "../enclave-job/attest/gpu.ts";
import { simProvider } from "../enclave-job/attest/providers.ts";
import { gpuNonceFor, parseGpuEvidence } from "../lib/gpu/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { DEV_PRIVATE_KEYS } from "../offchain/testing/chain.ts";
import { startServe, type ServeHandle, type ServeOptions } from "./server.ts";
import { createServeWorld, NOW, readSse, tickingClock, waitFor, type ServeWorld } from "./testing.ts";

const JOB_CODE = "c0de".repeat(16);
const quiet = (await import("pino")).default({ level: "silent" });

let world: ServeWorld;
const handles: ServeHandle[] = [];

async function serve(name: string, overrides: Partial<ServeOptions> = {}): Promise<ServeHandle> {
  const handle = await startServe({
    modelPath: world.modelPath,
    rpcUrl: world.chain.url,
    registry: world.registry.address,
    provider: simProvider({ now: NOW }),
    listen: { host: "127.0.0.1", port: 0 },
    require: "audit",
    checkSeconds: 1,
    epochReceipts: 1000,
    epochSeconds: 3600,
    createSender: (provider) => createLocalSender(provider, world.anchorKey),
    dataDir: path.join(world.work, name),
    threads: 1,
    gpu: false,
    contextSize: 512,
    now: tickingClock(NOW),
    logger: quiet,
    jobCodeDigest: async () => JOB_CODE,
    ...overrides,
  });
  handles.push(handle);
  return handle;
}

/** The serving statement of a server, verified from its GET /v1/attestation bundle (REPORT_DATA binds S). */
async function servingOf(handle: ServeHandle): Promise<VerifiedServing> {
  const response = await fetch(`${handle.url}/v1/attestation`);
  assert.equal(response.status, 200);
  const bundle = readBundle(new Uint8Array(await response.arrayBuffer()));
  const spki = Buffer.from(bundle.signer.publicKey, "base64");
  const report = Buffer.from(bundle.evidence.cpu.report, "base64");
  assert.deepEqual(report.subarray(0x50, 0x70), createHash("sha256").update(spki).digest());
  assert.equal(bundle.evidence.cpu.provider, "sim");
  return verifyServingStatement(bundle.envelopes[0]!, spki);
}

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);

async function post(handle: ServeHandle, endpoint: string, body: unknown, headers: Record<string, string> = {}) {
  const bytes = enc(typeof body === "string" ? body : JSON.stringify(body));
  const response = await fetch(`${handle.url}${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(bytes),
  });
  return { response, bytes };
}

function errorCode(json: unknown): string | undefined {
  return (json as { error?: { code?: string } }).error?.code;
}

before(async () => {
  world = await createServeWorld("serve-test");
  await world.publishModelRecord(2);
});

after(async () => {
  for (const handle of handles) await handle.stop();
  await (world as ServeWorld | undefined)?.close(); // unset when the fixture failed to come up
});

describe("provenant serve (one server for receipts, proofs and hostile input)", () => {
  let handle: ServeHandle;
  let serving: VerifiedServing;

  before(async () => {
    handle = await serve("a");
    serving = await servingOf(handle);
  });

  it("when a chat completion is answered, its receipt verifies with S and its digests match the bytes with the salt", async () => {
    const { response, bytes } = await post(handle, "/v1/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "What is the capital of the moon?" }],
      max_tokens: 12,
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      choices: { message: { content: string } }[];
      usage: { prompt_tokens: number; completion_tokens: number };
      provenant_receipt: ReceiptObject;
    };
    const receipt = body.provenant_receipt;
    // S is P-256 (lib/receipt SERVING_KEY_CURVE): ECDSA with SHA-256, DER.
    assert.equal(serving.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const { statement, digest } = verifyReceipt(receipt.envelope, serving.publicKey);
    const p = statement.predicate;
    assert.equal(digest, receipt.digest);
    assert.equal(p.modelRoot, world.modelRoot);
    assert.equal(p.servingManifest, serving.manifestDigest);
    assert.equal(p.logId, serving.logId);
    assert.equal(p.operation, "chat");
    assert.equal(p.promptTokens, body.usage.prompt_tokens);
    assert.equal(p.completionTokens, body.usage.completion_tokens);
    const salt = parseSalt(receipt.salt);
    verifyReceiptBytes(statement, salt, { request: bytes, response: enc(body.choices[0]!.message.content) });
    // The header carries the same envelope, and the salt; a wrong salt does not match.
    assert.deepEqual(decodeReceiptHeader(response.headers.get("provenant-receipt")!), receipt.envelope);
    assert.equal(response.headers.get("provenant-salt"), receipt.salt);
    assert.throws(
      () => verifyReceiptBytes(statement, new Uint8Array(32), { request: bytes }),
      (e: unknown) => isProvenantError(e) && e.code === "RECEIPT_DIGEST_MISMATCH",
    );
    // What a caller saves is readable back as a receipt.
    assert.deepEqual(toReceiptInput(JSON.parse(JSON.stringify(receipt))).envelope, receipt.envelope);
  });

  it("when the same request is streamed and not, the text and the receipts' fields are equivalent", async () => {
    for (const [endpoint, request] of [
      ["/v1/completions", { model: "tiny", prompt: "Question: what is the color of the sun", max_tokens: 24 }],
      [
        "/v1/chat/completions",
        { model: "tiny", messages: [{ role: "user", content: "Name a city." }], max_tokens: 24 },
      ],
    ] as const) {
      const plain = await post(handle, endpoint, request);
      const plainBody = (await plain.response.json()) as {
        choices: { text?: string; message?: { content: string } }[];
        provenant_receipt: ReceiptObject;
      };
      const plainText = plainBody.choices[0]!.text ?? plainBody.choices[0]!.message!.content;
      const streamed = await post(handle, endpoint, { ...request, stream: true });
      assert.equal(streamed.response.status, 200);
      assert.match(streamed.response.headers.get("content-type")!, /^text\/event-stream/);
      const events = await readSse(streamed.response);
      assert.equal(events.at(-1), "[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, unknown>);
      const last = chunks.at(-1) as { choices: unknown[]; provenant_receipt: ReceiptObject };
      assert.deepEqual(last.choices, []);
      const text = chunks
        .slice(0, -1)
        .map((c) => {
          const choice = (c.choices as { text?: string; delta?: { content?: string } }[])[0]!;
          return choice.text ?? choice.delta?.content ?? "";
        })
        .join("");
      assert.equal(text, plainText);
      const a = verifyReceipt(plainBody.provenant_receipt.envelope, serving.publicKey).statement;
      const b = verifyReceipt(last.provenant_receipt.envelope, serving.publicKey).statement;
      assert.deepEqual(Object.keys(a.predicate), Object.keys(b.predicate));
      assert.equal(a.subject[0].digest.sha256, b.subject[0].digest.sha256);
      for (const field of [
        "modelRoot",
        "servingManifest",
        "logId",
        "operation",
        "promptTokens",
        "completionTokens",
      ] as const)
        assert.equal(a.predicate[field], b.predicate[field], field);
      assert.equal(b.predicate.seq, a.predicate.seq + 1);
      assert.equal(b.predicate.prevReceipt, plainBody.provenant_receipt.digest);
      verifyReceiptBytes(b, parseSalt(last.provenant_receipt.salt), { request: streamed.bytes, response: enc(text) });
    }
  });

  it("when a stop string is given, the text ends before it, streamed or not", async () => {
    const request = { model: "tiny", prompt: "the model of the city", max_tokens: 32 };
    const full = (
      (await (await post(handle, "/v1/completions", request)).response.json()) as { choices: { text: string }[] }
    ).choices[0]!.text;
    assert.ok(full.length >= 6, `the tiny model wrote ${JSON.stringify(full)}`);
    const stop = full.slice(3, 5);
    const cut = full.slice(0, full.indexOf(stop));
    const plain = (await (await post(handle, "/v1/completions", { ...request, stop: [stop] })).response.json()) as {
      choices: { text: string; finish_reason: string }[];
    };
    assert.equal(plain.choices[0]!.text, cut);
    assert.equal(plain.choices[0]!.finish_reason, "stop");
    const events = await readSse((await post(handle, "/v1/completions", { ...request, stop, stream: true })).response);
    const text = events
      .slice(0, -2)
      .map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0]!.text)
      .join("");
    assert.equal(text, cut);
  });

  it("when the openai package is pointed at the server, chat and completions work unchanged, streamed or not", async () => {
    const client = new OpenAI({ baseURL: `${handle.url}/v1`, apiKey: "sk-openai-client", maxRetries: 0 });
    const models = await client.models.list();
    assert.equal(models.data[0]!.id, "tiny");
    const chat = await client.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello" },
      ],
      max_tokens: 10,
    });
    assert.equal(chat.object, "chat.completion");
    assert.equal(typeof chat.choices[0]!.message.content, "string");
    const chatReceipt = (chat as unknown as { provenant_receipt: ReceiptObject }).provenant_receipt;
    assert.equal(
      verifyReceipt(chatReceipt.envelope, serving.publicKey).statement.predicate.clientKeyId,
      clientKeyIdOf("sk-openai-client"),
    );
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello" },
      ],
      max_tokens: 10,
      stream: true,
    });
    let streamed = "";
    let streamReceipt: ReceiptObject | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.content ?? "";
      streamReceipt ??= (chunk as unknown as { provenant_receipt?: ReceiptObject }).provenant_receipt;
    }
    assert.equal(streamed, chat.choices[0]!.message.content);
    assert.ok(streamReceipt !== undefined);
    verifyReceipt(streamReceipt.envelope, serving.publicKey);

    const completion = await client.completions.create({ model: "tiny", prompt: "the sun is", max_tokens: 8 });
    assert.equal(completion.object, "text_completion");
    const completionStream = await client.completions.create({
      model: "tiny",
      prompt: "the sun is",
      max_tokens: 8,
      stream: true,
    });
    let text = "";
    for await (const chunk of completionStream) text += chunk.choices[0]?.text ?? "";
    assert.equal(text, completion.choices[0]!.text);
    // The SDK's raw response exposes the receipt headers too.
    const { response } = await client.completions
      .create({ model: "tiny", prompt: "the moon", max_tokens: 4 })
      .withResponse();
    assert.match(response.headers.get("provenant-salt")!, /^[0-9a-f]{64}$/);
  });

  it("when an epoch closes before the serving record is onchain, the proof is pending; once it is, the proof verifies against the anchored root", async () => {
    const { response } = await post(handle, "/v1/completions", { model: "tiny", prompt: "water", max_tokens: 4 });
    const receipt = ((await response.json()) as { provenant_receipt: ReceiptObject }).provenant_receipt;
    const open = await fetch(`${handle.url}/v1/receipts/${receipt.digest}/proof`);
    assert.equal(open.status, 202);
    assert.equal(((await open.json()) as { reason: string }).reason, "epoch-open");
    const checkpoint = (await handle.closeEpoch())!;
    assert.ok(checkpoint.treeSize > receipt.leafIndex);
    await handle.anchorer.trigger();
    const pending = await fetch(`${handle.url}/v1/receipts/${receipt.digest}/proof`);
    assert.equal(pending.status, 202);
    const pendingBody = (await pending.json()) as { reason: string; proof: string[]; treeSize: number };
    assert.equal(pendingBody.reason, "log-not-registered");
    assert.equal(pendingBody.treeSize, checkpoint.treeSize);

    await world.publishServing(serving.manifestDigest, serving.logId);
    const proof = await waitFor("the checkpoint to be anchored", async () => {
      const r = await fetch(`${handle.url}/v1/receipts/${receipt.digest}/proof`);
      return r.status === 200 ? ((await r.json()) as ProofBody) : undefined;
    });
    assert.equal(proof.treeSize, checkpoint.treeSize);
    const root = Buffer.from(proof.rootHash, "hex");
    const payload = Buffer.from(receipt.envelope.payload, "base64");
    verifyReceiptInclusion(
      payload,
      receipt.leafIndex,
      proof.treeSize,
      proof.proof.map((h) => Buffer.from(h, "hex")),
      root,
    );
    // The root is the one onchain, and S signed its checkpoint note.
    const onchain = (await world.registry.contract.getFunction("checkpointRoot")(
      `0x${serving.logId}`,
      proof.treeSize,
    )) as string;
    assert.equal(onchain, `0x${proof.rootHash}`);
    assert.equal(verifyServingCheckpoint(proof.checkpoint.note, serving.logId, serving.publicKey).size, proof.treeSize);
    const tx = await world.registry.provider.getTransactionReceipt(proof.checkpoint.anchor!.txHash!);
    assert.ok(tx !== null && tx.gasUsed <= 60_000n, `anchor gas ${tx?.gasUsed}`);
    // A usage leaf is proved the same way.
    assert.equal(proof.checkpoint.anchor!.afterRestart, false);

    // A later epoch: consistency between the two anchored roots.
    await post(handle, "/v1/completions", { model: "tiny", prompt: "dog", max_tokens: 4 });
    const second = (await handle.closeEpoch())!;
    await waitFor("the second checkpoint to be anchored", async () =>
      ((await world.registry.contract.getFunction("latestCheckpoint")(`0x${serving.logId}`)) as [bigint])[0] ===
      BigInt(second.treeSize)
        ? true
        : undefined,
    );
    const c = (await (
      await fetch(`${handle.url}/v1/consistency?from=${checkpoint.treeSize}&to=${second.treeSize}`)
    ).json()) as { proof: string[]; fromRoot: string; toRoot: string };
    const secondOnchain = (await world.registry.contract.getFunction("checkpointRoot")(
      `0x${serving.logId}`,
      second.treeSize,
    )) as string;
    assert.equal(`0x${c.toRoot}`, secondOnchain);
    verifyConsistency(
      checkpoint.treeSize,
      second.treeSize,
      c.proof.map((h) => Buffer.from(h, "hex")),
      root,
      Buffer.from(secondOnchain.slice(2), "hex"),
    );
    const latest = (await (await fetch(`${handle.url}/v1/checkpoints/latest`)).json()) as { treeSize: number };
    assert.equal(latest.treeSize, second.treeSize);
    assert.equal((await fetch(`${handle.url}/v1/checkpoints/${checkpoint.treeSize}`)).status, 200);
  });

  it("when an epoch closes, its usage statement meters the receipts per client key and /metrics shows the same counters", async () => {
    await handle.closeEpoch();
    const tokens = { input: 0, output: 0 };
    for (const key of ["sk-alice", "sk-alice", "sk-bob"]) {
      const { response } = await post(
        handle,
        "/v1/completions",
        { model: "tiny", prompt: "yes or no", max_tokens: 3 },
        { authorization: `Bearer ${key}` },
      );
      const body = (await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
      tokens.input += body.usage.prompt_tokens;
      tokens.output += body.usage.completion_tokens;
    }
    await handle.closeEpoch();
    const usage = (await (await fetch(`${handle.url}/v1/usage/latest`)).json()) as {
      envelope: unknown;
      digest: string;
    };
    const { statement } = verifyUsageStatement(parseEnvelope(usage.envelope), serving.publicKey);
    const p = statement.predicate;
    assert.deepEqual(p.meters, {
      "gen_ai.usage.input_tokens": tokens.input,
      "gen_ai.usage.output_tokens": tokens.output,
      requests: 3,
    });
    assert.deepEqual(
      p.clients.map((c) => [c.clientKeyId, c.meters.requests]),
      [
        [clientKeyIdOf("sk-alice"), 2],
        [clientKeyIdOf("sk-bob"), 1],
      ].sort(),
    );
    // The usage statement is a leaf of the log: it is proved against the anchored root like a receipt.
    const usageProof = await waitFor("the usage statement to be anchored", async () => {
      const r = await fetch(`${handle.url}/v1/receipts/${usage.digest}/proof`);
      return r.status === 200 ? ((await r.json()) as ProofBody & { kind: string; leafIndex: number }) : undefined;
    });
    assert.equal(usageProof.kind, "usage");
    const usagePayload = Buffer.from((usage.envelope as { payload: string }).payload, "base64");
    verifyReceiptInclusion(
      usagePayload,
      usageProof.leafIndex,
      usageProof.treeSize,
      usageProof.proof.map((h) => Buffer.from(h, "hex")),
      Buffer.from(usageProof.rootHash, "hex"),
    );
    const metrics = await (await fetch(`${handle.url}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(`provenant_gen_ai_requests_total\\{client_key_id="${clientKeyIdOf("sk-alice")}"\\} 2\\n`),
    );
    assert.match(metrics, /^provenant_serve_up 1$/m);
    assert.match(metrics, /^provenant_serve_receipts_total \d+$/m);
  });

  it("when HTTP input is hostile, every request gets a coded error and the server keeps answering", async () => {
    const cases: [string, RequestInit & { path?: string }, number, string][] = [
      ["bad JSON", { method: "POST", body: "{not json" }, 400, "SERVE_BAD_REQUEST"],
      [
        "duplicate keys",
        { method: "POST", body: '{"model":"tiny","model":"x","prompt":"a"}' },
        400,
        "SERVE_BAD_REQUEST",
      ],
      ["deep nesting", { method: "POST", body: "[".repeat(5000) + "]".repeat(5000) }, 400, "SERVE_BAD_REQUEST"],
      ["an array body", { method: "POST", body: "[]" }, 400, "SERVE_BAD_REQUEST"],
      ["a huge body", { method: "POST", body: "x".repeat(2 * 1024 * 1024) }, 413, "SERVE_BAD_REQUEST"],
      [
        "unknown parameter",
        { method: "POST", body: '{"model":"tiny","prompt":"a","tools":[]}' },
        400,
        "SERVE_BAD_REQUEST",
      ],
      ["another model", { method: "POST", body: '{"model":"gpt-4","prompt":"a"}' }, 404, "SERVE_MODEL_NOT_FOUND"],
      [
        "max_tokens too large",
        { method: "POST", body: '{"model":"tiny","prompt":"a","max_tokens":1e9}' },
        400,
        "SERVE_BAD_REQUEST",
      ],
      ["n > 1", { method: "POST", body: '{"model":"tiny","prompt":"a","n":2}' }, 400, "SERVE_BAD_REQUEST"],
      [
        "a prompt longer than the context",
        { method: "POST", body: JSON.stringify({ model: "tiny", prompt: "the water ".repeat(2000) }) },
        400,
        "SERVE_CONTEXT_EXCEEDED",
      ],
      ["GET on a POST endpoint", { method: "GET" }, 405, "SERVE_BAD_REQUEST"],
      ["DELETE", { method: "DELETE", path: "/healthz" }, 405, "SERVE_BAD_REQUEST"],
      ["an unknown path", { method: "GET", path: "/v1/../../etc/passwd" }, 404, "NOT_FOUND"],
      ["a bad digest", { method: "GET", path: "/v1/receipts/zz/proof" }, 404, "NOT_FOUND"],
      ["an unknown receipt", { method: "GET", path: `/v1/receipts/${"0".repeat(64)}/proof` }, 404, "NOT_FOUND"],
      ["a bad size", { method: "GET", path: "/v1/consistency?from=5&to=1" }, 400, "SERVE_BAD_REQUEST"],
      ["two sizes", { method: "GET", path: "/v1/consistency?from=1&from=2&to=3" }, 400, "SERVE_BAD_REQUEST"],
      ["a bad log id", { method: "GET", path: "/v1/checkpoints/latest?log=xyz" }, 400, "SERVE_BAD_REQUEST"],
      ["a long URL", { method: "GET", path: `/v1/models/${"a".repeat(3000)}` }, 414, "SERVE_BAD_REQUEST"],
      ["a bad escape", { method: "GET", path: "/v1/models/%E0%A4%A" }, 400, "SERVE_BAD_REQUEST"],
    ];
    for (const [name, init, status, code] of cases) {
      const { path: at = "/v1/completions", ...request } = init;
      const response = await fetch(`${handle.url}${at}`, request);
      assert.equal(response.status, status, name);
      assert.equal(errorCode(await response.json()), code, name);
    }
    // Raw requests no client library would send.
    for (const raw of [
      "GET * HTTP/1.1\r\nhost: x\r\n\r\n",
      "BREW /v1/models HTTP/1.1\r\nhost: x\r\n\r\n",
      `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`,
      "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n",
      "\x00\x01\x02 garbage\r\n\r\n",
    ]) {
      const reply = await new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(handle.url).port), "127.0.0.1");
        let data = "";
        socket.on("data", (d) => (data += d.toString("latin1")));
        socket.on("close", () => resolve(data));
        socket.on("error", () => resolve(data));
        socket.setTimeout(5_000, () => socket.destroy());
        socket.end(raw);
      });
      assert.match(reply, /^HTTP\/1\.1 (400|404|405|413|431)/, JSON.stringify(raw.slice(0, 40)));
    }
    const health = await fetch(`${handle.url}/healthz`);
    assert.equal(health.status, 200);
    const { response } = await post(handle, "/v1/completions", { model: "tiny", prompt: "still there", max_tokens: 2 });
    assert.equal(response.status, 200);
    assert.match(
      await (await fetch(`${handle.url}/metrics`)).text(),
      /provenant_serve_errors_total\{code="SERVE_BAD_REQUEST"\} \d+/,
    );
  });
});

interface ProofBody {
  treeSize: number;
  rootHash: string;
  proof: string[];
  checkpoint: { note: string; anchor: { txHash: string | null; afterRestart: boolean } | null };
}

function captureIo(env: NodeJS.ProcessEnv): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), isTty: false, env, cwd: world.work },
    out,
    err,
  };
}

async function registryRevoke(args: string[], key: string): Promise<{ code: number; json: Record<string, unknown> }> {
  const { io, out } = captureIo({ PROVENANT_PRIVATE_KEY: key });
  const code = await registryCommands[0]!.run(
    [...args, "--rpc", world.chain.url, "--registry", world.registry.address, "--json"],
    io,
  );
  return { code, json: JSON.parse(out.join("")) as Record<string, unknown> };
}

describe("the off-switch", () => {
  it("when the model's record is revoked with provenant registry revoke, every request fails MODEL_REVOKED within one interval and /healthz says why", async () => {
    const finetune = await world.publishModelRecord(1);
    const handle = await serve("b", { require: "finetune" });
    const { response } = await post(handle, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 2 });
    assert.equal(response.status, 200);

    // The command refuses a key without REVOKER_ROLE and an unknown record before sending anything.
    const unauthorized = await registryRevoke([finetune, "--reason", "x"], DEV_PRIVATE_KEYS[2]);
    assert.equal(unauthorized.code, 1);
    assert.equal((unauthorized.json.errors as { code: string }[])[0]!.code, "REGISTRY_UNAUTHORIZED");
    const unknown = await registryRevoke(["77".repeat(32), "--reason", "x"], DEV_PRIVATE_KEYS[0]);
    assert.equal(unknown.code, 1);
    assert.equal((unknown.json.errors as { code: string }[])[0]!.code, "NOT_FOUND");

    const revoked = await registryRevoke([finetune, "--reason", "weights leaked"], DEV_PRIVATE_KEYS[0]);
    assert.equal(revoked.code, 0, JSON.stringify(revoked.json));
    assert.equal(revoked.json.kind, "finetune");
    const revokedAt = performance.now();
    const checksBefore = handle.monitor.checks;
    const refused = await waitFor(
      "requests to be refused",
      async () => {
        const r = await post(handle, "/v1/chat/completions", {
          model: "tiny",
          messages: [{ role: "user", content: "hi" }],
        });
        return r.response.status === 503 ? ((await r.response.json()) as unknown) : undefined;
      },
      15_000,
    );
    // Within one interval: the first check that started after the revocation was mined closed the gate (a check
    // already in flight then may have read the chain before it), whatever the machine's load makes a check cost.
    const checksAfter = handle.monitor.checks - checksBefore;
    assert.ok(checksAfter <= 2, `refused after ${checksAfter} checks`);
    assert.ok(performance.now() - revokedAt < 10_000);
    assert.equal(errorCode(refused), "MODEL_REVOKED");
    const health = await fetch(`${handle.url}/healthz`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { status: string; reason: { code: string; message: string } };
    assert.equal(body.status, "revoked");
    assert.equal(body.reason.code, "MODEL_REVOKED");
    assert.match(body.reason.message, new RegExp(`${finetune}.*weights leaked`));
    const events = await readSse(
      (await post(handle, "/v1/completions", { model: "tiny", prompt: "a", stream: true })).response,
    ).catch(() => []);
    assert.equal(events.length, 0); // a refusal before generation is a plain HTTP error, not a stream
    assert.match(await (await fetch(`${handle.url}/metrics`)).text(), /^provenant_serve_model_revoked 1$/m);

    // Twice is reported, not reverted.
    const again = await registryRevoke([finetune, "--reason", "again"], DEV_PRIVATE_KEYS[0]);
    assert.equal(again.code, 0);
    assert.equal(again.json.alreadyRevoked, true);
    // A new server for the revoked model does not start.
    await assert.rejects(
      serve("b2", { require: "finetune" }),
      (e: unknown) => isProvenantError(e) && e.code === "MODEL_REVOKED",
    );
  });

  it("when the serving record is revoked, that server refuses with MODEL_REVOKED while the model stays servable elsewhere", async () => {
    // This server also bundles GPU evidence (the GPU simulator), bound to its REPORT_DATA as the job's is.
    const handle = await serve("c", { require: "any", gpuEvidence: simGpuProvider({ now: NOW }) });
    const serving = await servingOf(handle);
    const bundle = readBundle(new Uint8Array(await (await fetch(`${handle.url}/v1/attestation`)).arrayBuffer()));
    assert.equal(bundle.evidence.gpu?.length, 1);
    const reportData = Buffer.from(bundle.evidence.cpu.report, "base64").subarray(0x50, 0x90);
    const gpuEvidence = Buffer.from(bundle.evidence.gpu![0]!.evidence, "base64");
    assert.equal(
      Buffer.from(parseGpuEvidence(gpuEvidence).request.nonce).toString("hex"),
      Buffer.from(gpuNonceFor(reportData)).toString("hex"),
    );
    await world.publishServing(serving.manifestDigest, serving.logId);
    await waitFor("the serving record to be seen", () => (handle.monitor.servingRecorded ? true : undefined), 15_000);
    await world.revoke(serving.manifestDigest, "serving key retired");
    const refused = await waitFor(
      "requests to be refused",
      async () => {
        const r = await post(handle, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 2 });
        return r.response.status === 503 ? ((await r.response.json()) as unknown) : undefined;
      },
      15_000,
    );
    assert.equal(errorCode(refused), "MODEL_REVOKED");
    const health = (await (await fetch(`${handle.url}/healthz`)).json()) as { reason: { message: string } };
    assert.match(health.reason.message, /serving record .* revoked: serving key retired/);
    // The first server (require audit, another serving record) still answers.
    const first = handles[0]!;
    assert.equal(
      (await post(first, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 2 })).response.status,
      200,
    );
  });

  it("when a server restarts on its data directory after a clean stop, seq goes on without a gap and GET /v1/attestation?logId= serves the earlier log's bundle", async () => {
    const first = await serve("e");
    const firstBundle = new Uint8Array(await (await fetch(`${first.url}/v1/attestation`)).arrayBuffer());
    const before = await servingOf(first);
    const last = (await post(first, "/v1/completions", { model: "tiny", prompt: "a", max_tokens: 2 })).response;
    const lastReceipt = ((await last.json()) as { provenant_receipt: ReceiptObject }).provenant_receipt;
    await first.stop();

    const second = await serve("e");
    const after = await servingOf(second);
    assert.notEqual(after.logId, before.logId);
    assert.equal(after.statement.predicate.log.firstSeq, lastReceipt.seq + 1);
    assert.deepEqual(after.statement.predicate.predecessor, {
      logId: before.logId,
      lastSeq: lastReceipt.seq,
      lastReceipt: lastReceipt.digest,
    });
    const earlier = await fetch(`${second.url}/v1/attestation?logId=${before.logId}`);
    assert.equal(earlier.status, 200);
    assert.deepEqual(new Uint8Array(await earlier.arrayBuffer()), firstBundle);
    const current = await fetch(`${second.url}/v1/attestation?logId=sha256:${after.logId.toUpperCase()}`);
    assert.equal(
      verifyServingStatement(readBundle(new Uint8Array(await current.arrayBuffer())).envelopes[0]!).logId,
      after.logId,
    );
    const unknown = await fetch(`${second.url}/v1/attestation?logId=${"ab".repeat(32)}`);
    assert.equal(unknown.status, 404);
    assert.equal(errorCode(await unknown.json()), "NOT_FOUND");
    for (const bad of ["logId=xyz", `logId=${before.logId}&logId=${after.logId}`]) {
      const response = await fetch(`${second.url}/v1/attestation?${bad}`);
      assert.equal(response.status, 400, bad);
      assert.equal(errorCode(await response.json()), "SERVE_BAD_REQUEST");
    }
    const next = (await post(second, "/v1/completions", { model: "tiny", prompt: "b", max_tokens: 2 })).response;
    const receipt = ((await next.json()) as { provenant_receipt: ReceiptObject }).provenant_receipt;
    const { statement } = verifyReceipt(receipt.envelope, after.publicKey);
    assert.equal(statement.predicate.seq, lastReceipt.seq + 1);
    assert.equal(statement.predicate.prevReceipt, lastReceipt.digest);
  });

  it("when the model has no record of the required kind, the server does not start (MODEL_NOT_RECORDED)", async () => {
    const real = await hashModel(world.modelPath);
    await assert.rejects(
      serve("d", { hash: async () => ({ ...real, rootDigest: "9".repeat(64) }) }),
      (e: unknown) => isProvenantError(e) && e.code === "MODEL_NOT_RECORDED",
    );
  });
});
