import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CHROMIUM, chromiumSkip, inCi } from "./chromium.ts";

const MISSING = "/nonexistent/provenant/chromium";

describe("Chromium for the browser suites", () => {
  it("when Chromium is absent outside CI, the suite skips with one line saying how to install it", () => {
    const reason = chromiumSkip({}, MISSING);
    assert.equal(typeof reason, "string");
    assert.match(reason as string, /apt-get install -y chromium/);
    assert.doesNotMatch(reason as string, /\n/);
    assert.equal(typeof chromiumSkip({ CI: "false" }, MISSING), "string");
    assert.equal(typeof chromiumSkip({ CI: "0" }, MISSING), "string");
  });

  it("when Chromium is absent under CI, it fails loudly instead of skipping", () => {
    assert.throws(() => chromiumSkip({ CI: "true" }, MISSING), /CI is set.*apt-get install -y chromium/);
    assert.throws(() => chromiumSkip({ CI: "1" }, MISSING));
  });

  it("when Chromium is present, the suite runs, in CI or not", () => {
    assert.equal(chromiumSkip({ CI: "true" }, process.execPath), false);
    assert.equal(chromiumSkip({}, process.execPath), false);
    assert.equal(inCi({ CI: "true" }), true);
    assert.equal(inCi({}), false);
    assert.equal(CHROMIUM, "/usr/bin/chromium");
  });
});
