// The pipeline's strict reading of signed statements, its cross-checks, the pins of a closed policy (measurement,
// job code, accepted products) and revocation: each case a bundle built with the simulator and a fresh key, at a
// fixed `now`.
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";
import { before, describe, it } from "node:test";

import { BUNDLE_MEDIA_TYPE, writeBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../../lib/dsse/index.ts";
import {
  buildEvalStatement,
  buildFinetuneStatement,
  buildOmsStatement,
  validateStatement,
  type Statement,
} from "../../lib/intoto/index.ts";
import type { ModelHash } from "../../lib/oms/types.ts";
import { createSimulator, type SnpSimulator } from "../../lib/snp/index.ts";
import { oneFileModelHash } from "../testing/bundles.ts";
import { parseVerifierPolicy, verifyBundle, type BundleVerdict, type VerifierPolicy } from "./index.ts";

const NOW = new Date("2026-11-21T12:00:00Z");
const DAY = 86_400_000;
const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const encode = (statement: Statement) => new TextEncoder().encode(JSON.stringify(statement));
const codes = (v: BundleVerdict) => v.errors.map((e) => e.code);
const MEASUREMENT = Buffer.from("42".repeat(48), "hex");
const JOB_CODE = sha256("job code");

/** An OMS model of one file. */
function model(name: string): { hash: ModelHash; root: string } {
  const hash = oneFileModelHash(name, sha256(`file of ${name}`));
  return { hash, root: hash.rootDigest };
}

/** Edits reach into JSON of any shape, as an attacker's would. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

interface Build {
  kind?: "finetune" | "eval";
  /** Changes the manifest statement before it is signed. */
  edit?: (statement: Statement & { predicate: Loose }) => void;
  /** The manifest's payload bytes from its JSON text (to write what JSON.stringify never would). */
  raw?: (text: string) => Uint8Array;
  /** The payloadType of the output model's OMS envelope. */
  omsPayloadType?: string;
  /** The raw payload of the output model's OMS envelope. */
  omsRaw?: (text: string) => Uint8Array;
  /** The byproduct digest of the report (default: SHA-256 of the report). */
  reportDigest?: string;
}

