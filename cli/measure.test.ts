import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import type { CliIo } from "../lib/cli/index.ts";
import { MAX_MEASUREMENT_NAME, measurementEntries } from "../lib/snp/index.ts";
import { parseVerifierPolicyBytes } from "../offchain/pipeline/policy.ts";
import { commands, parseAutoBaseInt } from "./measure.ts";

const FIXTURES = fileURLToPath(new URL("../test/fixtures/measure/", import.meta.url));
const AMDSEV = "ovmf_AmdSev_suffix.bin";
const OVMFX64 = "ovmf_OvmfX64_suffix.bin";

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTty: false, env: {}, cwd: FIXTURES };
  const code = await commands[0]!.run(argv, io);
  return { code, out, err };
}

async function runJson(argv: string[]): Promise<{ code: number; body: Record<string, unknown> }> {
  const { code, out } = await run([...argv, "--json"]);
  return { code, body: JSON.parse(out) as Record<string, unknown> };
}

/** expect.tsv as command lines: `-` leaves the flag out, `''` is an empty --append. */
function rowsAsArgs(): { name: string; argv: string[]; measurement: string }[] {
  return readFileSync(join(FIXTURES, "expect.tsv"), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const [name, ovmf, kernel, initrd, append, vcpus, vcpuType, vmm, measurement] = line.split("\t");
      const argv = ["--ovmf", ovmf!, "--vcpus", vcpus!, "--vcpu-type", vcpuType!, "--vmm-type", vmm!];
      if (kernel !== "-") argv.push("--kernel", kernel!);
      if (initrd !== "-") argv.push("--initrd", initrd!);
      if (append !== "-") argv.push("--append", append === "''" ? "" : append!);
      return { name: name!, argv, measurement: measurement! };
    });
}

