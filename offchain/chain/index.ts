// Chain access for the verifier: a JSON-RPC provider and two ways to send the `publish` transaction.
// - a local key (ethers Wallet), wrapped with @oasisprotocol/sapphire-ethers-v6 on Sapphire chain ids so that
//   calldata is encrypted, and left unwrapped elsewhere (the wrapper fails on Hardhat);
// - rofl-appd inside a ROFL app: `POST /rofl/v1/tx/sign-submit` over the unix socket, whose answer is a CBOR
//   CallResult that says `fail` on a revert even though HTTP said 200.
// Errors are coded: RPC_UNAVAILABLE is transient (retry), PUBLISH_REVERTED and PUBLISH_FAILED are not.
import { request } from "node:http";

import { wrapEthersSigner } from "@oasisprotocol/sapphire-ethers-v6";
import { decode as decodeCbor } from "cborg";
import { FetchRequest, JsonRpcProvider, Wallet, type Signer } from "ethers";

import { IoError, UsageError, VerificationError, type ErrorCode } from "../../lib/errors.ts";

/** Sapphire mainnet, testnet and localnet (DESIGN §6). */
export const SAPPHIRE_CHAIN_IDS: readonly bigint[] = [23294n, 23295n, 23293n];

export const DEFAULT_ROFL_APPD_SOCKET = "/run/rofl-appd.sock";

export function isSapphire(chainId: bigint): boolean {
  return SAPPHIRE_CHAIN_IDS.includes(chainId);
}

/** A provider that does not poll by itself and gives up quickly, so that the service sees an RPC outage. */
export function createProvider(
  rpcUrl: string,
  options: { timeoutMs?: number; pollingIntervalMs?: number } = {},
): JsonRpcProvider {
  const fetchRequest = new FetchRequest(rpcUrl);
  fetchRequest.timeout = options.timeoutMs ?? 10_000;
  const provider = new JsonRpcProvider(fetchRequest, undefined, { batchMaxCount: 1, polling: true, cacheTimeout: -1 });
  // Receipts are awaited by polling: 4 s (the default) would dominate push-to-record latency on fast chains.
  provider.pollingInterval = options.pollingIntervalMs ?? 500;
  return provider;
}

/** Hides credentials in an RPC URL (user:password@ and query strings) for logs. */
export function redactUrl(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url; // a local path or scp-style git address: no credentials
  try {
    const parsed = new URL(url);
    if (parsed.username !== "" || parsed.password !== "") {
      parsed.username = "***";
      parsed.password = "";
    }
    if (parsed.search !== "") parsed.search = "?***";
    // Path segments that look like API keys (long tokens) are hidden too.
    parsed.pathname = parsed.pathname.replace(/[A-Za-z0-9_-]{24,}/g, "***");
    return parsed.toString();
  } catch {
    return "<unparseable url>";
  }
}

/** Where a `publish` transaction landed; txHash/block are null when the sender cannot tell (rofl-appd). */
export interface SendResult {
  txHash: string | null;
  block: number | null;
  gasUsed: bigint | null;
}

export interface TxSender {
  readonly kind: "local" | "rofl";
  /** The sending address when known (local key); ROFL transactions come from an endorsed key that changes. */
  readonly address: string | undefined;
  send(tx: { to: string; data: string; gasLimit: bigint }): Promise<SendResult>;
}

/** True for errors worth retrying (the RPC endpoint, the socket, a timeout); false for a revert. */
export function isTransient(error: unknown): boolean {
  if (error instanceof IoError) return error.code === "RPC_UNAVAILABLE";
  if (error instanceof VerificationError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "CALL_EXCEPTION" || code === "INVALID_ARGUMENT" || code === "INSUFFICIENT_FUNDS") return false;
  return true;
}

/** Turns whatever ethers throws into a coded error. */
export function toChainError(error: unknown, what: string): IoError | VerificationError {
  if (error instanceof IoError || error instanceof VerificationError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const shortMessage = (error as { shortMessage?: unknown } | null)?.shortMessage;
  const full = typeof shortMessage === "string" ? shortMessage : error instanceof Error ? error.message : String(error);
  const message = (full.split("\n")[0] ?? "").slice(0, 300);
  if (code === "CALL_EXCEPTION")
    return new VerificationError("PUBLISH_REVERTED", `${what} reverted: ${message}`, { cause: error });
  // Some nodes (Hardhat automine) refuse a reverting transaction at submission with an error ethers cannot classify.
  const inner = JSON.stringify((error as { error?: unknown; info?: unknown } | null)?.info ?? "") + String(full);
  if (/revert/i.test(inner))
    return new VerificationError("PUBLISH_REVERTED", `${what} reverted: ${message}`, { cause: error });
  if (code === "INSUFFICIENT_FUNDS" || code === "INVALID_ARGUMENT")
    return new IoError("PUBLISH_FAILED", `${what}: ${message}`, { cause: error });
  return new IoError("RPC_UNAVAILABLE", `${what}: ${message}`, { cause: error });
}

/** Reads a local private key (hex, with or without 0x) and checks its shape; never logs it. */
export function parsePrivateKey(text: string): string {
  const trimmed = text.trim().replace(/^0x/i, "");
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed))
    throw new UsageError("the private key must be 32 bytes of hex (PROVENANT_PRIVATE_KEY or --key-file)");
  return `0x${trimmed}`;
}

