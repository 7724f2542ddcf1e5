import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { integerOption, numberOption, requiredOption } from "./index.ts";

const usage = (e: unknown) => (e as { code?: string }).code === "USAGE";

describe("command-line option parsing", () => {
  it("when an integer flag is absent, it is undefined; when in range, it is the number", () => {
    assert.equal(integerOption(undefined, "threads"), undefined);
    assert.equal(integerOption("4", "threads", { min: 1, max: 256 }), 4);
  });

  it("when an integer flag is not decimal digits or out of range, it is a USAGE error", () => {
    for (const bad of ["", "abc", "1.5", "-1", "0x10", "1e3", "99999999999999999999"]) {
      assert.throws(() => integerOption(bad, "port", { min: 0, max: 65_535 }), usage, bad);
    }
    assert.throws(() => integerOption("0", "threads", { min: 1 }), usage);
    assert.throws(() => integerOption("70000", "port", { max: 65_535 }), usage);
  });

  it("when a number flag is not finite or out of range, it is a USAGE error", () => {
    assert.equal(numberOption("0.2", "interval", { min: 0.05 }), 0.2);
    for (const bad of ["", " ", "NaN", "Infinity", "x", "0.01"]) {
      assert.throws(() => numberOption(bad, "interval", { min: 0.05 }), usage, bad);
    }
  });

  it("when a required flag is missing or empty, it is a USAGE error naming the flag", () => {
    assert.equal(requiredOption("m.gguf", "model", "u"), "m.gguf");
    assert.throws(
      () => requiredOption(undefined, "model", "u"),
      (e: Error) => usage(e) && /--model/.test(e.message),
    );
    assert.throws(() => requiredOption("", "model", "u"), usage);
  });
});