describe("provenant measure", () => {
  for (const row of rowsAsArgs()) {
    it(`when run with the ${row.name} row of expect.tsv, it prints sev-snp-measure's value and exits 0`, async () => {
      const { code, out, err } = await run(row.argv);
      assert.equal(err, "");
      assert.equal(code, 0);
      assert.equal(out, `${row.measurement}\n`);
    });
  }

  it("when asked for --json, it prints the measurement, the OVMF hash and the inputs it used", async () => {
    const { code, body } = await runJson([
      "--ovmf",
      AMDSEV,
      "--kernel",
      "kernel-dev.bin",
      "--initrd",
      "initrd-dev.bin",
      "--append",
      "console=ttyS0",
      "--vcpus",
      "1",
      "--vcpu-type",
      "EPYC-Milan",
    ]);
    assert.equal(code, 0);
    assert.deepEqual(Object.keys(body).sort(), [
      "errors",
      "guestFeatures",
      "kernelHashes",
      "measurement",
      "ok",
      "ovmfHash",
      "vcpuSig",
      "vcpuType",
      "vcpus",
      "vmmType",
    ]);
    assert.equal(body.ok, true);
    assert.equal(
      body.measurement,
      "9e58b02c8b00dc326d61f8ef30b2e1f69f75a1916bd27f63abfebfa2a99e8e206b2cc5aea13763fb3a57ff5bf022fce9",
    );
    assert.equal(
      body.ovmfHash,
      "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74",
    );
    assert.equal(body.vcpuSig, "0xa00f11");
    assert.equal(body.vcpuType, "EPYC-Milan");
    assert.equal(body.vmmType, "qemu");
    assert.equal(body.guestFeatures, "0x1");
    assert.deepEqual(body.errors, []);
  });

  it("when the OVMF hash from --json is passed back as --snp-ovmf-hash, the measurement is the same", async () => {
    const argv = ["--ovmf", AMDSEV, "--kernel", "kernel-dev.bin", "--vcpus", "3", "--vcpu-type", "EPYC-Genoa"];
    const full = await runJson(argv);
    const seeded = await runJson([...argv, "--snp-ovmf-hash", full.body.ovmfHash as string]);
    assert.equal(seeded.body.measurement, full.body.measurement);
  });

  it("when the vCPU is named by type, by signature or by family/model/stepping, the three agree", async () => {
    const base = ["--ovmf", AMDSEV, "--vcpus", "2"];
    const byType = await runJson([...base, "--vcpu-type", "EPYC-Milan"]);
    const bySig = await runJson([...base, "--vcpu-sig", "0xa00f11"]);
    const byDecimalSig = await runJson([...base, "--vcpu-sig", String(0xa00f11)]);
    const byFamily = await runJson([...base, "--vcpu-family", "25", "--vcpu-model", "1", "--vcpu-stepping", "1"]);
    for (const other of [bySig, byDecimalSig, byFamily]) assert.equal(other.body.measurement, byType.body.measurement);
  });

  it("when --guest-features is written in hex or decimal, it is read as Python's int(x, 0) reads it", async () => {
    const base = ["--ovmf", AMDSEV, "--vcpus", "1", "--vcpu-type", "EPYC-v4"];
    const hex = await runJson([...base, "--guest-features", "0x21"]);
    const decimal = await runJson([...base, "--guest-features", "33"]);
    const defaulted = await runJson(base);
    const one = await runJson([...base, "--guest-features", "0x1"]);
    assert.equal(hex.body.measurement, decimal.body.measurement);
    assert.equal(defaulted.body.measurement, one.body.measurement);
    assert.notEqual(hex.body.measurement, one.body.measurement);
    assert.equal(
      hex.body.measurement,
      "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b",
    );
  });

  it("when the VMM is ec2 or gce, no vCPU type is needed and each VMM gives its own value", async () => {
    const base = ["--ovmf", AMDSEV, "--kernel", "/dev/null", "--initrd", "/dev/null", "--append", "", "--vcpus", "4"];
    const gce = await runJson([...base, "--vmm-type", "gce"]);
    const ec2 = await runJson([...base, "--vmm-type", "ec2"]);
    const qemu = await runJson([...base, "--vmm-type", "QEMU", "--vcpu-type", "EPYC-v4"]);
    assert.equal(gce.code, 0);
    assert.equal(
      gce.body.measurement,
      "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d",
    );
    assert.equal(new Set([gce.body.measurement, ec2.body.measurement, qemu.body.measurement]).size, 3);
  });

  it("when --policy-snippet is given, it prints an snp.measurements entry that names the inputs", async () => {
    const argv = ["--ovmf", AMDSEV, "--kernel", "kernel-dev.bin", "--initrd", "initrd-dev.bin", "--vcpus", "1"];
    const job = "ab".repeat(32);
    const { code, out } = await run([
      ...argv,
      "--append",
      `console=ttyS0 provenant.job=sha256:${job}`,
      "--vcpu-type",
      "EPYC-Genoa",
      "--policy-snippet",
    ]);
    assert.equal(code, 0);
    const snippet = JSON.parse(out) as { snp: { measurements: { name: string; value: string }[] } };
    assert.equal(snippet.snp.measurements.length, 1);
    const entry = snippet.snp.measurements[0]!;
    assert.match(entry.value, /^[0-9a-f]{96}$/);
    assert.match(entry.name, /ovmf_AmdSev_suffix\.bin \+ kernel-dev\.bin \+ initrd-dev\.bin/);
    assert.match(entry.name, /job sha256:abababababab/);
    assert.match(entry.name, /1 vCPU EPYC-Genoa, qemu/);
    const named = await runJson([...argv, "--vcpu-type", "EPYC-Genoa", "--policy-snippet", "--name", "job 0.2"]);
    assert.deepEqual(named.body.policySnippet, {
      snp: { measurements: [{ name: "job 0.2", value: named.body.measurement }] },
    });
  });

  it("when --name is one the policy would refuse, it exits 2 with USAGE; a default name from odd file names is one it reads", async () => {
    const argv = ["--ovmf", AMDSEV, "--vcpus", "1", "--vcpu-type", "EPYC", "--policy-snippet"];
    for (const name of ["", "  ", "<name>", "a\nb", "x".repeat(MAX_MEASUREMENT_NAME + 1)]) {
      const { code, body } = await runJson([...argv, "--name", name]);
      assert.equal(code, 2, JSON.stringify(name));
      assert.equal((body.errors as { code: string }[])[0]!.code, "USAGE", JSON.stringify(name));
    }
    // A long file name holding a newline and an emoji where the name is cut: the printed snippet still parses.
    const dir = mkdtempSync(join(tmpdir(), "provenant-measure-name-"));
    try {
      const ovmf = join(dir, `${"o".repeat(MAX_MEASUREMENT_NAME - 2)}\u{1f600}\n${"v".repeat(40)}.fd`);
      copyFileSync(join(FIXTURES, AMDSEV), ovmf);
      const { code, out } = await run(["--ovmf", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC", "--policy-snippet"]);
      assert.equal(code, 0);
      const policy = parseVerifierPolicyBytes(new TextEncoder().encode(out));
      const [entry] = measurementEntries(policy.snp);
      assert.equal(entry!.name!.length, MAX_MEASUREMENT_NAME - 1);
      assert.ok(entry!.name!.endsWith("…"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when a kernel is given with an OVMF that cannot measure one, it exits 2 with MEASURE_NO_KERNEL_HASHES", async () => {
    const { code, body } = await runJson([
      "--ovmf",
      OVMFX64,
      "--kernel",
      "/dev/null",
      "--vcpus",
      "1",
      "--vcpu-type",
      "EPYC-v4",
    ]);
    assert.equal(code, 2);
    assert.equal(body.ok, false);
    assert.deepEqual(
      (body.errors as { code: string }[]).map((e) => e.code),
      ["MEASURE_NO_KERNEL_HASHES"],
    );
  });

  it("when the OVMF is not an OVMF image, it exits 2 with MEASURE_OVMF_MALFORMED; when missing, IO_ERROR", async () => {
    const notOvmf = await runJson(["--ovmf", "kernel-dev.bin", "--vcpus", "1", "--vcpu-type", "EPYC"]);
    assert.equal(notOvmf.code, 2);
    assert.equal((notOvmf.body.errors as { code: string }[])[0]!.code, "MEASURE_OVMF_MALFORMED");
    const missing = await runJson(["--ovmf", "no-such.fd", "--vcpus", "1", "--vcpu-type", "EPYC"]);
    assert.equal(missing.code, 2);
    assert.equal((missing.body.errors as { code: string }[])[0]!.code, "IO_ERROR");
  });

  it("when the arguments are wrong, it exits 2 with USAGE", async () => {
    const base = ["--ovmf", AMDSEV, "--vcpus", "1"];
    for (const argv of [
      ["--vcpus", "1", "--vcpu-type", "EPYC"],
      ["--ovmf", AMDSEV, "--vcpu-type", "EPYC"],
      base,
      [...base, "--vcpu-type", "Opteron"],
      [...base, "--vcpu-type", "EPYC", "--vcpu-sig", "0x800f12"],
      [...base, "--vcpu-family", "25"],
      [...base, "--vcpu-type", "EPYC", "--vmm-type", "xen"],
      [...base, "--vcpu-type", "EPYC", "--guest-features", "zz"],
      [...base, "--vcpu-type", "EPYC", "--guest-features", "0x1ffffffffffffffff"],
      [...base, "--vcpu-type", "EPYC", "--initrd", "initrd-dev.bin"],
      [...base, "--vcpu-type", "EPYC", "--append", "console=ttyS0"],
      [...base, "--vcpu-type", "EPYC", "--snp-ovmf-hash", "abcd"],
      [...base, "--vcpu-type", "EPYC", "--name", "x"],
      [...base, "--vcpu-type", "EPYC", "extra"],
      ["--ovmf", AMDSEV, "--vcpus", "0", "--vcpu-type", "EPYC"],
      ["--ovmf", AMDSEV, "--vcpus", "two", "--vcpu-type", "EPYC"],
    ]) {
      const { code, body } = await runJson(argv);
      assert.equal(code, 2, argv.join(" "));
      assert.equal((body.errors as { code: string }[])[0]!.code, "USAGE", argv.join(" "));
    }
  });

  it("when numbers are parsed as int(x, 0), prefixes and underscores work and leading zeros do not", () => {
    assert.equal(parseAutoBaseInt("0x21", "f", 0xffn), 0x21n);
    assert.equal(parseAutoBaseInt("0b101", "f", 0xffn), 5n);
    assert.equal(parseAutoBaseInt("0o17", "f", 0xffn), 15n);
    assert.equal(parseAutoBaseInt("1_0", "f", 0xffn), 10n);
    assert.equal(parseAutoBaseInt("0", "f", 0xffn), 0n);
    assert.throws(() => parseAutoBaseInt("010", "f", 0xffn), { code: "USAGE" });
    assert.throws(() => parseAutoBaseInt("-1", "f", 0xffn), { code: "USAGE" });
    assert.throws(() => parseAutoBaseInt("0x100", "f", 0xffn), { code: "USAGE" });
  });
});
