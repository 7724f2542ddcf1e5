// Test helpers for hostile input (issue 13): trees too large for a buffered `git ls-tree`, bundles whose
// verification would cost too much (thousands of junk signatures), bundles with huge payloads, and bundles built
// around a report with chosen fields. Everything is real: real git objects, real simulator reports, real signatures.
import { createHash, generateKeyPairSync } from "node:crypto";

import { BUNDLE_MEDIA_TYPE, writeBundle, type ProvenanceBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope, type DsseEnvelope } from "../../lib/dsse/index.ts";
import { buildEvalStatement, buildOmsStatement, type Statement } from "../../lib/intoto/index.ts";
import type { ModelHash } from "../../lib/oms/types.ts";
import type { SimReportFields, SnpSimulator } from "../../lib/snp/index.ts";
import { git, type TestRepo } from "./git.ts";

/**
 * Pushes a commit that adds, under `dir`, `files` empty files whose paths are about `pathBytes` long (nested
 * directories of 250-byte names), built with mktree so that it takes seconds. 18,000 files of ~3,800 bytes make
 * `git ls-tree -r -l` print more than 64 MiB while the repository stays a few MB.
 */
export function pushHugeTree(repo: TestRepo, options: { dir: string; files: number; pathBytes: number }): string {
  const parent = repo.head();
  const empty = git(repo.work, ["hash-object", "-w", "--stdin"], "").toString("utf8").trim();
  const segment = "d".repeat(250);
  const depth = Math.max(0, Math.floor((options.pathBytes - options.dir.length - 250) / 251));
  const leafName = (i: number): string => `${String(i).padStart(6, "0")}-${"x".repeat(240)}`;
  const lines: string[] = [];
  for (let i = 0; i < options.files; i++) lines.push(`100644 blob ${empty}\t${leafName(i)}`);
  let tree = git(repo.work, ["mktree", "-z"], `${lines.join("\0")}\0`)
    .toString("utf8")
    .trim();
  for (let d = 0; d < depth; d++)
    tree = git(repo.work, ["mktree", "-z"], `040000 tree ${tree}\t${segment}\0`).toString("utf8").trim();
  const rootEntries = git(repo.work, ["ls-tree", "-z", parent])
    .toString("latin1")
    .split("\0")
    .filter((l) => l !== "" && !l.endsWith(`\t${options.dir}`));
  const root = git(
    repo.work,
    ["mktree", "-z"],
    Buffer.from([...rootEntries, `040000 tree ${tree}\t${options.dir}`, ""].join("\0"), "latin1"),
  )
    .toString("utf8")
    .trim();
  const commit = git(repo.work, ["commit-tree", root, "-p", parent, "-m", `huge tree under ${options.dir}`])
    .toString("utf8")
    .trim();
  git(repo.work, ["update-ref", "HEAD", commit]);
  git(repo.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
  return commit;
}

const sha256Hex = (s: string | Uint8Array): string => createHash("sha256").update(s).digest("hex");

/**
 * A 96-byte signature that parses both as DER (SEQUENCE of two 45-byte INTEGERs) and as IEEE-P1363 r‖s for P-384,
 * so that a verifier trying both encodings pays two P-384 verifications for it. It verifies under no key.
 */
export function junkSignature(i: number): string {
  const sig = new Uint8Array(96);
  sig.set([0x30, 0x5e, 0x02, 0x2d], 0);
  sig.set(createHash("sha384").update(`junk-${i}`).digest().subarray(0, 45), 4);
  sig[4] = 0x11; // positive, no leading zero: a well-formed INTEGER
  sig.set([0x02, 0x2d], 49);
  sig.set(createHash("sha384").update(`junk-s-${i}`).digest().subarray(0, 45), 51);
  sig[51] = 0x22;
  return Buffer.from(sig).toString("base64");
}

export interface HostileBundleOptions {
  seed: string;
  /** Fields of the SNP report (e.g. `cpuid` naming another product); REPORT_DATA is always the binding. */
  reportFields?: SimReportFields;
  /** Which certificates `evidence.cpu.chain` carries: ASK and ARK (default), one of them, or none. */
  chain?: "full" | "ask" | "ark" | "none";
  /** Junk signatures put before the real one in every envelope. */
  junkSignatures?: number;
  /** Junk signatures put before the real one in the first envelope only (the 16,000-signature attack). */
  junkInFirst?: number;
  /** More OMS envelopes (copies of the model's), for a bundle with many envelopes. */
  extraEnvelopes?: number;
  /** Characters of padding in the manifest's suite name: a manifest payload of about this size. */
  manifestPadding?: number;
  /** The manifest signed by another key, then a correctly signed envelope whose payload is not a statement. */
  badFirstThenNonStatement?: boolean;
}

/** An eval bundle made with `sim` and a fresh key, shaped by `options`; valid unless the options make it otherwise. */
export function makeHostileBundle(
  sim: SnpSimulator,
  options: HostileBundleOptions,
): { bytes: Uint8Array; bundle: ProvenanceBundle; modelHash: string } {
  const k = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const other = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const spki = k.publicKey.export({ format: "der", type: "spki" });
  const nonce = Buffer.from(sha256Hex(`nonce-${options.seed}`), "hex");
  const reportData = Buffer.concat([createHash("sha256").update(spki).digest(), nonce]);
  const report = sim.signReport({ ...options.reportFields, reportData });
  const fileDigest = sha256Hex(`model-${options.seed}`);
  const modelHash = sha256Hex(Buffer.from(fileDigest, "hex"));
  const oms = buildOmsStatement("model", {
    rootDigest: modelHash,
    method: "files",
    files: [{ name: "model.gguf", digest: fileDigest, size: 1 }],
    resources: [{ name: "model.gguf", algorithm: "sha256", digest: fileDigest }],
    modelName: "model",
    ignorePaths: [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
    allowSymlinks: false,
    totalBytes: 1,
  } as ModelHash);
  const manifest = buildEvalStatement({
    model: { name: "model", rootDigest: modelHash },
    suite: { name: `suite-${options.seed}${"x".repeat(options.manifestPadding ?? 0)}`, digest: sha256Hex("s") },
    harness: { name: "provenant", version: "0.1.0", digest: sha256Hex("harness") },
    metrics: [{ name: "accuracy", value: 0.5, sampleSize: 10 }],
    startedOn: new Date("2026-11-21T10:00:00Z"),
    finishedOn: new Date("2026-11-21T11:00:00Z"),
  });
  const sign = (statement: Statement | Uint8Array): DsseEnvelope =>
    signEnvelope(
      statement instanceof Uint8Array ? statement : new TextEncoder().encode(JSON.stringify(statement)),
      INTOTO_PAYLOAD_TYPE,
      k.privateKey,
    );
  let junk = 0;
  const withJunk = (envelope: DsseEnvelope, count: number): DsseEnvelope => ({
    ...envelope,
    signatures: [...Array.from({ length: count }, () => ({ sig: junkSignature(junk++) })), ...envelope.signatures],
  });
  const envelopes = [sign(manifest), sign(oms)];
  if (options.badFirstThenNonStatement === true) {
    const notStatement = signEnvelope(
      new TextEncoder().encode('{"not":"a statement"}'),
      INTOTO_PAYLOAD_TYPE,
      k.privateKey,
    );
    envelopes.splice(1, 0, notStatement);
    envelopes[0] = signEnvelope(
      new TextEncoder().encode(JSON.stringify(manifest)),
      INTOTO_PAYLOAD_TYPE,
      other.privateKey,
    );
  }
  for (let i = 0; i < (options.extraEnvelopes ?? 0); i++) envelopes.push(sign(oms));
  const shaped = envelopes.map((e, i) =>
    withJunk(e, (options.junkSignatures ?? 0) + (i === 0 ? (options.junkInFirst ?? 0) : 0)),
  );
  const evidence = sim.evidence("vcek");
  const [ask, ark] = evidence.chain ?? [];
  const chainChoice = options.chain ?? "full";
  const chain =
    chainChoice === "full" ? [ask!, ark!] : chainChoice === "ask" ? [ask!] : chainChoice === "ark" ? [ark!] : undefined;
  const bundle: ProvenanceBundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes: shaped,
    signer: { publicKey: Buffer.from(spki).toString("base64") },
    nonce: nonce.toString("hex"),
    evidence: {
      cpu: {
        type: "sev-snp",
        report: Buffer.from(report).toString("base64"),
        vcek: Buffer.from(evidence.vcek).toString("base64"),
        ...(chain === undefined ? {} : { chain: chain.map((c) => Buffer.from(c).toString("base64")) }),
        provider: "sim",
      },
    },
  };
  return { bytes: writeBundle(bundle), bundle, modelHash };
}
