import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { keyHintOf, parseOmsSignature } from "../lib/oms/index.ts";
import { copyOmsSample, OMS_SAMPLE, OMS_SAMPLE_KEYS } from "../lib/oms/testing.ts";
import { commands } from "./oms.ts";

const SAMPLE = OMS_SAMPLE;
const KEYS = OMS_SAMPLE_KEYS;

let dir: string;
const copySample = (): string => copyOmsSample(dir);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "provenant-oms-cli-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("provenant hash / oms sign / oms verify", () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: {
        stdout: (t: string) => void out.push(t),
        stderr: (t: string) => void err.push(t),
        isTty: false,
        env: {},
        cwd: dir,
      },
    };
  }
  const command = (...path: string[]) => commands.find((c) => c.path.join(" ") === path.join(" "))!;

  it("when hashing with --json, it prints the root digest and files", async () => {
    const r = io();
    const code = await command("hash").run(
      [SAMPLE, "--json", "--ignore-paths", "model.sig", "--ignore-paths", "ignore-me"],
      r.io,
    );
    assert.equal(code, 0);
    const json = JSON.parse(r.out.join(""));
    assert.equal(json.rootDigest, "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");
    assert.deepEqual(json.files[0], {
      name: "signme-1",
      digest: "bc9a717db6064a32cbe9eae6fc40651dd6d36ef1757183f590eff2b1765d7ebc",
      size: 9,
    });
  });

  it("when verifying, it exits 0 for the sample, 1 for a changed model, 2 for an unreadable key", async () => {
    const args = (m: string) => [
      m,
      "--signature",
      join(m, "model.sig"),
      "--public-key",
      join(KEYS, "signing-key-pub.pem"),
    ];
    assert.equal(await command("oms", "verify").run(args(SAMPLE), io().io), 0);
    const changed = copySample();
    writeFileSync(join(changed, "signme-2"), "other");
    const r = io();
    assert.equal(await command("oms", "verify").run([...args(changed), "--json"], r.io), 1);
    assert.equal(JSON.parse(r.out.join("")).errors[0].code, "OMS_FILE_CHANGED");
    assert.equal(
      await command("oms", "verify").run(
        [SAMPLE, "--signature", join(SAMPLE, "model.sig"), "--public-key", "/nonexistent"],
        io().io,
      ),
      2,
    );
    assert.equal(await command("oms", "verify").run([SAMPLE], io().io), 2);
  });

  it("when signing with the CLI, the reference-style verify accepts the result", async () => {
    const model = copySample();
    const keyPath = join(dir, "cli.key");
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    writeFileSync(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(join(dir, "cli.pub"), publicKey.export({ type: "spki", format: "pem" }));
    const sig = join(model, "model.sig");
    assert.equal(
      await command("oms", "sign").run(
        [model, "--signature", sig, "--private-key", keyPath, "--ignore-paths", "ignore-me"],
        io().io,
      ),
      0,
    );
    assert.equal(
      await command("oms", "verify").run([model, "--signature", sig, "--public-key", join(dir, "cli.pub")], io().io),
      0,
    );
    assert.deepEqual(parseOmsSignature(readFileSync(sig)).verificationMaterial, {
      publicKey: { hint: keyHintOf(publicKey) },
      tlogEntries: [],
    });
  });

  it("when an argument is extra, a flag unknown or a required flag missing, it exits 2 with USAGE", async () => {
    for (const [path, argv] of [
      [["hash"], [SAMPLE, "other", "--json"]],
      [["hash"], [SAMPLE, "--method", "blocks", "--json"]],
      [
        ["oms", "sign"],
        [SAMPLE, "--signature", "x.sig", "--json"],
      ],
      [
        ["oms", "sign"],
        [SAMPLE, "extra", "--signature", "x.sig", "--private-key", "k.pem", "--json"],
      ],
      [
        ["oms", "verify"],
        [SAMPLE, "--signature", join(SAMPLE, "model.sig"), "--json"],
      ],
      [
        ["oms", "verify"],
        [SAMPLE, "--signature", join(SAMPLE, "model.sig"), "--bogus", "--json"],
      ],
    ] as const) {
      const r = io();
      assert.equal(await command(...path).run([...argv], r.io), 2, argv.join(" "));
      assert.equal(JSON.parse(r.out.join("")).errors[0].code, "USAGE", argv.join(" "));
    }
  });

  it("when hashing without --json, it prints the root line and one line per file", async () => {
    const r = io();
    assert.equal(await command("hash").run([SAMPLE, "--ignore-paths", "model.sig"], r.io), 0);
    const lines = r.out.join("").trimEnd().split("\n");
    assert.match(lines[0]!, /^root [0-9a-f]{64} {2}\(files, \d+ files, \d+ bytes\)$/);
    assert.equal(lines.length, 1 + Number(/(\d+) files/.exec(lines[0]!)![1]));
  });
});
