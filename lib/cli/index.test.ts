import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { dateOption, defineCommand, integerOption, numberOption, requiredOption } from "./index.ts";

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

describe("defineCommand", () => {
  const capture = () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      stdout: (t: string) => out.push(t),
      stderr: (t: string) => err.push(t),
      isTty: false,
      env: {},
      cwd: "/",
    };
    return { io, out, err };
  };
  const echo = defineCommand({
    path: ["echo"],
    summary: "echo",
    usage: "provenant echo <a> [<b>] [--n <k>] [--json]",
    options: { n: { type: "string" } },
    positionals: ["a"],
    optionalPositionals: ["b"],
    async run({ values, positionals }) {
      const n = integerOption(values.n, "n") ?? 0;
      if (positionals[0] === "no") return { ok: false, errors: [{ code: "POLICY_DEBUG", message: "no" }] };
      return { ok: true, fields: { a: positionals[0], n }, text: `a=${positionals[0]}` };
    },
  });

  it("when the body succeeds, it prints the text, or one JSON object with ok, the fields and errors", async () => {
    const t = capture();
    assert.equal(await echo.run(["x"], t.io), 0);
    assert.equal(t.out.join(""), "a=x\n");
    const j = capture();
    assert.equal(await echo.run(["x", "--n", "3", "--json"], j.io), 0);
    assert.deepEqual(JSON.parse(j.out.join("")), { ok: true, a: "x", n: 3, errors: [] });
  });

  it("when the body says no, it exits 1 and prints the coded errors", async () => {
    const t = capture();
    assert.equal(await echo.run(["no"], t.io), 1);
    assert.match(t.err.join(""), /error POLICY_DEBUG: no/);
  });

  it("when a positional is missing or extra, or a flag is unknown or bad, it exits 2 with USAGE", async () => {
    for (const argv of [[], ["a", "b", "c"], ["a", "--bogus"], ["a", "--n", "x"]]) {
      const j = capture();
      assert.equal(await echo.run([...argv, "--json"], j.io), 2, argv.join(" "));
      assert.equal(JSON.parse(j.out.join("")).errors[0].code, "USAGE");
    }
  });
});

describe("dateOption", () => {
  it("when absent, it is the injected clock; when not an ISO date, it is USAGE", () => {
    const fixed = new Date("2030-01-01T00:00:00Z");
    assert.equal(
      dateOption(undefined, "now", () => fixed),
      fixed,
    );
    assert.equal(dateOption("2025-06-01T00:00:00Z", "now").toISOString(), "2025-06-01T00:00:00.000Z");
    for (const bad of ["", "yesterday", "12", "2025-13-45"]) assert.throws(() => dateOption(bad, "now"), usage, bad);
  });
});
