// The serving formats of DESIGN §12, browser-safe (no node:*): the serving statement, the inference receipt and the
// usage statement (in-toto Statement v1 payloads), the `provenant_receipt` object and the `Provenant-Receipt` header.
// Shape only: every field checked, every violation collected, bounded before it is paid for. Signatures, digests and
// key bindings are checked by lib/receipt/index.ts (node:crypto); docs/serving.md is the byte-level reference.
import {
  INTOTO_PAYLOAD_TYPE,
  decodeBase64,
  isPlainObject,
  parseEcSpki,
  parseEnvelope,
  type DsseEnvelope,
} from "../dsse/core.ts";
import { equalBytes, fromBase64, isHex, toHex } from "../encoding/index.ts";
import { MalformedInputError, VerificationError, type ErrorCode } from "../errors.ts";
import { createSha256, sha256 } from "../hash/index.ts";
import { parseStrictJsonBytes, parseStrictJsonText } from "../json/index.ts";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_SERVING = "https://provenant.dev/serving/v1";
export const PREDICATE_RECEIPT = "https://provenant.dev/inference-receipt/v1";
export const PREDICATE_USAGE = "https://provenant.dev/usage/v1";

/**
 * The curve of every serving key S: ECDSA P-256 with SHA-256 (DESIGN §3.2 pairs the hash with the curve). S is not the
 * job key K (P-384): it is a per-process key that signs one receipt per answer on the hot path, where a P-256
 * signature costs about a twentieth of a P-384 one, and its 128-bit security level matches the SHA-256 digests the
 * receipts carry (docs/serving.md). REPORT_DATA still binds SHA-256(DER SPKI of S).
 */
export const SERVING_KEY_CURVE = "P-256";

/** A serving log's C2SP checkpoint origin is this prefix and the log id (64 lower-case hex). */
export const SERVING_ORIGIN_PREFIX = "provenant.dev/serving/";
/** `prevReceipt` / `prevUsage` of the first receipt / usage statement a data directory ever issued. */
export const ZERO_DIGEST = "0".repeat(64);
/** The per-request salt of the request and response digests: 32 random bytes, given only to the caller. */
export const SALT_BYTES = 32;

