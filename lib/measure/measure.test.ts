import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { isProvenantError } from "../errors.ts";
import {
  BSP_EIP,
  buildSevHashesPage,
  buildVmsaPage,
  cmdlineDigest,
  computeLaunchDigest,
  cpuSig,
  cpuSigOf,
  LaunchDigest,
  measureLaunchFiles,
  ovmfLaunchDigest,
  parseOvmf,
  sha256File,
  type LaunchInputs,
  type MeasureFilesOptions,
  type VmmType,
} from "./index.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/measure/", import.meta.url));
const AMDSEV = join(FIXTURES, "ovmf_AmdSev_suffix.bin");
const OVMFX64 = join(FIXTURES, "ovmf_OvmfX64_suffix.bin");
const amdSevBytes = readFileSync(AMDSEV);
const EPYC_V4 = cpuSigOf("EPYC-v4")!.sig;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const work = mkdtempSync(join(tmpdir(), "provenant-measure-"));
after(() => rmSync(work, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(isProvenantError(error), `expected a coded error, got ${String(error)}`);
    return error.code;
  }
  return "none";
}

async function asyncCodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isProvenantError(error), `expected a coded error, got ${String(error)}`);
    return error.code;
  }
  return "none";
}

/** The rows of expect.tsv, with `-` as "left out" and `''` as an empty command line. */
function expectRows(): { name: string; options: MeasureFilesOptions; measurement: string }[] {
  const lines = readFileSync(join(FIXTURES, "expect.tsv"), "utf8").split("\n");
  return lines
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const [name, ovmf, kernel, initrd, append, vcpus, vcpuType, vmm, measurement] = line.split("\t");
      const file = (value: string | undefined) =>
        value === undefined || value === "-" ? undefined : value.startsWith("/") ? value : join(FIXTURES, value);
      const options: MeasureFilesOptions = {
        ovmf: file(ovmf)!,
        vcpus: Number(vcpus),
        vcpuSig: cpuSigOf(vcpuType!)!.sig,
        vmm: vmm!.toLowerCase() as VmmType,
        guestFeatures: 0x1n,
      };
      const k = file(kernel);
      const i = file(initrd);
      if (k !== undefined) options.kernel = k;
      if (i !== undefined) options.initrd = i;
      if (append !== undefined && append !== "-") options.append = append === "''" ? "" : append;
      return { name: name!, options, measurement: measurement! };
    });
}

