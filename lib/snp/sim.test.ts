import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";

import { PolicyViolationError, ProvenantError } from "../errors.ts";
import { readCertificate } from "./cert.ts";
import {
  createReportVerifier,
  createSimulator,
  DEFAULT_SNP_POLICY,
  encodeTcb,
  parseCrl,
  parseSnpPolicy,
  snpPolicyToJson,
  validateReport,
  verifyReport,
  type Product,
  type SnpSimulator,
} from "./index.ts";

const keyDir = join(tmpdir(), "provenant-test-sim");
/** The simulators' clock and the verification time: fixed, so no result depends on the day the suite runs. */
const NOW = new Date("2026-11-21T12:00:00Z");
const sims = {} as Record<Product, SnpSimulator>;

before(async () => {
  for (const product of ["Milan", "Genoa", "Turin"] as const)
    sims[product] = await createSimulator({ product, keyDir, now: NOW });
});

function codes(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError, `not a ProvenantError: ${String(error)}`);
    return error instanceof PolicyViolationError ? error.violations.map((v) => v.code) : [error.code];
  }
  return [];
}

const trust = (sim: SnpSimulator) => ({ trustedRoots: [sim.rootFingerprint] });

describe("the simulator", () => {
  it("when signing every version for every product with VCEK and VLEK, the reports verify and pass the default policy", () => {
    for (const product of ["Milan", "Genoa", "Turin"] as const) {
      const sim = sims[product];
      for (const version of [2, 3, 4, 5]) {
        for (const signer of ["vcek", "vlek"] as const) {
          const bytes = sim.signReport({ version, signer, reportData: new Uint8Array(64).fill(7) });
          const verified = verifyReport(bytes, sim.evidence(signer), NOW, trust(sim));
          assert.equal(verified.product, product);
          assert.equal(verified.signer, signer);
          assert.equal(verified.report.version, version);
          assert.equal(verified.report.reportedTcb.microcode, sim.tcb.microcode);
          if (product === "Turin") assert.equal(verified.report.reportedTcb.fmc, sim.tcb.fmc);
          validateReport(verified, DEFAULT_SNP_POLICY);
        }
      }
    }
  });

  it("when reserved bytes for the report's version are set, it fails with SNP_MALFORMED; reserved SIGNING_KEY and policy bit 17 too", () => {
    const sim = sims.Genoa;
    const cases: [Uint8Array, number][] = [
      [sim.signReport({ version: 2 }), 0x188], // v2 has no CPUID
      [sim.signReport({ version: 3 }), 0x1f8], // v3/v4 have no mitigation vectors
      [sim.signReport({ version: 3 }), 0x207],
      [sim.signReport({ version: 4 }), 0x208],
      [sim.signReport({ version: 5 }), 0x208],
      [sim.signReport({ version: 5 }), 0x18b],
      [sim.signReport({ version: 5 }), 0x1eb],
      [sim.signReport({ version: 5 }), 0x4c],
      [sim.signReport({ version: 5 }), 0x49f],
    ];
    for (const [bytes, offset] of cases) {
      const bad = bytes.slice();
      bad[offset] = 1;
      assert.deepEqual(
        codes(() => verifyReport(bad, sim.evidence(), NOW, trust(sim))),
        ["SNP_MALFORMED"],
        `0x${offset.toString(16)}`,
      );
    }
    const v5 = sim.signReport({ version: 5 });
    const reservedKey = v5.slice();
    reservedKey[0x48] = 3 << 2;
    assert.deepEqual(
      codes(() => verifyReport(reservedKey, sim.evidence(), NOW, trust(sim))),
      ["SNP_MALFORMED"],
    );
    assert.deepEqual(
      codes(() => verifyReport(sim.signReport({ policy: 0n }), sim.evidence(), NOW, trust(sim))),
      ["SNP_MALFORMED"],
    );
  });

  it("when r or s has bytes beyond 384 bits, it fails with SNP_BAD_SIGNATURE", () => {
    const sim = sims.Milan;
    for (const offset of [0x2a0 + 48, 0x2e8 + 71]) {
      const bad = sim.signReport();
      bad[offset] = 1;
      assert.deepEqual(
        codes(() => verifyReport(bad, sim.evidence(), NOW, trust(sim))),
        ["SNP_BAD_SIGNATURE"],
      );
    }
  });

  it("when the root is not named by the policy, it fails with SNP_UNTRUSTED_ROOT", () => {
    const sim = sims.Milan;
    assert.deepEqual(
      codes(() => verifyReport(sim.signReport(), sim.evidence(), NOW)),
      ["SNP_UNTRUSTED_ROOT"],
    );
  });

  it("when the simulated VCEK comes with AMD's real chain, it fails with SNP_CHAIN_INVALID", () => {
    const sim = sims.Milan;
    const testdata = new URL("../../test/fixtures/snp/", import.meta.url);
    const pemToDer = (name: string) =>
      Buffer.from(readFileSync(new URL(name, testdata), "latin1").replace(/-----[^-]+-----|\s+/g, ""), "base64");
    const chain = [pemToDer("milan-ask.pem"), pemToDer("milan-ark.pem")];
    assert.deepEqual(
      codes(() => verifyReport(sim.signReport(), { vcek: sim.vcekDer, chain }, NOW)),
      ["SNP_CHAIN_INVALID"],
    );
  });

  it("when v5 mitigation vectors are set, they are parsed", () => {
    const sim = sims.Genoa;
    const bytes = sim.signReport({ launchMitigationVector: 3n, currentMitigationVector: 0x8000000000000001n });
    const { report } = verifyReport(bytes, sim.evidence(), NOW, trust(sim));
    assert.equal(report.launchMitigationVector, 3n);
    assert.equal(report.currentMitigationVector, 0x8000000000000001n);
  });

  it("when the chip key is masked and a VCEK signed, it fails with SNP_SIGNER_MISMATCH; with a VLEK a zero CHIP_ID verifies", () => {
    for (const product of ["Milan", "Genoa", "Turin"] as const) {
      const sim = sims[product];
      assert.deepEqual(
        codes(() => verifyReport(sim.signReport({ maskChipKey: true }), sim.evidence(), NOW, trust(sim))),
        ["SNP_SIGNER_MISMATCH"],
        product,
      );
      const bytes = sim.signReport({ maskChipKey: true, signer: "vlek" });
      const verified = verifyReport(bytes, sim.evidence("vlek"), NOW, trust(sim));
      assert.equal(verified.report.maskChipKey, true);
      assert.equal(verified.signer, "vlek");
    }
  });

  it("when debug and a migration agent are allowed and VMPL is 1, it reports all three violations", () => {
    const sim = sims.Milan;
    const verified = verifyReport(
      sim.signReport({ debug: true, migrateMa: true, vmpl: 1 }),
      sim.evidence(),
      NOW,
      trust(sim),
    );
    assert.deepEqual(
      codes(() => validateReport(verified, DEFAULT_SNP_POLICY)),
      ["POLICY_DEBUG", "POLICY_MIGRATION_AGENT", "POLICY_VMPL"],
    );
  });

  it("when the policy leaves allowDebug, allowMigrationAgent and vmpl out ({}), it refuses debug, a migration agent and VMPL 1", () => {
    const sim = sims.Milan;
    const verified = verifyReport(
      sim.signReport({ debug: true, migrateMa: true, vmpl: 1 }),
      sim.evidence(),
      NOW,
      trust(sim),
    );
    assert.deepEqual(
      codes(() => validateReport(verified, {})),
      ["POLICY_DEBUG", "POLICY_MIGRATION_AGENT", "POLICY_VMPL"],
    );
    assert.deepEqual(
      codes(() =>
        validateReport(verified, parseSnpPolicy({ allowDebug: null, allowMigrationAgent: null, vmpl: null })),
      ),
      ["POLICY_DEBUG", "POLICY_MIGRATION_AGENT", "POLICY_VMPL"],
    );
    validateReport(verified, { allowDebug: true, allowMigrationAgent: true, vmpl: 1 });
  });

  it("when the TCB, firmware and guest SVN are below the policy's floors, it fails with POLICY_TCB, POLICY_FIRMWARE, POLICY_GUEST_SVN", () => {
    const sim = sims.Turin;
    const verified = verifyReport(sim.signReport({ guestSvn: 1 }), sim.evidence(), NOW, trust(sim));
    const policy = parseSnpPolicy({
      minimumTcb: { Turin: { fmc: 2 }, Milan: { snp: 99 } },
      minimumFirmware: { major: 1, minor: 56 },
      minimumGuestSvn: 2,
    });
    assert.deepEqual(
      codes(() => validateReport(verified, policy)),
      ["POLICY_TCB", "POLICY_FIRMWARE", "POLICY_FIRMWARE", "POLICY_GUEST_SVN"],
    );
    validateReport(verified, parseSnpPolicy({ minimumTcb: { Turin: { fmc: 1, microcode: 0x80 } } }));
  });

  it("when SPLs are 0x80 or more, the certificate's INTEGERs decode to the same TCB", async () => {
    const sim = await createSimulator({
      product: "Milan",
      keyDir,
      now: NOW,
      tcb: { bootloader: 0xff, tee: 0x80, snp: 0x81, microcode: 0xdb },
    });
    const verified = verifyReport(sim.signReport(), sim.evidence(), NOW, trust(sim));
    assert.deepEqual(
      { ...verified.report.reportedTcb, raw: 0n },
      { bootloader: 0xff, tee: 0x80, snp: 0x81, microcode: 0xdb, raw: 0n },
    );
  });

  it("when REPORTED_TCB differs from the certificate, it fails with SNP_TCB_MISMATCH (FMC too on Turin)", () => {
    const milan = sims.Milan;
    const t = milan.tcb;
    assert.deepEqual(
      codes(() =>
        verifyReport(milan.signReport({ reportedTcb: { ...t, snp: t.snp + 1 } }), milan.evidence(), NOW, trust(milan)),
      ),
      ["SNP_TCB_MISMATCH"],
    );
    const turin = sims.Turin;
    const bytes = turin.signReport({ signer: "vlek", reportedTcb: { ...turin.tcb, fmc: 9 } });
    assert.deepEqual(
      codes(() => verifyReport(bytes, turin.evidence("vlek"), NOW, trust(turin))),
      ["SNP_TCB_MISMATCH"],
    );
  });

  it("when a reserved REPORTED_TCB byte is set (Milan/Genoa 2-5, Turin 4-6), it fails with SNP_TCB_MISMATCH", () => {
    for (const [product, bytes] of [
      ["Milan", [2, 3, 4, 5]],
      ["Genoa", [2, 5]],
      ["Turin", [4, 5, 6]],
    ] as const) {
      const sim = sims[product];
      const base = encodeTcb(sim.tcb, product);
      for (const signer of ["vcek", "vlek"] as const) {
        for (const i of bytes) {
          const reportedTcb = base | (1n << BigInt(8 * i));
          assert.deepEqual(
            codes(() => verifyReport(sim.signReport({ signer, reportedTcb }), sim.evidence(signer), NOW, trust(sim))),
            ["SNP_TCB_MISMATCH"],
            `${product} ${signer} byte ${i}`,
          );
        }
      }
      verifyReport(sim.signReport({ reportedTcb: base }), sim.evidence(), NOW, trust(sim));
    }
  });

  it("when CHIP_ID differs from hwID, or a Turin CHIP_ID has a nonzero byte after the 8th, it fails with SNP_CHIP_ID_MISMATCH", () => {
    const milan = sims.Milan;
    const other = milan.chipId.slice();
    other[63] ^= 1;
    assert.deepEqual(
      codes(() => verifyReport(milan.signReport({ chipId: other }), milan.evidence(), NOW, trust(milan))),
      ["SNP_CHIP_ID_MISMATCH"],
    );
    const turin = sims.Turin;
    assert.equal(
      turin.chipId.subarray(8).every((b) => b === 0),
      true,
    );
    // KDS identifies a Turin chip by CHIP_ID[0:8]; bytes 8-63 must be zero, for a VCEK and a VLEK alike.
    for (const i of [8, 40, 63]) {
      const longer = turin.chipId.slice();
      longer[i] = 1;
      for (const signer of ["vcek", "vlek"] as const) {
        assert.deepEqual(
          codes(() =>
            verifyReport(turin.signReport({ signer, chipId: longer }), turin.evidence(signer), NOW, trust(turin)),
          ),
          ["SNP_CHIP_ID_MISMATCH"],
          `${signer} byte ${i}`,
        );
      }
    }
    const wrong = turin.chipId.slice();
    wrong[7] ^= 1;
    assert.deepEqual(
      codes(() => verifyReport(turin.signReport({ chipId: wrong }), turin.evidence(), NOW, trust(turin))),
      ["SNP_CHIP_ID_MISMATCH"],
    );
    // A VLEK carries no hwID: the chip id is not compared.
    verifyReport(turin.signReport({ signer: "vlek", chipId: wrong }), turin.evidence("vlek"), NOW, trust(turin));
  });

  it("when the report's signing-key kind differs from the certificate, it fails with SNP_SIGNER_MISMATCH", () => {
    const sim = sims.Genoa;
    assert.deepEqual(
      codes(() => verifyReport(sim.signReport({ signingKey: "vlek" }), sim.evidence(), NOW, trust(sim))),
      ["SNP_SIGNER_MISMATCH"],
    );
    assert.deepEqual(
      codes(() =>
        verifyReport(sim.signReport({ signer: "vlek", signingKey: "vcek" }), sim.evidence("vlek"), NOW, trust(sim)),
      ),
      ["SNP_SIGNER_MISMATCH"],
    );
  });

  it("when the VLEK evidence is used for a VCEK-signed report, it fails with SNP_BAD_SIGNATURE or SNP_SIGNER_MISMATCH", () => {
    const sim = sims.Milan;
    const c = codes(() => verifyReport(sim.signReport(), sim.evidence("vlek"), NOW, trust(sim)));
    assert.ok(c[0] === "SNP_SIGNER_MISMATCH" || c[0] === "SNP_BAD_SIGNATURE", String(c));
  });

  it("when a v3+ report's CPUID names no known product, it fails with SNP_PRODUCT_MISMATCH (not skipped)", () => {
    for (const product of ["Milan", "Genoa", "Turin"] as const) {
      const sim = sims[product];
      for (const version of [3, 4, 5]) {
        for (const cpuid of [
          { family: 0x17, model: 0x31, stepping: 0 },
          { family: 0x19, model: 0x50, stepping: 0 },
          { family: 0x1a, model: 0x40, stepping: 0 },
          { family: 0, model: 0, stepping: 0 },
        ]) {
          for (const signer of ["vcek", "vlek"] as const) {
            const bytes = sim.signReport({ version, signer, cpuid });
            assert.deepEqual(
              codes(() => verifyReport(bytes, sim.evidence(signer), NOW, trust(sim))),
              ["SNP_PRODUCT_MISMATCH"],
              `${product} v${version} ${signer} ${JSON.stringify(cpuid)}`,
            );
          }
        }
      }
    }
  });

  it("when CPUID names another product than the chain, it fails with SNP_PRODUCT_MISMATCH; v2 takes the product from the certificate", () => {
    const sim = sims.Milan;
    const bytes = sim.signReport({ version: 3, cpuid: { family: 0x19, model: 0x11, stepping: 1 } });
    assert.deepEqual(
      codes(() => verifyReport(bytes, sim.evidence(), NOW, trust(sim))),
      ["SNP_PRODUCT_MISMATCH"],
    );
    const turin = sims.Turin;
    const v2 = verifyReport(turin.signReport({ version: 2 }), turin.evidence(), NOW, trust(turin));
    assert.equal(v2.product, "Turin");
    assert.equal(v2.report.reportedTcb.fmc, turin.tcb.fmc);
  });

  it("when the signature algorithm is not 1, it fails with SNP_BAD_SIGNATURE", () => {
    const sim = sims.Milan;
    assert.deepEqual(
      codes(() => verifyReport(sim.signReport({ signatureAlgo: 2 }), sim.evidence(), NOW, trust(sim))),
      ["SNP_BAD_SIGNATURE"],
    );
  });

  it("when a CRL from the ARK lists the ASK, it fails with SNP_CERT_REVOKED; an empty CRL passes; no CRL is SNP_CERT_UNAVAILABLE", () => {
    const sim = sims.Genoa;
    const bytes = sim.signReport();
    verifyReport(bytes, sim.evidence(), NOW, { ...trust(sim), crls: [sim.crl()] });
    assert.deepEqual(
      codes(() => verifyReport(bytes, sim.evidence(), NOW, { ...trust(sim), crls: [sim.crl({ revoked: [0x10001] })] })),
      ["SNP_CERT_REVOKED"],
    );
    // nextUpdate one second before the verification time: stale by exactly that second, whatever the machine's clock.
    const stale = sim.crl({ nextUpdate: new Date(NOW.getTime() - 1000) });
    assert.deepEqual(
      codes(() => verifyReport(bytes, sim.evidence(), NOW, { ...trust(sim), crls: [stale] })),
      ["SNP_CERT_UNAVAILABLE"],
    );
    const forged = sim.crl();
    forged[forged.length - 1] ^= 1;
    assert.deepEqual(
      codes(() => verifyReport(bytes, sim.evidence(), NOW, { ...trust(sim), crls: [forged] })),
      ["SNP_CERT_UNAVAILABLE"],
    );
    assert.deepEqual(
      codes(() => verifyReport(bytes, sim.evidence(), NOW, { ...trust(sim), crls: [new Uint8Array([1, 2, 3])] })),
      ["SNP_CERT_UNAVAILABLE"],
    );
  });

  it("when several CRLs are given, each must have nextUpdate and be current at now, else SNP_CERT_UNAVAILABLE; the cached path re-checks the earliest nextUpdate", () => {
    const sim = sims.Genoa;
    const bytes = sim.signReport();
    const HOUR = 3600_000;
    const at = (ms: number) => new Date(NOW.getTime() + ms);
    const fresh = sim.crl();
    const verifyWith = (crls: Uint8Array[], now = NOW) =>
      codes(() => verifyReport(bytes, sim.evidence(), now, { ...trust(sim), crls }));
    assert.deepEqual(verifyWith([fresh, sim.crl({ nextUpdate: at(HOUR) })]), []);
    // one of them without nextUpdate
    assert.deepEqual(verifyWith([fresh, sim.crl({ nextUpdate: null })]), ["SNP_CERT_UNAVAILABLE"]);
    assert.deepEqual(verifyWith([sim.crl({ nextUpdate: null }), fresh]), ["SNP_CERT_UNAVAILABLE"]);
    // the second one stale (the first is fresh): all used must be current
    assert.deepEqual(verifyWith([fresh, sim.crl({ nextUpdate: at(-1000) })]), ["SNP_CERT_UNAVAILABLE"]);
    // one issued after now
    assert.deepEqual(verifyWith([fresh, sim.crl({ nextUpdate: at(2 * HOUR), thisUpdate: at(HOUR) })]), [
      "SNP_CERT_UNAVAILABLE",
    ]);
    // a revocation in the second CRL counts
    assert.deepEqual(verifyWith([fresh, sim.crl({ revoked: [0x10001] })]), ["SNP_CERT_REVOKED"]);

    // cached: the first call passes; a later `now` past the earliest nextUpdate (not the first CRL's) fails
    const verifier = createReportVerifier({ ...trust(sim), crls: [fresh, sim.crl({ nextUpdate: at(HOUR) })] });
    verifier.verify(bytes, sim.evidence(), NOW);
    assert.deepEqual(
      codes(() => verifier.verify(bytes, sim.evidence(), at(2 * HOUR))),
      ["SNP_CERT_UNAVAILABLE"],
    );
    assert.deepEqual(
      codes(() => verifier.verify(bytes, sim.evidence(), at(-2 * 24 * HOUR))),
      ["SNP_CERT_UNAVAILABLE"],
    );
    verifier.verify(bytes, sim.evidence(), at(HOUR - 1000));
  });

  it("when one verifier sees reports from several chips, its cache keeps them apart", () => {
    const verifier = createReportVerifier({ trustedRoots: Object.values(sims).map((s) => s.rootFingerprint) });
    for (let i = 0; i < 3; i++) {
      for (const sim of Object.values(sims))
        assert.equal(verifier.verify(sim.signReport(), sim.evidence(), NOW).product, sim.product);
    }
    const milan = sims.Milan;
    // The simulated products share keys, so the signature holds; CPUID still names Milan.
    assert.deepEqual(
      codes(() => verifier.verify(milan.signReport(), sims.Genoa.evidence(), NOW)),
      ["SNP_PRODUCT_MISMATCH"],
    );
  });

  it("when given a clock, its VCEK and VLEK are valid from 30 days before it for seven years and its CRLs are dated around it", async () => {
    const DAY = 86_400_000;
    const later = new Date("2031-03-04T05:06:07Z");
    const sim = await createSimulator({ product: "Genoa", keyDir, now: later });
    assert.equal(sim.rootFingerprint, sims.Genoa.rootFingerprint, "the root does not depend on the clock");
    for (const signer of ["vcek", "vlek"] as const) {
      const cert = readCertificate(sim.evidence(signer).vcek, signer);
      assert.deepEqual(cert.notBefore, new Date("2031-02-02T00:00:00Z"), signer);
      assert.deepEqual(cert.notAfter, new Date(cert.notBefore.getTime() + 7 * 365 * DAY), signer);
      const bytes = sim.signReport({ signer });
      verifyReport(bytes, sim.evidence(signer), later, trust(sim));
      assert.deepEqual(
        codes(() => verifyReport(bytes, sim.evidence(signer), NOW, trust(sim))),
        ["SNP_CERT_EXPIRED"],
        `${signer} is not yet valid at the suite's NOW`,
      );
    }
    const crl = parseCrl(sim.crl({ revoked: [0x10001] }));
    assert.deepEqual(crl.thisUpdate, new Date(later.getTime() - DAY));
    assert.deepEqual(crl.nextUpdate, new Date(later.getTime() + 7 * DAY));
    assert.deepEqual([...crl.revoked], ["10001"]);
  });

  it("when the keys are loaded twice from one directory, the root is the same", async () => {
    const again = await createSimulator({ product: "Milan", keyDir, now: NOW });
    assert.equal(again.rootFingerprint, sims.Milan.rootFingerprint);
  });
});

