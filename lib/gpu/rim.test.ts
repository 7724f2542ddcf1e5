import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import { NVIDIA_RIM_ROOT_FINGERPRINT } from "./nvidia-roots.ts";
import { parseGpuEvidence, toEvidenceBytes } from "./parse.ts";
import { appraiseMeasurements, createRimVerifier, rimKindOf, verifyRim } from "./rim.ts";
import { createGpuSimulator, mintCertificate, SIM_DRIVER_INDICES } from "./sim.ts";
import { verifyGpuEvidence } from "./verify.ts";

const fixtures = new URL("../../test/fixtures/gpu/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, fixtures));
const driverRim = read("NV_GPU_DRIVER_GH100_550.144.03.xml");
const vbiosRim = read("1010_0200_882_96005E0001_PROD.swidtag");
const badSignatureRim = read("incorrect_signature_driver_rim.xml");
const report = toEvidenceBytes(read("hopperAttestationReport.txt"));
const chainPem = read("hopperCertChain.txt").toString("latin1");
const NONCE = Buffer.from("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb", "hex");
/** Inside both RIMs' signer validity (VBIOS L4 2023-06-23..2025-06-22, driver L4 from 2024-12-30). */
const BOTH_VALID = new Date("2025-01-15T00:00:00Z");
const DRIVER_VALID = new Date("2025-09-01T00:00:00Z");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProvenantError) return error.code;
    throw error;
  }
  return "OK";
}

const verifier = createRimVerifier();

