// Benchmark of OMS model hashing (lib/oms hashModel, what `provenant hash` runs) against `openssl dgst -sha256` and
// `sha256sum` on the same data: one 2 GiB file, and eight 256 MiB files. The files are created in os.tmpdir(), read
// once so that every timed run reads from the OS page cache, and deleted afterwards. Each figure is the best of
// BENCH_ROUNDS runs (default 3), interleaved, because the machine is shared. Writes bench/results/hash.json.
// Usage: node bench/hash.ts    (BENCH_HASH_MIB=256 for a quick run with smaller files)
import { execFile, execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";

import { hashModel } from "../lib/oms/index.ts";

const MiB = 1024 * 1024;
const singleMiB = Number(process.env.BENCH_HASH_MIB ?? 2048);
const multiMiB = singleMiB / 8;
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

function writeFile(path: string, mib: number, seed: Buffer): void {
  const fd = openSync(path, "w");
  try {
    for (let i = 0; i < mib; i += 64) {
      seed[0] = i & 0xff; // vary the content a little; speed does not depend on it
      writeSync(fd, seed, 0, Math.min(64, mib - i) * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a file once so that the timed runs hit the page cache. */
function warm(path: string): void {
  const fd = openSync(path, "r");
  const buffer = Buffer.allocUnsafe(8 * MiB);
  try {
    while (readSync(fd, buffer, 0, buffer.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mbps = (bytes: number, seconds: number) => Math.round(bytes / 1e6 / seconds);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "provenant-bench-hash-"));
  const loadBefore = loadavg()[0]!;
  try {
    const seed = randomFillSync(Buffer.allocUnsafe(64 * MiB));
    const singleDir = join(dir, "single");
    const multiDir = join(dir, "multi");
    mkdirSync(singleDir);
    mkdirSync(multiDir);
    const single = join(singleDir, "model.bin");
    writeFile(single, singleMiB, seed);
    const multi = Array.from({ length: 8 }, (_, i) => join(multiDir, `shard-${i}.bin`));
    for (const f of multi) writeFile(f, multiMiB, seed);
    for (const f of [single, ...multi]) warm(f);

    const singleBytes = singleMiB * MiB;
    const multiBytes = multiMiB * MiB * 8;
    const best = {
      provenant: Infinity,
      multi: Infinity,
      openssl: Infinity,
      sha256sum: Infinity,
      opensslMultiSequential: Infinity,
      opensslMultiTwoProcesses: Infinity,
    };
    // What the machine itself gives for two hashing streams at once: one openssl over the eight files, against two
    // openssl processes over four files each. If two cores do not hash twice as fast for openssl, they cannot for us.
    const twoProcesses = () =>
      new Promise<void>((resolve, reject) => {
        let left = 2;
        for (const half of [multi.slice(0, 4), multi.slice(4)]) {
          execFile("openssl", ["dgst", "-sha256", ...half], (error) => {
            if (error) reject(error);
            else if (--left === 0) resolve();
          });
        }
      });
    let digest = "";
    for (let r = 0; r < rounds; r++) {
      best.provenant = Math.min(
        best.provenant,
        await time(async () => (digest = (await hashModel(single)).files[0]!.digest)),
      );
      best.openssl = Math.min(best.openssl, await time(() => execFileSync("openssl", ["dgst", "-sha256", single])));
      best.sha256sum = Math.min(best.sha256sum, await time(() => execFileSync("sha256sum", [single])));
      best.multi = Math.min(best.multi, await time(() => hashModel(multiDir)));
      best.opensslMultiSequential = Math.min(
        best.opensslMultiSequential,
        await time(() => execFileSync("openssl", ["dgst", "-sha256", ...multi])),
      );
      best.opensslMultiTwoProcesses = Math.min(best.opensslMultiTwoProcesses, await time(twoProcesses));
    }
    const expected = execFileSync("sha256sum", [single]).toString().split(" ")[0];
    if (digest !== expected) throw new Error(`digest mismatch: ${digest} vs ${expected}`);

    const result = {
      singleFileMBps: mbps(singleBytes, best.provenant),
      multiFileMBps: mbps(multiBytes, best.multi),
      opensslMBps: mbps(singleBytes, best.openssl),
      sha256sumMBps: mbps(singleBytes, best.sha256sum),
      singleVsOpenssl: Number((best.openssl / best.provenant).toFixed(3)),
      multiVsSingle: Number((multiBytes / best.multi / (singleBytes / best.provenant)).toFixed(3)),
      opensslEightFilesOneProcessMBps: mbps(multiBytes, best.opensslMultiSequential),
      opensslEightFilesTwoProcessesMBps: mbps(multiBytes, best.opensslMultiTwoProcesses),
      machineTwoStreamScaling: Number((best.opensslMultiSequential / best.opensslMultiTwoProcesses).toFixed(3)),
      unit: "MB/s (10^6 bytes per second), best of the rounds",
      workload: {
        singleFile: `1 file of ${singleMiB} MiB`,
        multiFile: `8 files of ${multiMiB} MiB`,
        rounds,
        conditions:
          "files created in os.tmpdir(), read once beforehand so every timed run reads from the OS page cache, deleted afterwards; hashModel in-process (what `provenant hash` runs), default threads; openssl and sha256sum as child processes on the same single file",
      },
      machine: {
        cpu: cpus()[0]?.model ?? "unknown",
        cores: availableParallelism(),
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        openssl: execFileSync("openssl", ["version"]).toString().trim(),
        loadAverageBefore: Number(loadBefore.toFixed(2)),
        loadAverageAfter: Number(loadavg()[0]!.toFixed(2)),
      },
      date: new Date().toISOString(),
    };
    const out = new URL("./results/hash.json", import.meta.url);
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.table({
      "provenant, 1 file": { MBps: result.singleFileMBps },
      "provenant, 8 files": { MBps: result.multiFileMBps },
      "openssl dgst -sha256": { MBps: result.opensslMBps },
      sha256sum: { MBps: result.sha256sumMBps },
    });
    console.log(
      `single/openssl ${result.singleVsOpenssl}  multi/single ${result.multiVsSingle}  ` +
        `openssl 2 processes/1 process ${result.machineTwoStreamScaling}  → ${out.pathname}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
