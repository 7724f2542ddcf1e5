import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  createReportVerifier,
  createSimulator,
  measurementEntries,
  parseSnpPolicy,
  snpPolicyGaps,
  snpPolicyToJson,
  validateReport,
  type SnpSimulator,
  type VerifiedReport,
} from "./index.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const M1 = "11".repeat(48);
const M2 = "ab".repeat(48);

function codes(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProvenantError);
    const violations = (error as { violations?: ProvenantError[] }).violations ?? [error];
    return violations.map((v) => v.code);
  }
  return [];
}

function messages(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    const violations = (error as { violations?: Error[] }).violations ?? [error as Error];
    return violations.map((v) => v.message).join("\n");
  }
  return "";
}

describe("SNP policy: named measurements, accepted products, openness", () => {
  let sim: SnpSimulator;
  let verified: VerifiedReport;
  before(async () => {
    sim = await createSimulator({ product: "Milan", now: NOW });
    verified = createReportVerifier({ trustedRoots: [sim.rootFingerprint] }).verify(
      sim.signReport({ measurement: Buffer.from(M1, "hex") }),
      sim.evidence(),
      NOW,
    );
  });

  it("when measurements are strings or {name, value}, they take one canonical JSON form, sorted, names kept", () => {
    const a = parseSnpPolicy({ measurements: [M2.toUpperCase(), { name: "job 0.2.0 on OVMF 2025.02", value: M1 }] });
    const b = parseSnpPolicy({ measurements: [{ name: "job 0.2.0 on OVMF 2025.02", value: M1 }, { value: M2 }] });
    const expected = [{ name: "job 0.2.0 on OVMF 2025.02", value: M1 }, { value: M2 }];
    assert.deepEqual(snpPolicyToJson(a).measurements, expected);
    assert.deepEqual(snpPolicyToJson(b).measurements, expected);
    assert.deepEqual(measurementEntries(a), expected);
    assert.deepEqual(snpPolicyToJson(parseSnpPolicy(snpPolicyToJson(a))), snpPolicyToJson(a), "a fixed point");
    validateReport(verified, a);
    assert.deepEqual(
      codes(() => validateReport(verified, parseSnpPolicy({ measurements: [M2] }))),
      ["POLICY_MEASUREMENT"],
    );
  });

  it("when a measurement list is empty, repeats a value, or has a bad name or field, it is POLICY_INVALID", () => {
    assert.deepEqual(
      codes(() => parseSnpPolicy({ measurements: [] })),
      ["POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() => parseSnpPolicy({ measurements: [M1, { value: M1 }] })),
      ["POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() =>
        parseSnpPolicy({
          measurements: [
            { name: "", value: M1 },
            { name: "a\nb", value: M2 },
          ],
        }),
      ),
      ["POLICY_INVALID", "POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() => parseSnpPolicy({ measurements: [{ value: M1, note: "x" }] })),
      ["POLICY_INVALID"],
    );
    assert.deepEqual(
      codes(() => parseSnpPolicy({ minimumTcb: {} })),
      ["POLICY_INVALID"],
    );
  });

  it("when a value is still the template's placeholder, the error says so", () => {
    const text = messages(() =>
      parseSnpPolicy({
        measurements: [{ name: "x", value: "<96 hex: provenant measure --policy-snippet>" }],
        minimumTcb: { Genoa: { bootloader: "<AMD's published blSPL>", tee: 0, snp: 0, microcode: 0 } },
      }),
    );
    assert.match(text, /measurements\[0\]\.value: .*template placeholder/);
    assert.match(text, /minimumTcb\.Genoa\.bootloader: .*template placeholder/);
  });

  it("when minimumTcb names other products than the report's, the report is refused with POLICY_PRODUCT", () => {
    const floor = { bootloader: 0, tee: 0, snp: 0, microcode: 0 };
    assert.deepEqual(
      codes(() =>
        validateReport(verified, parseSnpPolicy({ minimumTcb: { Genoa: floor, Turin: { ...floor, fmc: 0 } } })),
      ),
      ["POLICY_PRODUCT"],
    );
    validateReport(verified, parseSnpPolicy({ minimumTcb: { Milan: floor, Genoa: floor } }));
    validateReport(verified, parseSnpPolicy({}));
  });

  it("when a policy lacks measurements, a floor, or a floor component, its gaps name each", () => {
    assert.deepEqual(
      snpPolicyGaps(parseSnpPolicy({})).map((g) => g.field),
      ["snp.measurements", "snp.minimumTcb"],
    );
    const partial = parseSnpPolicy({
      measurements: [M1],
      minimumTcb: {
        Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
        Turin: { bootloader: 1, tee: 0, snp: 1, microcode: 1 },
      },
    });
    assert.deepEqual(snpPolicyGaps(partial), [
      { field: "snp.minimumTcb.Turin", message: "the Turin floor leaves fmc unset" },
    ]);
    const pinned = parseSnpPolicy({
      measurements: [M1],
      minimumTcb: { Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 } },
    });
    assert.deepEqual(snpPolicyGaps(pinned), []);
  });

  it("when a pinned policy admits debuggable guests or a migration agent, it is open all the same", () => {
    const pins = { measurements: [M1], minimumTcb: { Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 } } };
    assert.deepEqual(
      snpPolicyGaps(parseSnpPolicy({ ...pins, allowDebug: true, allowMigrationAgent: true })).map((g) => g.field),
      ["snp.allowDebug", "snp.allowMigrationAgent"],
    );
    assert.deepEqual(snpPolicyGaps(parseSnpPolicy({ ...pins, allowDebug: false, allowMigrationAgent: false })), []);
  });
});
