// `provenant receipt verify` end to end on real components: an in-process Hardhat chain with the registry, the
// verifier service (in process, real git, real SQLite) recording a model's audit and its serving statement (kind 3)
// made with the SEV-SNP simulator at a fixed date, receipts built with lib/receipt and a tree with lib/merkle, the
// checkpoint anchored onchain with the publisher key, revocations at chosen block times. Exit codes and error codes.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { Contract, JsonRpcProvider, NonceManager, Wallet } from "ethers";
import pino from "pino";

import { manifestDigestOf } from "../lib/bundle/index.ts";
import type { CliIo } from "../lib/cli/index.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { commands as clientCommands } from "../offchain/client/cli.ts";
import { createRegistryClient } from "../offchain/client/index.ts";
import { startService, type RunningService } from "../offchain/service.ts";
import { DEV_PRIVATE_KEYS } from "../offchain/testing/chain.ts";
import { createTestRepo, type TestRepo } from "../offchain/testing/git.ts";
import {
  makeServingBundle,
  modelOfBundle,
  servingPolicy,
  TestReceiptLog,
  type IssuedReceipt,
  type ServingBundle,
} from "../offchain/testing/serving.ts";
import { createTestWorld, tickingClock, waitFor, type TestWorld } from "../offchain/testing/world.ts";
import { commands } from "./receipt.ts";

/** The simulator's clock and the service's start: certificates are checked at this date, whatever the machine's. */
const NOW = new Date("2026-11-21T12:00:00Z");

interface Run {
  code: number;
  out: string;
  err: string;
  json: Record<string, unknown>;
}

async function run(argv: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTty: false, env: {}, cwd: "/" };
  const code = await commands[0]!.run(argv, io);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out) as Record<string, unknown>;
  } catch {
    // text output
  }
  return { code, out, err, json };
}

const codes = (r: Run): string[] => [...new Set((r.json.errors as { code: string }[]).map((e) => e.code))].sort();

