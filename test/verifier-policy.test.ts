// Issue 12 across parts: `verifier run` refuses an open policy (POLICY_OPEN, exit 2) and starts with a pinned or a
// development one; `bundle verify` warns about an open policy and checks revocation against AMD-style CRLs served by
// a real HTTP KDS fake (a revoked VCEK refused, a stale CRL fetched again, --no-crl warned); the verifier service
// refuses a bundle whose VCEK is revoked. Bundles come from the simulator; every clock is fixed (or starts at NOW).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import type { CliIo } from "../lib/cli/index.ts";
import { kdsCrlUrl } from "../lib/snp/index.ts";
import { createLocalSender } from "../offchain/chain/index.ts";
import { commands } from "../offchain/cli.ts";
import { parseVerifierPolicy } from "../offchain/pipeline/index.ts";
import { startService } from "../offchain/service.ts";
import { createTestRepo } from "../offchain/testing/git.ts";
import { startFakeKds, type FakeKds } from "../offchain/testing/kds.ts";
import { createTestWorld, tickingClock, verifierRunArgs, waitFor, type TestWorld } from "../offchain/testing/world.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const DAY = 86_400_000;
/** The simulator's ASK: revoking it revokes every VCEK it issued (VCEKs all carry serial 0). */
const ASK = 0x10001;
const ROOT = path.resolve(new URL("..", import.meta.url).pathname);
const NODE = process.execPath;
const verify = commands.find((c) => c.path.join(" ") === "bundle verify")!;
const run = commands.find((c) => c.path.join(" ") === "verifier run")!;

function capture(cwd: string, env: NodeJS.ProcessEnv = {}): CliIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    isTty: false,
    env,
    cwd,
  };
  return io;
}

interface VerifyOut {
  ok: boolean;
  errors: { code: string }[];
  warnings: { code: string; message: string }[];
  evidence?: { revocation: { checked: boolean }; root: { kind: string } };
}

