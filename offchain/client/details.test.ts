// What a record attests (details-core, details): bundles made with the SEV-SNP and GPU simulators at a fixed date,
// their records as the offline pipeline derives them; each is checked against its record before its content is read
// (audit, fine-tune, serving, GPUs), and every way of not matching has its code. Policies are read back by their
// digest; the openness read from the JSON equals the pipeline's. The fetch edge runs against real HTTP servers.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { canonicalPolicyJson, parseVerifierPolicy, policyDigest, policyOpenness } from "../pipeline/policy.ts";
import { verifyBundle, type BundleVerdict, type VerifierPolicy } from "../pipeline/index.ts";
import { createBundleFactory, type BundleFactory } from "../testing/bundles.ts";
import { createGpuBundleFactory, type GpuBundleFactory } from "../testing/gpu-bundles.ts";
import { makeServingBundle, servingPolicy } from "../testing/serving.ts";
import {
  checkRecordBundle,
  describeRecord,
  fetchBounded,
  fetchRecordDetails,
  gpuLine,
  policyOpennessOfJson,
  readPolicyDocument,
  type RecordFacts,
} from "./details.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const SIM_MEASUREMENT = createHash("sha384").update("provenant-sim-measurement").digest("hex");
const sha256 = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

/** The record the verifier would publish for an accepted verdict, as a reader gets it back (no 0x, kinds by name). */
function factsOf(verdict: BundleVerdict): RecordFacts {
  assert.equal(verdict.ok, true, JSON.stringify(verdict.errors));
  const r = verdict.record!;
  const bare = (h: string) => h.replace(/^0x/, "");
  return {
    manifestDigest: bare(r.manifestDigest),
    modelHash: bare(r.modelHash),
    kind: r.kind === 1 ? "finetune" : r.kind === 2 ? "audit" : "serving",
    parentModelHash: r.kind === 2 ? null : bare(r.parentModelHash),
    measurementHash: bare(r.measurementHash),
    policyDigest: bare(r.policyDigest),
  };
}

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (e: { code?: string }) => {
    assert.equal(e.code, code);
    return true;
  });
}

