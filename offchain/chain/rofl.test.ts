import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { encode as encodeCbor } from "cborg";

import { createRoflSender, decodeCallResult, isTransient, redactUrl } from "./index.ts";

/** A stand-in for rofl-appd that follows the documented request and response shapes (oasis-sdk docs/rofl). */
function fakeAppd(socketPath: string, answer: (body: unknown) => { status: number; body: string }) {
  const requests: { path: string; method: string; body: unknown }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
      requests.push({ path: req.url ?? "", method: req.method ?? "", body });
      const out = answer(body);
      res.writeHead(out.status, { "content-type": "application/json" });
      res.end(out.body);
    });
  });
  return { server, requests, listen: () => new Promise<void>((r) => server.listen(socketPath, r)) };
}

const hex = (value: unknown): string => Buffer.from(encodeCbor(value)).toString("hex");

describe("rofl-appd signer", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "appd-"));
  const socketPath = path.join(dir, "rofl-appd.sock");
  let next: { status: number; body: string } = { status: 200, body: "" };
  const appd = fakeAppd(socketPath, () => next);
  before(() => appd.listen());
  after(() => {
    appd.server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const tx = { to: "0x1234845aaB7b6CD88c7fAd9E9E1cf07638805b20", data: "0xdae1ee1f", gasLimit: 350_000n };

  it("when the call succeeds, it posts the documented sign-submit request with an explicit gas limit", async () => {
    next = { status: 200, body: JSON.stringify({ data: "a1626f6b40" }) }; // {"ok": ''}, the documented example
    const sender = createRoflSender({ socketPath });
    const result = await sender.send(tx);
    assert.deepEqual(result, { txHash: null, block: null, gasUsed: null });
    const last = appd.requests.at(-1);
    assert.equal(last?.method, "POST");
    assert.equal(last?.path, "/rofl/v1/tx/sign-submit");
    assert.deepEqual(last?.body, {
      tx: {
        kind: "eth",
        data: { gas_limit: 350000, to: "1234845aaB7b6CD88c7fAd9E9E1cf07638805b20", value: 0, data: "dae1ee1f" },
      },
      encrypt: true,
    });
  });

  it("when the call reverts, it reports PUBLISH_REVERTED although HTTP said 200", async () => {
    // the documented failure example: {"fail": {"code": 8, "module": "evm", "message": "reverted: aJAoLw=="}}
    const documented =
      "a1646661696ca364636f646508666d6f64756c656365766d676d6573736167657272657665727465643a20614a416f4c773d3d";
    assert.deepEqual(decodeCallResult(documented), {
      fail: { code: 8, module: "evm", message: "reverted: aJAoLw==" },
    });
    next = { status: 200, body: JSON.stringify({ data: documented }) };
    await assert.rejects(createRoflSender({ socketPath }).send(tx), (error: unknown) => {
      assert.equal((error as { code: string }).code, "PUBLISH_REVERTED");
      assert.equal(isTransient(error), false);
      return true;
    });
  });

  it("when another module fails the call, it reports PUBLISH_FAILED", async () => {
    next = {
      status: 200,
      body: JSON.stringify({ data: hex({ fail: { module: "core", code: 12, message: "out of gas" } }) }),
    };
    await assert.rejects(createRoflSender({ socketPath }).send(tx), { code: "PUBLISH_FAILED" });
  });

  it("when the appd answers 500 or the socket is missing, it reports a transient RPC_UNAVAILABLE", async () => {
    next = { status: 500, body: "busy" };
    await assert.rejects(createRoflSender({ socketPath }).send(tx), (error: unknown) => {
      assert.equal((error as { code: string }).code, "RPC_UNAVAILABLE");
      assert.equal(isTransient(error), true);
      return true;
    });
    await assert.rejects(createRoflSender({ socketPath: path.join(dir, "none.sock") }).send(tx), {
      code: "RPC_UNAVAILABLE",
    });
  });

  it("when the answer is not a call result, it reports PUBLISH_FAILED", async () => {
    next = { status: 200, body: "not json" };
    await assert.rejects(createRoflSender({ socketPath }).send(tx), { code: "PUBLISH_FAILED" });
    next = { status: 200, body: JSON.stringify({ data: hex({ unknown: new Uint8Array(4) }) }) };
    await assert.rejects(createRoflSender({ socketPath }).send(tx), { code: "PUBLISH_FAILED" });
  });

  it("when an RPC URL carries credentials, logs show it redacted", () => {
    assert.equal(
      redactUrl("https://user:pw@rpc.example/v1/abcdefghijklmnopqrstuvwxyz0123?key=s"),
      "https://***@rpc.example/v1/***?***",
    );
  });
});