describe("the SNP policy JSON", () => {
  it("when a full policy is written and read back, it is the same", () => {
    const json = {
      allowDebug: false,
      allowMigrationAgent: false,
      vmpl: 0,
      signatureAlgo: 1,
      minimumTcb: { Milan: { bootloader: 4, snp: 24, microcode: 219 }, Turin: { fmc: 1 } },
      minimumFirmware: { major: 1, minor: 55, build: 29 },
      minimumGuestSvn: 2,
      measurements: ["ab".repeat(48)],
      hostData: "cd".repeat(32),
      idKeyDigests: ["01".repeat(48)],
      authorKeyDigests: ["00".repeat(48)],
      reportData: "00".repeat(64),
    };
    // Measurements take their one canonical form, {name?, value} objects sorted by value.
    assert.deepEqual(snpPolicyToJson(parseSnpPolicy(json)), { ...json, measurements: [{ value: "ab".repeat(48) }] });
    assert.deepEqual(parseSnpPolicy({}), DEFAULT_SNP_POLICY);
    assert.deepEqual(parseSnpPolicy({ vmpl: null }).vmpl, undefined);
  });

  it("when fields are unknown or malformed, it fails with POLICY_INVALID listing each", () => {
    assert.deepEqual(
      codes(() => parseSnpPolicy({ nope: 1, vmpl: 7, measurements: ["zz"] })),
      ["POLICY_INVALID", "POLICY_INVALID", "POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() => parseSnpPolicy([])),
      ["POLICY_INVALID"],
    );
  });

  it("when host data, report data and key digests differ, it reports each", () => {
    const sim = sims.Milan;
    const verified = verifyReport(sim.signReport(), sim.evidence(), NOW, trust(sim));
    const policy = parseSnpPolicy({
      hostData: "11".repeat(32),
      reportData: "11".repeat(64),
      idKeyDigests: ["11".repeat(48)],
      authorKeyDigests: ["11".repeat(48)],
    });
    assert.deepEqual(
      codes(() => validateReport(verified, policy)),
      ["POLICY_HOST_DATA", "POLICY_REPORT_DATA", "POLICY_ID_KEY", "POLICY_ID_KEY"],
    );
  });
});