describe("what a record attests: the core", () => {
  let work: string;
  let factory: BundleFactory;
  let gpuFactory: GpuBundleFactory;
  let policy: VerifierPolicy;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "provenant-details-"));
    factory = await createBundleFactory({ keyDir: path.join(work, "sim"), now: NOW });
    gpuFactory = await createGpuBundleFactory({ now: NOW, keyDir: path.join(work, "gpu") });
    // A development policy that names the simulator's measurement and the job code, as an operator would.
    policy = parseVerifierPolicy({
      ...factory.policyJson,
      snp: { ...(factory.policyJson.snp as object), measurements: [{ name: "sim image 1", value: SIM_MEASUREMENT }] },
      jobCodeDigests: [{ name: "provenant 0.1.0 harness", value: `sha256:${sha256("harness")}` }],
      acceptedKinds: ["eval", "finetune", "serving"],
    });
  });
  after(async () => rm(work, { recursive: true, force: true }));

  it("when an audit bundle matches its record, it reads the suite, metrics, measurement and job code", async () => {
    const made = factory.make({ seed: "details audit", kind: "eval" });
    const facts = factsOf(verifyBundle(made.bytes, { policy, now: NOW }));
    const attested = await checkRecordBundle(facts, made.bytes);
    assert.equal(attested.bundleDigest, sha256(made.bytes));
    assert.equal(attested.measurement, SIM_MEASUREMENT);
    assert.equal(attested.jobCodeDigest, `sha256:${sha256("harness")}`);
    assert.equal(attested.manifest.kind, "audit");
    if (attested.manifest.kind !== "audit") return;
    assert.equal(attested.manifest.suite.name, "suite");
    assert.deepEqual(attested.manifest.metrics, [
      { name: "accuracy", value: 0.5, sampleSize: 10, comparator: null, threshold: null, passed: null },
    ]);
    assert.equal(attested.manifest.passed, null);
    assert.deepEqual(attested.gpus, []);
  });

  it("when a fine-tune bundle matches its record, it reads the base model, dataset and trainer", async () => {
    const made = factory.make({ seed: "details finetune", kind: "finetune" });
    const facts = factsOf(verifyBundle(made.bytes, { policy: factory.policy, now: NOW }));
    const attested = await checkRecordBundle(facts, made.bytes);
    assert.equal(attested.manifest.kind, "finetune");
    if (attested.manifest.kind !== "finetune") return;
    assert.equal(attested.manifest.baseModel.digest, made.parentModelHash);
    assert.equal(attested.manifest.baseModel.name, "base");
    assert.equal(attested.manifest.dataset.name, "data.jsonl");
    assert.deepEqual(attested.manifest.trainer.config, { epochs: 1 });
    assert.equal(attested.manifest.trainingTrace, null);
    assert.deepEqual(
      attested.manifest.byproducts.map((b) => b.name),
      ["snp-report"],
    );
  });

  it("when a serving bundle matches its kind 3 record, it reads the serving key's log and epoch", async () => {
    const serving = makeServingBundle(factory, { seed: "details serving" });
    const facts = factsOf(verifyBundle(serving.bytes, { policy: servingPolicy(factory), now: NOW }));
    assert.equal(facts.parentModelHash, serving.logId);
    const attested = await checkRecordBundle(facts, serving.bytes);
    assert.equal(attested.manifest.kind, "serving");
    if (attested.manifest.kind !== "serving") return;
    assert.equal(attested.manifest.logId, serving.logId);
    assert.deepEqual(attested.manifest.epoch, { maxReceipts: 1000, maxSeconds: 60 });
    assert.equal(attested.keyId, serving.logId);
  });

  it("when a bundle carries GPU evidence, its GPUs are read and their measurements hash into the record's", async () => {
    const made = gpuFactory.make({ seed: "details gpu" });
    const gpuPolicy = parseVerifierPolicy(gpuFactory.policyJson);
    const verdict = verifyBundle(made.bytes, { policy: gpuPolicy, now: NOW });
    const facts = factsOf(verdict);
    const attested = await checkRecordBundle(facts, made.bytes);
    assert.equal(attested.gpus.length, 1);
    const [gpu] = attested.gpus;
    assert.equal(gpu!.arch, "hopper");
    assert.equal(gpu!.driverVersion, gpuFactory.gpu.hopper.driverVersion);
    assert.equal(gpu!.measurementDigest, verdict.gpus![0]!.measurementDigest);
    assert.equal(attested.runtime?.gpuEvidence?.provider, "sim");
    // With the verifier's verdict the GPU line says verified; without, that it was only read.
    const withVerdict = describeRecord(facts, { bundle: attested, policy: null, verdictGpus: verdict.gpus! });
    assert.match(gpuLine(withVerdict.gpus[0]!), /^GPU 0: hopper, driver \S+, VBIOS \S+, verified by the verifier$/);
    const without = describeRecord(facts, { bundle: attested, policy: null });
    assert.match(gpuLine(without.gpus[0]!), /not verified here$/);
    // A record whose measurementHash covers the CPU MEASUREMENT alone does not match a bundle with GPUs.
    const cpuOnly = { ...facts, measurementHash: sha256(made.measurement) };
    await rejects(checkRecordBundle(cpuOnly, made.bytes), "RECORD_MISMATCH");
  });

  it("when a bundle does not match its record, it is refused with a code and none of its content is returned", async () => {
    const made = factory.make({ seed: "details mismatch", kind: "finetune" });
    const facts = factsOf(verifyBundle(made.bytes, { policy: factory.policy, now: NOW }));
    const other = factory.make({ seed: "details other", kind: "finetune" });
    // Another bundle (its own manifest) served for this record.
    await rejects(checkRecordBundle(facts, other.bytes), "RECORD_MISMATCH");
    // The record says another model, parent, kind or measurement than the bundle.
    for (const wrong of [
      { modelHash: sha256("x") },
      { parentModelHash: sha256("y") },
      { kind: "audit" as const, parentModelHash: null },
      { measurementHash: sha256("z") },
    ])
      await rejects(checkRecordBundle({ ...facts, ...wrong }, made.bytes), "RECORD_MISMATCH");
    // One signature byte flipped (an OMS envelope's): the content is not shown.
    const json = JSON.parse(Buffer.from(made.bytes).toString("utf8"));
    const sig = Buffer.from(json.envelopes[2].signatures[0].sig, "base64");
    sig[sig.length - 5] ^= 1;
    json.envelopes[2].signatures[0].sig = sig.toString("base64");
    await rejects(checkRecordBundle(facts, Buffer.from(JSON.stringify(json))), "DSSE_BAD_SIGNATURE");
    // The nonce the report binds changed in the bundle.
    const nonce = JSON.parse(Buffer.from(made.bytes).toString("utf8"));
    nonce.nonce = "ab".repeat(32);
    await rejects(checkRecordBundle(facts, Buffer.from(JSON.stringify(nonce))), "BINDING_NONCE_MISMATCH");
    await rejects(checkRecordBundle(facts, new TextEncoder().encode("{}")), "BUNDLE_MALFORMED");
    const described = describeRecord(facts, { bundle: { error: new Error("x") }, policy: null });
    assert.equal(described.status, "unavailable");
    const refused = await checkRecordBundle(facts, other.bytes).catch((error: unknown) => ({ error }));
    const shown = describeRecord(facts, { bundle: refused as { error: unknown }, policy: null });
    assert.equal(shown.status, "mismatch");
    assert.equal(shown.error?.code, "RECORD_MISMATCH");
    assert.equal(shown.manifest, null);
    assert.equal(shown.measurement, null);
  });

  it("when a policy is read back by its digest, it gives names, openness and the development label", async () => {
    const text = new TextEncoder().encode(canonicalPolicyJson(policy));
    const view = readPolicyDocument(text, policyDigest(policy));
    assert.equal(view.development, true);
    assert.equal(view.open, true);
    assert.match(view.label, /^development policy: /);
    assert.match(view.label, /development root trusted/);
    assert.deepEqual(view.measurements, [{ name: "sim image 1", value: SIM_MEASUREMENT }]);
    const made = factory.make({ seed: "details names", kind: "eval" });
    const facts = factsOf(verifyBundle(made.bytes, { policy, now: NOW }));
    const shown = describeRecord(facts, { bundle: await checkRecordBundle(facts, made.bytes), policy: view });
    assert.deepEqual(shown.measurement, { value: SIM_MEASUREMENT, name: "sim image 1" });
    assert.deepEqual(shown.jobCode, { digest: `sha256:${sha256("harness")}`, name: "provenant 0.1.0 harness" });
    assert.equal(shown.status, "verified");
    // Another policy's text for this digest, and strict JSON.
    assert.throws(() => readPolicyDocument(text, sha256("another policy")), { code: "RECORD_MISMATCH" });
    const duplicate = new TextEncoder().encode('{"development":true,"development":false}');
    assert.throws(() => readPolicyDocument(duplicate, sha256(duplicate)), { code: "POLICY_INVALID" });
    const open = parseVerifierPolicy({});
    const openView = readPolicyDocument(new TextEncoder().encode(canonicalPolicyJson(open)), policyDigest(open));
    assert.match(openView.label, /^open policy: no launch measurement pinned, no TCB floor$/);
  });

  it("when policies are open or pinned in any way, the openness read from the JSON equals the pipeline's", () => {
    const tcb = { bootloader: 9, tee: 0, snp: 23, microcode: 72 };
    const cases = [
      {},
      factory.policyJson,
      gpuFactory.policyJson,
      { snp: { measurements: [SIM_MEASUREMENT], minimumTcb: { Genoa: tcb } } },
      { snp: { measurements: [SIM_MEASUREMENT], minimumTcb: { Turin: tcb, Milan: { ...tcb } } } },
      { snp: { minimumTcb: { Genoa: { bootloader: 9 } } }, development: true },
    ];
    for (const json of cases) {
      const parsed = parseVerifierPolicy(json);
      assert.deepEqual(
        policyOpennessOfJson(JSON.parse(canonicalPolicyJson(parsed)) as Record<string, unknown>),
        policyOpenness(parsed).reasons,
        JSON.stringify(json),
      );
    }
  });
});

