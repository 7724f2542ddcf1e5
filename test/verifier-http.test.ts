// Issue 13 against a real `provenant verifier run` process (real HTTP, real git, real SQLite, the in-process Hardhat
// chain of this test): a push of 16,000 junk signatures is refused with BUNDLE_TOO_COMPLEX while /healthz, probed from
// another process, keeps its p99 under 100 ms; then thousands of hostile HTTP requests (odd paths, methods, headers,
// bodies, slow clients that trickle bytes) after which the process still answers and its state is unchanged.
// The fuzz takes its seed from PROVENANT_FUZZ_SEED when set and prints the one it used.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { loadavg } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { Store } from "../offchain/store/index.ts";
import { createTestRepo, type TestRepo } from "../offchain/testing/git.ts";
import { makeHostileBundle } from "../offchain/testing/hostile.ts";
import { createTestWorld, verifierRunArgs, waitFor, type TestWorld } from "../offchain/testing/world.ts";
import { createRng, fuzzSeed } from "./reliability/fuzz.ts";

const ROOT = path.resolve(new URL("..", import.meta.url).pathname);
const TOKEN = "http-fuzz-recheck-token-0123456789";
const FUZZ_REQUESTS = Number(process.env.PROVENANT_HTTP_FUZZ_REQUESTS ?? 3000);
const digestOf = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/**
 * Probes GET /healthz one request after another from its own process (so that the chain this test runs does not
 * delay the measurement) until its stdin closes, then prints the latencies in ms as one JSON line.
 */
const PROBE = `
const url = process.argv[1];
const latencies = [];
let running = true;
process.stdin.on("end", () => { running = false; }).resume();
(async () => {
  await (await fetch(url)).text(); // warm-up: the client's own first request loads its HTTP stack
  while (running) {
    const t = performance.now();
    try { await (await fetch(url)).text(); latencies.push(performance.now() - t); } catch { latencies.push(-1); }
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(JSON.stringify(latencies) + "\\n");
})();
`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** Starts `provenant verifier run` on port 0 and resolves with its API URL (read from its "listening" log line). */
async function startVerifier(world: TestWorld, repo: TestRepo, dataDir: string) {
  const child = spawn(
    process.execPath,
    verifierRunArgs(world, repo.origin, dataDir, ["--interval", "0.2", "--listen", "127.0.0.1:0", "--workers", "2"]),
    {
      cwd: ROOT,
      env: {
        ...process.env,
        PROVENANT_PRIVATE_KEY: world.registry.publisherKey,
        PROVENANT_LOG_LEVEL: "info",
        PROVENANT_RECHECK_TOKEN: TOKEN,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m !== null) resolve(m[1]!);
      if (out.length > 1_000_000) out = out.slice(-100_000);
    });
    child.stderr!.on("data", (chunk: Buffer) => process.env.E2E_DEBUG && process.stderr.write(chunk));
    child.once("exit", (code) => reject(new Error(`verifier exited with ${code} before listening: ${out}`)));
  });
  return { child, url, exited };
}

