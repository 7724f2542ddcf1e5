// Test fixture for serving (DESIGN §12): serving bundles made with the SEV-SNP simulator (a serving key S bound by
// REPORT_DATA, a serving statement signed by S and the OMS statement of the served model, as `provenant serve`
// writes them), and a receipt log built with lib/receipt's builders and lib/merkle's tree: receipts, their inclusion
// proofs and S-signed C2SP checkpoints. Variants break one link so that tests can check each code.
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";

import { writeBundle, type ProvenanceBundle } from "../../lib/bundle/index.ts";
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from "../../lib/dsse/index.ts";
import { buildOmsStatement } from "../../lib/intoto/index.ts";
import { MerkleTree } from "../../lib/merkle/index.ts";
import type { ModelHash } from "../../lib/oms/types.ts";
import {
  SERVING_KEY_CURVE,
  ZERO_DIGEST,
  buildReceiptStatement,
  buildServingStatement,
  encodeStatement,
  leafHashOfPayload,
  logIdOf,
  servingCheckpointText,
  sha256Hex,
  signServingCheckpoint,
  signStatementPayload,
  spkiOf,
  type ReceiptObject,
} from "../../lib/receipt/index.ts";
import { parseVerifierPolicy, type VerifierPolicy } from "../pipeline/index.ts";
import { oneFileModelHash, simBundle, type BundleFactory } from "./bundles.ts";

export type ServingVariant = "good" | "key-differs" | "no-oms-for-model" | "with-eval-manifest";

