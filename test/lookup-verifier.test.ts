// What a record attests, end to end: a real chain, the verifier service running (real git, SQLite, HTTP) and four
// bundles it published (an audit, a fine-tune, an audit with a simulated Hopper GPU, a server of the audited model
// with an anchored checkpoint), all minted at a fixed date. The SDK and `provenant lookup --verifier` fetch each
// record's bundle and policy from the verifier, check them against the chain and show the measurement and its name,
// the job code, the development label, the manifest's content, the GPUs and the serving log; a tampered bundle served
// by a fake verifier is shown as not matching; the endpoints still serve after the service restarts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { commands } from "../offchain/client/cli.ts";
import { fetchDetailsOf, fetchRecordDetails, type RecordDetails } from "../offchain/client/details.ts";
import { createRegistryClient, type RegistryClient, type RegistryRecord } from "../offchain/client/index.ts";
import { parseReceiptFile, verifyReceiptOnChain } from "../offchain/client/receipt.ts";
import { canonicalPolicyJson } from "../offchain/pipeline/policy.ts";
import { verifyReceiptInPage } from "../web/src/receipt-check.ts";
import {
  runCli,
  SIM_MEASUREMENT,
  SIM_MEASUREMENT_NAME,
  startAttestedFixture,
  type AttestedFixture,
} from "./lookup-fixture.ts";

const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

const run = (argv: string[]) => runCli(commands, argv);

