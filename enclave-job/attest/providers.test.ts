import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { buildCertTable, parseCertTable } from "./certtable.ts";
import { generateJobKey, reportDataFor, toNonce } from "./key.ts";
import { sevGuestProvider, tsmProvider } from "./providers.ts";

const VCEK = new Uint8Array([0x30, 1, 2, 3]);
const ASK = new Uint8Array([0x30, 4, 5]);
const ARK = new Uint8Array([0x30, 6]);

/** A report stand-in: 1184 bytes with REPORT_DATA at 0x50 (ABI 56860, Table 23), as the kernel would return. */
function fakeReport(reportData: Uint8Array): Uint8Array {
  const report = new Uint8Array(1184);
  report.set(reportData, 0x50);
  return report;
}

/**
 * Hands `content` to the next reader of the FIFO at `path` and resolves once that reader has opened it: a writer's
 * non-blocking open fails (ENXIO) until a reader is there, so this waits for the read itself, not for a guessed time.
 * Gives up (false) when the FIFO is removed or after `timeoutMs`.
 */
async function serveFifoOnce(path: string, content: string, timeoutMs = 30_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        await handle.write(content);
      } finally {
        await handle.close();
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENXIO") return false; // removed: the provider is done
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
  return false;
}

/** Plays the kernel for a directory laid out like /sys/kernel/config/tsm/report: fills each new entry's outblob. */
function fakeConfigfs(
  root: string,
  options: { aux?: Uint8Array; provider?: string; concurrentWriter?: boolean } = {},
): () => Promise<void> {
  const handled = new Set<string>();
  let busy: Promise<void> = Promise.resolve();
  const pass = async (): Promise<void> => {
    for (const name of await readdir(root).catch(() => [])) {
      if (handled.has(name)) continue;
      const entry = join(root, name);
      const inblob = await readFile(join(entry, "inblob")).catch(() => undefined);
      if (inblob === undefined || handled.has(name)) continue;
      handled.add(name);
      try {
        const generation = join(entry, "generation");
        if (options.concurrentWriter === true) {
          // Someone else writes inblob after the provider read generation 1 and before it reads the report: the
          // generation is a FIFO, so the provider's first read is seen to happen, and its next read gets 2.
          await promisify(execFile)("mkfifo", [generation]);
          if (!(await serveFifoOnce(generation, "1\n"))) continue;
        } else await writeFile(generation, "1\n");
        await writeFile(join(entry, "provider"), `${options.provider ?? "sev_guest"}\n`);
        await writeFile(join(entry, "auxblob"), options.aux ?? new Uint8Array());
        // outblob last: the provider reads the others once it has the report.
        await writeFile(join(entry, "outblob"), fakeReport(inblob));
        if (options.concurrentWriter === true) await serveFifoOnce(generation, "2\n");
      } catch {
        // The provider may already have removed the entry.
      }
    }
  };
  const timer = setInterval(() => {
    busy = busy.then(pass);
  }, 5);
  return async () => {
    clearInterval(timer);
    await busy;
  };
}