/** A local key; the signer is wrapped for Sapphire chain ids (encrypted calldata) and plain elsewhere. */
export async function createLocalSender(
  provider: JsonRpcProvider,
  privateKey: string,
  options: { receiptTimeoutMs?: number; chainId?: bigint } = {},
): Promise<TxSender & { signer: Signer; wrapped: boolean }> {
  const wallet = new Wallet(parsePrivateKey(privateKey), provider);
  const chainId = options.chainId ?? (await provider.getNetwork()).chainId;
  const wrapped = isSapphire(chainId);
  const signer: Signer = wrapped ? wrapEthersSigner(wallet) : wallet;
  const receiptTimeoutMs = options.receiptTimeoutMs ?? 120_000;
  return {
    kind: "local",
    address: wallet.address,
    signer,
    wrapped,
    async send(tx) {
      let response;
      try {
        response = await signer.sendTransaction({ to: tx.to, data: tx.data, gasLimit: tx.gasLimit, value: 0n });
      } catch (error) {
        throw toChainError(error, "sending publish");
      }
      let receipt;
      try {
        receipt = await response.wait(1, receiptTimeoutMs);
      } catch (error) {
        throw toChainError(error, `waiting for ${response.hash}`);
      }
      if (receipt === null) throw new IoError("RPC_UNAVAILABLE", `no receipt for ${response.hash}`);
      if (receipt.status !== 1)
        throw new VerificationError("PUBLISH_REVERTED", `transaction ${response.hash} reverted`, {
          details: { txHash: response.hash },
        });
      return { txHash: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed };
    },
  };
}

/** The `CallResult` of the Oasis runtime SDK, as rofl-appd returns it (CBOR, hex in JSON `data`). */
export type CallResult =
  | { ok: Uint8Array | string | null }
  | { fail: { module: string; code: number; message?: string } }
  | { unknown: unknown };

export function decodeCallResult(hex: string): CallResult {
  const bytes = Buffer.from(hex.replace(/^0x/, ""), "hex");
  const value = decodeCbor(bytes) as unknown;
  if (typeof value !== "object" || value === null)
    throw new IoError("PUBLISH_FAILED", "rofl-appd returned a call result that is not a CBOR map");
  return value as CallResult;
}

/**
 * Sends through rofl-appd. The appd signs with the app's endorsed key, so the contract can check the origin with
 * `Subcall.roflEnsureAuthorizedOrigin`. Gas is always set explicitly (the appd does not estimate).
 */
export function createRoflSender(
  options: { socketPath?: string; encrypt?: boolean; timeoutMs?: number } = {},
): TxSender {
  const socketPath = options.socketPath ?? DEFAULT_ROFL_APPD_SOCKET;
  const encrypt = options.encrypt ?? true;
  const timeoutMs = options.timeoutMs ?? 120_000;
  return {
    kind: "rofl",
    address: undefined,
    async send(tx) {
      const body = JSON.stringify({
        tx: {
          kind: "eth",
          data: {
            gas_limit: Number(tx.gasLimit),
            to: tx.to.replace(/^0x/, ""),
            value: 0,
            data: tx.data.replace(/^0x/, ""),
          },
        },
        encrypt,
      });
      const response = await postUnix(socketPath, "/rofl/v1/tx/sign-submit", body, timeoutMs);
      if (response.status !== 200)
        throw new IoError(
          response.status >= 500 ? "RPC_UNAVAILABLE" : "PUBLISH_FAILED",
          `rofl-appd answered HTTP ${response.status}: ${response.body.slice(0, 200)}`,
        );
      let parsed: { data?: unknown };
      try {
        parsed = JSON.parse(response.body) as { data?: unknown };
      } catch {
        throw new IoError("PUBLISH_FAILED", "rofl-appd answered with something that is not JSON");
      }
      if (typeof parsed.data !== "string") throw new IoError("PUBLISH_FAILED", "rofl-appd answer has no `data`");
      const result = decodeCallResult(parsed.data);
      if ("fail" in result) {
        const f = result.fail;
        const code: ErrorCode = f.module === "evm" ? "PUBLISH_REVERTED" : "PUBLISH_FAILED";
        // The EVM module reports a revert as "reverted: <base64 revert data>"; keep the data so the custom error
        // can be decoded (a bad record is split off, a refused origin is retried).
        const revert = f.module === "evm" ? /reverted: ([A-Za-z0-9+/=]+)/.exec(f.message ?? "")?.[1] : undefined;
        throw new VerificationError(code, `call failed in module ${f.module} (code ${f.code}): ${f.message ?? ""}`, {
          details: {
            module: f.module,
            failCode: f.code,
            ...(revert === undefined ? {} : { data: `0x${Buffer.from(revert, "base64").toString("hex")}` }),
          },
        });
      }
      if ("unknown" in result)
        throw new IoError("PUBLISH_FAILED", "rofl-appd returned an undecrypted (unknown) call result");
      if (!("ok" in result)) throw new IoError("PUBLISH_FAILED", "rofl-appd returned an unknown call result shape");
      return { txHash: null, block: null, gasUsed: null };
    },
  };
}

function postUnix(
  socketPath: string,
  urlPath: string,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path: urlPath,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), host: "localhost" },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (e) => reject(new IoError("RPC_UNAVAILABLE", `rofl-appd: ${e.message}`, { cause: e })));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e) =>
      reject(new IoError("RPC_UNAVAILABLE", `rofl-appd at ${socketPath}: ${e.message}`, { cause: e })),
    );
    req.end(body);
  });
}
