// SIGKILL during an epoch: `provenant serve` as a real child process on a real chain, killed with kill -9 while
// requests are in flight, then restarted on the same data directory. No receipt it returned is lost (each is proved
// against a root anchored onchain, the old log's tail by the new identity after the restart), no seq is repeated, and
// the chain of receipts goes on from the last one across the restart.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { readBundle } from "../lib/bundle/index.ts";
import { parseEnvelope } from "../lib/dsse/index.ts";
import {
  verifyReceipt,
  verifyReceiptInclusion,
  verifyServingCheckpoint,
  verifyServingStatement,
  verifyUsageStatement,
  type ReceiptObject,
  type VerifiedServing,
} from "../lib/receipt/index.ts";
import { ReceiptLog, SEQ_RESERVATION } from "./log.ts";
import { ServeStore } from "./store.ts";
import { createServeWorld, waitFor, type ServeWorld } from "./testing.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Life {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output: () => string;
}

let world: ServeWorld;
const children: ChildProcess[] = [];

before(async () => {
  world = await createServeWorld("serve-restart");
  await world.publishModelRecord(2);
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await (world as ServeWorld | undefined)?.close(); // unset when the fixture failed to come up
});

/** `provenant serve` on port 0; resolves with its URL from the "serving" log line. */
async function startLife(dataDir: string): Promise<Life> {
  const child = spawn(
    process.execPath,
    [
      "--disable-warning=ExperimentalWarning",
      path.join(ROOT, "bin/cli.ts"),
      "serve",
      "--model",
      world.modelPath,
      "--rpc",
      world.chain.url,
      "--registry",
      world.registry.address,
      "--provider",
      "sim",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--check-seconds",
      "1",
      "--epoch-receipts",
      "4",
      "--epoch-seconds",
      "3600",
      "--threads",
      "1",
      "--context-size",
      "512",
    ],
    { env: { ...process.env, PROVENANT_PRIVATE_KEY: world.anchorKey }, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await waitFor(
    "the server to listen",
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: ${out}`);
      return /"msg":"serving"/.test(out) ? /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1] : undefined;
    },
    120_000,
  );
  return { child, url, exited, output: () => out };
}

async function servingOf(url: string): Promise<VerifiedServing> {
  const bundle = readBundle(new Uint8Array(await (await fetch(`${url}/v1/attestation`)).arrayBuffer()));
  return verifyServingStatement(bundle.envelopes[0]!, Buffer.from(bundle.signer.publicKey, "base64"));
}

async function complete(url: string, i: number): Promise<ReceiptObject> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny", prompt: `request ${i}: the capital of`, max_tokens: 24 }),
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { provenant_receipt: ReceiptObject }).provenant_receipt;
}

describe("restart of provenant serve", () => {
  it("when the server is killed with SIGKILL during an epoch, no returned receipt is lost and no seq is repeated", async () => {
    const dataDir = path.join(world.work, "data");
    // Life 1: an epoch of 4 receipts is closed and anchored, then the server dies during the next one, killed as soon
    // as the first answer of a burst of concurrent requests is back (the others are queued or generating).
    const first = await startLife(dataDir);
    const servingA = await servingOf(first.url);
    await world.publishServing(servingA.manifestDigest, servingA.logId);
    const returned: ReceiptObject[] = [];
    for (let i = 0; i < 4; i++) returned.push(await complete(first.url, i));
    let killed = false;
    const inFlight = [4, 5, 6, 7, 8, 9].map((i) =>
      complete(first.url, i).then(
        (r) => {
          returned.push(r);
          if (!killed) first.child.kill("SIGKILL");
          killed = true;
        },
        () => undefined,
      ),
    );
    await Promise.all(inFlight);
    assert.ok(killed, "no answer came back before the kill");
    assert.equal(await first.exited, null);
    const keyA = servingA.publicKey;
    for (const r of returned) assert.equal(verifyReceipt(r.envelope, keyA).statement.predicate.logId, servingA.logId);
    const seqs = returned.map((r) => r.seq);
    assert.equal(new Set(seqs).size, seqs.length, `repeated seq in ${seqs}`);
    const lastSeq = Math.max(...seqs);

    // Life 2: a new serving identity (S died with the process), the same data directory.
    const second = await startLife(dataDir);
    const servingB = await servingOf(second.url);
    assert.notEqual(servingB.logId, servingA.logId);
    const predecessor = servingB.statement.predicate.predecessor!;
    assert.equal(predecessor.logId, servingA.logId);
    assert.ok(predecessor.lastSeq >= lastSeq, `predecessor ${predecessor.lastSeq} < returned ${lastSeq}`);

    // Every receipt returned before the kill is proved against a root anchored onchain (the tail by the recovery
    // checkpoint that the new identity signed and anchored after the restart).
    for (const r of returned) {
      const proof = await waitFor(
        `receipt ${r.seq} to be anchored`,
        async () => {
          const response = await fetch(`${second.url}/v1/receipts/${r.digest}/proof`);
          return response.status === 200
            ? ((await response.json()) as {
                logId: string;
                leafIndex: number;
                treeSize: number;
                rootHash: string;
                proof: string[];
                checkpoint: { note: string; recovery: boolean; signerLogId: string; anchor: { afterRestart: boolean } };
              })
            : undefined;
        },
        60_000,
      );
      assert.equal(proof.logId, servingA.logId);
      assert.equal(proof.leafIndex, r.leafIndex);
      verifyReceiptInclusion(
        Buffer.from(r.envelope.payload, "base64"),
        proof.leafIndex,
        proof.treeSize,
        proof.proof.map((h) => Buffer.from(h, "hex")),
        Buffer.from(proof.rootHash, "hex"),
      );
      const onchain = (await world.registry.contract.getFunction("checkpointRoot")(
        `0x${servingA.logId}`,
        proof.treeSize,
      )) as string;
      assert.equal(onchain, `0x${proof.rootHash}`);
      const signer = proof.checkpoint.recovery ? servingB.publicKey : keyA;
      verifyServingCheckpoint(proof.checkpoint.note, servingA.logId, signer);
      if (r.seq >= 4) {
        assert.equal(proof.checkpoint.recovery, true);
        assert.equal(proof.checkpoint.signerLogId, servingB.logId);
        assert.equal(proof.checkpoint.anchor.afterRestart, true);
      }
    }

    // The old log's unmetered receipts are metered by a recovery usage statement that the new key signed.
    const usage = (await (await fetch(`${second.url}/v1/usage/latest?log=${servingA.logId}`)).json()) as {
      envelope: unknown;
      logId: string;
    };
    assert.equal(usage.logId, servingB.logId);
    const metered = verifyUsageStatement(parseEnvelope(usage.envelope), servingB.publicKey).statement.predicate;
    assert.equal(metered.recovery, true);
    assert.equal(metered.logId, servingA.logId);
    assert.equal(metered.receipts.lastSeq, predecessor.lastSeq);

    // prevReceipt goes on from the last receipt of the old life; the seq from the mark the old life had reserved
    // (durably, before handing out any seq below it), which its serving statement names: a visible gap, never a
    // seq issued twice, even had an OS crash taken the old life's last commits with it.
    const firstSeq = servingB.statement.predicate.log.firstSeq;
    assert.equal(firstSeq, SEQ_RESERVATION);
    assert.ok(firstSeq > lastSeq);
    const next = await complete(second.url, 100);
    const { statement } = verifyReceipt(next.envelope, servingB.publicKey);
    assert.equal(statement.predicate.seq, firstSeq);
    assert.equal(statement.predicate.prevReceipt, predecessor.lastReceipt);
    assert.ok(!seqs.includes(next.seq));

    second.child.kill("SIGTERM");
    assert.equal(await second.exited, 0, second.output().slice(-2000));
    // A clean stop gives the unused reservation back: the next life would go on from seq + 1, without a gap.
    const store = await ServeStore.open(dataDir);
    try {
      assert.equal(store.reservedThrough(), next.seq + 1);
      assert.equal(ReceiptLog.firstSeqOf(store), next.seq + 1);
    } finally {
      await store.close();
    }
  });
});
