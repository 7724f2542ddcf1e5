// The explorer's usage panel end to end, in Node through the code the page runs (offchain/client/usage.ts and
// web/src/attests.ts usageHtml): a real `provenant serve` (node-llama-cpp with the tiny GGUF, the simulator on a fixed
// clock, real HTTP) and a real Hardhat chain. The serving record is published as the verifier would (its manifest,
// log id and the bundle's measurement), the bundle is re-verified against it, the usage statement is checked against
// S and the anchored root: pending before the log is registered, anchored after; a server that tampers fails with a
// code and shows no numbers. The read-only endpoints answer cross-origin reads (CORS); completions and /metrics do not.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { build } from "vite";

import { readBundle } from "../lib/bundle/index.ts";
import { clientKeyIdOf, verifyServingStatement, type VerifiedServing } from "../lib/receipt/index.ts";
import { parseReport } from "../lib/snp/parse.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { createRegistryClient, type RegistryClient } from "../offchain/client/index.ts";
import type { RecordFacts } from "../offchain/client/details-core.ts";
import { serveExplorer, type ExplorerServer } from "../offchain/client/serve.ts";
import { fetchServingUsage } from "../offchain/client/usage.ts";
import { simProvider } from "../enclave-job/attest/providers.ts";
import { startServe, type ServeHandle } from "../serve/server.ts";
import { createServeWorld, NOW, tickingClock, waitFor, type ServeWorld } from "../serve/testing.ts";
import { usageHtml } from "../web/src/attests.ts";
import { chromiumSkip, launchChromium, type LaunchedChromium } from "./chromium.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

const quiet = (await import("pino")).default({ level: "silent" });

let world: ServeWorld;
let handle: ServeHandle;
let serving: VerifiedServing;
let measurementHash: string;
let client: RegistryClient;
let proxy: Server | undefined;
/** What the tampering server in front of `provenant serve` changes: nothing, the usage payload, the proof, the bundle. */
let tamper: "" | "usage" | "proof" | "bundle" = "";
let tamperingUrl: string;

