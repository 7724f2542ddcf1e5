import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";

import { INTOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope, type DsseEnvelope } from "../dsse/index.ts";

import { ProvenantError } from "../errors.ts";
import {
  PREDICATE_EVAL,
  PREDICATE_OMS,
  PREDICATE_SLSA,
  buildEvalStatement,
  buildFinetuneStatement,
  buildOmsStatement,
  jobCodeDigestOf,
  metricPasses,
  parseStatementPayload,
  runtimeOf,
  validateStatement,
  type RuntimeInfo,
} from "./index.ts";
import { buildServingStatement, generateServingKey, logIdOf, spkiOf, type ServingStatement } from "../receipt/index.ts";
import { A, B, evalInput, finetuneInput, sampleHash } from "./testing.ts";

function invalidPath(json: unknown): string {
  try {
    validateStatement(json);
  } catch (error) {
    assert.ok(error instanceof ProvenantError);
    assert.equal(error.code, "STATEMENT_INVALID");
    return String(error.details?.path);
  }
  assert.fail("expected STATEMENT_INVALID");
}

const clone = <T>(v: T): T => structuredClone(v);

describe("in-toto statements", () => {
  it("when an OMS statement is built, it validates as oms with the root digest as subject", () => {
    const statement = buildOmsStatement("model", sampleHash);
    assert.equal(statement.predicateType, PREDICATE_OMS);
    const v = validateStatement(clone(statement));
    assert.equal(v.kind, "oms");
    assert.deepEqual(v.subjectDigests, [sampleHash.rootDigest]);
  });

  it("when an OMS statement's resources do not hash to the subject, it names the subject digest", () => {
    const statement = clone(buildOmsStatement("model", sampleHash)) as unknown as {
      predicate: { resources: { digest: string }[] };
    };
    statement.predicate.resources[0]!.digest = A;
    assert.equal(invalidPath(statement), "subject[0].digest.sha256");
  });

  it("when an OMS statement has an extra predicate field or shards without a size, it fails with the path", () => {
    const extra = clone(buildOmsStatement("model", sampleHash));
    extra.predicate.extra = 1;
    assert.equal(invalidPath(extra), "predicate.extra");
    const shards = clone(buildOmsStatement("model", sampleHash)) as unknown as {
      predicate: { serialization: Record<string, unknown> };
    };
    shards.predicate.serialization.method = "shards";
    assert.equal(invalidPath(shards), "predicate.serialization.shard_size");
  });

  it("when a fine-tune statement is built, it validates and reports the base model as parent", () => {
    const statement = buildFinetuneStatement(finetuneInput());
    assert.equal(statement.predicateType, PREDICATE_SLSA);
    const v = validateStatement(clone(statement));
    assert.equal(v.kind, "finetune");
    assert.equal(v.parentModelHash, B);
    assert.deepEqual(v.subjectDigests, [A]);
  });

  it("when a fine-tune statement lacks a dependency or has a bad time, it fails with the path", () => {
    const s = clone(buildFinetuneStatement(finetuneInput())) as unknown as {
      predicate: {
        buildDefinition: { resolvedDependencies: unknown[] };
        runDetails: { metadata: { startedOn: string } };
      };
    };
    s.predicate.buildDefinition.resolvedDependencies.splice(1, 1);
    assert.equal(invalidPath(s), "predicate.buildDefinition.resolvedDependencies");
    const t = clone(buildFinetuneStatement(finetuneInput())) as unknown as typeof s;
    t.predicate.runDetails.metadata.startedOn = "yesterday";
    assert.equal(invalidPath(t), "predicate.runDetails.metadata.startedOn");
  });

  it("when an eval statement is built, it validates; a bad metric fails with its path", () => {
    const statement = buildEvalStatement(evalInput());
    assert.equal(statement.predicateType, PREDICATE_EVAL);
    assert.equal(validateStatement(clone(statement)).kind, "eval");
    const bad = clone(statement) as unknown as { predicate: { metrics: { value: unknown }[] } };
    bad.predicate.metrics[0]!.value = "high";
    assert.equal(invalidPath(bad), "predicate.metrics[0].value");
  });

  it("when the statement type, subject or predicate type is wrong, it fails with the path", () => {
    const s = buildEvalStatement(evalInput());
    assert.equal(invalidPath({ ...clone(s), _type: "https://in-toto.io/Statement/v0.1" }), "_type");
    assert.equal(invalidPath({ ...clone(s), subject: [] }), "subject");
    assert.equal(
      invalidPath({ ...clone(s), subject: [{ name: "m", digest: { sha256: "XYZ" } }] }),
      "subject[0].digest.XYZ".replace("XYZ", "sha256"),
    );
    assert.equal(invalidPath({ ...clone(s), predicateType: "https://example.com/x" }), "predicateType");
    assert.equal(invalidPath(null), "$");
  });

  it("when a serving statement is read, it is kind serving with its log id as parent and its job code; a bad one fails with the path", () => {
    const s = generateServingKey();
    const statement = buildServingStatement({
      modelName: "model",
      modelRoot: sampleHash.rootDigest,
      servingKey: s.spki,
      jobCodeDigest: B,
      startedOn: new Date("2026-03-01T12:00:00Z"),
      epoch: { maxReceipts: 1000, maxSeconds: 60 },
      admission: { require: "audit", manifestDigest: A },
      runtime: { name: "provenant-serve", version: "0.1.0", gpu: false },
    });
    const v = validateStatement(clone(statement));
    assert.equal(v.kind, "serving");
    assert.deepEqual(v.subjectDigests, [sampleHash.rootDigest]);
    assert.equal(v.parentModelHash, logIdOf(s.spki));
    assert.equal(jobCodeDigestOf(v.statement), B);
    assert.equal(runtimeOf(v.statement), undefined);
    // A log id that is not the key's SHA-256 (keyid and origin made consistent with it), a P-384 key, a missing field.
    const swapped: ServingStatement = clone(statement);
    swapped.predicate.servingKey.keyid = A;
    swapped.predicate.log = { logId: A, origin: `provenant.dev/serving/${A}`, firstSeq: 0 };
    assert.equal(invalidPath(swapped), "predicate.log.logId");
    const p384 = spkiOf(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey);
    const otherCurve: ServingStatement = clone(statement);
    otherCurve.predicate.servingKey.publicKey = Buffer.from(p384).toString("base64");
    assert.equal(invalidPath(otherCurve), "predicate.servingKey.publicKey");
    const missing = clone(statement) as unknown as { predicate: Record<string, unknown> };
    delete missing.predicate.jobCode;
    assert.equal(invalidPath(missing), "predicate.jobCode");
  });

  it("when a builder gets a bad digest, it throws STATEMENT_INVALID", () => {
    assert.throws(() => buildEvalStatement({ ...evalInput(), model: { name: "m", rootDigest: "nope" } }), {
      code: "STATEMENT_INVALID",
    });
  });
});