describe("verifyRim with NVIDIA's RIMs", () => {
  it("when the driver RIM is verified at a time its chain is valid, it is a driver RIM 550.144.03 with 21 active values", () => {
    const rim = verifier.verify(driverRim, { now: DRIVER_VALID });
    assert.equal(rim.kind, "driver");
    assert.equal(rim.version, "550.144.03");
    assert.equal(rim.product, "GH100");
    assert.equal(rim.rootFingerprint, NVIDIA_RIM_ROOT_FINGERPRINT);
    assert.equal(rim.certificates.length, 4);
    assert.equal(rim.certificates[0]!.subjectCn, "HCC RIM L4 Signer");
    const active = rim.measurements.filter((m) => m.active).map((m) => m.index);
    assert.deepEqual(active, [7, ...Array.from({ length: 20 }, (_, i) => 21 + i)]);
    assert.equal(rim.measurements.find((m) => m.index === 23)!.alternatives.length > 1, true);
  });

  it("when the VBIOS RIM is verified inside its signer's window, it is a VBIOS RIM 96.00.5E.00.01 with 12 active values", () => {
    const rim = verifier.verify(vbiosRim, { now: BOTH_VALID });
    assert.equal(rim.kind, "vbios");
    assert.equal(rim.version, "96.00.5E.00.01");
    assert.deepEqual(
      rim.measurements.filter((m) => m.active).map((m) => m.index),
      [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12],
    );
    // PROVENANCE.md says index 12 has 2 alternatives; the file itself says alternatives="4" and carries Hash0..Hash3.
    assert.equal(rim.measurements.find((m) => m.index === 12)!.alternatives.length, 4);
  });

  it("when the VBIOS RIM is checked after its L4 signer expired on 2025-06-22, or before the driver signer existed, it is GPU_CERT_EXPIRED", () => {
    assert.equal(
      code(() => verifier.verify(vbiosRim, { now: new Date("2025-06-22T09:30:34Z") })),
      "GPU_CERT_EXPIRED",
    );
    assert.equal(
      code(() => verifier.verify(vbiosRim, { now: new Date("2026-11-27T00:00:00Z") })),
      "GPU_CERT_EXPIRED",
    );
    assert.equal(
      code(() => verifier.verify(vbiosRim, { now: new Date("2025-06-22T09:30:32Z") })),
      "OK",
    );
    assert.equal(
      code(() => verifier.verify(driverRim, { now: new Date("2024-12-30T16:56:49Z") })),
      "GPU_CERT_EXPIRED",
    );
  });

  it("when the signature value has one character changed (incorrect_signature_driver_rim.xml), it is GPU_RIM_INVALID", () => {
    assert.equal(
      code(() => verifyRim(badSignatureRim, { now: DRIVER_VALID })),
      "GPU_RIM_INVALID",
    );
  });

  it("when one golden value is changed, the reference digest fails: GPU_RIM_INVALID", () => {
    const text = driverRim.toString("utf8");
    const at = text.indexOf('ns2:Hash0="4a5e4b3d') + 'ns2:Hash0="'.length;
    const tampered = `${text.slice(0, at)}5${text.slice(at + 1)}`;
    assert.equal(
      code(() => verifyRim(tampered, { now: DRIVER_VALID })),
      "GPU_RIM_INVALID",
    );
    const inactive = text.replace('index="7" active="True"', 'index="7" active="False"');
    assert.equal(
      code(() => verifyRim(inactive, { now: DRIVER_VALID })),
      "GPU_RIM_INVALID",
    );
  });

  it("when the document is reshaped (two signatures, a DTD, an external reference, RSA, xml:base, oversize, too many tags, not UTF-8), it is GPU_RIM_INVALID", () => {
    const text = driverRim.toString("utf8");
    const signature = text.slice(text.indexOf("<ds:Signature"), text.indexOf("</SoftwareIdentity>"));
    const variants = [
      text.replace("</SoftwareIdentity>", `${signature}</SoftwareIdentity>`),
      `<!DOCTYPE SoftwareIdentity [<!ENTITY x "y">]>\n${text}`,
      text.replace('<ds:Reference URI="">', '<ds:Reference URI="http://example.com/rim.xml">'),
      text.replace('<ds:Reference URI="">', '<ds:Reference URI="#payload">'),
      text.replace("xmldsig-more#ecdsa-sha384", "xmldsig-more#rsa-sha256"),
      text.replace("<ns0:Entity name", '<ns0:Entity xml:base="http://example.com/" name'),
      text.replace("</SoftwareIdentity>", `<!-- ${"x".repeat(1 << 20)} --></SoftwareIdentity>`),
      "<SoftwareIdentity",
      "",
      `<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd">${"<x/>".repeat(3000)}</SoftwareIdentity>`,
    ];
    for (const [i, v] of variants.entries()) {
      assert.equal(
        code(() => verifyRim(v, { now: DRIVER_VALID })),
        "GPU_RIM_INVALID",
        `variant ${i}`,
      );
    }
    assert.equal(
      code(() => verifyRim(Uint8Array.of(0xff, 0xfe, 0x3c), { now: DRIVER_VALID })),
      "GPU_RIM_INVALID",
    );
  });

  it("when KeyInfo names another certificate first, the signature is checked against it and fails", () => {
    const text = driverRim.toString("utf8");
    const certs = [...text.matchAll(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/g)].map((m) => m[1]!);
    // L3 first, then the signer: the chain no longer links up.
    const swapped = text.replace(certs[0]!, "SWAP").replace(certs[1]!, certs[0]!).replace("SWAP", certs[1]!);
    assert.equal(
      code(() => verifyRim(swapped, { now: DRIVER_VALID })),
      "GPU_RIM_INVALID",
    );
  });

  it("when the KeyInfo root is a self-made root with NVIDIA's subject, it is GPU_UNTRUSTED_ROOT", () => {
    const text = driverRim.toString("utf8");
    const certs = [...text.matchAll(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/g)].map((m) => m[1]!);
    const key = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).privateKey;
    const subject: [string, string][] = [
      ["C", "US"],
      ["O", "NVIDIA"],
      ["CN", "NVIDIA CoRIM signing Root CA"],
    ];
    const fake = mintCertificate({
      serial: Uint8Array.of(7),
      subject,
      issuer: subject,
      key,
      issuerKey: key,
      notBefore: new Date("2023-03-16T00:00:00Z"),
      notAfter: new Date("2053-03-08T00:00:00Z"),
      ca: {},
      keyUsage: 0x20 | 0x40,
    });
    const replaced = text.replace(certs[3]!, Buffer.from(fake).toString("base64"));
    assert.equal(
      code(() => verifyRim(replaced, { now: DRIVER_VALID })),
      "GPU_UNTRUSTED_ROOT",
    );
  });
});