/** OpenTelemetry GenAI semantic conventions (gen_ai.usage.*), and the request count. */
export const METER_INPUT_TOKENS = "gen_ai.usage.input_tokens";
export const METER_OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
export const METER_REQUESTS = "requests";
export const METER_NAMES = [METER_INPUT_TOKENS, METER_OUTPUT_TOKENS, METER_REQUESTS] as const;
/** OpenTelemetry `gen_ai.operation.name` values of the two completion endpoints. */
export const OPERATIONS = ["chat", "text_completion"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The client key id of requests without an API key, and of the clients past MAX_USAGE_CLIENTS in one statement. */
export const ANONYMOUS_CLIENT = "anonymous";
export const OTHER_CLIENTS = "other";
/** Most per-client entries in one usage statement; the rest are summed under OTHER_CLIENTS. */
export const MAX_USAGE_CLIENTS = 1000;

/** Largest receipt payload (a receipt is about 900 bytes) and envelope JSON read. */
export const MAX_RECEIPT_PAYLOAD_BYTES = 4096;
export const MAX_RECEIPT_ENVELOPE_BYTES = 8192;
/** Largest `Provenant-Receipt` header value: base64 of MAX_RECEIPT_ENVELOPE_BYTES. */
export const MAX_RECEIPT_HEADER_CHARS = Math.ceil(MAX_RECEIPT_ENVELOPE_BYTES / 3) * 4;
/** Largest serving and usage statement payloads read (a usage statement with 1,000 clients is about 160 KiB). */
export const MAX_SERVING_PAYLOAD_BYTES = 64 * 1024;
export const MAX_USAGE_PAYLOAD_BYTES = 512 * 1024;
/** Counters are integers up to 2^53 - 1; token counts of one request up to 2^32. */
const MAX_TOKENS_PER_REQUEST = 2 ** 32;

export type RequireKind = "audit" | "finetune" | "any";
export const REQUIRE_KINDS: readonly RequireKind[] = ["audit", "finetune", "any"];

type DigestSet = { sha256: string };

interface Subject {
  name: string;
  digest: DigestSet;
}

/** The predicate of a serving statement (`https://provenant.dev/serving/v1`). */
export interface ServingPredicate {
  /** The serving key S: its DER SubjectPublicKeyInfo (base64) and keyid = hex SHA-256 of that DER. */
  servingKey: { publicKey: string; keyid: string };
  /**
   * The receipt log of S: logId = the keyid; origin = SERVING_ORIGIN_PREFIX + logId (the checkpoints' origin);
   * firstSeq = the seq its first receipt takes. After a restart it is above the predecessor's lastSeq + 1 when the
   * earlier life crashed: the seq numbers it had reserved are never issued again (a visible gap, never a reuse).
   */
  log: { logId: string; origin: string; firstSeq: number };
  /** The job-code digest of the server (enclave-job/code-digest.ts): what a measured image names. */
  jobCode: { name: string; digest: DigestSet };
  /** When the server started (RFC 3339 UTC). */
  startedOn: string;
  /** An epoch closes after `maxReceipts` receipts or `maxSeconds` seconds, whichever comes first. */
  epoch: { maxReceipts: number; maxSeconds: number };
  /** The registry record that admitted the model at start: `--require` and the manifest digest that met it. */
  admission: { require: RequireKind; manifestDigest: string };
  /** The log this one continues after a restart of the same data directory: its id and its last receipt. */
  predecessor?: { logId: string; lastSeq: number; lastReceipt: string };
  /** What serves: name, version (package + node-llama-cpp), whether a GPU is used. */
  runtime: { name: string; version: string; gpu: boolean };
}

/** The predicate of an inference receipt (`https://provenant.dev/inference-receipt/v1`). */
export interface ReceiptPredicate {
  /** OMS root digest of the served model. */
  modelRoot: string;
  /** Manifest digest of the serving statement (SHA-256 of its payload), i.e. the kind 3 record. */
  servingManifest: string;
  /** The log the receipt is a leaf of: SHA-256 of the DER SPKI of the key that signed it. */
  logId: string;
  /** `gen_ai.operation.name`: "chat" (/v1/chat/completions) or "text_completion" (/v1/completions). */
  operation: Operation;
  /** SHA-256(salt ‖ the exact request body bytes). */
  requestDigest: string;
  /** SHA-256(salt ‖ the response bytes: the UTF-8 completion text). */
  responseDigest: string;
  promptTokens: number;
  completionTokens: number;
  /** SHA-256 of the bearer API key (UTF-8), ANONYMOUS_CLIENT without one. */
  clientKeyId: string;
  /** Receipt number within the data directory: 0, 1, 2, … across restarts and logs, never reused. */
  seq: number;
  /**
   * Receipt digest (SHA-256 of the payload) of the data directory's previous receipt: seq - 1 within a log; after a
   * restart, the predecessor's last receipt (the serving statement's firstSeq says where the seq goes on). ZERO_DIGEST
   * for seq 0, and for the first receipt of a data directory that holds none (a crashed first life, see firstSeq).
   */
  prevReceipt: string;
  /** RFC 3339 UTC with milliseconds. */
  issuedAt: string;
}

export interface Meters {
  "gen_ai.usage.input_tokens": number;
  "gen_ai.usage.output_tokens": number;
  requests: number;
}

/** The predicate of a usage statement (`https://provenant.dev/usage/v1`). */
export interface UsagePredicate {
  modelRoot: string;
  /** The metered log and its serving statement's manifest digest. */
  logId: string;
  servingManifest: string;
  /** The epoch: from the previous usage statement's end (or the log's start) to this one's closing. */
  period: { start: string; end: string };
  /**
   * The receipts metered: every receipt leaf among leaves [fromSize, treeSize) of log `logId`, whose first
   * `treeSize` leaves have the RFC 6962 root `rootHash`; `count` of them, seq `firstSeq`…`lastSeq`.
   */
  receipts: { fromSize: number; treeSize: number; rootHash: string; count: number; firstSeq: number; lastSeq: number };
  meters: Meters;
  /** Per client key id, sorted by id; at most MAX_USAGE_CLIENTS entries, the rest summed under OTHER_CLIENTS. */
  clients: { clientKeyId: string; meters: Meters }[];
  /** Digest of the previous usage statement of the data directory; ZERO_DIGEST for the first. */
  prevUsage: string;
  /** True when a successor key signed it after a restart, for a log whose key was lost (docs/serving.md). */
  recovery: boolean;
}

export interface ServingStatement {
  _type: typeof STATEMENT_TYPE;
  subject: [Subject];
  predicateType: typeof PREDICATE_SERVING;
  predicate: ServingPredicate;
}

export interface ReceiptStatement {
  _type: typeof STATEMENT_TYPE;
  subject: [Subject];
  predicateType: typeof PREDICATE_RECEIPT;
  predicate: ReceiptPredicate;
}

export interface UsageStatement {
  _type: typeof STATEMENT_TYPE;
  subject: [Subject];
  predicateType: typeof PREDICATE_USAGE;
  predicate: UsagePredicate;
}

/** The JSON object a completion carries as `provenant_receipt` (and a stream as its last chunk's field). */
export interface ReceiptObject {
  /** The DSSE envelope signed by S; its payload is the receipt statement. */
  envelope: DsseEnvelope;
  /** Receipt digest: hex SHA-256 of the envelope's payload bytes (what the next receipt's prevReceipt names). */
  digest: string;
  /** The salt of the request and response digests, 64 hex: only the caller gets it. */
  salt: string;
  seq: number;
  logId: string;
  /** The receipt's leaf index in its log's tree. */
  leafIndex: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

/** Collects violations as (path, message) and throws them together with one code. */
class Checker {
  readonly violations: { path: string; message: string }[] = [];
  readonly code: ErrorCode;

  constructor(code: ErrorCode) {
    this.code = code;
  }

  fail(path: string, message: string): void {
    // A hostile document could produce one violation per field: the first hundred are enough to fix it.
    if (this.violations.length < 100) this.violations.push({ path, message });
  }

  object(value: unknown, path: string): Record<string, unknown> | undefined {
    if (isPlainObject(value)) return value;
    this.fail(path, "expected an object");
    return undefined;
  }

  only(obj: Record<string, unknown>, path: string, allowed: readonly string[], required = allowed): void {
    for (const key of Object.keys(obj)) if (!allowed.includes(key)) this.fail(`${path}.${key}`, "unknown field");
    for (const key of required) if (!(key in obj)) this.fail(`${path}.${key}`, "missing");
  }

  string(value: unknown, path: string, max = 1024): string | undefined {
    if (typeof value !== "string" || value === "" || value.length > max) {
      this.fail(path, `expected a non-empty string of at most ${max} characters`);
      return undefined;
    }
    return value;
  }

  hex64(value: unknown, path: string): string | undefined {
    if (typeof value !== "string" || !SHA256_HEX.test(value)) {
      this.fail(path, "expected 64 lower-case hex");
      return undefined;
    }
    return value;
  }

  integer(value: unknown, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(path, `expected an integer from ${min} to ${max}`);
      return undefined;
    }
    return value;
  }

  boolean(value: unknown, path: string): void {
    if (typeof value !== "boolean") this.fail(path, "expected a boolean");
  }

  timestamp(value: unknown, path: string): number | undefined {
    if (typeof value !== "string" || !TIMESTAMP.test(value) || !Number.isFinite(Date.parse(value))) {
      this.fail(path, "expected an RFC 3339 UTC timestamp");
      return undefined;
    }
    return Date.parse(value);
  }

  sha256Set(value: unknown, path: string): string | undefined {
    const set = this.object(value, path);
    if (set === undefined) return undefined;
    this.only(set, path, ["sha256"]);
    return this.hex64(set.sha256, `${path}.sha256`);
  }

  throwIfAny(what: string): void {
    const first = this.violations[0];
    if (first === undefined) return;
    const text = this.violations.map((v) => `${v.path}: ${v.message}`).join("; ");
    throw new MalformedInputError(this.code, `invalid ${what}: ${text}`, {
      details: { path: first.path, violations: this.violations },
    });
  }
}

/** The common in-toto frame: `_type`, one subject with a sha256 digest, the predicate type; returns the predicate. */
function checkFrame(
  c: Checker,
  json: unknown,
  predicateType: string,
): { predicate: Record<string, unknown> | undefined; subjectDigest: string | undefined } {
  const root = c.object(json, "$");
  if (root === undefined) return { predicate: undefined, subjectDigest: undefined };
  c.only(root, "$", ["_type", "subject", "predicateType", "predicate"]);
  if (root._type !== STATEMENT_TYPE) c.fail("_type", `expected ${STATEMENT_TYPE}`);
  if (root.predicateType !== predicateType) c.fail("predicateType", `expected ${predicateType}`);
  let subjectDigest: string | undefined;
  if (!Array.isArray(root.subject) || root.subject.length !== 1) c.fail("subject", "expected exactly one subject");
  else {
    const subject = c.object(root.subject[0], "subject[0]");
    if (subject !== undefined) {
      c.only(subject, "subject[0]", ["name", "digest"]);
      c.string(subject.name, "subject[0].name", 256);
      subjectDigest = c.sha256Set(subject.digest, "subject[0].digest");
    }
  }
  return { predicate: c.object(root.predicate, "predicate"), subjectDigest };
}

function checkMeters(c: Checker, value: unknown, path: string): Meters | undefined {
  const meters = c.object(value, path);
  if (meters === undefined) return undefined;
  c.only(meters, path, METER_NAMES);
  for (const name of METER_NAMES) c.integer(meters[name], `${path}.${name}`);
  return meters as unknown as Meters;
}

/** Whether `id` is a client key id: 64 hex (SHA-256 of an API key), ANONYMOUS_CLIENT or OTHER_CLIENTS. */
export function isClientKeyId(id: unknown): id is string {
  return typeof id === "string" && (SHA256_HEX.test(id) || id === ANONYMOUS_CLIENT || id === OTHER_CLIENTS);
}

/** Whether DER SPKI bytes are an EC key on `curve` (lib/dsse parseEcSpki); false for anything else. */
function isCurve(spki: Uint8Array, curve: string): boolean {
  try {
    return parseEcSpki(spki).curve === curve;
  } catch {
    return false;
  }
}

/** The checkpoint origin of a serving log. */
export function servingOrigin(logId: string): string {
  return `${SERVING_ORIGIN_PREFIX}${logId}`;
}

/**
 * Validates an untrusted serving statement (the decoded JSON payload). Shape only: the binding of keyid and logId to
 * the public key is verifyServingStatement's (lib/receipt/index.ts). STATEMENT_INVALID with every violation.
 */
export function validateServingStatement(json: unknown): ServingStatement {
  const c = new Checker("STATEMENT_INVALID");
  const { predicate: p } = checkFrame(c, json, PREDICATE_SERVING);
  if (p !== undefined) {
    c.only(
      p,
      "predicate",
      ["servingKey", "log", "jobCode", "startedOn", "epoch", "admission", "predecessor", "runtime"],
      ["servingKey", "log", "jobCode", "startedOn", "epoch", "admission", "runtime"],
    );
    const key = c.object(p.servingKey, "predicate.servingKey");
    let keyid: string | undefined;
    if (key !== undefined) {
      c.only(key, "predicate.servingKey", ["publicKey", "keyid"]);
      const spki =
        typeof key.publicKey === "string" && key.publicKey.length <= 1024 ? fromBase64(key.publicKey) : undefined;
      if (spki === undefined || spki.length === 0) c.fail("predicate.servingKey.publicKey", "expected base64 DER SPKI");
      else if (!isCurve(spki, SERVING_KEY_CURVE))
        c.fail("predicate.servingKey.publicKey", `expected an EC ${SERVING_KEY_CURVE} SubjectPublicKeyInfo`);
      keyid = c.hex64(key.keyid, "predicate.servingKey.keyid");
    }
    const log = c.object(p.log, "predicate.log");
    let firstSeq: number | undefined;
    if (log !== undefined) {
      c.only(log, "predicate.log", ["logId", "origin", "firstSeq"]);
      firstSeq = c.integer(log.firstSeq, "predicate.log.firstSeq");
      const logId = c.hex64(log.logId, "predicate.log.logId");
      if (logId !== undefined && keyid !== undefined && logId !== keyid)
        c.fail("predicate.log.logId", "must equal predicate.servingKey.keyid");
      if (logId !== undefined && log.origin !== servingOrigin(logId))
        c.fail("predicate.log.origin", `expected ${servingOrigin(logId)}`);
    }
    const job = c.object(p.jobCode, "predicate.jobCode");
    if (job !== undefined) {
      c.only(job, "predicate.jobCode", ["name", "digest"]);
      c.string(job.name, "predicate.jobCode.name", 256);
      c.sha256Set(job.digest, "predicate.jobCode.digest");
    }
    c.timestamp(p.startedOn, "predicate.startedOn");
    const epoch = c.object(p.epoch, "predicate.epoch");
    if (epoch !== undefined) {
      c.only(epoch, "predicate.epoch", ["maxReceipts", "maxSeconds"]);
      c.integer(epoch.maxReceipts, "predicate.epoch.maxReceipts", 1, 1_000_000);
      c.integer(epoch.maxSeconds, "predicate.epoch.maxSeconds", 1, 86_400);
    }
    const admission = c.object(p.admission, "predicate.admission");
    if (admission !== undefined) {
      c.only(admission, "predicate.admission", ["require", "manifestDigest"]);
      if (!REQUIRE_KINDS.includes(admission.require as RequireKind))
        c.fail("predicate.admission.require", `expected one of ${REQUIRE_KINDS.join(", ")}`);
      c.hex64(admission.manifestDigest, "predicate.admission.manifestDigest");
    }
    if (p.predecessor !== undefined) {
      const before = c.object(p.predecessor, "predicate.predecessor");
      if (before !== undefined) {
        c.only(before, "predicate.predecessor", ["logId", "lastSeq", "lastReceipt"]);
        c.hex64(before.logId, "predicate.predecessor.logId");
        const lastSeq = c.integer(before.lastSeq, "predicate.predecessor.lastSeq");
        if (lastSeq !== undefined && firstSeq !== undefined && firstSeq <= lastSeq)
          c.fail("predicate.log.firstSeq", `must be after the predecessor's lastSeq ${lastSeq}`);
        c.hex64(before.lastReceipt, "predicate.predecessor.lastReceipt");
      }
    }
    const runtime = c.object(p.runtime, "predicate.runtime");
    if (runtime !== undefined) {
      c.only(runtime, "predicate.runtime", ["name", "version", "gpu"]);
      c.string(runtime.name, "predicate.runtime.name", 256);
      c.string(runtime.version, "predicate.runtime.version", 256);
      c.boolean(runtime.gpu, "predicate.runtime.gpu");
    }
  }
  c.throwIfAny("serving statement");
  return json as ServingStatement;
}

/**
 * A serving statement envelope read and bound, its signature not yet checked: the payload a valid serving statement
 * (its servingKey a SERVING_KEY_CURVE SPKI) whose logId is SHA-256 of that key (STATEMENT_INVALID), and, given the
 * bundle's signer K, that key (BINDING_KEY_MISMATCH). Browser-safe: the one reader behind lib/receipt
 * verifyServingStatement (node:crypto) and the SDK's checkReceipt (WebCrypto), which then verify the envelope with
 * `spki` and take SHA-256 of `payload` as the manifest digest.
 */
export function readServingStatement(
  envelope: DsseEnvelope,
  signer?: Uint8Array,
): { statement: ServingStatement; payload: Uint8Array; spki: Uint8Array; logId: string } {
  const payload = decodeBase64(envelope.payload, "DSSE_MALFORMED", "payload");
  const statement = validateServingStatement(
    parseStatementBytes(envelope.payloadType, payload, MAX_SERVING_PAYLOAD_BYTES, "STATEMENT_INVALID"),
  );
  // validateServingStatement has read servingKey as a SERVING_KEY_CURVE SPKI in base64.
  const spki = decodeBase64(statement.predicate.servingKey.publicKey, "DSSE_MALFORMED", "servingKey.publicKey");
  const logId = toHex(sha256(spki));
  if (logId !== statement.predicate.log.logId)
    throw new MalformedInputError("STATEMENT_INVALID", "the serving statement's logId is not SHA-256 of its key", {
      details: { path: "predicate.log.logId", expected: logId, actual: statement.predicate.log.logId },
    });
  if (signer !== undefined && !equalBytes(signer, spki))
    throw new VerificationError("BINDING_KEY_MISMATCH", "the serving key is not the bundle's signer", {
      details: { expected: toHex(sha256(signer)), actual: logId },
    });
  return { statement, payload, spki, logId };
}

/**
 * The digests of a receipt that do not match the bytes its holder kept, with the salt: SHA-256(response) is the
 * subject, SHA-256(salt ‖ response) the responseDigest, SHA-256(salt ‖ request) the requestDigest; either side may be
 * left out. Browser-safe (lib/hash): the one check behind lib/receipt verifyReceiptBytes and the SDK's checkReceipt.
 * RECEIPT_INVALID when the salt is not SALT_BYTES long.
 */
export function receiptDigestMismatches(
  statement: ReceiptStatement,
  salt: Uint8Array,
  bytes: { request?: Uint8Array; response?: Uint8Array },
): { path: string; expected: string; actual: string }[] {
  if (salt.length !== SALT_BYTES)
    throw new MalformedInputError("RECEIPT_INVALID", `a salt is ${SALT_BYTES} bytes, got ${salt.length}`, {
      details: { path: "salt" },
    });
  const digest = (...parts: Uint8Array[]): string => {
    const hash = createSha256();
    for (const part of parts) hash.update(part);
    return toHex(hash.digest());
  };
  const p = statement.predicate;
  const wrong: { path: string; expected: string; actual: string }[] = [];
  const compare = (path: string, expected: string, actual: string): void => {
    if (actual !== expected) wrong.push({ path, expected, actual });
  };
  if (bytes.response !== undefined) {
    compare("subject[0].digest.sha256", statement.subject[0].digest.sha256, digest(bytes.response));
    compare("predicate.responseDigest", p.responseDigest, digest(salt, bytes.response));
  }
  if (bytes.request !== undefined) compare("predicate.requestDigest", p.requestDigest, digest(salt, bytes.request));
  return wrong;
}

/**
 * Validates an untrusted inference receipt statement (the decoded payload). RECEIPT_INVALID with every violation.
 * The subject (SHA-256 of the response bytes) and the salted digests are checked against bytes by
 * receiptDigestMismatches.
 */
export function validateReceiptStatement(json: unknown): ReceiptStatement {
  const c = new Checker("RECEIPT_INVALID");
  const { predicate: p } = checkFrame(c, json, PREDICATE_RECEIPT);
  if (p !== undefined) {
    const fields = [
      "modelRoot",
      "servingManifest",
      "logId",
      "operation",
      "requestDigest",
      "responseDigest",
      "promptTokens",
      "completionTokens",
      "clientKeyId",
      "seq",
      "prevReceipt",
      "issuedAt",
    ];
    c.only(p, "predicate", fields);
    for (const name of ["modelRoot", "servingManifest", "logId", "requestDigest", "responseDigest", "prevReceipt"])
      c.hex64(p[name], `predicate.${name}`);
    if (!OPERATIONS.includes(p.operation as Operation))
      c.fail("predicate.operation", `expected one of ${OPERATIONS.join(", ")}`);
    c.integer(p.promptTokens, "predicate.promptTokens", 0, MAX_TOKENS_PER_REQUEST);
    c.integer(p.completionTokens, "predicate.completionTokens", 0, MAX_TOKENS_PER_REQUEST);
    if (!isClientKeyId(p.clientKeyId) || p.clientKeyId === OTHER_CLIENTS)
      c.fail("predicate.clientKeyId", `expected 64 hex or ${ANONYMOUS_CLIENT}`);
    const seq = c.integer(p.seq, "predicate.seq");
    // seq > 0 with ZERO_DIGEST is the first receipt of a data directory whose earlier life crashed before any of its
    // receipts reached the disk: its seq goes on from the reserved mark (the serving statement's log.firstSeq).
    if (seq === 0 && p.prevReceipt !== ZERO_DIGEST) c.fail("predicate.prevReceipt", "receipt 0 has no predecessor");
    c.timestamp(p.issuedAt, "predicate.issuedAt");
  }
  c.throwIfAny("receipt");
  return json as ReceiptStatement;
}

/** Validates an untrusted usage statement (the decoded payload). STATEMENT_INVALID with every violation. */
export function validateUsageStatement(json: unknown): UsageStatement {
  const c = new Checker("STATEMENT_INVALID");
  const { predicate: p, subjectDigest } = checkFrame(c, json, PREDICATE_USAGE);
  if (p !== undefined) {
    c.only(p, "predicate", [
      "modelRoot",
      "logId",
      "servingManifest",
      "period",
      "receipts",
      "meters",
      "clients",
      "prevUsage",
      "recovery",
    ]);
    const modelRoot = c.hex64(p.modelRoot, "predicate.modelRoot");
    if (modelRoot !== undefined && subjectDigest !== undefined && modelRoot !== subjectDigest)
      c.fail("subject[0].digest.sha256", "must equal predicate.modelRoot");
    c.hex64(p.logId, "predicate.logId");
    c.hex64(p.servingManifest, "predicate.servingManifest");
    c.hex64(p.prevUsage, "predicate.prevUsage");
    c.boolean(p.recovery, "predicate.recovery");
    const period = c.object(p.period, "predicate.period");
    if (period !== undefined) {
      c.only(period, "predicate.period", ["start", "end"]);
      const start = c.timestamp(period.start, "predicate.period.start");
      const end = c.timestamp(period.end, "predicate.period.end");
      if (start !== undefined && end !== undefined && end < start) c.fail("predicate.period.end", "is before start");
    }
    const r = c.object(p.receipts, "predicate.receipts");
    let count: number | undefined;
    if (r !== undefined) {
      c.only(r, "predicate.receipts", ["fromSize", "treeSize", "rootHash", "count", "firstSeq", "lastSeq"]);
      const from = c.integer(r.fromSize, "predicate.receipts.fromSize");
      const size = c.integer(r.treeSize, "predicate.receipts.treeSize", 1);
      c.hex64(r.rootHash, "predicate.receipts.rootHash");
      count = c.integer(r.count, "predicate.receipts.count", 1);
      const first = c.integer(r.firstSeq, "predicate.receipts.firstSeq");
      const last = c.integer(r.lastSeq, "predicate.receipts.lastSeq");
      if (from !== undefined && size !== undefined && count !== undefined && from + count > size)
        c.fail("predicate.receipts.count", "more receipts than leaves in [fromSize, treeSize)");
      if (first !== undefined && last !== undefined && count !== undefined && last - first + 1 !== count)
        c.fail("predicate.receipts.lastSeq", "the seq range must hold exactly count receipts");
    }
    const meters = checkMeters(c, p.meters, "predicate.meters");
    if (meters !== undefined && count !== undefined && meters.requests !== count)
      c.fail("predicate.meters.requests", "must equal predicate.receipts.count");
    if (!Array.isArray(p.clients) || p.clients.length === 0 || p.clients.length > MAX_USAGE_CLIENTS + 1)
      c.fail("predicate.clients", `expected 1 to ${MAX_USAGE_CLIENTS + 1} entries`);
    else {
      const sums = { input: 0, output: 0, requests: 0 };
      let previous = "";
      p.clients.forEach((entry, i) => {
        const path = `predicate.clients[${i}]`;
        const client = c.object(entry, path);
        if (client === undefined) return;
        c.only(client, path, ["clientKeyId", "meters"]);
        if (!isClientKeyId(client.clientKeyId)) c.fail(`${path}.clientKeyId`, "expected 64 hex, anonymous or other");
        else {
          if (client.clientKeyId <= previous) c.fail(`${path}.clientKeyId`, "clients are sorted by id, each once");
          previous = client.clientKeyId;
        }
        const m = checkMeters(c, client.meters, `${path}.meters`);
        if (m !== undefined) {
          sums.input += m[METER_INPUT_TOKENS];
          sums.output += m[METER_OUTPUT_TOKENS];
          sums.requests += m.requests;
        }
      });
      if (
        meters !== undefined &&
        (sums.input !== meters[METER_INPUT_TOKENS] ||
          sums.output !== meters[METER_OUTPUT_TOKENS] ||
          sums.requests !== meters.requests)
      )
        c.fail("predicate.clients", "the clients' meters must add up to predicate.meters");
    }
  }
  c.throwIfAny("usage statement");
  return json as UsageStatement;
}

/** Reads an in-toto payload with the strict JSON reader after checking its type and size; `code` on failure. */
export function parseStatementBytes(
  payloadType: string,
  payload: Uint8Array,
  maxBytes: number,
  code: ErrorCode,
): unknown {
  if (payloadType !== INTOTO_PAYLOAD_TYPE)
    throw new MalformedInputError(code, `payloadType ${JSON.stringify(payloadType)} is not ${INTOTO_PAYLOAD_TYPE}`, {
      details: { path: "payloadType" },
    });
  if (payload.length > maxBytes)
    throw new MalformedInputError(code, `the payload is ${payload.length} bytes, more than ${maxBytes}`, {
      details: { expected: maxBytes, actual: payload.length },
    });
  return parseStrictJsonBytes(payload, { code, what: "payload" });
}

function receiptError(message: string, path = "$"): MalformedInputError {
  return new MalformedInputError("RECEIPT_INVALID", message, { details: { path } });
}

/** A DSSE envelope from untrusted JSON, bounded: RECEIPT_INVALID for anything that is not one. */
function toEnvelope(json: unknown, path: string): DsseEnvelope {
  try {
    const envelope = parseEnvelope(json);
    if (envelope.signatures.length > 4) throw receiptError("a receipt envelope has at most 4 signatures", path);
    // The same bound for a bare envelope as for one inside a receipt object (a receipt file holds either).
    if (JSON.stringify(envelope).length > MAX_RECEIPT_ENVELOPE_BYTES)
      throw receiptError(`a receipt envelope is at most ${MAX_RECEIPT_ENVELOPE_BYTES} bytes`, path);
    return envelope;
  } catch (error) {
    if (error instanceof MalformedInputError && error.code === "RECEIPT_INVALID") throw error;
    throw receiptError(`${path}: ${error instanceof Error ? error.message : String(error)}`, path);
  }
}

/**
 * Reads a receipt as a caller may hold it: the `provenant_receipt` object (envelope, digest, salt, …) or the bare
 * DSSE envelope. Bounded (MAX_RECEIPT_ENVELOPE_BYTES for the envelope, 16 KiB in all); RECEIPT_INVALID otherwise.
 * Nothing is verified here: the fields besides the envelope are hints that verification recomputes.
 */
export function toReceiptInput(json: unknown): { envelope: DsseEnvelope; salt?: string; object?: ReceiptObject } {
  if (!isPlainObject(json)) throw receiptError("expected a receipt object or a DSSE envelope");
  if ("payloadType" in json) return { envelope: toEnvelope(json, "$") };
  const c = new Checker("RECEIPT_INVALID");
  c.only(json, "$", ["envelope", "digest", "salt", "seq", "logId", "leafIndex"]);
  c.hex64(json.digest, "digest");
  c.hex64(json.salt, "salt");
  c.integer(json.seq, "seq");
  c.hex64(json.logId, "logId");
  c.integer(json.leafIndex, "leafIndex");
  c.throwIfAny("receipt object");
  const envelope = toEnvelope(json.envelope, "envelope");
  const object = json as unknown as ReceiptObject;
  return { envelope, salt: object.salt, object: { ...object, envelope } };
}

/** Reads receipt JSON text (a `receipt.json` file), bounded to 16 KiB. */
export function parseReceiptText(text: string): { envelope: DsseEnvelope; salt?: string; object?: ReceiptObject } {
  if (text.length > 16 * 1024) throw receiptError("a receipt file is at most 16 KiB");
  return toReceiptInput(parseStrictJsonText(text, { code: "RECEIPT_INVALID", what: "receipt" }));
}

/**
 * The `Provenant-Receipt` header value: standard base64 (RFC 4648 §4, padded) of the UTF-8 JSON of the DSSE envelope
 * `{"payloadType","payload","signatures":[{"keyid","sig"}]}`, at most MAX_RECEIPT_HEADER_CHARS characters.
 */
export function encodeReceiptHeader(envelope: DsseEnvelope): string {
  const json = JSON.stringify({
    payloadType: envelope.payloadType,
    payload: envelope.payload,
    signatures: envelope.signatures,
  });
  const bytes = new TextEncoder().encode(json);
  if (bytes.length > MAX_RECEIPT_ENVELOPE_BYTES) throw receiptError("the receipt envelope is too large for a header");
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Reads a `Provenant-Receipt` header value back into the envelope; RECEIPT_INVALID for anything else. */
export function decodeReceiptHeader(value: string): DsseEnvelope {
  if (value.length > MAX_RECEIPT_HEADER_CHARS) throw receiptError("the Provenant-Receipt header is too long");
  const bytes = fromBase64(value.trim());
  if (bytes === undefined) throw receiptError("the Provenant-Receipt header is not base64");
  return toEnvelope(parseStrictJsonBytes(bytes, { code: "RECEIPT_INVALID", what: "Provenant-Receipt" }), "$");
}

/** A 64-hex salt (the `Provenant-Salt` header, `provenant_receipt.salt`), or RECEIPT_INVALID. */
export function parseSalt(text: string): Uint8Array {
  const hex = text.trim().toLowerCase();
  if (!SHA256_HEX.test(hex) || !isHex(hex)) throw receiptError("a salt is 64 hex characters (32 bytes)", "salt");
  const out = new Uint8Array(SALT_BYTES);
  for (let i = 0; i < SALT_BYTES; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