describe("runtime records (where a job ran)", () => {
  const cuda: RuntimeInfo = {
    backend: "cuda",
    devices: ["NVIDIA H100 80GB HBM3"],
    driverVersion: "570.124.06",
    gpuEvidence: { provider: "nvml", environment: "prod", devToolsMode: false, evidence: ["e".repeat(64)] },
  };
  const cpu: RuntimeInfo = { backend: "cpu", devices: [], driverVersion: null, gpuEvidence: null };

  it("when an eval or fine-tune statement carries a runtime record, it validates and runtimeOf reads it back", () => {
    const audit = buildEvalStatement({ ...evalInput(), runtime: cuda });
    assert.deepEqual(audit.predicate.runtime, cuda);
    assert.deepEqual(runtimeOf(validateStatement(clone(audit)).statement), cuda);
    const tune = buildFinetuneStatement({ ...finetuneInput(), runtime: cpu });
    assert.deepEqual((tune.predicate.buildDefinition as { internalParameters: unknown }).internalParameters, {
      runtime: cpu,
    });
    assert.deepEqual(runtimeOf(validateStatement(clone(tune)).statement), cpu);
    assert.equal(runtimeOf(buildEvalStatement(evalInput())), undefined);
    assert.equal(runtimeOf(buildOmsStatement("model", sampleHash)), undefined);
  });

  it("when a runtime record has an unknown backend, field or value, it fails with the path", () => {
    const withRuntime = (r: Record<string, unknown>) => {
      const s = clone(buildEvalStatement(evalInput())) as { predicate: Record<string, unknown> };
      s.predicate.runtime = r;
      return s;
    };
    assert.equal(invalidPath(withRuntime({ ...cuda, backend: "rocm" })), "predicate.runtime.backend");
    assert.equal(invalidPath(withRuntime({ ...cuda, extra: 1 })), "predicate.runtime.extra");
    assert.equal(invalidPath(withRuntime({ ...cuda, devices: [7] })), "predicate.runtime.devices[0]");
    assert.equal(invalidPath(withRuntime({ ...cuda, devices: Array(17).fill("x") })), "predicate.runtime.devices");
    assert.equal(invalidPath(withRuntime({ ...cuda, driverVersion: 550 })), "predicate.runtime.driverVersion");
    const evidence = (g: Record<string, unknown>) =>
      withRuntime({ ...cuda, gpuEvidence: { ...cuda.gpuEvidence, ...g } });
    assert.equal(invalidPath(evidence({ devToolsMode: "no" })), "predicate.runtime.gpuEvidence.devToolsMode");
    assert.equal(invalidPath(evidence({ evidence: [] })), "predicate.runtime.gpuEvidence.evidence");
    assert.equal(invalidPath(evidence({ evidence: ["E".repeat(64)] })), "predicate.runtime.gpuEvidence.evidence[0]");
    assert.equal(invalidPath(evidence({ provider: "nvtrust" })), "predicate.runtime.gpuEvidence.provider");
    const tune = clone(buildFinetuneStatement({ ...finetuneInput(), runtime: cpu })) as unknown as {
      predicate: { buildDefinition: { internalParameters: { runtime: Record<string, unknown> } } };
    };
    tune.predicate.buildDefinition.internalParameters.runtime.backend = "tpu";
    assert.equal(invalidPath(tune), "predicate.buildDefinition.internalParameters.runtime.backend");
  });
});

