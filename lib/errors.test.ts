import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MalformedInputError, PolicyError, PolicyViolationError, toErrorList, throwIfViolations } from "./errors.ts";

describe("errors", () => {
  it("when violations are collected, it throws one error that lists every code", () => {
    const violations = [new PolicyError("POLICY_DEBUG", "debug allowed"), new PolicyError("POLICY_VMPL", "vmpl 1")];
    assert.throws(
      () => throwIfViolations(violations),
      (e: unknown) => e instanceof PolicyViolationError && e.code === "POLICY_DEBUG" && e.violations.length === 2,
    );
    assert.deepEqual(
      toErrorList(new PolicyViolationError(violations)).map((e) => e.code),
      ["POLICY_DEBUG", "POLICY_VMPL"],
    );
  });

  it("when nothing was violated, it does not throw", () => {
    assert.doesNotThrow(() => throwIfViolations([]));
  });

  it("when an uncoded error is flattened, it is reported as INTERNAL", () => {
    assert.deepEqual(toErrorList(new TypeError("boom")), [{ code: "INTERNAL", message: "boom" }]);
    assert.deepEqual(toErrorList(new MalformedInputError("SNP_MALFORMED", "short")), [
      { code: "SNP_MALFORMED", message: "short" },
    ]);
  });
});
