// Sample inputs for statement builders, shared by tests of lib/intoto, lib/bundle and lib/oms.
import type { ModelHash } from "../oms/types.ts";

export const A = "a".repeat(64);
export const B = "b".repeat(64);
export const C = "c".repeat(64);

export const sampleHash: ModelHash = {
  rootDigest: "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4",
  method: "files",
  files: [],
  resources: [
    {
      name: "signme-1",
      algorithm: "sha256",
      digest: "bc9a717db6064a32cbe9eae6fc40651dd6d36ef1757183f590eff2b1765d7ebc",
    },
    {
      name: "signme-2",
      algorithm: "sha256",
      digest: "32dcb1f8e1ae52d5963e56a6ba06ab58b424c15ed2a6b70d2feca1d089370028",
    },
  ],
  modelName: "model",
  ignorePaths: [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
  allowSymlinks: false,
  totalBytes: 17,
};

export function finetuneInput() {
  return {
    output: { name: "tuned", rootDigest: A },
    baseModel: { name: "base", rootDigest: B },
    dataset: { name: "data.jsonl", digest: C },
    jobCode: { name: "job", digest: "d".repeat(40) },
    trainerConfig: { epochs: 1, lr: 0.0001 },
    invocationId: "run-1",
    startedOn: new Date("2026-11-21T10:00:00Z"),
    finishedOn: new Date("2026-11-21T11:00:00Z"),
    byproducts: [{ name: "snp-report", digest: C }],
  };
}

export function evalInput() {
  return {
    model: { name: "tuned", rootDigest: A },
    suite: { name: "safety-v1", digest: B },
    harness: { name: "provenant-eval", version: "0.1.0", digest: C },
    metrics: [
      { name: "refusal-rate", value: 0.97, sampleSize: 200, comparator: ">=" as const, threshold: 0.9, passed: true },
    ],
    startedOn: new Date("2026-11-21T10:00:00Z"),
    finishedOn: new Date("2026-11-21T11:00:00Z"),
  };
}
