// The explorer page in Debian Chromium (playwright-core) against a local chain with published records: a recorded,
// a revoked and an unknown hash, a malformed one, dropped model files (digest == lib/oms, hashed on Web Workers with
// WebCrypto and with hash-wasm), dropped bundles whose verdict and manifest digest equal lib's, a tampered bundle and
// an unreachable RPC; test/web-build.test.ts checks the build itself. Bundles are minted and verified at a fixed time.
// Against a second chain with the verifier service running (startAttestedFixture), the page shows next to each record
// what it attests, re-verified in the browser: the measurement's name, the job code, the development label, audit
// metrics, a simulated GPU, a serving record as serving with its checkpoint, and a tampered bundle from a fake verifier
// as not matching. Screenshots go to test-results/. Without /usr/bin/chromium the suite is skipped with one line
// saying how to install it, except under CI=true, where it fails (test/chromium.ts).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import type { Page } from "playwright-core";
import { build } from "vite";

import { hashModel } from "../lib/oms/index.ts";
import { policyDigest, verifyBundle } from "../offchain/pipeline/index.ts";
import { createBundleFactory, type MadeBundle } from "../offchain/testing/bundles.ts";
import { serveExplorer, type ExplorerServer } from "../offchain/client/serve.ts";
import { chromiumSkip, launchChromium, type LaunchedChromium } from "./chromium.ts";
import {
  digestOf,
  makeTestBundle,
  SIM_MEASUREMENT,
  SIM_MEASUREMENT_NAME,
  startAttestedFixture,
  startLookupFixture,
  type AttestedFixture,
  type LookupFixture,
  type TestBundle,
} from "./lookup-fixture.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const SHOTS = path.join(ROOT, "test-results");

/** The simulator's clock and the verification time: nothing here depends on the day the test runs. */
const NOW = new Date("2026-11-27T12:00:00Z");