describe("verifier process: one push or one request cannot stop it", () => {
  let world: TestWorld;
  let repo: TestRepo;
  let verifier: Awaited<ReturnType<typeof startVerifier>>;
  let dataDir: string;
  before(async () => {
    // The child process reads the machine's clock: bundles are minted at it.
    world = await createTestWorld("verifier-http", { now: new Date() });
    repo = createTestRepo();
    repo.write("README.md", "watched");
    repo.commitAndPush("first");
    dataDir = path.join(world.work, "data");
    verifier = await startVerifier(world, repo, dataDir);
  });
  after(async () => {
    if (verifier.child.exitCode === null) {
      verifier.child.kill("SIGKILL");
      await verifier.exited;
    }
    repo.cleanup();
    await world.close();
  });
  const snapshot = () => {
    const store = new Store({ dataDir });
    try {
      return store
        .listBundles({ limit: 1000 })
        .map((r) => `${r.digest} ${r.status} ${r.txHash} ${r.errors.map((e) => e.code).join(",")}`)
        .sort();
    } finally {
      store.close();
    }
  };

  it("when a bundle of 16,000 junk signatures is pushed, it is refused with BUNDLE_TOO_COMPLEX while /healthz p99 stays under 100 ms (on a loaded machine: within its idle noise), and sound bundles pushed after it are published", async () => {
    const junk = makeHostileBundle(world.factory.sim, { seed: "junk-16000-http", junkInFirst: 16_000 });
    assert.ok(junk.bytes.length > 2_000_000);
    const sound = Array.from({ length: 20 }, (_, i) => world.factory.make({ seed: `sound-${i}`, kind: "eval" }));
    repo.write("bundles/000-junk.provenance.json", junk.bytes);
    const startProbe = () => {
      const probe = spawn(process.execPath, ["--input-type=module", "-e", PROBE, `${verifier.url}/healthz`], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      let probed = "";
      probe.stdout!.on("data", (c: Buffer) => (probed += c.toString("utf8")));
      const exited = new Promise<void>((resolve) => probe.once("exit", () => resolve()));
      return {
        async stop(): Promise<number[]> {
          probe.stdin!.end();
          await exited;
          return JSON.parse(probed) as number[];
        },
      };
    };
    // The same probe on the idle service first: what this machine's load alone does to /healthz.
    const idle = startProbe();
    await new Promise((r) => setTimeout(r, 3_000));
    const baseline = await idle.stop();
    const probe = startProbe();
    const latencies: number[] = [];
    const pushed = performance.now();
    repo.commitAndPush("16,000 junk signatures");
    // Progress is read over the API (as a publisher would), not from the database the process is writing.
    const statusOf = async (bytes: Uint8Array): Promise<string | undefined> => {
      const res = await fetch(`${verifier.url}/bundles/${digestOf(bytes)}`);
      return res.status === 200 ? ((await res.json()) as { status: string }).status : undefined;
    };
    try {
      // Probed from the push until the hostile bundle's verdict is stored (and for at least 3 s, like the baseline).
      await waitFor(
        "the verdict",
        async () => {
          const junkStatus = await statusOf(junk.bytes);
          return junkStatus === undefined || junkStatus === "seen" || performance.now() - pushed < 3_000
            ? undefined
            : true;
        },
        120_000,
      );
    } finally {
      latencies.push(...(await probe.stop()));
    }
    // The service goes on: sound bundles pushed after it are published. (With publication in the window too, the
    // benchmark measures /healthz over a 16,000-signature bundle and 100 sound ones: bench/verifier.ts.)
    sound.forEach((m, i) => repo.write(`bundles/sound-${i}.provenance.json`, m.bytes));
    repo.commitAndPush("20 sound bundles");
    await waitFor(
      "the sound bundles published",
      async () => {
        for (const m of sound) {
          const st = await statusOf(m.bytes);
          if (st === "rejected" || st === "failed")
            throw new Error(
              `a sound bundle was ${st}: ${await (await fetch(`${verifier.url}/bundles/${digestOf(m.bytes)}`)).text()}`,
            );
          if (st !== "published") return undefined;
        }
        return true;
      },
      120_000,
    );
    const p99 = percentile(latencies, 99);
    const idleP99 = percentile(baseline, 99);
    console.log(
      `/healthz idle: ${baseline.length} probes, p50 ${percentile(baseline, 50).toFixed(1)} ms, p99 ${idleP99.toFixed(1)} ms; ` +
        `while processing: ${latencies.length} probes, p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
        `p99 ${p99.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (load ${loadavg()[0]!.toFixed(1)})`,
    );
    // Under 100 ms. On a machine so loaded that the idle service already misses that (scheduling alone), the attack
    // must add no more than that noise: before the worker pool, this push held /healthz for ~40 s.
    const bound = idleP99 < 50 ? 100 : Math.max(100, 2 * idleP99 + 50);
    assert.ok(
      p99 < bound,
      `p99 ${p99.toFixed(1)} ms under attack, ${idleP99.toFixed(1)} ms idle, bound ${bound.toFixed(0)} ms`,
    );
    const store = new Store({ dataDir });
    try {
      const row = store.getBundle(digestOf(junk.bytes))!;
      assert.deepEqual(
        row.errors.map((e) => e.code),
        ["BUNDLE_TOO_COMPLEX"],
      );
    } finally {
      store.close();
    }
  });

  it(`when ${FUZZ_REQUESTS} hostile requests and 20 slow clients hit it, it still answers and its state is unchanged`, async () => {
    const seed = fuzzSeed("verifier HTTP");
    const rng = createRng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
    const int = (n: number): number => Math.floor(rng() * n);
    const before = snapshot();
    assert.ok(before.length >= 21, "the state under test holds the bundles of the previous test");
    const known = before.map((line) => line.slice(0, 64));
    const count = async (digest: string): Promise<bigint> => {
      const store = new Store({ dataDir });
      const row = store.getBundle(digest);
      store.close();
      if (row?.modelHash == null) return -1n;
      return (await world.registry.contract.getFunction("manifestCount")(`0x${row.modelHash}`)) as bigint;
    };
    const countsBefore = await Promise.all(known.map(count));

    const { hostname, port } = new URL(verifier.url);
    const noise = "/\\:[]%?#@.~!$&'()*+,;=-_ \t\r\n\u0000\u00ff\u2028é😀";
    const randomText = (n: number, alphabet = noise): string =>
      Array.from({ length: n }, () => (rng() < 0.6 ? pick([...alphabet]) : String.fromCharCode(32 + int(95)))).join("");
    const randomPath = (): string => {
      const digest = rng() < 0.5 ? pick(known) : "ab".repeat(32);
      return pick([
        "//",
        "///",
        "//a:b",
        "//[",
        "/\\\\",
        `/${randomText(int(40))}`,
        `/bundles/${digest}`,
        `/bundles/0x${digest}`,
        `/bundles/${digest}/recheck`,
        `/bundles?status=${pick(["seen", "rejected", "x", "", "published&status=seen"])}`,
        `/bundles?offset=${pick(["1e20", "-1", "0", "999999999999", "NaN", "%00", randomText(5)])}&limit=${pick(["1", "1000", "1001", "0x10", ""])}`,
        `/healthz?${randomText(int(30))}`,
        "/metrics",
        "/refusals",
        `/${"a".repeat(int(5000))}`,
        "*",
        "http://evil.example/healthz",
        randomText(int(20)),
      ]);
    };
    // Characters a request target may carry on the wire (node refuses the others before routing).
    const targetSafe = "/\\:[]%?#@.~!$&'()*+,;=-_abcXYZ019";
    const wellFormed = (): Buffer => {
      const target = rng() < 0.5 ? randomPath().replace(/[^\x21-\x7e]/g, "%") : `/${randomText(int(60), targetSafe)}`;
      const method = pick(["GET", "GET", "GET", "HEAD", "POST", "DELETE"]);
      const auth =
        rng() < 0.3 ? `authorization: Bearer ${pick([TOKEN.slice(1), "x", randomText(30, "abcdef0123")])}\r\n` : "";
      return Buffer.from(
        `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\n${auth}connection: close\r\n\r\n`,
        "latin1",
      );
    };
    const randomRequest = (): Buffer => {
      if (rng() < 0.5) return wellFormed();
      if (rng() < 0.1) return Buffer.from(Array.from({ length: int(400) }, () => int(256)));
      const method = pick([
        "GET",
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "OPTIONS",
        "TRACE",
        "CONNECT",
        "PATCH",
        "get",
        "BREW",
        "",
      ]);
      const version = pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", ""]);
      const headers: string[] = [];
      if (rng() < 0.9) headers.push("host: 127.0.0.1");
      for (let i = int(rng() < 0.1 ? 90 : 6); i > 0; i--)
        headers.push(
          pick([
            `x-${randomText(int(10), "abc")}: ${randomText(int(50))}`,
            `x-big: ${"b".repeat(int(12_000))}`,
            `content-length: ${pick(["0", "5", "100", "5000", "-1", "abc", "99999999999999999999"])}`,
            "transfer-encoding: chunked",
            `authorization: ${pick(["Bearer ", "Bearer x", `Bearer ${TOKEN.slice(0, -1)}`, "Basic Zm9vOmJhcg==", randomText(20)])}`,
            "expect: 100-continue",
            "connection: keep-alive",
            `${randomText(int(8))}: ${randomText(int(8))}`,
          ]),
        );
      const body = pick(["", "", "hello", "0\r\n\r\n", "5\r\nabc", randomText(int(200))]);
      return Buffer.from(`${method} ${randomPath()} ${version}\r\n${headers.join("\r\n")}\r\n\r\n${body}`, "latin1");
    };
    const statuses = new Map<number, number>();
    const send = (bytes: Buffer): Promise<void> =>
      new Promise((resolve) => {
        const socket = connect(Number(port), hostname);
        let text = "";
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          socket.destroy();
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
          const status = m === null ? 0 : Number(m[1]);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          resolve();
        };
        const timer = setTimeout(finish, 1_000);
        socket.on("data", (c: Buffer) => {
          text += c.toString("latin1");
          if (text.includes("\r\n\r\n")) finish();
        });
        socket.on("error", finish);
        socket.on("close", finish);
        socket.write(bytes);
      });

    // Slow clients: each trickles a request a byte at a time, far slower than the header timeout allows.
    const slow = Array.from({ length: 20 }, () => {
      const socket = connect(Number(port), hostname);
      socket.on("error", () => undefined);
      const text = `GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ${"s".repeat(10_000)}`;
      let i = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(text[i++ % text.length]!);
      }, 150);
      return { socket, timer };
    });
    try {
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < FUZZ_REQUESTS) {
            next += 1;
            await send(randomRequest());
          }
        }),
      );
      console.log(
        `HTTP fuzz: ${FUZZ_REQUESTS} requests in ${((performance.now() - started) / 1000).toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      // The header timeout (5 s, enforced every second) closes them, however fast the fuzz went.
      const closedSlow = () => slow.filter((s) => s.socket.destroyed || s.socket.readableEnded).length;
      await waitFor("the server to close the slow clients", () => (closedSlow() === 20 ? true : undefined), 15_000);
    } finally {
      for (const s of slow) {
        clearInterval(s.timer);
        s.socket.destroy();
      }
    }

    assert.equal(verifier.child.exitCode, null, "the process is alive");
    const health = await fetch(`${verifier.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await fetch(`${verifier.url}/bundles?limit=5`)).status, 200);
    assert.deepEqual(snapshot(), before, "no store row changed");
    assert.deepEqual(await Promise.all(known.map(count)), countsBefore, "no record was published or lost");
    assert.ok(!statuses.has(500), "no request made it fail internally");

    verifier.child.kill("SIGTERM");
    assert.equal(await verifier.exited, 0, "it still stops cleanly");
  });
});