describe("attestation providers", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "provenant-attest-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("when REPORT_DATA is built, it is SHA-256 of the SPKI followed by the nonce", () => {
    const key = generateJobKey();
    const nonce = toNonce("ab".repeat(32));
    const data = reportDataFor(key.spki, nonce);
    assert.deepEqual(Buffer.from(data.subarray(0, 32)), createHash("sha256").update(key.spki).digest());
    assert.deepEqual(data.subarray(32), nonce);
    assert.equal(key.privateKey.asymmetricKeyDetails?.namedCurve, "secp384r1");
  });

  it("when a nonce is not 64 hex characters, it is refused with USAGE", () => {
    assert.throws(() => toNonce("abc"), { code: "USAGE" });
  });

  it("when a certificate table is built and parsed, it returns each certificate by its GHCB GUID", () => {
    const parsed = parseCertTable(buildCertTable({ vcek: VCEK, ask: ASK, ark: ARK }));
    assert.deepEqual(parsed.vcek, VCEK);
    assert.deepEqual(parsed.ask, ASK);
    assert.deepEqual(parsed.ark, ARK);
    assert.throws(() => parseCertTable(new Uint8Array(10)), { code: "SNP_MALFORMED" });
  });

  it("when tsm runs against a fake configfs, it returns the report with our REPORT_DATA and the host's certificates", async () => {
    const root = join(dir, "tsm-report");
    await mkdir(root);
    const stop = fakeConfigfs(root, { aux: buildCertTable({ vcek: VCEK, ask: ASK, ark: ARK }) });
    try {
      const data = reportDataFor(generateJobKey().spki, toNonce());
      const evidence = await tsmProvider({ root }).attest(data);
      assert.equal(evidence.provider, "tsm");
      assert.equal(evidence.report.length, 1184);
      assert.deepEqual(evidence.report.subarray(0x50, 0x90), data);
      assert.deepEqual(evidence.vcek, VCEK);
      assert.deepEqual(evidence.chain, [ASK, ARK]);
      assert.deepEqual(await readdir(root), [], "the report entry is removed");
    } finally {
      await stop();
    }
  });

  it("when the host gives no certificates, tsm falls back to the certificate cache, then to the KDS", async () => {
    const root = join(dir, "tsm-nocerts");
    const certDir = join(dir, "certs");
    await mkdir(root);
    await mkdir(certDir);
    await writeFile(join(certDir, "vcek.der"), VCEK);
    const stop = fakeConfigfs(root);
    try {
      const evidence = await tsmProvider({ root, certDir }).attest(new Uint8Array(64));
      assert.deepEqual(evidence.vcek, VCEK);
      const offline = {
        resolveEvidence: async (): Promise<never> => {
          throw new Error("offline");
        },
      };
      await assert.rejects(
        tsmProvider({ root, certDir: join(dir, "empty"), certificates: offline }).attest(new Uint8Array(64)),
        { code: "ATTESTATION_FAILED" },
      );
      // With neither host nor cache, the KDS resolver (lib/snp's certificate store) supplies the VCEK and chain.
      const kds = { resolveEvidence: async () => ({ vcek: VCEK, chain: [ASK, ARK] }) };
      const fromKds = await tsmProvider({ root, certDir: join(dir, "empty"), certificates: kds }).attest(
        new Uint8Array(64),
      );
      assert.deepEqual(fromKds.vcek, VCEK);
      assert.deepEqual(fromKds.chain, [ASK, ARK]);
    } finally {
      await stop();
    }
  });

  it("when another writer bumps the configfs-tsm generation while we read, it is ATTESTATION_FAILED", async () => {
    const root = join(dir, "tsm-concurrent");
    await mkdir(root);
    const stop = fakeConfigfs(root, { concurrentWriter: true });
    try {
      await assert.rejects(tsmProvider({ root }).attest(new Uint8Array(64)), {
        code: "ATTESTATION_FAILED",
        message: /changed while reading/,
      });
    } finally {
      await stop();
    }
  });

  it("when configfs-tsm is absent or not SEV-SNP, it is ATTESTATION_UNAVAILABLE", async () => {
    await assert.rejects(tsmProvider({ root: join(dir, "missing") }).attest(new Uint8Array(64)), {
      code: "ATTESTATION_UNAVAILABLE",
    });
    const root = join(dir, "tsm-tdx");
    await mkdir(root);
    const stop = fakeConfigfs(root, { provider: "tdx_guest" });
    try {
      await assert.rejects(tsmProvider({ root }).attest(new Uint8Array(64)), { code: "ATTESTATION_UNAVAILABLE" });
    } finally {
      await stop();
    }
  });

  it("when sev-guest runs a stand-in snpguest, it passes our request file and reads report and certificates", async () => {
    const script = join(dir, "snpguest");
    // The stand-in writes the 64 request bytes at REPORT_DATA's offset, as the real tool's report would carry them.
    await writeFile(
      script,
      `#!/bin/sh
set -e
case "$1" in
  report) head -c 80 /dev/zero > "$2"; cat "$3" >> "$2"; head -c 1040 /dev/zero >> "$2" ;;
  certificates) printf '\\060\\001\\002\\003' > "$3/vcek.der"; printf '\\060\\004\\005' > "$3/ask.der"; printf '\\060\\006' > "$3/ark.der" ;;
  *) exit 3 ;;
esac
`,
    );
    await chmod(script, 0o755);
    const data = reportDataFor(generateJobKey().spki, toNonce());
    const evidence = await sevGuestProvider({ command: script }).attest(data);
    assert.equal(evidence.provider, "sev-guest");
    assert.deepEqual(evidence.report.subarray(0x50, 0x90), data);
    assert.deepEqual(evidence.vcek, VCEK);
    assert.deepEqual(evidence.chain, [ASK, ARK]);
  });

  it("when snpguest is not installed, it is ATTESTATION_UNAVAILABLE", async () => {
    await assert.rejects(sevGuestProvider({ command: join(dir, "no-such-tool") }).attest(new Uint8Array(64)), {
      code: "ATTESTATION_UNAVAILABLE",
    });
  });
});