describe("explorer page in Chromium", { skip: chromiumSkip() }, () => {
  let f: LookupFixture;
  let server: ExplorerServer;
  let browser: LaunchedChromium;
  let page: Page;
  let distDir: string;
  let work: string;
  let modelFile: string;
  let modelHash: string;
  let bundle: TestBundle;
  let simBundle: MadeBundle;
  let simVerdict: ReturnType<typeof verifyBundle>;
  let simBadSignature: MadeBundle;
  let simBadVerdict: ReturnType<typeof verifyBundle>;
  let simPolicyDigest: string;
  let folder: string;
  let folderHash: string;
  /** A second chain with the verifier service running, and the page served with it as its verifier. */
  let attested: AttestedFixture;
  let attestedServer: ExplorerServer;
  let attestedPage: Page;

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    work = await mkdtemp(path.join(tmpdir(), "provenant-browser-"));
    distDir = path.join(work, "dist");
    await build({
      configFile: path.join(ROOT, "web/vite.config.ts"),
      logLevel: "error",
      build: { outDir: distDir, emptyOutDir: true },
    });
    f = await startLookupFixture();
    modelFile = path.join(work, "tiny.gguf");
    const data = Buffer.alloc(5 * 1024 * 1024 + 3);
    for (let i = 0; i < data.length; i += 32) Buffer.from(digestOf(`w${i}`), "hex").copy(data, i);
    await writeFile(modelFile, data);
    modelHash = (await hashModel(modelFile)).rootDigest;
    bundle = await makeTestBundle(modelHash);
    await f.publish([bundle.item]);
    // A bundle from the SNP simulator that the offline pipeline accepts, recorded as the verifier would record it.
    const factory = await createBundleFactory({ keyDir: path.join(work, "sim"), now: NOW });
    simBundle = factory.make({ seed: "browser fine-tune", kind: "finetune" });
    simVerdict = verifyBundle(simBundle.bytes, { policy: factory.policy, now: NOW });
    assert.equal(simVerdict.ok, true, JSON.stringify(simVerdict.errors));
    await f.publish([{ ...simVerdict.record!, reportedTcb: BigInt(simVerdict.record!.reportedTcb) }]);
    simBadSignature = factory.make({
      seed: "browser bad signature",
      kind: "finetune",
      variant: "bad-envelope-signature",
    });
    simBadVerdict = verifyBundle(simBadSignature.bytes, { policy: factory.policy, now: NOW });
    simPolicyDigest = policyDigest(factory.policy);
    folder = path.join(work, "model-dir");
    await mkdir(path.join(folder, "tokenizer"), { recursive: true });
    await mkdir(path.join(folder, ".git"), { recursive: true });
    await writeFile(path.join(folder, "weights.gguf"), data.subarray(0, 2 * 1024 * 1024));
    await writeFile(path.join(folder, "config.json"), '{"layers":2}');
    await writeFile(path.join(folder, "tokenizer", "vocab.txt"), "a\nb\n");
    await writeFile(path.join(folder, ".git", "HEAD"), "ref: refs/heads/main");
    folderHash = (await hashModel(folder)).rootDigest;
    const local = { rpcUrl: "/rpc", chainId: f.chain.chainId, address: f.address, logRange: 10_000 };
    server = await serveExplorer({
      rpcUrl: f.chain.url,
      distDir,
      config: {
        defaultNetwork: "localhost",
        networks: [
          { name: "localhost", label: "Local chain", ...local },
          { name: "offline", label: "Offline node", ...local, rpcUrl: "http://127.0.0.1:9" },
          { name: "sapphire-testnet", label: "Sapphire testnet", ...local, chainId: 23295 },
        ],
      },
    });
    attested = await startAttestedFixture();
    attestedServer = await serveExplorer({
      rpcUrl: attested.chain.url,
      verifierUrl: attested.apiUrl,
      distDir,
      config: {
        defaultNetwork: "localhost",
        networks: [
          {
            name: "localhost",
            label: "Local chain",
            rpcUrl: "/rpc",
            chainId: attested.chain.chainId,
            address: attested.registry.address,
            logRange: 10_000,
          },
        ],
      },
    });
    browser = await launchChromium();
    page = await openPage(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await attestedServer?.close();
    await attested?.close();
    await f?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  async function openPage(url: string): Promise<Page> {
    const p = await browser.context.newPage();
    // The machine is shared: give a slow moment room rather than a flaky failure.
    p.setDefaultTimeout(120_000);
    await p.goto(url);
    await p.waitForSelector("body[data-state=ready]");
    return p;
  }

  /** Waits for the page's own hashing of a drop to finish and for the lookup it starts; returns the page's digest. */
  async function hashedByPage(p: Page = page): Promise<string> {
    await p.waitForFunction(() => document.getElementById("progress")?.dataset.rootDigest !== undefined);
    const digest = (await p.getAttribute("#progress", "data-root-digest"))!;
    await p.waitForFunction(
      (h) => document.body.dataset.state !== "busy" && document.querySelector("#model-hash")?.textContent === h,
      digest,
    );
    return digest;
  }

  /** Clears what an earlier drop left, so that hashedByPage waits for this one. */
  async function clearHashed(p: Page = page): Promise<void> {
    // Choosing files (a folder above all) waits on the page: a page behind another tab would never get them.
    await p.bringToFront();
    await p.evaluate(() => {
      const progress = document.getElementById("progress")!;
      for (const key of ["seconds", "bytes", "rootDigest"]) delete progress.dataset[key];
    });
  }

  async function open(hash: string): Promise<void> {
    await page.evaluate((h) => (location.hash = `#/model/${h}`), hash);
    await page.waitForFunction(
      (h) => document.body.dataset.state !== "busy" && document.querySelector("#model-hash")?.textContent === h,
      hash,
    );
  }

  it("when a recorded hash is looked up, it shows the records, the lineage and an attested verdict", async () => {
    await page.fill("#hash", f.fineTunedModel);
    await page.click("button[type=submit]");
    await open(f.fineTunedModel);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "attested");
    assert.equal(await page.locator("#records .record").count(), 2);
    const lineage = await page.locator("#lineage li").allTextContents();
    assert.equal(lineage.length, 2);
    assert.match(lineage[1]!, /base model/);
    assert.match(await page.locator("#records").innerText(), new RegExp(f.items[1]!.measurementHash));
    await page.screenshot({ path: path.join(SHOTS, "explorer-recorded.png"), fullPage: true });
  });

  it("when a revoked hash is looked up, it shows the revocation and its reason", async () => {
    await open(f.revokedModel);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "revoked");
    assert.match(await page.locator("#records").innerText(), /evaluation harness was tampered with/);
    await page.screenshot({ path: path.join(SHOTS, "explorer-revoked.png"), fullPage: true });
  });

  it("when an unknown hash is looked up, it says not recorded without an error", async () => {
    await open(digestOf("never published"));
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "not-recorded");
    assert.equal(await page.isHidden("#error"), true);
    await page.screenshot({ path: path.join(SHOTS, "explorer-unknown.png"), fullPage: true });
  });

  it("when a malformed hash is entered, it shows HASH_MALFORMED inline", async () => {
    await page.fill("#hash", "0xabc");
    await page.click("button[type=submit]");
    await page.waitForSelector("#error:not([hidden])");
    assert.equal(await page.getAttribute("#error", "data-code"), "HASH_MALFORMED");
  });

  it("when a model file is dropped, it hashes it on a worker with WebCrypto to the lib/oms digest", async () => {
    await clearHashed();
    await page.setInputFiles("#pick-files", modelFile);
    assert.equal(await hashedByPage(), modelHash);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "attested");
    assert.match((await page.textContent("#progress-text")) ?? "", /hashed 1 file.*; webcrypto, 1 worker/);
    assert.equal(await page.evaluate(() => document.getElementById("progress-bar")!.style.width), "100%");
    await page.screenshot({ path: path.join(SHOTS, "explorer-model-file.png"), fullPage: true });
  });

  it("when a model folder is chosen, its browser digest equals lib/oms's", async () => {
    await clearHashed();
    await page.setInputFiles("#pick-folder", folder);
    assert.equal(await hashedByPage(), folderHash);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "not-recorded");
    assert.match((await page.textContent("#progress-text")) ?? "", /hashed 3 file.*worker/);
  });

  it("when hash-wasm is asked for (as for files above 256 MiB), a worker streams the file to the same digest", async () => {
    const streaming = await openPage(`${server.url}?hashEngine=hash-wasm`);
    try {
      await streaming.setInputFiles("#pick-files", modelFile);
      assert.equal(await hashedByPage(streaming), modelHash);
      assert.match((await streaming.textContent("#progress-text")) ?? "", /; hash-wasm, 1 worker/);
    } finally {
      await streaming.close();
    }
  });

  it("when a file of 16 MiB or more is dropped, the page measures the faster engine here and gets lib's digest", async () => {
    const big = path.join(work, "big.bin");
    await writeFile(big, Buffer.alloc(17 * 1024 * 1024, 0x5a));
    const expected = (await hashModel(big)).rootDigest;
    await clearHashed();
    await page.setInputFiles("#pick-files", big);
    assert.equal(await hashedByPage(), expected);
    assert.match((await page.textContent("#progress-text")) ?? "", /; (webcrypto|hash-wasm), 1 worker/);
  });

  it("when a file is dragged onto the drop zone, it is hashed like a chosen one", async () => {
    const expected = createHash("sha256").update(createHash("sha256").update("dropped weights").digest()).digest("hex");
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped weights"], "dropped.bin"));
      return dt;
    });
    await clearHashed();
    await page.dispatchEvent("#drop", "drop", { dataTransfer });
    assert.equal(await hashedByPage(), expected);
  });

  it("when a simulator bundle lib accepts is dropped, the page verifies it too, with lib's manifest digest", async () => {
    const file = path.join(work, "sim.provenance.json");
    await writeFile(file, simBundle.bytes);
    await page.evaluate(() => (location.hash = ""));
    await page.setInputFiles("#pick-bundle", file);
    await page.waitForSelector("[data-verdict=bundle-verified]");
    await page.waitForSelector("body[data-state=done] #records");
    assert.equal(await page.textContent("#manifest-digest"), simVerdict.record!.manifestDigest.replace(/^0x/, ""));
    assert.equal(await page.locator("#bundle li.fail").count(), 0);
    const evidence = await page.locator("#evidence").innerText();
    assert.match(evidence, /AMD SEV-SNP (Milan|Genoa|Turin)/);
    // No verifier is set for this page: the root is not claimed from the bundle's unsigned provider label.
    assert.match(evidence, /Root\s+— \(no verifier verdict/);
    assert.doesNotMatch(evidence, /provider/);
    assert.match(evidence, new RegExp(simPolicyDigest.replace(/^0x/, "")));
    assert.equal(await page.locator("#lineage li").count(), 2);
    await page.screenshot({ path: path.join(SHOTS, "explorer-sim-bundle.png"), fullPage: true });
  });

  it("when a bundle is dropped, it checks signatures in the browser and compares the manifest with the chain", async () => {
    const file = path.join(work, "audit.provenance.json");
    await writeFile(file, bundle.bytes);
    await page.evaluate(() => (location.hash = ""));
    await page.setInputFiles("#pick-bundle", file);
    await page.waitForSelector("[data-verdict=bundle-verified]");
    await page.waitForSelector("body[data-state=done] #records");
    assert.equal(await page.textContent("#manifest-digest"), bundle.manifestDigest);
    assert.equal(await page.locator("#bundle li.fail").count(), 0);
    assert.match(await page.locator("#evidence").innerText(), /Genoa/);
    assert.match(await page.locator("#evidence").innerText(), new RegExp(bundle.measurementHash));
    await page.screenshot({ path: path.join(SHOTS, "explorer-bundle.png"), fullPage: true });
  });

  it("when a simulator bundle lib refuses for its signature is dropped, the page refuses it too", async () => {
    assert.equal(simBadVerdict.ok, false);
    assert.ok(
      simBadVerdict.errors.some((e) => e.code === "DSSE_BAD_SIGNATURE"),
      JSON.stringify(simBadVerdict.errors),
    );
    const file = path.join(work, "sim-bad.provenance.json");
    await writeFile(file, simBadSignature.bytes);
    await page.evaluate(() => (location.hash = ""));
    await page.setInputFiles("#pick-bundle", file);
    await page.waitForSelector("[data-verdict=bundle-failed]");
    assert.match((await page.locator("#bundle li.fail").first().textContent()) ?? "", /signature/);
  });

  it("when a tampered bundle is dropped, it says the bundle is not verified", async () => {
    const json = JSON.parse(Buffer.from(bundle.bytes).toString("utf8"));
    const sig = Buffer.from(json.envelopes[0].signatures[0].sig, "base64");
    sig[sig.length - 1] ^= 1;
    json.envelopes[0].signatures[0].sig = sig.toString("base64");
    const file = path.join(work, "tampered.provenance.json");
    await writeFile(file, JSON.stringify(json));
    await page.setInputFiles("#pick-bundle", file);
    await page.waitForSelector("[data-verdict=bundle-failed]");
    assert.match((await page.locator("#bundle li.fail").first().textContent()) ?? "", /signature/);
    await page.screenshot({ path: path.join(SHOTS, "explorer-bundle-tampered.png"), fullPage: true });
  });

  it("when the RPC is unreachable or the chain is wrong, it shows the code inline", async () => {
    await page.selectOption("#network", "offline");
    await page.waitForSelector("#error:not([hidden])");
    assert.equal(await page.getAttribute("#error", "data-code"), "RPC_UNAVAILABLE");
    await page.selectOption("#network", "sapphire-testnet");
    await page.waitForFunction(() => document.querySelector("#error")?.getAttribute("data-code") === "CHAIN_MISMATCH");
    await page.screenshot({ path: path.join(SHOTS, "explorer-error.png"), fullPage: true });
    await page.selectOption("#network", "localhost");
  });

  /** Opens a model on a page served with a verifier and waits until every record's panel is filled in. */
  async function openAttested(p: Page, hash: string): Promise<void> {
    await p.evaluate((h) => (location.hash = `#/model/${h}`), hash);
    await p.waitForFunction(
      (h) =>
        document.body.dataset.state === "done" &&
        document.querySelector("#model-hash")?.textContent === h &&
        document.getElementById("records")?.dataset.attests === "done",
      hash,
    );
  }

  it("when a record's bundle is on the verifier, the page shows the measurement's name, job code, development label and metrics", async () => {
    // A page of its own, opened once the tests of the first page are done (a second page open while the first one
    // uploads a folder holds that upload up).
    await page.close();
    attestedPage = await openPage(attestedServer.url);
    await openAttested(attestedPage, attested.audit.modelHash);
    const audit = attestedPage.locator(".record[data-kind=audit]");
    assert.equal(await audit.locator(".attests").getAttribute("data-status"), "verified");
    const text = await audit.innerText();
    assert.match(text, new RegExp(SIM_MEASUREMENT));
    assert.ok(text.includes(SIM_MEASUREMENT_NAME), text);
    assert.match(text, new RegExp(`sha256:${createHash("sha256").update("harness").digest("hex")}`));
    assert.match(text, /provenant harness 0\.1\.0 \(test\)/);
    assert.match(await audit.locator(".policy-label").innerText(), /^development policy: /);
    assert.match(await audit.locator("tr.metric").first().innerText(), /accuracy\s+0\.5\s+n = 10/);
    await attestedPage.screenshot({ path: path.join(SHOTS, "explorer-attests.png"), fullPage: true });
  });

  it("when a model has a serving record, the page shows it as a serving log with its anchored checkpoint", async () => {
    await openAttested(attestedPage, attested.audit.modelHash);
    const serving = attestedPage.locator(".record[data-kind=serving]");
    assert.equal(await serving.locator(".tag.kind").innerText(), "serving");
    const text = await serving.innerText();
    assert.match(text, new RegExp(`Serving log\\s+${attested.serving.logId}`));
    assert.doesNotMatch(text, /Base model/);
    assert.doesNotMatch(text, /audit/i);
    assert.match(
      await serving.locator("tr.checkpoint").innerText(),
      new RegExp(`2 receipt\\(s\\), root ${attested.checkpoint.rootHash}`),
    );
    assert.equal(await serving.locator(".attests").getAttribute("data-status"), "verified");
    assert.match(text, new RegExp(`Serving key\\s+${attested.serving.logId}`));
  });

  it("when a record's bundle carries simulated GPU evidence, the page shows the GPU as the verifier verified it", async () => {
    await openAttested(attestedPage, attested.gpu.modelHash);
    const gpu = attestedPage.locator(".record[data-kind=audit] tr.gpu");
    assert.equal(await gpu.count(), 1);
    assert.equal(await gpu.getAttribute("class"), "gpu verified");
    assert.match(
      await gpu.innerText(),
      new RegExp(`GPU 0: hopper, driver ${attested.gpuDriver}, VBIOS ${attested.gpuVbios}, verified by the verifier`),
    );
  });

  it("when a fine-tune is looked up, the page shows its base model, dataset and trainer from the bundle", async () => {
    await openAttested(attestedPage, attested.finetune.modelHash);
    const text = await attestedPage.locator(".record[data-kind=finetune] .attests").innerText();
    assert.match(text, new RegExp(`Base model\\s+${attested.finetune.parentModelHash}`));
    assert.match(text, /Dataset\s+sha256:[0-9a-f]{64} \(data\.jsonl\)/);
  });

  it("when a verifier serves a tampered bundle for a record, the page shows it does not match and none of its content", async () => {
    const manifest = attested.manifestOf(attested.audit.bytes);
    const json = JSON.parse(Buffer.from(attested.audit.bytes).toString("utf8"));
    const payload = Buffer.from(json.envelopes[0].payload, "base64").toString("utf8");
    json.envelopes[0].payload = Buffer.from(payload.replace('"value":0.5', '"value":0.9')).toString("base64");
    const fake = await fakeVerifier(attested.apiUrl, manifest, Buffer.from(JSON.stringify(json)));
    const p = await openPage(`${attestedServer.url}?verifier=${encodeURIComponent(fake.url)}`);
    try {
      await openAttested(p, attested.audit.modelHash);
      const panel = p.locator(".record[data-kind=audit] .attests");
      assert.equal(await panel.getAttribute("data-status"), "mismatch");
      const text = await panel.innerText();
      assert.match(text, /does not match this record/);
      assert.match(text, /RECORD_MISMATCH/);
      assert.doesNotMatch(text, /0\.9|accuracy|Measurement/);
      await p.screenshot({ path: path.join(SHOTS, "explorer-attests-mismatch.png"), fullPage: true });
    } finally {
      await p.close();
      await fake.close();
    }
  });

  it("when a receipt is verified in the page, every check of receipt verify holds; a wrong salt fails the digests", async () => {
    const file = path.join(work, "receipt.json");
    const request = path.join(work, "receipt.request");
    const response = path.join(work, "receipt.response");
    await writeFile(file, attested.receiptFile(1));
    await writeFile(request, attested.receipts[1]!.request);
    await writeFile(response, attested.receipts[1]!.response);
    const verify = async (salt: string) => {
      await attestedPage.evaluate(() => delete document.getElementById("receipt-panel")!.dataset.state);
      await attestedPage.fill("#receipt-salt", salt);
      await attestedPage.click("#receipt-verify");
      await attestedPage.waitForSelector("#receipt-panel[data-state=done]");
    };
    await attestedPage.setInputFiles("#receipt-file", file);
    await attestedPage.setInputFiles("#receipt-request", request);
    await attestedPage.setInputFiles("#receipt-response", response);
    await verify("");
    assert.equal(await attestedPage.getAttribute("#receipt-result .verdict", "data-verdict"), "receipt-verified");
    assert.equal(await attestedPage.locator("#receipt-result li.pass").count(), 8);
    await attestedPage.screenshot({ path: path.join(SHOTS, "explorer-receipt.png"), fullPage: true });
    await verify("00".repeat(32));
    assert.equal(await attestedPage.getAttribute("#receipt-result .verdict", "data-verdict"), "receipt-failed");
    assert.equal(await attestedPage.getAttribute("#receipt-result li[data-check=digests]", "class"), "fail");
    assert.equal(await attestedPage.locator("#receipt-result li[data-code=RECEIPT_DIGEST_MISMATCH]").count(), 1);
  });

  it("when a bundle the verifier judged is dropped, the page names the root its verdict says, not the provider label", async () => {
    const file = path.join(work, "attested-audit.provenance.json");
    await writeFile(file, attested.audit.bytes);
    await attestedPage.evaluate(() => (location.hash = ""));
    await attestedPage.setInputFiles("#pick-bundle", file);
    await attestedPage.waitForSelector("[data-verdict=bundle-verified]");
    await attestedPage.waitForSelector("body[data-state=done] #records");
    assert.match(await attestedPage.locator("#evidence-root").innerText(), /development root/);
  });
});

/**
 * A verifier stand-in on 127.0.0.1 that any origin may read: answers `bytes` as the one bundle of `manifest`, and
 * passes every other request (the policy, verdicts) on to the real verifier at `upstream`.
 */
async function fakeVerifier(upstream: string, manifest: string, bytes: Uint8Array) {
  const digest = createHash("sha256").update(bytes).digest("hex");
  const cors = { "access-control-allow-origin": "*", "content-type": "application/json" };
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.url === `/bundles?manifest=${manifest}`) {
        res.writeHead(200, cors).end(JSON.stringify({ bundles: [{ digest, status: "published" }] }));
      } else if (req.url === `/bundles/${digest}/bundle`) {
        res.writeHead(200, cors).end(bytes);
      } else {
        const answer = await fetch(`${upstream}${req.url}`);
        res.writeHead(answer.status, cors).end(Buffer.from(await answer.arrayBuffer()));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