describe("appraiseMeasurements against the real H100 report", () => {
  const evidence = parseGpuEvidence(report);
  const driver = verifier.verify(driverRim, { now: DRIVER_VALID });
  const vbios = verifier.verify(vbiosRim, { now: BOTH_VALID });

  it("when the driver RIM (another driver version) is compared anyway, 15 match, 7/22/31/39/40 differ, 35 is skipped (NVDEC0 off)", () => {
    const a = appraiseMeasurements(evidence, { driver });
    assert.deepEqual(a, { checked: 20, matched: 15, mismatched: [7, 22, 31, 39, 40], skipped: [35] });
  });

  it("when NVDEC0 is enabled, index 35 is compared too", () => {
    const a = appraiseMeasurements({ blocks: evidence.blocks, nvdec0Status: 0xaa }, { driver });
    assert.equal(a.checked, 21);
    assert.deepEqual(a.skipped, []);
  });

  it("when the driver and VBIOS RIMs both define an active index, it is GPU_RIM_INVALID", () => {
    const clash = {
      measurements: [{ index: 7, name: "x", size: 48, active: true, alternatives: [new Uint8Array(48)] }],
    };
    assert.equal(
      code(() => appraiseMeasurements(evidence, { driver, vbios: clash })),
      "GPU_RIM_INVALID",
    );
    assert.equal(
      code(() => appraiseMeasurements(evidence, { driver, vbios })),
      "OK",
    );
  });

  it("when the driver RIM of another version is bundled with the report, verifyGpuEvidence says GPU_RIM_VERSION_MISMATCH", () => {
    const input = { evidence: report, certChainPem: chainPem, rims: [driverRim] };
    assert.equal(
      code(() => verifyGpuEvidence(input, { expectedNonce: NONCE, now: DRIVER_VALID })),
      "GPU_RIM_VERSION_MISMATCH",
    );
    const both = { evidence: report, certChainPem: chainPem, rims: [vbiosRim] };
    assert.equal(
      code(() => verifyGpuEvidence(both, { expectedNonce: NONCE, now: BOTH_VALID })),
      "GPU_RIM_VERSION_MISMATCH",
    );
  });

  it("when versions are classified, five hex pairs are a VBIOS version and anything else a driver version", () => {
    assert.equal(rimKindOf("96.00.5E.00.01"), "vbios");
    assert.equal(rimKindOf("97.00.6f.00.04"), "vbios");
    assert.equal(rimKindOf("550.144.03"), "driver");
    assert.equal(rimKindOf("620.12"), "driver");
  });
});

describe("RIMs from the simulator", () => {
  const now = new Date("2026-11-27T00:00:00Z");
  const sim = createGpuSimulator({ now });
  const nonce = new Uint8Array(32).fill(5);
  const options = { now, trustedRoots: sim.trustedRoots };

  it("when the simulator signs matching RIMs, they verify with its root trusted and every active value matches", () => {
    const driver = verifyRim(sim.makeRim({ kind: "driver" }), options);
    const vbios = verifyRim(sim.makeRim({ kind: "vbios" }), options);
    const evidence = parseGpuEvidence(sim.signEvidence({ nonce }));
    const a = appraiseMeasurements(evidence, { driver, vbios });
    assert.equal(a.mismatched.length, 0);
    assert.equal(a.checked, SIM_DRIVER_INDICES.length + 12 - 1);
  });

  it("when a block differs from every alternative, verifyGpuEvidence says GPU_MEASUREMENT_MISMATCH with the index", () => {
    const changed = new Map([[22, new Uint8Array(48).fill(0xee)]]);
    const entry = { ...sim.bundleEntry(nonce), evidence: sim.signEvidence({ nonce, measurements: changed }) };
    assert.throws(
      () => verifyGpuEvidence(entry, { expectedNonce: nonce, now, policy: { trustedRoots: sim.trustedRoots } }),
      (e: ProvenantError) => e.code === "GPU_MEASUREMENT_MISMATCH" && (e.details?.["mismatched"] as number[])[0] === 22,
    );
  });

  it("when a value matches its second alternative, it counts as matched", () => {
    const alt = new Map([[7, [new Uint8Array(48).fill(1), sim.measurements[7]!]]]);
    const driver = verifyRim(sim.makeRim({ kind: "driver", values: alt }), options);
    const a = appraiseMeasurements(parseGpuEvidence(sim.signEvidence({ nonce })), { driver });
    assert.equal(a.mismatched.length, 0);
  });

  it("when the RIM signer's certificate has expired, it is GPU_CERT_EXPIRED", () => {
    const old = sim.makeRim({
      kind: "driver",
      signerNotBefore: new Date(now.getTime() - 40 * 86_400_000),
      signerNotAfter: new Date(now.getTime() - 86_400_000),
    });
    assert.equal(
      code(() => verifyRim(old, options)),
      "GPU_CERT_EXPIRED",
    );
    assert.equal(
      code(() => verifyRim(old, { now })),
      "GPU_UNTRUSTED_ROOT",
    );
  });
});
