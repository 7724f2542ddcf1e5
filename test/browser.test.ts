// The explorer page in Debian Chromium (playwright-core) against a local chain with published records: a recorded,
// a revoked and an unknown hash, a malformed one, a dropped model file (digest == lib/oms), a dropped bundle, a
// tampered bundle and an unreachable RPC. Screenshots go to test-results/. Chromium must be installed (.ci/run does).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { chromium, type Browser, type Page } from "playwright-core";
import { build } from "vite";

import { hashModel } from "../lib/oms/index.ts";
import { policyDigest, verifyBundle } from "../offchain/pipeline/index.ts";
import { createBundleFactory, type MadeBundle } from "../offchain/testing/bundles.ts";
import { serveExplorer, type ExplorerServer } from "../offchain/client/serve.ts";
import { digestOf, makeTestBundle, startLookupFixture, type LookupFixture, type TestBundle } from "./lookup-fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = path.resolve(import.meta.dirname, "..");
const SHOTS = path.join(ROOT, "test-results");

describe("explorer page in Chromium", () => {
  let f: LookupFixture;
  let server: ExplorerServer;
  let browser: Browser;
  let page: Page;
  let work: string;
  let modelFile: string;
  let modelHash: string;
  let bundle: TestBundle;
  let simBundle: MadeBundle;
  let simPolicyDigest: string;
  let folder: string;
  let folderHash: string;

  before(async () => {
    // Fail loudly: a silent skip would hide that the page was never tested.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    await mkdir(SHOTS, { recursive: true });
    work = await mkdtemp(path.join(tmpdir(), "provenant-browser-"));
    const distDir = path.join(work, "dist");
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
    const factory = await createBundleFactory({ keyDir: path.join(work, "sim") });
    simBundle = factory.make({ seed: "browser fine-tune", kind: "finetune" });
    const verdict = verifyBundle(simBundle.bytes, { policy: factory.policy, now: new Date() });
    assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
    await f.publish([{ ...verdict.record!, reportedTcb: BigInt(verdict.record!.reportedTcb) }]);
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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    // The machine is shared: give a slow moment room rather than a flaky failure.
    page.setDefaultTimeout(120_000);
    await page.goto(server.url);
    await page.waitForSelector("body[data-state=ready]");
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await f?.close();
  });

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

  it("when a model file is dropped, it hashes it in the browser to the lib/oms digest and looks it up", async () => {
    await page.setInputFiles("#pick-files", modelFile);
    await open(modelHash);
    assert.equal(await page.textContent("#model-hash"), modelHash);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "attested");
    assert.match((await page.textContent("#progress-text")) ?? "", /hashed 1 file/);
    await page.screenshot({ path: path.join(SHOTS, "explorer-model-file.png"), fullPage: true });
  });

  it("when a model folder is chosen, its browser digest equals lib/oms's", async () => {
    await page.setInputFiles("#pick-folder", folder);
    await open(folderHash);
    assert.equal(await page.getAttribute(".verdict", "data-verdict"), "not-recorded");
    assert.match((await page.textContent("#progress-text")) ?? "", /hashed 3 file/);
  });

  it("when a file is dragged onto the drop zone, it is hashed like a chosen one", async () => {
    const expected = createHash("sha256").update(createHash("sha256").update("dropped weights").digest()).digest("hex");
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped weights"], "dropped.bin"));
      return dt;
    });
    await page.dispatchEvent("#drop", "drop", { dataTransfer });
    await open(expected);
    assert.equal(await page.textContent("#model-hash"), expected);
  });

  it("when a simulator bundle is dropped, it shows the evidence and the policy digest the chain recorded", async () => {
    const file = path.join(work, "sim.provenance.json");
    await writeFile(file, simBundle.bytes);
    await page.evaluate(() => (location.hash = ""));
    await page.setInputFiles("#pick-bundle", file);
    await page.waitForSelector("[data-verdict=bundle-verified]");
    await page.waitForSelector("body[data-state=done] #records");
    const evidence = await page.locator("#evidence").innerText();
    assert.match(evidence, /AMD SEV-SNP (Milan|Genoa|Turin)/);
    assert.match(evidence, /provider sim/);
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
});
