// Coded errors shared by every part of Provenant. Codes are part of the interface (DESIGN.md §4):
// tools, tests and the verifier's store match on `code`, never on the message.
// Three kinds, as sigstore-js splits them: input that does not parse, a proof that does not hold,
// and a valid proof that a policy refuses. `UsageError` and `IoError` cover the edges (CLI, disk, network).

/** Every error code that crosses a module boundary. Add codes here; never rename one. */
export const ERROR_CODES = [
  // SEV-SNP (DESIGN §4)
  "SNP_MALFORMED",
  "SNP_UNSUPPORTED_VERSION",
  "SNP_BAD_SIGNATURE",
  "SNP_CHAIN_INVALID",
  "SNP_UNTRUSTED_ROOT",
  "SNP_CERT_EXPIRED",
  "SNP_CERT_REVOKED",
  "SNP_CERT_UNAVAILABLE",
  "SNP_TCB_MISMATCH",
  "SNP_CHIP_ID_MISMATCH",
  "SNP_PRODUCT_MISMATCH",
  "SNP_SIGNER_MISMATCH",
  // A warning, never a refusal: the report chained to a root whose revocation list could not be checked.
  "SNP_REVOCATION_UNCHECKED",
  "POLICY_DEBUG",
  "POLICY_MIGRATION_AGENT",
  "POLICY_VMPL",
  "POLICY_SIGNATURE_ALGO",
  "POLICY_TCB",
  "POLICY_FIRMWARE",
  "POLICY_GUEST_SVN",
  "POLICY_MEASUREMENT",
  "POLICY_HOST_DATA",
  "POLICY_REPORT_DATA",
  "POLICY_ID_KEY",
  "POLICY_INVALID",
  "POLICY_GPU_EVIDENCE",
  "POLICY_STATEMENT_KIND",
  // A verifier policy that pins no launch measurement or TCB floor (DESIGN §11); the job code a policy pins; a
  // report of a product the policy's TCB floors do not name.
  "POLICY_OPEN",
  "POLICY_JOB_CODE",
  "POLICY_PRODUCT",
  // NVIDIA GPU evidence (DESIGN §10)
  "GPU_MALFORMED",
  "GPU_BAD_SIGNATURE",
  "GPU_CHAIN_INVALID",
  "GPU_UNTRUSTED_ROOT",
  "GPU_CERT_EXPIRED",
  "GPU_CERT_REVOKED",
  "GPU_FWID_MISMATCH",
  "GPU_NONCE_MISMATCH",
  "GPU_RIM_INVALID",
  "GPU_RIM_VERSION_MISMATCH",
  "GPU_MEASUREMENT_MISMATCH",
  "GPU_RIM_MISSING",
  "POLICY_GPU",
  // Bundles and manifests (DESIGN §4)
  "BUNDLE_MALFORMED",
  "BUNDLE_TOO_LARGE",
  "BUNDLE_TOO_COMPLEX",
  "BINDING_KEY_MISMATCH",
  "BINDING_NONCE_MISMATCH",
  "DSSE_MALFORMED",
  "DSSE_BAD_SIGNATURE",
  "STATEMENT_INVALID",
  "MODEL_DIGEST_MISMATCH",
  // OMS model signing
  "OMS_MALFORMED",
  "OMS_BAD_SIGNATURE",
  "OMS_CHAIN_INVALID",
  "OMS_FILE_MISSING",
  "OMS_FILE_CHANGED",
  "OMS_FILE_UNSIGNED",
  "OMS_SYMLINK",
  // Enclave job
  "JOB_MODEL_UNREADABLE",
  "JOB_SUITE_INVALID",
  "JOB_TRAINER_FAILED",
  "JOB_MODEL_LOAD_FAILED",
  "ATTESTATION_UNAVAILABLE",
  "ATTESTATION_FAILED",
  "PUSH_FAILED",
  "JOB_CODE_MISMATCH",
  // GPU evidence collection and GPU execution in the job (docs/gpu.md)
  "GPU_UNAVAILABLE",
  "GPU_CC_OFF",
  "GPU_ATTESTATION_FAILED",
  "CUDA_UNAVAILABLE",
  "STATEMENT_GPU_UNVERIFIED",
  // Verifier service and chain access
  "REPO_UNREADABLE",
  "REPO_ENTRY_REFUSED",
  "REPO_LIMIT_EXCEEDED",
  "PUBLISH_FAILED",
  "PUBLISH_REVERTED",
  "RPC_UNAVAILABLE",
  "CHAIN_MISMATCH",
  "REGISTRY_NOT_FOUND",
  "NOT_FOUND",
  "HASH_MALFORMED",
  // What a record attests (lookup, the SDK, the explorer): the verifier's bundle or policy endpoint cannot be read;
  // the bundle or policy it serves is not the one the record commits to (manifest, model, measurement, policy digest)
  "VERIFIER_UNAVAILABLE",
  "RECORD_MISMATCH",
  // Launch measurement (`provenant measure`, DESIGN §11)
  "MEASURE_OVMF_MALFORMED",
  "MEASURE_NO_KERNEL_HASHES",
  // Merkle logs and checkpoints (receipts, training traces)
  "MERKLE_INVALID",
  "MERKLE_PROOF_INVALID",
  "CHECKPOINT_INVALID",
  // Training traces and spot-checks (DESIGN §13)
  "TRACE_MISSING",
  "TRACE_INCLUSION",
  "TRACE_REPLAY_MISMATCH",
  "TRACE_DATA_MISMATCH",
  // Serving, inference receipts and the off-switch (DESIGN §12, docs/serving.md)
  "RECEIPT_INVALID",
  "RECEIPT_BAD_SIGNATURE",
  "RECEIPT_DIGEST_MISMATCH",
  "RECEIPT_NOT_ANCHORED",
  // receipt verify: the receipt names another log, manifest or model than its serving statement; the serving
  // statement is not recorded onchain as kind 3 (or did not register the receipt's log)
  "RECEIPT_SERVING_MISMATCH",
  "SERVING_NOT_RECORDED",
  "MODEL_REVOKED",
  "MODEL_NOT_RECORDED",
  "REGISTRY_UNAUTHORIZED",
  "SERVE_BAD_REQUEST",
  "SERVE_MODEL_NOT_FOUND",
  "SERVE_CONTEXT_EXCEEDED",
  "SERVE_BUSY",
  "SERVE_TIMEOUT",
  "SERVE_UNAVAILABLE",
  "SERVE_REGISTRY_STALE",
  "SERVE_STORE_FAILED",
  // Generic edges
  "USAGE",
  "IO_ERROR",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorKind = "malformed" | "proof" | "policy" | "usage" | "io" | "internal";

export interface ErrorOptions {
  cause?: unknown;
  /** Machine-readable detail: expected/actual values, a field path, an index. Never key material. */
  details?: Record<string, unknown>;
}

/** Base class: a stable `code`, a kind, and optional details. */
export class ProvenantError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: ErrorKind, code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Untrusted input that does not have the expected shape (bytes, JSON, sizes, must-be-zero ranges). */
export class MalformedInputError extends ProvenantError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super("malformed", code, message, options);
  }
}