before(async () => {
  world = await createServeWorld("usage-web");
  await world.publishModelRecord(2);
  handle = await startServe({
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
    dataDir: path.join(world.work, "serve"),
    threads: 1,
    gpu: false,
    contextSize: 512,
    now: tickingClock(NOW),
    logger: quiet,
    jobCodeDigest: async () => "c0de".repeat(16),
  });
  const bundle = readBundle(new Uint8Array(await (await fetch(`${handle.url}/v1/attestation`)).arrayBuffer()));
  serving = verifyServingStatement(bundle.envelopes[0]!, Buffer.from(bundle.signer.publicKey, "base64"));
  const report = parseReport(Buffer.from(bundle.evidence.cpu.report, "base64"));
  measurementHash = createHash("sha256").update(report.measurement).digest("hex");
  client = await createRegistryClient({ rpcUrl: world.chain.url, address: world.registry.address });
  proxy = createServer((req, res) => {
    void (async () => {
      const upstream = await fetch(`${handle.url}${req.url}`);
      let body = Buffer.from(await upstream.arrayBuffer());
      if (tamper === "usage" && req.url!.startsWith("/v1/usage/")) {
        const json = JSON.parse(body.toString()) as { envelope: { payload: string } };
        const payload = Buffer.from(json.envelope.payload, "base64");
        const at = payload.indexOf('"requests":') + '"requests":'.length;
        payload[at] = payload[at]! + 1; // one more request metered
        json.envelope.payload = payload.toString("base64");
        body = Buffer.from(JSON.stringify(json));
      } else if (tamper === "proof" && req.url!.includes("/proof")) {
        const json = JSON.parse(body.toString()) as { proof: string[] };
        json.proof = json.proof.map((h) => h.replace(/^./, (c) => (c === "0" ? "1" : "0")));
        body = Buffer.from(JSON.stringify(json));
      } else if (tamper === "bundle" && req.url!.startsWith("/v1/attestation")) {
        body = Buffer.from(
          body
            .toString()
            .replace(/("nonce":\s*")(.)/, (_m, head: string, c: string) => `${head}${c === "0" ? "1" : "0"}`),
        );
      }
      res.writeHead(upstream.status, { "content-type": "application/json", "access-control-allow-origin": "*" });
      res.end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => proxy!.listen(0, "127.0.0.1", resolve));
  tamperingUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => (proxy === undefined ? resolve() : proxy.close(() => resolve())));
  client?.close();
  await handle?.stop();
  await (world as ServeWorld | undefined)?.close();
});

/** The record the verifier publishes for the serving bundle (before it is onchain, as the page would read it after). */
const facts = (): RecordFacts => ({
  manifestDigest: serving.manifestDigest,
  modelHash: world.modelRoot,
  kind: "serving",
  parentModelHash: serving.logId,
  measurementHash,
  policyDigest: null,
});

async function complete(apiKey: string): Promise<{ prompt_tokens: number; completion_tokens: number }> {
  const response = await fetch(`${handle.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: "tiny", prompt: "water", max_tokens: 3 }),
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
}

describe("the explorer's usage panel against a real server and chain", () => {
  it("when a page on another origin reads the read-only endpoints it may (CORS, GET-only preflight); completions and /metrics stay closed", async () => {
    const origin = { origin: "http://explorer.example" };
    for (const p of ["/v1/attestation", "/v1/logs", "/v1/usage/latest", "/v1/checkpoints/latest", "/v1/consistency"]) {
      const r = await fetch(`${handle.url}${p}`, { headers: origin });
      await r.arrayBuffer();
      assert.equal(r.headers.get("access-control-allow-origin"), "*", p);
    }
    const preflight = await fetch(`${handle.url}/v1/usage/latest?log=${serving.logId}`, {
      method: "OPTIONS",
      headers: { ...origin, "access-control-request-method": "GET" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
    assert.equal(preflight.headers.get("access-control-allow-methods"), "GET");
    for (const [method, p] of [
      ["OPTIONS", "/v1/chat/completions"],
      ["POST", "/v1/chat/completions"],
      ["GET", "/metrics"],
      ["GET", "/healthz"],
      ["OPTIONS", "/metrics"],
      ["POST", "/v1/usage/latest"],
    ] as const) {
      const r = await fetch(`${handle.url}${p}`, {
        method,
        headers: { ...origin, "content-type": "application/json" },
        ...(method === "POST" ? { body: "{not json" } : {}),
      });
      await r.arrayBuffer();
      assert.equal(r.headers.get("access-control-allow-origin"), null, `${method} ${p}`);
      assert.ok(r.status !== 204, `${method} ${p}`);
    }
  });

  it("when no epoch has closed, the panel says none; when one has but the log is not registered, it is verified and pending; once anchored, verified and anchored with the metered numbers", async () => {
    const none = await fetchServingUsage({ servingUrl: handle.url }, facts(), client);
    assert.deepEqual([none.status, none.error?.code], ["none", "NOT_FOUND"]);
    assert.match(usageHtml(none), /data-status="none"/);

    const sums = { input: 0, output: 0 };
    for (const key of ["sk-alice", "sk-bob", "sk-alice"]) {
      const u = await complete(key);
      sums.input += u.prompt_tokens;
      sums.output += u.completion_tokens;
    }
    await handle.closeEpoch();
    await handle.anchorer.trigger();
    const pending = await fetchServingUsage({ servingUrl: handle.url }, facts(), client);
    assert.equal(pending.error, null);
    assert.deepEqual([pending.status, pending.signature, pending.anchored], ["pending", true, false]);
    assert.equal(pending.pendingReason, "log-not-registered");

    await world.publishServing(serving.manifestDigest, serving.logId, measurementHash);
    await waitFor("the usage statement's checkpoint to be anchored", async () =>
      (await client.latestCheckpoint(serving.logId)) === null ? undefined : true,
    );
    const record = await client.record(serving.manifestDigest);
    assert.ok(record !== null && record.kind === "serving");
    assert.equal(record.measurementHash?.replace(/^0x/, ""), measurementHash);
    const usage = await fetchServingUsage({ servingUrl: `${handle.url}/` }, record, client);
    assert.equal(usage.error, null);
    assert.deepEqual([usage.status, usage.signature, usage.anchored], ["anchored", true, true]);
    assert.deepEqual(usage.meters, {
      "gen_ai.usage.input_tokens": sums.input,
      "gen_ai.usage.output_tokens": sums.output,
      requests: 3,
    });
    assert.equal(usage.clients, 2);
    assert.equal(usage.recovery, false);
    const anchored = await client.checkpointOf(serving.logId, usage.inclusion!.treeSize);
    assert.equal(anchored.rootHash, usage.inclusion!.rootHash);
    const html = usageHtml(usage);
    assert.match(html, /data-status="anchored"/);
    assert.match(html, new RegExp(`usage-input"><th>Input tokens</th><td>${sums.input}<`));
    assert.match(html, /usage-requests"><th>Requests<\/th><td>3</);
    assert.match(html, /usage-clients"><th>Clients<\/th><td>2</);
    assert.ok(clientKeyIdOf("sk-alice") !== clientKeyIdOf("sk-bob"));
  });

  it("when the server tampers with the usage statement, its proof or its bundle, the panel shows failed with the code and none of the numbers", async () => {
    const record = await client.record(serving.manifestDigest);
    assert.ok(record !== null);
    for (const [m, code] of [
      ["usage", "DSSE_BAD_SIGNATURE"],
      ["proof", "MERKLE_PROOF_INVALID"],
      ["bundle", "BINDING_NONCE_MISMATCH"],
    ] as const) {
      tamper = m;
      const usage = await fetchServingUsage({ servingUrl: tamperingUrl }, record, client);
      assert.deepEqual([usage.status, usage.error?.code], ["failed", code], m);
      assert.equal(usage.meters, null);
      const html = usageHtml(usage);
      assert.match(html, new RegExp(`data-status="failed" data-code="${code}"`));
      assert.doesNotMatch(html, /Input tokens|Requests/);
    }
    tamper = "";
    assert.equal((await fetchServingUsage({ servingUrl: tamperingUrl }, record, client)).status, "anchored");
  });
});

describe("the explorer's usage panel in Chromium", { skip: chromiumSkip() }, () => {
  let work: string;
  let explorer: ExplorerServer;
  let browser: LaunchedChromium;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "provenant-usage-web-"));
    const distDir = path.join(work, "dist");
    await build({ configFile: path.join(ROOT, "web/vite.config.ts"), logLevel: "error", build: { outDir: distDir } });
    explorer = await serveExplorer({
      rpcUrl: world.chain.url,
      distDir,
      config: {
        defaultNetwork: "localhost",
        networks: [
          {
            name: "localhost",
            label: "Local chain",
            rpcUrl: "/rpc",
            chainId: world.chain.chainId,
            address: world.registry.address,
            logRange: 10_000,
          },
        ],
      },
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await explorer?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** Opens the model's page (with `?serving=` when given) and waits for the record panels to settle. */
  async function usagePanel(servingUrl: string | null): Promise<{ status: string; code: string | null; text: string }> {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(120_000);
    try {
      const query = servingUrl === null ? "" : `?serving=${encodeURIComponent(servingUrl)}`;
      await page.goto(`${explorer.url}${query}#/model/${world.modelRoot}`);
      await page.waitForSelector("#records[data-attests=done]");
      const usage = page.locator(`.record[data-manifest="${serving.manifestDigest}"] .usage`);
      return {
        status: (await usage.getAttribute("data-status")) ?? "",
        code: await usage.getAttribute("data-code"),
        text: await usage.innerText(),
      };
    } finally {
      await page.close();
    }
  }

  it("when the page has the server's URL, the serving record shows its latest usage verified and anchored (a cross-origin read); without one, how to set it; from a tampering server, failed with its code", async () => {
    tamper = "";
    const shown = await usagePanel(handle.url);
    assert.equal(shown.status, "anchored", shown.text);
    assert.match(shown.text, /verified/);
    assert.match(shown.text, /Requests\s+3/);
    assert.match(shown.text, /Clients\s+2/);
    const unset = await usagePanel(null);
    assert.equal(unset.status, "no-serving");
    assert.match(unset.text, /Set a serving URL/);
    tamper = "usage";
    try {
      const failed = await usagePanel(tamperingUrl);
      assert.deepEqual([failed.status, failed.code], ["failed", "DSSE_BAD_SIGNATURE"]);
      assert.doesNotMatch(failed.text, /Requests/);
    } finally {
      tamper = "";
    }
  });
});