describe("pipeline: statements read strictly, cross-checks, pins, revocation", () => {
  let sim: SnpSimulator;
  let key: { privateKey: KeyObject; publicKey: KeyObject };
  let dev: VerifierPolicy;
  let counter = 0;
  const output = model("tuned");
  const base = model("base");
  before(async () => {
    sim = await createSimulator({ product: "Milan", now: NOW });
    key = generateKeyPairSync("ec", { namedCurve: "P-384" });
    dev = parseVerifierPolicy({ trustedRoots: [sim.rootFingerprint], development: true });
  });

  function build(options: Build = {}): Uint8Array {
    const spki = key.publicKey.export({ format: "der", type: "spki" });
    const nonce = Buffer.from(sha256(`nonce ${counter++}`), "hex");
    const reportData = Buffer.concat([Buffer.from(sha256(spki), "hex"), nonce]);
    const report = sim.signReport({ reportData, measurement: MEASUREMENT });
    const dates = {
      startedOn: new Date(NOW.getTime() - 2 * 3_600_000),
      finishedOn: new Date(NOW.getTime() - 3_600_000),
    };
    const manifest =
      (options.kind ?? "finetune") === "finetune"
        ? buildFinetuneStatement({
            output: { name: "tuned", rootDigest: output.root },
            baseModel: { name: "base", rootDigest: base.root },
            dataset: { name: "data.jsonl", digest: sha256("data") },
            jobCode: { name: "provenant-enclave-job", digest: JOB_CODE },
            trainerConfig: { epochs: 1 },
            invocationId: `run-${counter}`,
            ...dates,
            byproducts: [{ name: "snp-report", digest: options.reportDigest ?? sha256(report) }],
          })
        : buildEvalStatement({
            model: { name: "tuned", rootDigest: output.root },
            suite: { name: "suite", digest: sha256("suite") },
            harness: { name: "provenant", version: "0.2.0", digest: JOB_CODE },
            metrics: [{ name: "accuracy", value: 0.75, sampleSize: 8, comparator: ">=", threshold: 0.5, passed: true }],
            ...dates,
          });
    options.edit?.(manifest as Statement & { predicate: Loose });
    const text = JSON.stringify(manifest);
    const omsText = JSON.stringify(buildOmsStatement("tuned", output.hash));
    const envelopes = [
      signEnvelope(options.raw?.(text) ?? new TextEncoder().encode(text), INTOTO_PAYLOAD_TYPE, key.privateKey),
      signEnvelope(
        options.omsRaw?.(omsText) ?? new TextEncoder().encode(omsText),
        options.omsPayloadType ?? INTOTO_PAYLOAD_TYPE,
        key.privateKey,
      ),
      signEnvelope(encode(buildOmsStatement("base", base.hash)), INTOTO_PAYLOAD_TYPE, key.privateKey),
    ];
    const evidence = sim.evidence("vcek");
    return writeBundle({
      mediaType: BUNDLE_MEDIA_TYPE,
      envelopes,
      signer: { publicKey: Buffer.from(spki).toString("base64") },
      nonce: nonce.toString("hex"),
      evidence: {
        cpu: {
          type: "sev-snp",
          report: Buffer.from(report).toString("base64"),
          vcek: Buffer.from(evidence.vcek).toString("base64"),
          chain: (evidence.chain ?? []).map((c) => Buffer.from(c).toString("base64")),
        },
      },
    });
  }

  const verify = (bytes: Uint8Array, policy: VerifierPolicy = dev) => verifyBundle(bytes, { policy, now: NOW });

  it("when the bundle is sound, it is accepted (each case below changes one thing)", () => {
    for (const kind of ["finetune", "eval"] as const) {
      const v = verify(build({ kind }));
      assert.deepEqual(v.errors, [], kind);
      assert.equal(v.jobCodeDigest, `sha256:${JOB_CODE}`);
    }
  });

  it("when the manifest repeats a key (a second subject, at any depth), it is STATEMENT_INVALID", () => {
    const other = model("other");
    const twice = (text: string) =>
      new TextEncoder().encode(
        text.replace('"subject":', `"subject":[{"name":"other","digest":{"sha256":"${other.root}"}}],"subject":`),
      );
    // JSON.parse alone would read the last subject and find the statement valid: the test can fail.
    const bytes = twice(
      JSON.stringify(buildEvalStatement({ ...evalLike(), model: { name: "t", rootDigest: output.root } })),
    );
    assert.equal(validateStatement(JSON.parse(new TextDecoder().decode(bytes))).kind, "eval");
    assert.ok(codes(verify(build({ raw: twice }))).includes("STATEMENT_INVALID"));
    const deep = (text: string) =>
      new TextEncoder().encode(text.replace('"name":"base-model"', '"name":"base-model","name":"dataset"'));
    assert.ok(codes(verify(build({ raw: deep }))).includes("STATEMENT_INVALID"));
    const inOms = (text: string) =>
      new TextEncoder().encode(text.replace('"method":"files"', '"method":"shards","method":"files"'));
    assert.ok(codes(verify(build({ omsRaw: inOms }))).includes("STATEMENT_INVALID"));
  });

  it("when a payload is not valid UTF-8 or starts with a BOM, it is STATEMENT_INVALID", () => {
    const latin1 = (text: string) => new Uint8Array(Buffer.from(text.replace('"tuned"', '"tun\u00e9d"'), "latin1"));
    assert.ok(codes(verify(build({ raw: latin1 }))).includes("STATEMENT_INVALID"));
    const bom = (text: string) => new Uint8Array(Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), Buffer.from(text)]));
    assert.ok(codes(verify(build({ raw: bom }))).includes("STATEMENT_INVALID"));
    assert.ok(codes(verify(build({ omsRaw: bom }))).includes("STATEMENT_INVALID"));
  });

  it("when an OMS envelope is typed text/plain, it is STATEMENT_INVALID and names no model", () => {
    const v = verify(build({ omsPayloadType: "text/plain" }));
    assert.ok(codes(v).includes("STATEMENT_INVALID"), codes(v).join());
    assert.ok(codes(v).includes("MODEL_DIGEST_MISMATCH"), codes(v).join());
  });

  it("when a second subject has no OMS statement, it is MODEL_DIGEST_MISMATCH", () => {
    const extra = model("extra");
    const v = verify(build({ edit: (s) => void s.subject.push({ name: "extra", digest: { sha256: extra.root } }) }));
    assert.deepEqual(codes(v), ["MODEL_DIGEST_MISMATCH"]);
    assert.match(v.errors[0]!.message, /subject\[1\]/);
  });

  it("when an eval metric's passed contradicts its value, it is STATEMENT_INVALID", () => {
    const v = verify(build({ kind: "eval", edit: (s) => void (s.predicate.metrics[0].value = 0.25) }));
    assert.deepEqual(codes(v), ["STATEMENT_INVALID"]);
  });

  it("when startedOn is after finishedOn, it is STATEMENT_INVALID", () => {
    const late = new Date(NOW.getTime() - 30 * 60_000).toISOString();
    assert.deepEqual(codes(verify(build({ kind: "eval", edit: (s) => void (s.predicate.startedOn = late) }))), [
      "STATEMENT_INVALID",
    ]);
    assert.deepEqual(codes(verify(build({ edit: (s) => void (s.predicate.runDetails.metadata.startedOn = late) }))), [
      "STATEMENT_INVALID",
    ]);
  });

  it("when a fine-tune's parent is its output, it is STATEMENT_INVALID", () => {
    const v = verify(
      build({ edit: (s) => void (s.predicate.buildDefinition.resolvedDependencies[0].digest.sha256 = output.root) }),
    );
    assert.ok(codes(v).includes("STATEMENT_INVALID"), codes(v).join());
  });

  it("when the snp-report byproduct is not the bundle's report, it is STATEMENT_INVALID", () => {
    const v = verify(build({ reportDigest: sha256("another report") }));
    assert.deepEqual(codes(v), ["STATEMENT_INVALID"]);
    assert.match(v.errors[0]!.message, /snp-report/);
  });

  describe("a closed policy: measurements, job code, products", () => {
    const floor = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };
    const closed = (extra: Record<string, unknown> = {}, snp: Record<string, unknown> = {}) =>
      parseVerifierPolicy({
        trustedRoots: [sim.rootFingerprint],
        development: true,
        snp: {
          measurements: [{ name: "provenant-job 0.2.0 on OVMF 2025.02", value: MEASUREMENT.toString("hex") }],
          minimumTcb: { Milan: floor },
          ...snp,
        },
        ...extra,
      });

    it("when the measurement is pinned, it is accepted and its name shown; when not, POLICY_MEASUREMENT", () => {
      const v = verify(build(), closed());
      assert.deepEqual(v.errors, []);
      assert.equal(v.evidence?.measurementName, "provenant-job 0.2.0 on OVMF 2025.02");
      assert.deepEqual(codes(verify(build(), closed({}, { measurements: ["77".repeat(48)] }))), ["POLICY_MEASUREMENT"]);
    });

    it("when the job code is not pinned, it is POLICY_JOB_CODE (fine-tune and eval)", () => {
      const pinned = closed({ jobCodeDigests: [{ name: "0.2.0", value: `sha256:${JOB_CODE}` }] });
      assert.deepEqual(verify(build(), pinned).errors, []);
      assert.deepEqual(verify(build({ kind: "eval" }), pinned).errors, []);
      const other = closed({ jobCodeDigests: [`sha256:${sha256("other job")}`] });
      assert.deepEqual(codes(verify(build(), other)), ["POLICY_JOB_CODE"]);
      assert.deepEqual(codes(verify(build({ kind: "eval" }), other)), ["POLICY_JOB_CODE"]);
    });

    it("when the report's product is not one the floors name, it is POLICY_PRODUCT", () => {
      const genoaOnly = closed({}, { minimumTcb: { Genoa: { bootloader: 9, tee: 0, snp: 23, microcode: 72 } } });
      assert.deepEqual(codes(verify(build(), genoaOnly)), ["POLICY_PRODUCT"]);
    });
  });

  describe("revocation", () => {
    const ASK = 0x10001;
    const withCrls = (crls: Uint8Array[], required = true) => ({
      crls: () => crls,
      required,
    });

    it("when the ARK's CRL revokes the ASK that issued the VCEK, it is SNP_CERT_REVOKED and no envelope is trusted", () => {
      const v = verifyBundle(build(), { policy: dev, now: NOW, revocation: withCrls([sim.crl({ revoked: [ASK] })]) });
      assert.deepEqual(codes(v), ["SNP_CERT_REVOKED"]);
      assert.equal(v.record, undefined);
    });

    it("when a current CRL lists nothing, the verdict says revocation was checked", () => {
      const v = verifyBundle(build(), { policy: dev, now: NOW, revocation: withCrls([sim.crl()]) });
      assert.deepEqual(v.errors, []);
      assert.equal(v.evidence?.revocation.checked, true);
      assert.equal(v.crlNeeded, undefined);
      assert.equal(
        v.warnings?.some((w) => w.code === "SNP_REVOCATION_UNCHECKED"),
        false,
      );
    });

    it("when a development root's CRL is missing or stale, it is judged without it, says so, and names the CRL", () => {
      const stale = verifyBundle(build(), {
        policy: dev,
        now: new Date(NOW.getTime() + 8 * DAY),
        revocation: withCrls([sim.crl()]),
      });
      assert.deepEqual(stale.errors, []);
      assert.deepEqual(stale.crlNeeded, { product: "Milan", signer: "vcek", required: false, reason: "stale" });
      assert.ok(stale.warnings?.some((w) => w.code === "SNP_REVOCATION_UNCHECKED"));
      const none = verify(build());
      assert.equal(none.evidence?.revocation.checked, false);
      assert.ok(none.warnings?.some((w) => w.code === "SNP_REVOCATION_UNCHECKED"));
      assert.ok(none.warnings?.some((w) => w.code === "POLICY_OPEN"));
    });
  });
});

function evalLike() {
  return {
    model: { name: "m", rootDigest: "a".repeat(64) },
    suite: { name: "s", digest: "b".repeat(64) },
    harness: { name: "h", version: "1", digest: "c".repeat(64) },
    metrics: [{ name: "accuracy", value: 1, sampleSize: 1 }],
    startedOn: new Date("2026-11-21T10:00:00Z"),
    finishedOn: new Date("2026-11-21T11:00:00Z"),
  };
}
