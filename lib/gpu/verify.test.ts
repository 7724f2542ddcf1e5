import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { ProvenantError } from "../errors.ts";
import {
  encodeDiceTcbInfo,
  OID_TCG_DICE_TCB_INFO,
  OID_TCG_DICE_TCB_INFO_BLACKWELL,
  readGpuCertificate,
  readLeafFwid,
  readPemCertificates,
  sha256Hex,
} from "./cert.ts";
import { NVIDIA_DEVICE_ROOT_FINGERPRINT, NVIDIA_RIM_ROOT_FINGERPRINT } from "./nvidia-roots.ts";
import { parseGpuEvidence, toEvidenceBytes } from "./parse.ts";
import { createGpuSimulator, mintCertificate } from "./sim.ts";
import {
  createGpuVerifier,
  gpuNonceFor,
  verifiedGpuToJson,
  verifyGpuEvidence,
  type GpuEvidenceInput,
} from "./verify.ts";

const fixtures = new URL("../../test/fixtures/gpu/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, fixtures));
const report = toEvidenceBytes(read("hopperAttestationReport.txt"));
const chainPem = read("hopperCertChain.txt").toString("latin1");
const chainDers = readPemCertificates(chainPem, "chain", "GPU_CHAIN_INVALID");
const NONCE = Buffer.from("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb", "hex");
const NOW = new Date("2026-11-27T00:00:00Z");
/** The real report has no matching RIMs in the vectors: these tests look at the evidence and the chain. */
const NO_RIMS = { requireRims: false };

const pem = (ders: readonly Uint8Array[]) =>
  ders
    .map((d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString("base64")}\n-----END CERTIFICATE-----\n`)
    .join("");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProvenantError) return error.code;
    throw error;
  }
  return "OK";
}

const verifier = createGpuVerifier();
const check = (input: Partial<GpuEvidenceInput>, nonce: Uint8Array | null = NONCE, now = NOW) =>
  code(() =>
    verifyGpuEvidence(
      { evidence: report, certChainPem: chainPem, ...input },
      { expectedNonce: nonce, now, policy: NO_RIMS, verifier },
    ),
  );

describe("verifyGpuEvidence with the real H100 report and chain", () => {
  it("when nothing is changed, it verifies at the pinned now: Hopper, versions, nonce, FWID, the pinned root", () => {
    const v = verifyGpuEvidence(
      { evidence: report, certChainPem: chainPem },
      { expectedNonce: NONCE, now: NOW, policy: NO_RIMS },
    );
    assert.equal(v.arch, "hopper");
    assert.equal(v.driverVersion, "550.90.07");
    assert.equal(v.vbiosVersion, "96.00.9F.00.01");
    assert.equal(v.nonce, NONCE.toString("hex"));
    assert.equal(
      v.fwid,
      "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d",
    );
    assert.equal(v.rootFingerprint, NVIDIA_DEVICE_ROOT_FINGERPRINT);
    assert.equal(v.ids.leaf, "GH100 A01 GSP FMC LF");
    assert.deepEqual(v.measurements, { checked: 0, matched: 0, mismatched: [], skipped: [] });
    assert.match(v.measurementDigest, /^[0-9a-f]{64}$/);
    assert.equal(verifiedGpuToJson(v).arch, "hopper");
    assert.equal("evidence" in verifiedGpuToJson(v), false);
  });

  it("when the pinned fingerprints are compared with the vectors' root files, they are their SHA-256", () => {
    const der = (name: string) => readPemCertificates(read(name), name, "GPU_CHAIN_INVALID")[0]!;
    assert.equal(sha256Hex(der("verifier_device_root.pem")), NVIDIA_DEVICE_ROOT_FINGERPRINT);
    assert.equal(sha256Hex(der("verifier_RIM_root.pem")), NVIDIA_RIM_ROOT_FINGERPRINT);
    assert.equal(sha256Hex(chainDers[4]!), NVIDIA_DEVICE_ROOT_FINGERPRINT);
  });

  it("when any signed byte or the signature is flipped, it is GPU_BAD_SIGNATURE", () => {
    for (const at of [4, 36, 37 + 9, 2000, 4020, 4021, 4116]) {
      const copy = report.slice();
      copy[at] = copy[at]! ^ 0x01;
      const expected = code(() => parseGpuEvidence(copy)) === "OK" ? "GPU_BAD_SIGNATURE" : "GPU_MALFORMED";
      assert.equal(check({ evidence: copy }, null), expected, `byte ${at}`);
    }
  });

  it("when the expected nonce differs, it is GPU_NONCE_MISMATCH; when it is not 32 bytes, too", () => {
    const other = Buffer.from(NONCE);
    other[31] = other[31]! ^ 1;
    assert.equal(check({}, other), "GPU_NONCE_MISMATCH");
    assert.equal(check({}, NONCE.subarray(0, 31)), "GPU_NONCE_MISMATCH");
    assert.equal(check({}, null), "OK");
  });

  it("when the chain is out of order, reversed or lacks its root, it is GPU_CHAIN_INVALID", () => {
    const swapped = [chainDers[0]!, chainDers[2]!, chainDers[1]!, chainDers[3]!, chainDers[4]!];
    assert.equal(check({ certChainPem: pem(swapped) }), "GPU_CHAIN_INVALID");
    assert.equal(check({ certChainPem: pem([...chainDers].reverse()) }), "GPU_CHAIN_INVALID");
    assert.equal(check({ certChainPem: pem(chainDers.slice(0, 4)) }), "GPU_CHAIN_INVALID");
    assert.equal(check({ certChainPem: pem(chainDers.slice(1)) }), "GPU_CHAIN_INVALID");
    assert.equal(check({ certChainPem: "" }), "GPU_CHAIN_INVALID");
    assert.equal(
      check({ certChainPem: pem([chainDers[0]!.subarray(0, 100), ...chainDers.slice(1)]) }),
      "GPU_CHAIN_INVALID",
    );
  });

  it("when the root is replaced by a self-made root with the same subject, it is GPU_UNTRUSTED_ROOT", () => {
    const key = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).privateKey;
    const subject: [string, string][] = [
      ["CN", "NVIDIA Device Identity CA"],
      ["O", "NVIDIA"],
    ];
    const fake = mintCertificate({
      serial: Uint8Array.of(0x42),
      subject,
      issuer: subject,
      key,
      issuerKey: key,
      notBefore: new Date("2021-11-05T00:00:00Z"),
      notAfter: new Date("9999-12-31T23:59:59Z"),
      ca: {},
      keyUsage: 0x20 | 0x40,
    });
    assert.equal(check({ certChainPem: pem([...chainDers.slice(0, 4), fake]) }), "GPU_UNTRUSTED_ROOT");
  });

  it("when the chain's validity does not cover now, it is GPU_CERT_EXPIRED (the cache still checks it)", () => {
    assert.equal(check({}, NONCE, new Date("2020-01-01T00:00:00Z")), "GPU_CERT_EXPIRED");
    assert.equal(check({}, NONCE, new Date(Number.NaN)), "GPU_CERT_EXPIRED");
    assert.equal(check({}, NONCE, NOW), "OK");
  });

  it("when the collector claims Blackwell for a Hopper chain, it is GPU_CHAIN_INVALID", () => {
    assert.equal(check({ arch: "blackwell" }), "GPU_CHAIN_INVALID");
    assert.equal(check({ arch: "hopper" }), "OK");
  });

  it("when a leaf carries both DICE extensions, the claimed architecture's rule reads the FWID (as NVIDIA's SDK does)", () => {
    const leaf = readGpuCertificate(chainDers[0]!, "leaf", "GPU_CHAIN_INVALID");
    const hopper = leaf.extensions.get(OID_TCG_DICE_TCB_INFO)!;
    const blackwellFwid = new Uint8Array(48).fill(7);
    const blackwell = {
      critical: false,
      value: encodeDiceTcbInfo({ fwids: [{ hashAlg: "2.16.840.1.101.3.4.2.2", digest: blackwellFwid }] }),
    };
    const both = {
      ...leaf,
      extensions: new Map([
        [OID_TCG_DICE_TCB_INFO, hopper],
        [OID_TCG_DICE_TCB_INFO_BLACKWELL, blackwell],
      ]),
    };
    assert.deepEqual(readLeafFwid(both).fwid, blackwellFwid);
    assert.deepEqual(readLeafFwid(both, "blackwell").fwid, blackwellFwid);
    const asHopper = readLeafFwid(both, "hopper");
    assert.equal(asHopper.arch, "hopper");
    assert.deepEqual(asHopper.fwid, hopper.value.slice(hopper.value.length - 48));
    // Without the claimed architecture's own extension, it is refused.
    assert.equal(
      code(() => readLeafFwid(leaf, "blackwell")),
      "GPU_CHAIN_INVALID",
    );
  });

  it("when the input is not an object or the evidence is truncated, it is coded (never a raw error)", () => {
    assert.equal(
      code(() => verifier.verify(null as unknown as GpuEvidenceInput, { expectedNonce: null, now: NOW })),
      "GPU_MALFORMED",
    );
    assert.equal(check({ evidence: report.subarray(0, 4000) }), "GPU_MALFORMED");
    assert.equal(check({ certChainPem: 42 as unknown as string }), "GPU_CHAIN_INVALID");
  });
});

describe("verifyGpuEvidence with the simulator", () => {
  const now = NOW;
  const sim = createGpuSimulator({ now });
  const nonce = new Uint8Array(32).fill(3);
  const policy = { trustedRoots: sim.trustedRoots };

  it("when the report's FWID is not the leaf's, it is GPU_FWID_MISMATCH; when it reports none, it verifies with fwid null", () => {
    const other = new Uint8Array(48).fill(1);
    const bad = { evidence: sim.signEvidence({ nonce, fwid: other }), certChainPem: sim.certChainPem };
    assert.equal(
      code(() => verifyGpuEvidence(bad, { expectedNonce: nonce, now, policy: { ...policy, requireRims: false } })),
      "GPU_FWID_MISMATCH",
    );
    const none = { evidence: sim.signEvidence({ nonce, fwid: null }), certChainPem: sim.certChainPem };
    assert.equal(
      verifyGpuEvidence(none, { expectedNonce: nonce, now, policy: { ...policy, requireRims: false } }).fwid,
      null,
    );
  });

  it("when the policy does not name the simulator's roots, it is GPU_UNTRUSTED_ROOT", () => {
    const entry = sim.bundleEntry(nonce);
    assert.equal(
      code(() => verifyGpuEvidence(entry, { expectedNonce: nonce, now })),
      "GPU_UNTRUSTED_ROOT",
    );
  });

  it("when gpuNonceFor is given REPORT_DATA, it is SHA-256 of the domain string and the 64 bytes; other lengths are refused", () => {
    const reportData = new Uint8Array(64).map((_, i) => i);
    const n = gpuNonceFor(reportData);
    assert.equal(n.length, 32);
    assert.deepEqual(n, gpuNonceFor(reportData.slice()));
    const changed = reportData.slice();
    changed[63] = 0;
    assert.notDeepEqual(n, gpuNonceFor(changed));
    assert.equal(
      code(() => gpuNonceFor(new Uint8Array(32))),
      "GPU_MALFORMED",
    );
    const expected = createHash("sha256").update(
      Buffer.concat([Buffer.from("provenant/nvidia-gpu-nonce/v1"), reportData]),
    );
    assert.equal(Buffer.from(n).toString("hex"), expected.digest("hex"));
  });
});