describe("provenant receipt verify", () => {
  let world: TestWorld;
  let repo: TestRepo;
  let service: RunningService;
  let work: string;
  let serving: ServingBundle;
  let log: TestReceiptLog;
  let auditManifest: string;
  let conn: string[];
  let registry: Contract;
  let publisher: Contract;
  let revoker: Contract;
  let provider: JsonRpcProvider;
  /** Seconds: the chain's time when the receipts begin; receipts are issued relative to it (never the wall clock). */
  let base: number;
  let revokedAt: number;
  const receipts: IssuedReceipt[] = [];
  let attestationFile: string;
  let policyFile: string;

  const rpc = (method: string, params: unknown[]) => provider.send(method, params);
  const chainTime = async () => Number((await provider.getBlock("latest"))!.timestamp);
  /** The next transaction's block gets time `t` (Hardhat evm_setNextBlockTimestamp). */
  const atTime = (t: number) => rpc("evm_setNextBlockTimestamp", [t]);

  /** A receipt file with its proof against the checkpoint of `size` leaves. */
  function receiptFile(name: string, r: IssuedReceipt, size: number, mutate?: (json: Record<string, unknown>) => void) {
    const cp = log.checkpoint(size);
    const json: Record<string, unknown> = {
      receipt: structuredClone(r.object),
      proof: {
        logId: serving.logId,
        leafIndex: r.object.leafIndex,
        treeSize: size,
        rootHash: cp.rootHash,
        proof: log.proof(r.object.leafIndex, size),
        checkpoint: { note: cp.note, signerLogId: serving.logId },
      },
    };
    mutate?.(json);
    const file = path.join(work, name);
    writeFileSync(file, JSON.stringify(json));
    return file;
  }

  function bytesFiles(name: string, r: IssuedReceipt): string[] {
    const request = path.join(work, `${name}.request`);
    const response = path.join(work, `${name}.response`);
    writeFileSync(request, r.request);
    writeFileSync(response, r.response);
    return ["--request", request, "--response", response];
  }

  const verify = (file: string, extra: string[] = []) =>
    run([
      file,
      "--attestation",
      attestationFile,
      "--policy",
      policyFile,
      "--now",
      NOW.toISOString(),
      ...conn,
      "--json",
      ...extra,
    ]);

  before(async () => {
    world = await createTestWorld("receipt-cli", { now: NOW });
    work = world.work;
    provider = new JsonRpcProvider(world.chain.url, undefined, { staticNetwork: true, batchMaxCount: 1 });
    registry = new Contract(world.registry.address, MODEL_REGISTRY_ABI, provider);
    publisher = registry.connect(new NonceManager(new Wallet(world.registry.publisherKey, provider))) as Contract;
    revoker = registry.connect(new NonceManager(new Wallet(DEV_PRIVATE_KEYS[0], provider))) as Contract;
    conn = ["--rpc", world.chain.url, "--registry", world.registry.address];

    // The model's audit (its record admits it for serving) and the serving statement of a server for that model.
    const audit = world.factory.make({ seed: "served-model", kind: "eval" });
    auditManifest = manifestDigestOf(audit.bundle.envelopes[0]!);
    serving = makeServingBundle(world.factory, {
      seed: "server-1",
      admission: auditManifest,
      model: modelOfBundle(audit.bundle),
    });
    assert.equal(serving.modelRoot, audit.modelHash);
    attestationFile = path.join(work, "serving.provenance.json");
    writeFileSync(attestationFile, serving.bytes);
    const policy = servingPolicy(world.factory);
    policyFile = path.join(work, "serving-policy.json");
    writeFileSync(
      policyFile,
      JSON.stringify({ ...world.factory.policyJson, acceptedKinds: ["eval", "finetune", "serving"] }),
    );

    repo = createTestRepo();
    repo.write("bundles/audit.provenance.json", audit.bytes);
    repo.write("bundles/serving.provenance.json", serving.bytes);
    repo.commitAndPush("an audit and a serving statement");
    service = await startService({
      repos: [repo.origin],
      rpcUrl: world.chain.url,
      registry: world.registry.address,
      policy,
      createSender: (p) => createLocalSender(p, world.registry.publisherKey),
      dataDir: path.join(work, "verifier"),
      intervalMs: 200,
      maxWaitMs: 50,
      workers: 1,
      listen: { host: "127.0.0.1", port: 0 },
      logger: pino(
        { level: process.env.RECEIPT_DEBUG === undefined ? "silent" : "info" },
        pino.destination(process.env.RECEIPT_DEBUG ?? 2),
      ),
      now: tickingClock(NOW),
    });
    await waitFor(
      "both records published",
      () => (service.store.countByStatus().published === 2 ? true : undefined),
      60_000,
    );
  });

  after(async () => {
    await service?.stop();
    provider?.destroy();
    repo?.cleanup();
    await world?.close();
  });

  it("when the verifier service sees a serving bundle, it records it onchain as kind 3 with its log id, which registers the log", async () => {
    const [modelHash, , kind, revoked] = (await registry.getFunction("recordOf")(`0x${serving.servingManifest}`)) as [
      string,
      bigint,
      bigint,
      boolean,
    ];
    assert.equal(modelHash, `0x${serving.modelRoot}`);
    assert.equal(kind, 3n);
    assert.equal(revoked, false);
    assert.equal(await registry.getFunction("logOf")(`0x${serving.logId}`), `0x${serving.servingManifest}`);
    const events = await registry.queryFilter(
      registry.filters.AttestationRecorded!(null, `0x${serving.servingManifest}`),
    );
    assert.equal(events.length, 1);
    assert.equal(
      (events[0] as unknown as { args: { parentModelHash: string } }).args.parentModelHash,
      `0x${serving.logId}`,
    );
  });

  it("when provenant audit is given the serving bundle, it re-verifies it offline and finds its kind 3 record (the log id as parent)", async () => {
    const audit = clientCommands.find((c) => c.path.join(" ") === "audit")!;
    let out = "";
    const io: CliIo = { stdout: (t) => void (out += t), stderr: () => undefined, isTty: false, env: {}, cwd: "/" };
    const code = await audit.run(
      [attestationFile, "--policy", policyFile, "--now", NOW.toISOString(), ...conn, "--json"],
      io,
    );
    const json = JSON.parse(out) as {
      ok: boolean;
      manifestDigest: string;
      modelHash: string;
      checks: { name: string; ok: boolean; detail: string }[];
      record: { kind: string; parentModelHash: string } | null;
    };
    assert.equal(code, 0, out);
    assert.equal(json.ok, true);
    assert.equal(json.manifestDigest, serving.servingManifest);
    assert.equal(json.modelHash, serving.modelRoot);
    assert.ok(
      json.checks.every((c) => c.ok),
      JSON.stringify(json.checks),
    );
    assert.ok(json.checks.some((c) => c.name === "same parent model"));
    assert.equal(json.record?.kind, "serving");
    assert.equal(json.record?.parentModelHash, serving.logId);
  });

  it("when a receipt's proof leads to an anchored checkpoint S signed, it verifies end to end, digests included", async () => {
    log = new TestReceiptLog(serving);
    base = (await chainTime()) + 1000;
    for (let i = 0; i < 4; i++) receipts.push(log.issue(new Date((base + i) * 1000)));
    const cp = log.checkpoint(4);
    await (await publisher.getFunction("anchorCheckpoint")(`0x${serving.logId}`, 4, `0x${cp.rootHash}`)).wait();

    const r = receipts[1]!;
    const result = await verify(receiptFile("r1.json", r, 4), bytesFiles("r1", r));
    assert.equal(result.code, 0, result.out + result.err);
    assert.deepEqual(result.json.errors, []);
    assert.deepEqual(result.json.checks, {
      signature: true,
      servingStatement: true,
      attestation: true,
      modelRecorded: true,
      servingRecorded: true,
      notRevoked: true,
      inclusion: true,
      digests: true,
    });
    assert.equal(result.json.receiptDigest, r.object.digest);
    assert.equal(result.json.modelRoot, serving.modelRoot);
    assert.equal(result.json.servingManifest, serving.servingManifest);
    assert.equal(result.json.seq, 1);
    assert.equal(result.json.issuedAt, new Date((base + 1) * 1000).toISOString());
    assert.equal((result.json.inclusion as { treeSize: number }).treeSize, 4);

    // The serving bundle from the verifier that recorded it (GET /bundles?manifest=, /bundles/:digest/bundle).
    const viaVerifier = await run([
      receiptFile("r1v.json", r, 4),
      "--verifier-url",
      service.apiUrl!,
      "--policy",
      policyFile,
      "--now",
      NOW.toISOString(),
      ...conn,
      "--json",
    ]);
    assert.equal(viaVerifier.code, 0, JSON.stringify(viaVerifier.json.errors));
    assert.equal(viaVerifier.json.servingManifest, serving.servingManifest);

    // Without the bytes the digests are not checked (null), and the rest still says yes; the text form too.
    const bare = await verify(receiptFile("r2.json", receipts[2]!, 4));
    assert.equal(bare.code, 0);
    assert.equal((bare.json.checks as { digests: unknown }).digests, null);
    const text = await run([
      receiptFile("r3.json", receipts[3]!, 4),
      "--attestation",
      attestationFile,
      "--policy",
      policyFile,
      "--now",
      NOW.toISOString(),
      ...conn,
    ]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^ok: receipt [0-9a-f]{64} \(seq 3/);
  });

  it("when one byte of the receipt is flipped, it refuses it with RECEIPT_BAD_SIGNATURE", async () => {
    const r = receipts[0]!;
    const file = receiptFile("flipped.json", r, 4, (json) => {
      const receipt = json.receipt as { envelope: { payload: string } };
      const payload = Buffer.from(receipt.envelope.payload, "base64");
      payload[payload.indexOf("12")] = 0x33; // promptTokens 12 → 32
      receipt.envelope = { ...receipt.envelope, payload: payload.toString("base64") };
    });
    const result = await verify(file);
    assert.equal(result.code, 1);
    assert.deepEqual(codes(result), ["RECEIPT_BAD_SIGNATURE"]);
    assert.equal((result.json.checks as { signature: boolean }).signature, false);
  });

  it("when the salt is wrong, it refuses the bytes with RECEIPT_DIGEST_MISMATCH", async () => {
    const r = receipts[0]!;
    const result = await verify(receiptFile("salt.json", r, 4), [...bytesFiles("salt", r), "--salt", "ab".repeat(32)]);
    assert.equal(result.code, 1);
    assert.deepEqual(codes(result), ["RECEIPT_DIGEST_MISMATCH"]);
    assert.equal((result.json.checks as { digests: boolean }).digests, false);
    assert.equal((result.json.checks as { inclusion: boolean }).inclusion, true);
  });

  it("when the proof leads to a root that was never anchored, it refuses it with RECEIPT_NOT_ANCHORED", async () => {
    // A checkpoint S signed over the first 2 leaves: a real root, but only size 4 is anchored.
    const result = await verify(receiptFile("unanchored.json", receipts[1]!, 2));
    assert.equal(result.code, 1);
    assert.deepEqual(codes(result), ["RECEIPT_NOT_ANCHORED"]);
    // A proof against a root of the server's own making (a leaf swapped), signed by S: not the anchored root.
    const forged = await verify(
      receiptFile("forged.json", receipts[1]!, 4, (json) => {
        const proof = json.proof as { proof: string[]; rootHash: string };
        proof.proof[0] = "00".repeat(32);
      }),
    );
    assert.equal(forged.code, 1);
    assert.deepEqual(codes(forged), ["MERKLE_PROOF_INVALID"]);
  });

  it("when the model is revoked, a receipt issued after is refused (MODEL_REVOKED) and one issued before still verifies", async () => {
    revokedAt = base + 2000;
    await atTime(revokedAt);
    await (await revoker.getFunction("revoke")(`0x${auditManifest}`, "weights leaked")).wait();
    for (let i = 0; i < 2; i++) receipts.push(log.issue(new Date((base + 3000 + i) * 1000)));
    await atTime(base + 4000);
    const cp = log.checkpoint(6);
    await (await publisher.getFunction("anchorCheckpoint")(`0x${serving.logId}`, 6, `0x${cp.rootHash}`)).wait();

    const late = await verify(receiptFile("late.json", receipts[4]!, 6));
    assert.equal(late.code, 1);
    assert.deepEqual(codes(late), ["MODEL_REVOKED"]);
    assert.equal((late.json.checks as { notRevoked: boolean }).notRevoked, false);
    assert.equal((late.json.checks as { inclusion: boolean }).inclusion, true);

    // Issued before the revocation: it verifies, and says the model was revoked after it (proved against size 6).
    const early = await verify(receiptFile("early.json", receipts[0]!, 6));
    assert.equal(early.code, 0, JSON.stringify(early.json.errors));
    assert.deepEqual(early.json.revokedAfterIssue, [
      { manifestDigest: auditManifest, revokedAt: new Date(revokedAt * 1000).toISOString() },
    ]);
    assert.deepEqual(
      (early.json.notes as { code: string }[]).map((n) => n.code),
      ["ISSUED_BEFORE_REVOCATION"],
    );
  });

  it("when the serving record is revoked before issuedAt, it refuses the receipt with MODEL_REVOKED", async () => {
    await atTime(base + 5000);
    await (await revoker.getFunction("revoke")(`0x${serving.servingManifest}`, "serving key switched off")).wait();
    receipts.push(log.issue(new Date((base + 6000) * 1000)));
    await atTime(base + 6500);
    const cp = log.checkpoint(7);
    await (await publisher.getFunction("anchorCheckpoint")(`0x${serving.logId}`, 7, `0x${cp.rootHash}`)).wait();
    const result = await verify(receiptFile("serving-revoked.json", receipts[6]!, 7));
    assert.equal(result.code, 1);
    assert.deepEqual(codes(result), ["MODEL_REVOKED"]);
    assert.match((result.json.errors as { message: string }[])[0]!.message, /serving record/);
  });

  it("when the SDK is asked, anchored checkpoints, a log's serving record and revocation times read back exactly", async () => {
    const client = await createRegistryClient({ rpcUrl: world.chain.url, address: world.registry.address });
    try {
      // Size 6 is no longer the latest: its root and time come from the view and its CheckpointAnchored event.
      const six = await client.checkpointOf(serving.logId, 6);
      assert.equal(six.rootHash, log.checkpoint(6).rootHash);
      assert.equal(six.anchoredAt?.getTime(), (base + 4000) * 1000);
      assert.match(six.txHash ?? "", /^0x[0-9a-f]{64}$/);
      const two = await client.checkpointOf(serving.logId, 2);
      assert.equal(two.rootHash, null);
      assert.equal(two.anchoredAt, null);
      const latest = await client.latestCheckpoint(serving.logId);
      assert.equal(latest?.treeSize, 7);
      assert.equal(latest?.anchoredAt?.getTime(), (base + 6500) * 1000);
      assert.equal(await client.latestCheckpoint("ab".repeat(32)), null);
      const record = await client.servingRecordOf(serving.logId);
      assert.equal(record?.kind, "serving");
      assert.equal(record?.manifestDigest, serving.servingManifest);
      assert.equal(record?.parentModelHash, serving.logId);
      assert.equal(await client.servingRecordOf("ab".repeat(32)), null);
      const revocation = await client.revocationTime(auditManifest);
      assert.equal(revocation.revoked, true);
      assert.equal(revocation.reason, "weights leaked");
      assert.equal(revocation.revokedAt?.getTime(), revokedAt * 1000);
      const never = await client.revocationTime("ab".repeat(32));
      assert.deepEqual([never.revoked, never.revokedAt], [false, null]);
    } finally {
      client.close();
    }
  });

  it("when the policy does not admit serving statements, the attestation check says no (POLICY_STATEMENT_KIND)", async () => {
    const narrow = path.join(work, "narrow-policy.json");
    writeFileSync(narrow, JSON.stringify(world.factory.policyJson));
    const result = await run([
      receiptFile("narrow.json", receipts[0]!, 6),
      "--attestation",
      attestationFile,
      "--policy",
      narrow,
      "--now",
      NOW.toISOString(),
      ...conn,
      "--json",
    ]);
    assert.equal(result.code, 1);
    assert.deepEqual(codes(result), ["POLICY_STATEMENT_KIND"]);
    assert.equal((result.json.checks as { attestation: boolean }).attestation, false);
  });

  it("when the input is unreadable or a source is missing, it exits 2 with the code", async () => {
    const junk = path.join(work, "junk.json");
    writeFileSync(junk, '{"payloadType": 1}');
    assert.deepEqual(codes(await verify(junk)), ["RECEIPT_INVALID"]);
    assert.equal((await verify(junk)).code, 2);
    const bare = path.join(work, "bare.json");
    writeFileSync(bare, JSON.stringify(receipts[0]!.object));
    const noProof = await run([bare, "--attestation", attestationFile, ...conn, "--json"]);
    assert.equal(noProof.code, 2);
    assert.deepEqual(codes(noProof), ["USAGE"]);
    // A receipt of a server whose serving bundle no verifier saw: the verifier holds none (NOT_FOUND, exit 2).
    const strangerLog = new TestReceiptLog(makeServingBundle(world.factory, { seed: "never-pushed" }));
    const stranger = strangerLog.issue(NOW);
    const strangerFile = path.join(work, "stranger.json");
    const cp = strangerLog.checkpoint(1);
    const strangerProof = {
      logId: strangerLog.serving.logId,
      leafIndex: 0,
      treeSize: 1,
      rootHash: cp.rootHash,
      proof: [],
    };
    writeFileSync(
      strangerFile,
      JSON.stringify({ receipt: stranger.object, proof: { ...strangerProof, checkpoint: { note: cp.note } } }),
    );
    const unknown = await run([strangerFile, "--verifier-url", service.apiUrl!, ...conn, "--json"]);
    assert.equal(unknown.code, 2);
    assert.deepEqual(codes(unknown), ["NOT_FOUND"]);
    const noBundle = await run([receiptFile("nobundle.json", receipts[0]!, 6), ...conn, "--json"]);
    assert.equal(noBundle.code, 2);
    assert.deepEqual(codes(noBundle), ["USAGE"]);
  });
});