describe("verifier policy and revocation, across the CLI and the service", () => {
  let world: TestWorld;
  let dir: string;
  let kds: FakeKds;
  before(async () => {
    world = await createTestWorld("verifier-policy", { now: NOW });
    dir = mkdtempSync(path.join(tmpdir(), "verifier-policy-"));
    kds = await startFakeKds({ crl: world.factory.sim.crl() });
    writeFileSync(path.join(dir, "good.json"), world.factory.make({ seed: "policy-good" }).bytes);
    writeFileSync(path.join(dir, "dev-policy.json"), JSON.stringify(world.factory.policyJson));
    const { development: _dev, ...open } = world.factory.policyJson;
    writeFileSync(path.join(dir, "open-policy.json"), JSON.stringify(open));
    writeFileSync(
      path.join(dir, "pinned-policy.json"),
      JSON.stringify({
        snp: {
          measurements: [{ name: "provenant-job test image", value: "42".repeat(48) }],
          minimumTcb: { Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 } },
        },
      }),
    );
  });
  after(async () => {
    await kds.close();
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("verifier run", () => {
    const args = ["--repo", "x", "--rpc", "http://127.0.0.1:1", "--registry", `0x${"11".repeat(20)}`];
    const env = { PROVENANT_PRIVATE_KEY: `0x${"22".repeat(32)}` };

    it("when the policy is open (none given, or one without development), it exits 2 with POLICY_OPEN before starting", async () => {
      for (const extra of [[], ["--policy", "open-policy.json"]]) {
        const io = capture(dir, env);
        assert.equal(await run.run([...args, ...extra], io), 2, extra.join(" "));
        assert.match(io.err, /^error POLICY_OPEN: the policy is open \(snp\.measurements: /);
      }
    });

    it("when the shipped ROFL template is used unfilled, it exits 2 with POLICY_INVALID naming its placeholders", async () => {
      const io = capture(dir, env);
      const template = path.join(ROOT, "offchain/rofl/policy.json");
      assert.equal(await run.run([...args, "--policy", template], io), 2);
      assert.match(io.err, /^error POLICY_INVALID: .*template placeholder/m);
    });

    it("when the ROFL template's placeholders are filled in, it is a pinned policy with its gpu section (no deprecated requireGpuEvidence)", () => {
      const template = JSON.parse(readFileSync(path.join(ROOT, "offchain/rofl/policy.json"), "utf8")) as {
        snp: { measurements: { name: string; value: string }[]; minimumTcb: Record<string, unknown> };
        jobCodeDigests: string[];
        [key: string]: unknown;
      };
      assert.equal("requireGpuEvidence" in template, false);
      template.snp.measurements = [{ name: "provenant-job test image", value: "42".repeat(48) }];
      template.snp.minimumTcb = { Genoa: { bootloader: 9, tee: 0, snp: 23, microcode: 84 } };
      template.jobCodeDigests = [`sha256:${"ab".repeat(32)}`];
      const policy = parseVerifierPolicy(template);
      assert.equal(policy.openness.open, false, JSON.stringify(policy.openness.reasons));
      assert.equal(policy.development, false);
      assert.deepEqual(policy.json.gpu, {
        required: false,
        archs: ["blackwell", "hopper"],
        minDriverVersion: null,
        requireRims: true,
        requireOcsp: false,
        trustedRoots: [],
      });
    });

    it("when the policy is pinned, or open but development, `provenant verifier run` starts (and stops on SIGTERM)", async () => {
      for (const policy of ["pinned-policy.json", "dev-policy.json"]) {
        const repo = createTestRepo();
        repo.write("README", "nothing to verify yet\n");
        repo.commitAndPush("a first commit, for the service to scan");
        const dataDir = path.join(dir, `data-${policy}`);
        const argv = verifierRunArgs(world, repo.origin, dataDir, ["--listen", "off", "--interval", "0.2"]);
        argv[argv.indexOf("--policy") + 1] = path.join(dir, policy);
        const child = spawn(NODE, argv, {
          cwd: ROOT,
          env: { ...process.env, PROVENANT_PRIVATE_KEY: world.registry.publisherKey },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        try {
          // The first scan is logged after startService has returned, so the SIGTERM handler is installed by then.
          await waitFor(
            `${policy}: the service scans`,
            () => (out.includes('"msg":"scanned"') ? true : undefined),
            60_000,
          );
          assert.match(out, /"msg":"policy loaded"/);
          assert.doesNotMatch(out, /POLICY_OPEN/);
        } finally {
          child.kill("SIGTERM");
          assert.equal(await exited, 0, out);
          repo.cleanup();
        }
      }
    });
  });

  describe("bundle verify", () => {
    const verifyJson = async (extra: string[], cwd = dir) => {
      const io = capture(cwd);
      const code = await verify.run(["good.json", "--policy", "dev-policy.json", "--json", ...extra], io);
      return { code, out: JSON.parse(io.out) as VerifyOut, err: io.err };
    };

    it("when the policy is open, it still verifies, and warns on stderr and in --json", async () => {
      const { code, out, err } = await verifyJson(["--now", NOW.toISOString()]);
      assert.equal(code, 0, JSON.stringify(out.errors));
      assert.ok(out.warnings.some((w) => w.code === "POLICY_OPEN"));
      assert.match(err, /^warning POLICY_OPEN: the policy is open \("development": true\)/m);
      // Without a KDS to ask, a development root's revocation is not checked, and it says so.
      assert.ok(out.warnings.some((w) => w.code === "SNP_REVOCATION_UNCHECKED"));
      assert.equal(out.evidence?.revocation.checked, false);
      assert.equal(out.evidence?.root.kind, "development");
      const plain = capture(dir);
      assert.equal(await verify.run(["good.json", "--now", NOW.toISOString()], plain), 1, "the default policy");
      assert.match(plain.err, /warning POLICY_OPEN: the policy is open: snp\.measurements/);
    });

    it("when KDS's CRL revokes the ASK that issued the VCEK, it is refused with SNP_CERT_REVOKED", async () => {
      const cacheDir = mkdtempSync(path.join(dir, "kds-revoked-"));
      const revoked = await startFakeKds({ crl: world.factory.sim.crl({ revoked: [ASK] }) });
      try {
        const { code, out } = await verifyJson([
          "--now",
          NOW.toISOString(),
          "--kds-url",
          revoked.url,
          "--cache-dir",
          cacheDir,
        ]);
        assert.equal(code, 1);
        assert.deepEqual(
          out.errors.map((e) => e.code),
          ["SNP_CERT_REVOKED"],
        );
        assert.deepEqual(revoked.requests, [new URL(kdsCrlUrl("Milan", "vcek", revoked.url)).pathname]);
      } finally {
        await revoked.close();
      }
    });

    it("when the cached CRL goes stale, it is fetched again, and the newer CRL's revocation applies", async () => {
      const cacheDir = mkdtempSync(path.join(dir, "kds-stale-"));
      const sim = world.factory.sim;
      kds.crl = sim.crl();
      kds.requests.length = 0;
      const at = (ms: number) => [
        "--now",
        new Date(NOW.getTime() + ms).toISOString(),
        "--kds-url",
        kds.url,
        "--cache-dir",
        cacheDir,
      ];
      const first = await verifyJson(at(0));
      assert.equal(first.code, 0, JSON.stringify(first.out.errors));
      assert.equal(first.out.evidence?.revocation.checked, true);
      assert.equal(
        first.out.warnings.some((w) => w.code === "SNP_REVOCATION_UNCHECKED"),
        false,
      );
      // AMD revokes the ASK in its next CRL; the cached one is still current a day later.
      kds.crl = sim.crl({
        revoked: [ASK],
        thisUpdate: new Date(NOW.getTime() + 7 * DAY),
        nextUpdate: new Date(NOW.getTime() + 14 * DAY),
      });
      assert.equal((await verifyJson(at(DAY))).code, 0);
      assert.equal(kds.requests.length, 1, "a current CRL is read from the cache");
      const later = await verifyJson(at(8 * DAY));
      assert.equal(kds.requests.length, 2, "a stale CRL is fetched again");
      assert.equal(later.code, 1);
      assert.deepEqual(
        later.out.errors.map((e) => e.code),
        ["SNP_CERT_REVOKED"],
      );
    });

    it("when --no-crl is given, revocation is skipped with a warning; with --crl, the file is used", async () => {
      const skipped = await verifyJson(["--now", NOW.toISOString(), "--no-crl"]);
      assert.equal(skipped.code, 0);
      assert.ok(skipped.out.warnings.some((w) => w.code === "SNP_REVOCATION_UNCHECKED" && /--no-crl/.test(w.message)));
      writeFileSync(path.join(dir, "revoked.crl"), world.factory.sim.crl({ revoked: [ASK] }));
      const given = await verifyJson(["--now", NOW.toISOString(), "--crl", "revoked.crl"]);
      assert.equal(given.code, 1);
      assert.deepEqual(
        given.out.errors.map((e) => e.code),
        ["SNP_CERT_REVOKED"],
      );
      const io = capture(dir);
      assert.equal(await verify.run(["good.json", "--no-crl", "--crl", "revoked.crl"], io), 2, "contradictory flags");
    });
  });

  describe("the verifier service", () => {
    it("when the development policy is replaced by an open one, startService refuses it with POLICY_OPEN", async () => {
      const { development: _dev, ...open } = world.factory.policyJson;
      await assert.rejects(
        startService({
          repos: [],
          rpcUrl: world.chain.url,
          registry: world.registry.address,
          policy: parseVerifierPolicy(open),
          createSender: (provider) => createLocalSender(provider, world.registry.publisherKey),
          dataDir: path.join(dir, "refused"),
          logger: pino({ level: "silent" }),
        }),
        { code: "POLICY_OPEN" },
      );
    });

    for (const revoked of [true, false]) {
      it(`when KDS's CRL ${revoked ? "revokes" : "does not revoke"} the VCEK's ASK, the service ${revoked ? "refuses the bundle with SNP_CERT_REVOKED" : "publishes it"}`, async () => {
        const served = await startFakeKds({ crl: world.factory.sim.crl(revoked ? { revoked: [ASK] } : {}) });
        const repo = createTestRepo();
        const made = world.factory.make({ seed: `service-crl-${revoked}`, kind: "eval" });
        repo.write("bundles/a.provenance.json", made.bytes);
        repo.commitAndPush("one bundle");
        const service = await startService({
          repos: [repo.origin],
          rpcUrl: world.chain.url,
          registry: world.registry.address,
          policy: world.factory.policy,
          createSender: (provider) => createLocalSender(provider, world.registry.publisherKey),
          dataDir: path.join(dir, `service-${revoked}`),
          intervalMs: 200,
          maxWaitMs: 50,
          workers: 1,
          kdsBaseUrl: served.url,
          logger: pino({ level: "silent" }),
          now: tickingClock(NOW),
        });
        try {
          const row = await waitFor(
            "a final state",
            () => {
              const r = service.store.listBundles()[0];
              return r?.status === "rejected" || r?.status === "published" ? r : undefined;
            },
            60_000,
          );
          assert.deepEqual(served.requests, [new URL(kdsCrlUrl("Milan", "vcek", served.url)).pathname]);
          const recorded = (await world.registry.contract.getFunction("manifestCount")(
            `0x${made.modelHash}`,
          )) as bigint;
          if (revoked) {
            assert.equal(row.status, "rejected");
            assert.deepEqual(
              row.errors.map((e) => e.code),
              ["SNP_CERT_REVOKED"],
            );
            assert.equal(recorded, 0n);
          } else {
            assert.equal(row.status, "published", JSON.stringify(row.errors));
            assert.equal(recorded, 1n);
          }
        } finally {
          await service.stop();
          await served.close();
          repo.cleanup();
        }
      });
    }
  });
});