describe("launch measurement: the reference vectors", () => {
  const rows = expectRows();

  it("when expect.tsv is read, it has the three rows PROVENANCE.md describes", () => {
    assert.equal(rows.length, 3);
  });

  for (const row of rows) {
    it(`when measuring ${row.name}, it reproduces sev-snp-measure's value exactly`, async () => {
      const result = await measureLaunchFiles(row.options);
      assert.equal(hex(result.measurement), row.measurement);
    });
  }

  it("when the OvmfX64 image (no SNP_KERNEL_HASHES) is asked for a kernel, it is MEASURE_NO_KERNEL_HASHES", async () => {
    const options = { ovmf: OVMFX64, kernel: "/dev/null", vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu" as const };
    assert.equal(await asyncCodeOf(measureLaunchFiles({ ...options, guestFeatures: 1n })), "MEASURE_NO_KERNEL_HASHES");
  });

  // Values from virtee/sev-snp-measure tests/test_guest.py (the reference tool's own suite, same fixtures): they
  // pin the parts expect.tsv does not reach (EC2, GCE, guest features, a precomputed OVMF hash, no kernel).
  const OVMF_HASH = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74";
  const empty = { ovmf: AMDSEV, kernel: "/dev/null", initrd: "/dev/null", append: "" };
  const upstream: [string, MeasureFilesOptions, string][] = [
    [
      "test_snp_ovmf_hash_gen_default",
      { ...empty, vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x21n, snpOvmfHash: OVMF_HASH },
      "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198",
    ],
    [
      "test_snp_ovmf_hash_gen_feature_snp_only",
      { ...empty, vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x1n, snpOvmfHash: OVMF_HASH },
      "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5",
    ],
    [
      "test_snp (guest features 0x21)",
      { ...empty, append: "console=ttyS0 loglevel=7", vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x21n },
      "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977",
    ],
    [
      "test_snp_guest_feature_snp_only",
      { ...empty, append: "console=ttyS0 loglevel=7", vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x1n },
      "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa",
    ],
    [
      "test_snp_ec2",
      { ...empty, vcpus: 1, vcpuSig: EPYC_V4, vmm: "ec2", guestFeatures: 0x21n },
      "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0d67fb",
    ],
    [
      "test_snp_ec2_feature_snp_only",
      { ...empty, vcpus: 1, vcpuSig: EPYC_V4, vmm: "ec2", guestFeatures: 0x1n },
      "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056",
    ],
    [
      "test_snp_gce",
      { ...empty, vcpus: 1, vcpuSig: 0, vmm: "gce", guestFeatures: 0x1n },
      "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e",
    ],
    [
      "test_snp_gce_with_multiple_vcpus",
      { ...empty, vcpus: 4, vcpuSig: 0, vmm: "gce", guestFeatures: 0x1n },
      "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d",
    ],
    [
      "test_snp_without_kernel",
      { ovmf: AMDSEV, vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x21n },
      "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b",
    ],
    [
      "test_snp_without_kernel_feature_snp_only",
      { ovmf: AMDSEV, vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x1n },
      "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d",
    ],
    [
      "test_snp_with_multiple_vcpus",
      { ...empty, vcpus: 4, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x21n },
      "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942",
    ],
    [
      "test_snp_with_multiple_vcpus_feature_snp_only",
      { ...empty, vcpus: 4, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x1n },
      "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5",
    ],
    [
      "test_snp_with_ovmfx64_without_kernel",
      { ovmf: OVMFX64, vcpus: 1, vcpuSig: EPYC_V4, vmm: "qemu", guestFeatures: 0x21n },
      "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385",
    ],
  ];
  for (const [name, options, expected] of upstream) {
    it(`when measuring upstream's ${name}, it gives upstream's value`, async () => {
      assert.equal(hex((await measureLaunchFiles(options)).measurement), expected);
    });
  }

  it("when the AmdSev image's OVMF digest is computed alone, it equals upstream's snp:ovmf-hash value", () => {
    assert.equal(hex(ovmfLaunchDigest(parseOvmf(amdSevBytes))), OVMF_HASH);
  });
});

describe("launch measurement: every input counts", () => {
  const kernel = join(work, "kernel");
  const initrd = join(work, "initrd");
  writeFileSync(kernel, randomBytes(9000));
  writeFileSync(initrd, randomBytes(12000));
  const base: MeasureFilesOptions = {
    ovmf: AMDSEV,
    kernel,
    initrd,
    append: "console=ttyS0 provenant.job=sha256:00",
    vcpus: 2,
    vcpuSig: EPYC_V4,
    vmm: "qemu",
    guestFeatures: 0x1n,
  };
  const measure = async (options: MeasureFilesOptions) => hex((await measureLaunchFiles(options)).measurement);

  it("when one byte of the OVMF, the kernel or the initrd changes, the measurement changes", async () => {
    const reference = await measure(base);
    for (const [what, path, at] of [
      ["ovmf", AMDSEV, 0],
      ["kernel", kernel, 4500],
      ["initrd", initrd, 11999],
    ] as const) {
      const copy = join(work, `${what}-flipped`);
      const bytes = Buffer.from(readFileSync(path));
      bytes[at] = bytes[at]! ^ 0x01;
      writeFileSync(copy, bytes);
      assert.notEqual(await measure({ ...base, [what]: copy }), reference, what);
    }
  });

  it("when the command line, the vCPU count, the signature or the guest features change, it changes", async () => {
    const seen = new Set([await measure(base)]);
    const variants: Partial<MeasureFilesOptions>[] = [
      { append: "console=ttyS0 provenant.job=sha256:01" },
      { append: "console=ttyS0 provenant.job=sha256:00 " },
      { vcpus: 1 },
      { vcpus: 3 },
      { vcpus: 16 },
      { vcpuSig: cpuSigOf("EPYC-Milan")!.sig },
      { vcpuSig: cpuSigOf("EPYC-Genoa")!.sig },
      { guestFeatures: 0x21n },
      { guestFeatures: 0x1n | (1n << 63n) },
    ];
    for (const variant of variants) {
      const value = await measure({ ...base, ...variant });
      assert.ok(
        !seen.has(value),
        `${JSON.stringify(variant, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`,
      );
      seen.add(value);
    }
  });

  it("when the VMM type changes, each of qemu, ec2 and gce gives its own measurement", async () => {
    const values = await Promise.all((["qemu", "ec2", "gce"] as const).map((vmm) => measure({ ...base, vmm })));
    assert.equal(new Set(values).size, 3);
  });

  it("when no initrd or no command line is given, it measures them as QEMU does: empty bytes and a lone NUL", async () => {
    const { initrd: _i, append: _a, ...bare } = base;
    assert.equal(await measure(bare), await measure({ ...bare, initrd: "/dev/null", append: "" }));
    assert.notEqual(await measure(bare), await measure({ ...bare, initrd: initrd }));
  });

  it("when a kernel is given or not, the measurement differs (the hashes page replaces zero pages)", async () => {
    const { kernel: _k, initrd: _i, append: _a, ...noKernel } = base;
    assert.notEqual(await measure(noKernel), await measure({ ...noKernel, kernel }));
  });

  it("when --snp-ovmf-hash is the OVMF's own digest, the result equals computing it, for every VMM and vCPU count", async () => {
    for (const vmm of ["qemu", "ec2", "gce"] as const) {
      for (const vcpus of [1, 5]) {
        const full = await measureLaunchFiles({ ...base, vmm, vcpus });
        const seeded = await measureLaunchFiles({ ...base, vmm, vcpus, snpOvmfHash: hex(full.ovmfHash) });
        assert.equal(hex(seeded.measurement), hex(full.measurement));
        const other = await measureLaunchFiles({ ...base, vmm, vcpus, snpOvmfHash: "00".repeat(48) });
        assert.notEqual(hex(other.measurement), hex(full.measurement));
      }
    }
  });

  it("when the precomputed OVMF hash is not 96 hex digits, it is a USAGE error", async () => {
    assert.equal(await asyncCodeOf(measureLaunchFiles({ ...base, snpOvmfHash: "ab" })), "USAGE");
  });
});

describe("launch measurement: the pieces", () => {
  it("when the BSP and an AP VMSA are built, they differ only in RIP and the CS base", () => {
    const image = parseOvmf(amdSevBytes);
    const apEip = Buffer.from(image.table.get("00f771de-1a7e-4fcb-890e-68c77e2fb44e")!).readUInt32LE(0);
    const bsp = Buffer.from(buildVmsaPage(BSP_EIP, 1n, EPYC_V4, "qemu"));
    const ap = Buffer.from(buildVmsaPage(apEip, 1n, EPYC_V4, "qemu"));
    const differing = [...bsp.keys()].filter((i) => bsp[i] !== ap[i]);
    assert.ok(differing.length > 0);
    assert.ok(
      differing.every((i) => (i >= 0x018 && i < 0x020) || (i >= 0x178 && i < 0x180)),
      String(differing),
    );
    assert.equal(bsp.readBigUInt64LE(0x178), 0xfff0n);
    assert.equal(bsp.readBigUInt64LE(0x018), 0xffff0000n);
    assert.equal(bsp.readBigUInt64LE(0x310), BigInt(EPYC_V4)); // RDX: the CPUID signature under QEMU
    assert.equal(bsp.readBigUInt64LE(0x3b0), 1n); // SEV_FEATURES
  });

  it("when the VMSA is built for ec2 and gce, RDX no longer carries the signature", () => {
    for (const vmm of ["ec2", "gce"] as const) {
      assert.equal(Buffer.from(buildVmsaPage(BSP_EIP, 1n, EPYC_V4, vmm)).readBigUInt64LE(0x310), 0x600n);
    }
  });

  it("when the hashes page is built, the table sits at its offset with the cmdline, initrd and kernel entries", () => {
    const hashes = {
      kernel: createHash("sha256").update("k").digest(),
      initrd: createHash("sha256").update("i").digest(),
      cmdline: cmdlineDigest("console=ttyS0"),
    };
    const page = Buffer.from(buildSevHashesPage(hashes, 0xc00)!);
    assert.equal(
      page.subarray(0, 0xc00).every((b) => b === 0),
      true,
    );
    assert.equal(page.readUInt16LE(0xc00 + 16), 168);
    assert.deepEqual(page.subarray(0xc00 + 18 + 18, 0xc00 + 18 + 50), Buffer.from(hashes.cmdline));
    assert.deepEqual(page.subarray(0xc00 + 68 + 18, 0xc00 + 68 + 50), Buffer.from(hashes.initrd));
    assert.deepEqual(page.subarray(0xc00 + 118 + 18, 0xc00 + 118 + 50), Buffer.from(hashes.kernel));
    assert.deepEqual(Buffer.from(cmdlineDigest("")), createHash("sha256").update(Buffer.of(0)).digest());
    assert.equal(buildSevHashesPage(hashes, 4096 - 100), undefined);
  });

  it("when family, model and stepping are given, the signature is CPUID Fn0000_0001_EAX", () => {
    assert.equal(cpuSig(23, 1, 2), 0x800f12);
    assert.equal(cpuSig(25, 1, 1), 0xa00f11);
    assert.equal(cpuSig(25, 17, 0), 0xa10f10);
    assert.equal(cpuSig(26, 0, 0), 0xb00f00);
    assert.equal(cpuSig(14, 1, 2), 0x0e12);
    assert.equal(cpuSigOf("epyc-milan")?.name, "EPYC-Milan");
    assert.equal(cpuSigOf("Opteron"), undefined);
  });

  it("when the launch digest is seeded, it continues from the seed exactly as the full chain does", () => {
    const full = new LaunchDigest();
    full.normalPages(0x1000, new Uint8Array(8192));
    const seed = new LaunchDigest();
    seed.normalPages(0x1000, new Uint8Array(4096));
    const resumed = new LaunchDigest(seed.digest());
    resumed.normalPages(0x2000, new Uint8Array(4096));
    assert.deepEqual(resumed.digest(), full.digest());
  });

  it("when a large file is hashed in chunks, its SHA-256 equals the one-shot digest, and /dev/null gives the empty digest", async () => {
    const big = join(work, "big");
    const bytes = randomBytes(9 * 1024 * 1024 + 123);
    writeFileSync(big, bytes);
    assert.equal(hex(sha256File(big)), createHash("sha256").update(bytes).digest("hex"));
    assert.equal(hex(sha256File("/dev/null")), createHash("sha256").digest("hex"));
    assert.equal(
      codeOf(() => sha256File(join(work, "missing"))),
      "IO_ERROR",
    );
  });
});

describe("launch measurement: hostile OVMF images", () => {
  const inputs = (bytes: Uint8Array, extra: Partial<LaunchInputs> = {}): LaunchInputs => ({
    ovmf: parseOvmf(bytes),
    vcpus: 2,
    vcpuSig: EPYC_V4,
    vmm: "qemu",
    guestFeatures: 1n,
    ...extra,
  });
  const patched = (edit: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(amdSevBytes);
    edit(b);
    return b;
  };
  // Offsets in the AmdSev suffix: the footer's u16 length at 0xfce, the metadata entry's offset at 0xf70,
  // the reset block entry's EIP at 0xfb8 and its u16 length at 0xfbc, the ASEV header at 0x1000 - 0x554.
  const ASEV = 0x1000 - 0x554;

  it("when the image is not whole pages, empty, or larger than firmware can be, it is MEASURE_OVMF_MALFORMED", () => {
    assert.equal(
      codeOf(() => parseOvmf(amdSevBytes.subarray(1))),
      "MEASURE_OVMF_MALFORMED",
    );
    assert.equal(
      codeOf(() => parseOvmf(new Uint8Array(0))),
      "MEASURE_OVMF_MALFORMED",
    );
    assert.equal(
      codeOf(() => parseOvmf(new Uint8Array(129 * 1024 * 1024))),
      "MEASURE_OVMF_MALFORMED",
    );
  });

  it("when the image has no footer table, measuring it is MEASURE_OVMF_MALFORMED (no SEV-ES reset block)", () => {
    const bytes = new Uint8Array(8192);
    assert.equal(parseOvmf(bytes).table.size, 0);
    assert.equal(
      codeOf(() => computeLaunchDigest(inputs(bytes))),
      "MEASURE_OVMF_MALFORMED",
    );
  });

  it("when the footer or an entry claims more bytes than there are, it is MEASURE_OVMF_MALFORMED", () => {
    assert.equal(
      codeOf(() => parseOvmf(patched((b) => b.writeUInt16LE(0xffff, 0xfce)))),
      "MEASURE_OVMF_MALFORMED",
    );
    assert.equal(
      codeOf(() => parseOvmf(patched((b) => b.writeUInt16LE(0x0005, 0xfbc)))),
      "MEASURE_OVMF_MALFORMED",
    );
  });

  it("when the SEV metadata is out of place, misnamed, of another version or of an unknown type, it is refused", () => {
    for (const edit of [
      (b: Buffer) => b.writeUInt32LE(0xffff_fff0, 0xf70),
      (b: Buffer) => b.write("XSEV", ASEV, "latin1"),
      (b: Buffer) => b.writeUInt32LE(2, ASEV + 8),
      (b: Buffer) => b.writeUInt32LE(0xffff, ASEV + 12),
      (b: Buffer) => b.writeUInt32LE(7, ASEV + 16 + 8),
      (b: Buffer) => b.writeUInt32LE(1000, ASEV + 16 + 4),
    ]) {
      assert.equal(
        codeOf(() => parseOvmf(patched(edit))),
        "MEASURE_OVMF_MALFORMED",
      );
    }
  });

  it("when a section asks for gigabytes of pages, it is refused before any hashing", () => {
    const huge = patched((b) => b.writeUInt32LE(0xffff_f000, ASEV + 16 + 4));
    assert.equal(
      codeOf(() => parseOvmf(huge)),
      "MEASURE_OVMF_MALFORMED",
    );
  });

  it("when there is more than one vCPU but no AP reset EIP, it is MEASURE_OVMF_MALFORMED; one vCPU still measures", () => {
    const noAp = patched((b) => b.writeUInt32LE(0, 0xfb8));
    assert.equal(
      codeOf(() => computeLaunchDigest(inputs(noAp))),
      "MEASURE_OVMF_MALFORMED",
    );
    assert.equal(
      codeOf(() => computeLaunchDigest(inputs(noAp, { vcpus: 1 }))),
      "none",
    );
  });

  it("when the parameters are out of range, it is a USAGE error", () => {
    for (const extra of [{ vcpus: 0 }, { vcpus: 5000 }, { vcpuSig: -1 }, { guestFeatures: 1n << 64n }]) {
      assert.equal(
        codeOf(() => computeLaunchDigest(inputs(amdSevBytes, extra))),
        "USAGE",
      );
    }
  });

  it("when random bytes of the table area are changed, every outcome is a digest or a coded error, never a crash", () => {
    const seed = Number(process.env.PROVENANT_FUZZ_SEED ?? 0x5eed);
    console.log(`measure fuzz seed ${seed}`);
    let state = seed >>> 0 || 1;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x1_0000_0000;
    };
    const codes = new Set<string>();
    for (let round = 0; round < 400; round++) {
      const bytes = Buffer.from(amdSevBytes);
      const flips = 1 + Math.floor(next() * 4);
      for (let f = 0; f < flips; f++) bytes[0xa00 + Math.floor(next() * 0x600)] = Math.floor(next() * 256);
      let code: string;
      try {
        const result = computeLaunchDigest({
          ...inputs(bytes),
          kernelHashes: { kernel: new Uint8Array(32), initrd: new Uint8Array(32), cmdline: cmdlineDigest("") },
        });
        assert.equal(result.measurement.length, 48);
        code = "ok";
      } catch (error) {
        assert.ok(isProvenantError(error), `round ${round}: ${String(error)}`);
        code = error.code;
      }
      assert.ok(["ok", "MEASURE_OVMF_MALFORMED", "MEASURE_NO_KERNEL_HASHES"].includes(code), code);
      codes.add(code);
    }
    assert.ok(codes.has("ok") && codes.has("MEASURE_OVMF_MALFORMED"), [...codes].join(","));
  });
});