describe("what a record attests, from a running verifier", () => {
  let f: AttestedFixture;
  let client: RegistryClient;
  let conn: string[];

  before(async () => {
    f = await startAttestedFixture();
    client = await createRegistryClient({ rpcUrl: f.chain.url, address: f.registry.address });
    conn = ["--rpc", f.chain.url, "--registry", f.registry.address];
  });
  after(async () => {
    client?.close();
    await f?.close();
  });

  async function recordOf(bytes: Uint8Array): Promise<RegistryRecord> {
    const record = await client.record(f.manifestOf(bytes));
    assert.ok(record !== null);
    return record;
  }

  it("when an audit's record is looked up, the SDK shows its measurement by name, job code, policy and metrics", async () => {
    const d = await fetchRecordDetails({ verifierUrl: f.apiUrl }, await recordOf(f.audit.bytes));
    assert.equal(d.status, "verified", JSON.stringify(d.error));
    assert.equal(d.bundleDigest, sha256(f.audit.bytes));
    assert.deepEqual(d.measurement, { value: SIM_MEASUREMENT, name: SIM_MEASUREMENT_NAME });
    assert.deepEqual(d.jobCode, { digest: `sha256:${sha256("harness")}`, name: "provenant harness 0.1.0 (test)" });
    assert.equal(d.policy?.digest, f.policyDigest);
    assert.equal(d.policy?.development, true);
    assert.match(d.policy!.label, /^development policy: .*development root trusted/);
    assert.equal(d.manifest?.kind, "audit");
    if (d.manifest?.kind !== "audit") return;
    assert.equal(d.manifest.harness.name, "provenant");
    assert.deepEqual(
      d.manifest.metrics.map((m) => [m.name, m.value, m.sampleSize]),
      [["accuracy", 0.5, 10]],
    );
    assert.deepEqual(d.gpus, []);
  });

  it("when a fine-tune's record is looked up, the SDK shows its base model, dataset and trainer", async () => {
    const d = await fetchRecordDetails({ verifierUrl: f.apiUrl }, await recordOf(f.finetune.bytes));
    assert.equal(d.status, "verified", JSON.stringify(d.error));
    assert.equal(d.manifest?.kind, "finetune");
    if (d.manifest?.kind !== "finetune") return;
    assert.equal(d.manifest.baseModel.digest, f.finetune.parentModelHash);
    assert.equal(d.manifest.dataset.name, "data.jsonl");
    assert.equal(d.jobCode?.name, "fine-tune job (test)");
  });

  it("when a record's bundle carries GPU evidence, the SDK shows the GPU as the verifier verified it", async () => {
    const d = await fetchRecordDetails({ verifierUrl: f.apiUrl }, await recordOf(f.gpu.bytes));
    assert.equal(d.status, "verified", JSON.stringify(d.error));
    assert.deepEqual(
      d.gpus.map((g) => [g.arch, g.driverVersion, g.vbiosVersion, g.verified, g.source]),
      [["hopper", f.gpuDriver, f.gpuVbios, true, "verifier"]],
    );
    assert.equal(d.runtime?.gpuEvidence?.provider, "sim");
  });

  it("when a model has a serving record, it is a serving log with its anchored checkpoint, not a lineage parent", async () => {
    const { records } = await client.lookup(f.audit.modelHash);
    assert.deepEqual(records.map((r) => r.kind).sort(), ["audit", "serving"]);
    const serving = records.find((r) => r.kind === "serving")!;
    assert.equal(serving.parentModelHash, f.serving.logId);
    const [d] = await fetchDetailsOf({ verifierUrl: f.apiUrl }, [serving]);
    assert.equal(d!.status, "verified", JSON.stringify(d!.error));
    assert.equal(d!.manifest?.kind, "serving");
    if (d!.manifest?.kind === "serving") assert.equal(d!.manifest.logId, f.serving.logId);
    assert.equal(d!.jobCode?.name, "server (test)");
    const checkpoint = await client.latestCheckpoint(f.serving.logId);
    assert.equal(checkpoint?.treeSize, f.checkpoint.treeSize);
    assert.equal(checkpoint?.rootHash, f.checkpoint.rootHash);
  });

  it("when lookup is given --verifier, it prints what each record attests and adds `attests` to --json", async () => {
    const { code, json } = await run(["lookup", f.audit.modelHash, ...conn, "--verifier", f.apiUrl, "--json"]);
    assert.equal(code, 0, JSON.stringify(json));
    assert.equal(json.verifier, f.apiUrl);
    const records = json.records as (Record<string, unknown> & { attests: RecordDetails })[];
    // Every key lookup printed before is still there.
    for (const key of ["modelHash", "manifestDigest", "parentModelHash", "kind", "kindCode", "publishedAt", "revoked"])
      assert.ok(
        records.every((r) => key in r),
        key,
      );
    const audit = records.find((r) => r.kind === "audit")!;
    assert.equal(audit.attests.status, "verified");
    assert.equal(audit.attests.measurement?.name, SIM_MEASUREMENT_NAME);
    const serving = records.find((r) => r.kind === "serving")! as unknown as {
      serving: { logId: string; latestCheckpoint: { treeSize: number } };
    };
    assert.equal(serving.serving.logId, f.serving.logId);
    assert.equal(serving.serving.latestCheckpoint.treeSize, 2);

    const text = await run(["lookup", f.gpu.modelHash, ...conn, "--verifier", f.apiUrl]);
    assert.equal(text.code, 0, text.err);
    assert.match(
      text.out,
      new RegExp(`measurement +${SIM_MEASUREMENT} \\("${SIM_MEASUREMENT_NAME.replace(/[()]/g, "\\$&")}"\\)`),
    );
    assert.match(text.out, /policy +development policy/);
    assert.match(text.out, /metric +accuracy = 0\.5 \(n=10\)/);
    assert.match(text.out, /gpu +GPU 0: hopper, driver \S+, VBIOS \S+, verified by the verifier/);
    assert.match(text.out, /job code +sha256:[0-9a-f]{64} \("provenant harness 0\.1\.0 \(test\)"\)/);

    // Without a verifier the JSON is what it was (no `attests`), serving logs still come from the chain.
    const plain = await run(["lookup", f.audit.modelHash, ...conn, "--json"]);
    assert.ok((plain.json.records as Record<string, unknown>[]).every((r) => !("attests" in r)));
    assert.match(
      (await run(["lookup", f.audit.modelHash, ...conn])).out,
      /serving log +[0-9a-f]{64}\n +checkpoint +2 receipt/,
    );
  });

  it("when a verifier serves a tampered bundle for a record, lookup says it does not match and shows none of it", async () => {
    const manifest = f.manifestOf(f.audit.bytes);
    const tampered = JSON.parse(Buffer.from(f.audit.bytes).toString("utf8"));
    const payload = Buffer.from(tampered.envelopes[0].payload, "base64");
    // The metric's value, as a forger would change it: 0.5 → 0.9.
    const text = payload.toString("utf8").replace('"value":0.5', '"value":0.9');
    tampered.envelopes[0].payload = Buffer.from(text).toString("base64");
    const bytes = Buffer.from(JSON.stringify(tampered));
    const fake = await fakeVerifier(f.apiUrl, manifest, bytes);
    try {
      const { code, out } = await run(["lookup", f.audit.modelHash, ...conn, "--verifier", fake.url]);
      assert.equal(code, 0);
      assert.match(out, /BUNDLE +DOES NOT MATCH the record: RECORD_MISMATCH/);
      assert.doesNotMatch(out, /0\.9/);
      const { json } = await run(["lookup", f.audit.modelHash, ...conn, "--verifier", fake.url, "--json"]);
      const audit = (json.records as { kind: string; attests: RecordDetails }[]).find((r) => r.kind === "audit")!;
      assert.equal(audit.attests.status, "mismatch");
      assert.equal(audit.attests.error?.code, "RECORD_MISMATCH");
      assert.equal(audit.attests.manifest, null);
    } finally {
      await fake.close();
    }
    const down = await run(["lookup", f.audit.modelHash, ...conn, "--verifier", "http://127.0.0.1:9", "--json"]);
    assert.equal(down.code, 0);
    const d = (down.json.records as { attests: RecordDetails }[])[0]!.attests;
    assert.equal(d.status, "unavailable");
    assert.equal(d.error?.code, "VERIFIER_UNAVAILABLE");
  });

  it("when a bundle with GPU evidence is audited, its measurement hash (MEASUREMENT and the GPU's) matches the chain", async () => {
    const bundleFile = path.join(f.work, "gpu.provenance.json");
    const policyFile = path.join(f.work, "policy.json");
    await writeFile(bundleFile, f.gpu.bytes);
    await writeFile(policyFile, canonicalPolicyJson(f.policy));
    const { code, json } = await run([
      "audit",
      bundleFile,
      "--policy",
      policyFile,
      "--now",
      "2026-11-21T12:00:00Z",
      ...conn,
      "--json",
    ]);
    assert.equal(code, 0, JSON.stringify(json));
    assert.ok((json.checks as { ok: boolean }[]).every((c) => c.ok));
    assert.ok((json.warnings as { code: string }[]).some((w) => w.code === "POLICY_OPEN"));
  });

  it("when the page's receipt check runs on a receipt, it agrees with receipt verify's, check by check", async () => {
    const enc = new TextEncoder();
    const [r0, r1] = f.receipts;
    const page = await verifyReceiptInPage(
      { receipt: enc.encode(f.receiptFile(1)), request: r1!.request, response: r1!.response },
      { client, verifier: { verifierUrl: f.apiUrl } },
    );
    assert.equal(page.ok, true, JSON.stringify(page.errors));
    assert.equal(page.servingSource, "verifier");
    assert.equal(page.checks.digests, true);
    // The CLI's path: the serving bundle through the pipeline (the fixture's policy), the same chain facts.
    const file = parseReceiptFile(enc.encode(f.receiptFile(1)));
    const cli = await verifyReceiptOnChain(client, file, {
      policy: f.policy,
      now: new Date("2026-11-21T12:00:00Z"),
      servingBundle: f.serving.bytes,
      proof: file.proof!,
      salt: r1!.salt,
      request: r1!.request,
      response: r1!.response,
    });
    assert.deepEqual(page.checks, cli.checks);
    assert.equal(page.receiptDigest, cli.receiptDigest);
    // A wrong salt, the other receipt's response, a serving bundle that is not the recorded one.
    const wrongSalt = await verifyReceiptInPage(
      { receipt: enc.encode(f.receiptFile(1)), salt: "00".repeat(32), request: r1!.request, response: r1!.response },
      { client, verifier: { verifierUrl: f.apiUrl } },
    );
    assert.equal(wrongSalt.checks.digests, false);
    assert.ok(wrongSalt.errors.some((e) => e.code === "RECEIPT_DIGEST_MISMATCH"));
    const otherResponse = await verifyReceiptInPage(
      { receipt: enc.encode(f.receiptFile(0)), response: r1!.response },
      { client, verifier: { verifierUrl: f.apiUrl } },
    );
    assert.equal(otherResponse.checks.digests, false);
    assert.equal(r0!.object.seq, 0);
    const foreign = await verifyReceiptInPage(
      { receipt: enc.encode(f.receiptFile(0)), servingBundle: f.audit.bytes },
      { client, verifier: null },
    );
    assert.equal(foreign.ok, false);
    assert.equal(foreign.servingSource, "file");
  });

  it("when the verifier restarts on its data directory, it still serves every record's bundle and policy", async () => {
    await f.restart();
    const record = await recordOf(f.finetune.bytes);
    const d = await fetchRecordDetails({ verifierUrl: f.apiUrl }, record);
    assert.equal(d.status, "verified", JSON.stringify(d.error));
    assert.equal(d.policy?.digest, f.policyDigest);
  });
});

/**
 * A verifier stand-in on 127.0.0.1: answers `bytes` for the one bundle of `manifest`, and passes every other request
 * (the policy, verdicts) on to the real verifier at `upstream`.
 */
async function fakeVerifier(upstream: string, manifest: string, bytes: Uint8Array) {
  const digest = sha256(bytes);
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.url === `/bundles?manifest=${manifest}`) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ bundles: [{ digest, status: "published" }] }));
      } else if (req.url === `/bundles/${digest}/bundle`) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(bytes);
      } else {
        const answer = await fetch(`${upstream}${req.url}`);
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(Buffer.from(await answer.arrayBuffer()));
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