describe("what a record attests: the fetch edge over HTTP", () => {
  let server: Server;
  let url: string;
  let factory: BundleFactory;
  let work: string;
  const routes = new Map<string, (res: ServerResponse) => void>();

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "provenant-details-http-"));
    factory = await createBundleFactory({ keyDir: path.join(work, "sim"), now: NOW });
    server = createServer((req, res) => {
      const route = routes.get(req.url ?? "");
      if (route === undefined) res.writeHead(404).end('{"error":"NOT_FOUND"}');
      else route(res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });

  it("when an answer is larger than allowed, slow, or the verifier is down, it is VERIFIER_UNAVAILABLE", async () => {
    routes.set("/prefix/big", (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      // No content-length: the reader must stop on its own.
      res.write(Buffer.alloc(64 * 1024, 0x20));
      res.end(Buffer.alloc(64 * 1024, 0x20));
    });
    routes.set("/prefix/slow", () => undefined); // never answers
    routes.set("/prefix/fail", (res) => res.writeHead(500).end());
    const options = { verifierUrl: url, timeoutMs: 500 };
    await rejects(fetchBounded(options, "big", 100 * 1024), "VERIFIER_UNAVAILABLE");
    assert.equal((await fetchBounded(options, "big", 200 * 1024))?.length, 128 * 1024);
    await rejects(fetchBounded(options, "slow", 1024), "VERIFIER_UNAVAILABLE");
    await rejects(fetchBounded(options, "fail", 1024), "VERIFIER_UNAVAILABLE");
    assert.equal(await fetchBounded(options, "missing", 1024), null);
    await rejects(fetchBounded({ verifierUrl: "http://127.0.0.1:9" }, "x", 1024), "VERIFIER_UNAVAILABLE");
  });

  it("when a verifier serves a record's bundle and policy, the details are verified; a tampered one is a mismatch", async () => {
    const policy = factory.policy;
    const made = factory.make({ seed: "details over http", kind: "eval" });
    const facts = factsOf(verifyBundle(made.bytes, { policy, now: NOW }));
    const digest = sha256(made.bytes);
    const json = (body: unknown) => (res: ServerResponse) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    let served: Uint8Array = made.bytes;
    routes.set(
      `/prefix/bundles?manifest=${facts.manifestDigest}`,
      json({ bundles: [{ digest, status: "published" }] }),
    );
    routes.set(`/prefix/bundles/${digest}/bundle`, (res) => res.writeHead(200).end(served));
    routes.set(`/prefix/policies/${facts.policyDigest}`, (res) => res.writeHead(200).end(canonicalPolicyJson(policy)));
    const details = await fetchRecordDetails({ verifierUrl: url }, facts);
    assert.equal(details.status, "verified", JSON.stringify(details.error));
    assert.equal(details.policy?.development, true);
    assert.equal(details.manifest?.kind, "audit");
    // The same route now serves the bundle with its manifest's payload changed by one byte.
    const tampered = JSON.parse(Buffer.from(made.bytes).toString("utf8"));
    const payload = Buffer.from(tampered.envelopes[0].payload, "base64");
    payload[payload.length - 3] ^= 1;
    tampered.envelopes[0].payload = payload.toString("base64");
    served = Buffer.from(JSON.stringify(tampered));
    const refused = await fetchRecordDetails({ verifierUrl: url }, facts);
    assert.equal(refused.status, "mismatch");
    assert.equal(refused.error?.code, "RECORD_MISMATCH");
    assert.equal(refused.manifest, null);
    // A verifier that holds no bundle for the record.
    const none = await fetchRecordDetails({ verifierUrl: url }, { ...facts, manifestDigest: sha256("none") });
    assert.equal(none.status, "unavailable");
    assert.equal(none.error?.code, "NOT_FOUND");
  });
});