/** A cryptographic or binding proof that does not hold (signature, chain, REPORT_DATA binding, digest). */
export class VerificationError extends ProvenantError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super("proof", code, message, options);
  }
}

/** A single policy violation; `PolicyViolationError` collects them. */
export class PolicyError extends ProvenantError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super("policy", code, message, options);
  }
}

/** Shape and policy checks collect every violation before throwing (STYLE.md, Errors). */
export class PolicyViolationError extends ProvenantError {
  readonly violations: readonly ProvenantError[];

  constructor(violations: readonly ProvenantError[]) {
    const first = violations[0];
    if (first === undefined) throw new RangeError("PolicyViolationError needs at least one violation");
    super(
      first.kind,
      first.code,
      violations.length === 1
        ? first.message
        : `${violations.length} violations: ${violations.map((v) => v.code).join(", ")}`,
    );
    this.violations = violations;
  }
}

export class UsageError extends ProvenantError {
  constructor(message: string, options?: ErrorOptions) {
    super("usage", "USAGE", message, options);
  }
}

export class IoError extends ProvenantError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super("io", code, message, options);
  }
}

export function isProvenantError(value: unknown): value is ProvenantError {
  return value instanceof ProvenantError;
}

/** Throws a PolicyViolationError when `violations` is non-empty; the collect-then-throw idiom. */
export function throwIfViolations(violations: readonly ProvenantError[]): void {
  if (violations.length > 0) throw new PolicyViolationError(violations);
}

/** Flattens any thrown value into the `errors: [{code, message}]` shape that `--json` and the store use. */
export function toErrorList(error: unknown): { code: ErrorCode; message: string }[] {
  if (error instanceof PolicyViolationError) return error.violations.map((v) => v.toJSON());
  if (error instanceof ProvenantError) return [error.toJSON()];
  const message = error instanceof Error ? error.message : String(error);
  return [{ code: "INTERNAL", message }];
}