describe("statements read strictly and checked for consistency", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const reasonOf = (payloadType: string, payload: Uint8Array): string => {
    try {
      parseStatementPayload(payloadType, payload);
      return "ok";
    } catch (error) {
      assert.ok(error instanceof ProvenantError);
      assert.equal(error.code, "STATEMENT_INVALID");
      return String(error.details?.reason ?? error.details?.path);
    }
  };

  it("when a payload is strict JSON of in-toto type, it reads as the statement validateStatement reads", () => {
    const text = JSON.stringify(buildEvalStatement(evalInput()));
    assert.equal(parseStatementPayload(INTOTO_PAYLOAD_TYPE, bytes(text)).kind, "eval");
  });

  it("when a payload repeats a key, has a BOM or invalid UTF-8, or another payloadType, it is STATEMENT_INVALID", () => {
    const text = JSON.stringify(buildEvalStatement(evalInput()));
    // JSON.parse would take the last subject, and validate it.
    const twice = text.replace('"subject":', `"subject":[{"name":"x","digest":{"sha256":"${B}"}}],"subject":`);
    assert.equal(validateStatement(JSON.parse(twice)).subjectDigests[0], A);
    assert.equal(reasonOf(INTOTO_PAYLOAD_TYPE, bytes(twice)), "duplicate-key");
    const deep = text.replace('"name":"safety-v1"', '"name":"safety-v1","name":"other"');
    assert.equal(reasonOf(INTOTO_PAYLOAD_TYPE, bytes(deep)), "duplicate-key");
    assert.equal(reasonOf(INTOTO_PAYLOAD_TYPE, Uint8Array.of(0xef, 0xbb, 0xbf, ...bytes(text))), "byte-order-mark");
    const bad = bytes(text.replace("safety-v1", "safety-v\u0031"));
    assert.equal(reasonOf(INTOTO_PAYLOAD_TYPE, bad), "ok");
    const latin1 = Uint8Array.from([...bytes(text.slice(0, 20)), 0xe9, ...bytes(text.slice(20))]);
    assert.equal(reasonOf(INTOTO_PAYLOAD_TYPE, latin1), "invalid-utf8");
    assert.equal(reasonOf("text/plain", bytes(text)), "payloadType");
  });

  it("when a metric's passed disagrees with its value, comparator and threshold, it fails with the path", () => {
    const statement = buildEvalStatement(evalInput()) as unknown as {
      predicate: { metrics: Record<string, unknown>[]; startedOn: string; finishedOn: string };
    };
    const m = statement.predicate.metrics[0]!;
    const variant = (change: Record<string, unknown>) => {
      const s = clone(statement);
      Object.assign(s.predicate.metrics[0]!, change);
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete s.predicate.metrics[0]![k];
      return s;
    };
    assert.equal(m.passed, true);
    assert.equal(invalidPath(variant({ value: 0.5 })), "predicate.metrics[0].passed");
    assert.equal(invalidPath(variant({ comparator: "<" })), "predicate.metrics[0].passed");
    assert.equal(invalidPath(variant({ threshold: undefined })), "predicate.metrics[0].threshold");
    assert.equal(invalidPath(variant({ comparator: undefined, threshold: undefined })), "predicate.metrics[0].passed");
    assert.equal(validateStatement(variant({ value: 0.5, passed: false })).kind, "eval");
    assert.equal(validateStatement(variant({ passed: undefined })).kind, "eval");
    assert.equal(metricPasses(0.9, ">=", 0.9), true);
    assert.equal(metricPasses(0.9, ">", 0.9), false);
    assert.equal(metricPasses(0.9, "==", 0.9), true);
    assert.equal(metricPasses(0.1, "<=", 0.2), true);
    assert.equal(metricPasses(0.3, "<", 0.2), false);
  });

  it("when startedOn is after finishedOn, it fails naming finishedOn (eval and fine-tune)", () => {
    const e = clone(buildEvalStatement(evalInput())) as unknown as { predicate: Record<string, string> };
    e.predicate.startedOn = "2026-11-21T12:00:00Z";
    assert.equal(invalidPath(e), "predicate.finishedOn");
    e.predicate.finishedOn = "2026-11-21T12:00:00.000Z";
    assert.equal(validateStatement(e).kind, "eval", "equal times are in order");
    const f = clone(buildFinetuneStatement(finetuneInput())) as unknown as {
      predicate: { runDetails: { metadata: Record<string, string> } };
    };
    f.predicate.runDetails.metadata.finishedOn = "2026-11-21T09:59:59.999Z";
    assert.equal(invalidPath(f), "predicate.runDetails.metadata.finishedOn");
  });

  it("when a fine-tune's base model is its own output, it fails", () => {
    assert.equal(
      invalidPath(buildFinetuneStatement({ ...finetuneInput(), baseModel: { name: "base", rootDigest: A } })),
      "predicate.buildDefinition.resolvedDependencies",
    );
  });
});

