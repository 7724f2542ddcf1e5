import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as intoto from "./index.ts";
import * as predicates from "./predicates.ts";

describe("in-toto predicate constants", () => {
  it("when the browser-safe copy is read, it names the predicates lib/intoto builds and validates", () => {
    assert.equal(predicates.PREDICATE_OMS, intoto.PREDICATE_OMS);
    assert.equal(predicates.PREDICATE_SLSA, intoto.PREDICATE_SLSA);
    assert.equal(predicates.PREDICATE_EVAL, intoto.PREDICATE_EVAL);
  });
});