export interface ServingBundle {
  bytes: Uint8Array;
  bundle: ProvenanceBundle;
  /** OMS root of the served model (hex). */
  modelRoot: string;
  /** SHA-256 of the serving statement's payload: the kind 3 record's manifestDigest (hex). */
  servingManifest: string;
  /** SHA-256 of S's DER SPKI (hex). */
  logId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const hex = (s: string): string => createHash("sha256").update(s).digest("hex");
const enc = new TextEncoder();

/** An OMS model of one file whose digest is derived from `seed` (bundles.ts oneFileModelHash). */
export function oneFileModel(name: string, seed: string): ModelHash {
  return oneFileModelHash(name, hex(`model-file-${seed}`));
}

/** The model a factory bundle's manifest names (its first OMS statement, envelopes[1]), to serve it. */
export function modelOfBundle(bundle: ProvenanceBundle): ModelHash {
  const oms = JSON.parse(Buffer.from(bundle.envelopes[1]!.payload, "base64").toString("utf8")) as {
    subject: { name: string; digest: { sha256: string } }[];
    predicate: { resources: { name: string; algorithm: string; digest: string }[] };
  };
  const resources = oms.predicate.resources;
  return {
    rootDigest: oms.subject[0]!.digest.sha256,
    method: "files",
    files: resources.map((r) => ({ name: r.name, digest: r.digest, size: 1 })),
    resources,
    modelName: oms.subject[0]!.name,
    ignorePaths: [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
    allowSymlinks: false,
    totalBytes: resources.length,
  } as ModelHash;
}

/** The factory's development policy, accepting serving statements too (a policy must list "serving"). */
export function servingPolicy(factory: BundleFactory, kinds = ["eval", "finetune", "serving"]): VerifierPolicy {
  return parseVerifierPolicy({ ...factory.policyJson, acceptedKinds: kinds });
}

/**
 * A serving bundle as `provenant serve` pushes it: K = S generated here, REPORT_DATA = SHA-256(SPKI(S)) ‖ nonce,
 * the serving statement (subject: the model's OMS root) and the model's OMS statement, both signed by S.
 */
export function makeServingBundle(
  factory: BundleFactory,
  options: {
    seed?: string;
    variant?: ServingVariant;
    /** The model the server serves; default a one-file model named after the seed. */
    model?: ModelHash;
    /** The record that admitted the model (the statement's admission.manifestDigest). */
    admission?: string;
    startedOn?: Date;
  } = {},
): ServingBundle {
  const seed = options.seed ?? "serving";
  const variant = options.variant ?? "good";
  // S is P-256 (lib/receipt SERVING_KEY_CURVE), as `provenant serve` makes it.
  const s = generateKeyPairSync("ec", { namedCurve: SERVING_KEY_CURVE });
  const other = generateKeyPairSync("ec", { namedCurve: SERVING_KEY_CURVE });
  const spki = spkiOf(s.publicKey);
  const logId = logIdOf(spki);
  const model = options.model ?? oneFileModel(`model-${seed}`, seed);
  const nonce = Buffer.from(hex(`serving-nonce-${seed}`), "hex");
  const reportData = Buffer.concat([Buffer.from(logId, "hex"), nonce]);
  const report = Buffer.from(factory.sim.signReport({ reportData }));
  const statement = buildServingStatement({
    modelName: model.modelName,
    modelRoot: model.rootDigest,
    // key-differs: the statement names another key than the one the report binds and that signs the bundle.
    servingKey: variant === "key-differs" ? spkiOf(other.publicKey) : spki,
    jobCodeDigest: hex(`job-code-${seed}`),
    startedOn: options.startedOn ?? new Date("2026-11-21T09:00:00Z"),
    epoch: { maxReceipts: 1000, maxSeconds: 60 },
    admission: { require: "any", manifestDigest: options.admission ?? hex(`admission-${seed}`) },
    runtime: { name: "provenant", version: "0.1.0", gpu: false },
  });
  const payload = encodeStatement(statement);
  const serving = signStatementPayload(payload, s.privateKey, logId);
  const omsModel = variant === "no-oms-for-model" ? oneFileModel("other", `${seed}-other`) : model;
  const envelopes = [
    serving,
    signEnvelope(
      enc.encode(JSON.stringify(buildOmsStatement(omsModel.modelName, omsModel))),
      INTOTO_PAYLOAD_TYPE,
      s.privateKey,
    ),
  ];
  if (variant === "with-eval-manifest") {
    // A second manifest beside the serving statement: a bundle has one manifest.
    const again = factory.make({ seed: `${seed}-eval`, kind: "eval" });
    envelopes.push(again.bundle.envelopes[0]!);
  }
  const bundle = simBundle({ envelopes, spki, nonce, report, evidence: factory.sim.evidence("vcek") });
  return {
    bytes: writeBundle(bundle),
    bundle,
    modelRoot: model.rootDigest,
    servingManifest: sha256Hex(payload),
    logId,
    privateKey: s.privateKey,
    publicKey: s.publicKey,
  };
}

export interface IssuedReceipt {
  /** The `provenant_receipt` object a completion carries. */
  object: ReceiptObject;
  request: Uint8Array;
  response: Uint8Array;
  salt: Uint8Array;
}

/** A serving log as `provenant serve` keeps one: receipts as leaves of an RFC 6962 tree, checkpoints signed by S. */
export class TestReceiptLog {
  readonly serving: ServingBundle;
  readonly tree = new MerkleTree();
  readonly receipts: IssuedReceipt[] = [];
  #prev = ZERO_DIGEST;

  constructor(serving: ServingBundle) {
    this.serving = serving;
  }

  /** Issues receipt `seq` = the number issued so far, at `issuedAt`. */
  issue(issuedAt: Date, text = `answer ${this.receipts.length}`): IssuedReceipt {
    const seq = this.receipts.length;
    const salt = new Uint8Array(createHash("sha256").update(`salt-${this.serving.logId}-${seq}`).digest());
    const request = enc.encode(
      JSON.stringify({ model: "tiny", messages: [{ role: "user", content: `question ${seq}` }] }),
    );
    const response = enc.encode(text);
    const statement = buildReceiptStatement({
      modelRoot: this.serving.modelRoot,
      servingManifest: this.serving.servingManifest,
      logId: this.serving.logId,
      operation: "chat",
      salt,
      request,
      response,
      promptTokens: 12,
      completionTokens: 3,
      clientKeyId: "anonymous",
      seq,
      prevReceipt: this.#prev,
      issuedAt,
    });
    const payload = encodeStatement(statement);
    const envelope = signStatementPayload(payload, this.serving.privateKey, this.serving.logId);
    const digest = sha256Hex(payload);
    const leafIndex = this.tree.append(leafHashOfPayload(payload));
    this.#prev = digest;
    const issued: IssuedReceipt = {
      object: { envelope, digest, salt: Buffer.from(salt).toString("hex"), seq, logId: this.serving.logId, leafIndex },
      request,
      response,
      salt,
    };
    this.receipts.push(issued);
    return issued;
  }

  /** The checkpoint of the first `size` leaves: its root (hex) and its C2SP note signed by S. */
  checkpoint(size = this.tree.size): { treeSize: number; rootHash: string; note: string } {
    const root = this.tree.root(size);
    const note = signServingCheckpoint(servingCheckpointText(this.serving.logId, size, root), this.serving.privateKey);
    return { treeSize: size, rootHash: Buffer.from(root).toString("hex"), note };
  }

  /** The inclusion proof of leaf `leafIndex` in the tree of `size` leaves, as hex hashes. */
  proof(leafIndex: number, size = this.tree.size): string[] {
    return this.tree.inclusionProof(leafIndex, size).map((h) => Buffer.from(h).toString("hex"));
  }
}