describe("signed statements: round trips and tampering", () => {
  const builders = {
    oms: () => buildOmsStatement("model", sampleHash),
    finetune: () => buildFinetuneStatement(finetuneInput()),
    eval: () => buildEvalStatement(evalInput()),
  };
  for (const curve of ["P-256", "P-384"] as const) {
    for (const [kind, build] of Object.entries(builders)) {
      it(`when a ${kind} statement is signed with ${curve}, it verifies and validates; any changed byte fails`, () => {
        const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
        const body = new TextEncoder().encode(JSON.stringify(build()));
        const envelope = signEnvelope(body, INTOTO_PAYLOAD_TYPE, privateKey);
        const payload = verifyEnvelope(envelope, publicKey);
        assert.equal(validateStatement(JSON.parse(Buffer.from(payload).toString())).kind, kind);
        const sig = Buffer.from(envelope.signatures[0]!.sig, "base64");
        const attempts: DsseEnvelope[] = [];
        for (let i = 0; i < body.length; i++) {
          const t = Buffer.from(body);
          t[i]! ^= 0x01;
          attempts.push({ ...envelope, payload: t.toString("base64") });
        }
        for (let i = 0; i < sig.length; i++) {
          const t = Buffer.from(sig);
          t[i]! ^= 0x01;
          attempts.push({ ...envelope, signatures: [{ sig: t.toString("base64") }] });
        }
        for (const bad of attempts) {
          assert.throws(
            () => verifyEnvelope(bad, publicKey),
            (e: unknown) => e instanceof ProvenantError,
          );
        }
      });
    }
  }
});
