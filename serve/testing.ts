// Test fixture for `provenant serve`: a real chain with a deployed registry, the tiny GGUF, an audit record of it
// published the way the verifier publishes (the publisher key, `publish`), the serving record of a running server
// (kind 3 with its log id, as the verifier will record an accepted serving bundle), revocation with the revoker key,
// and a bounded polling wait. Every transaction is sent with an explicit nonce read right before it and awaited with
// a timeout, one at a time per key; a fixture that fails to come up closes what it started and throws (it never
// leaves a chain running to hang the test file). Test-only: product code never imports it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { FetchRequest, JsonRpcProvider, Wallet, type Contract } from "ethers";

import { hashModel } from "../lib/oms/index.ts";
import { writeTinyModel } from "../enclave-job/model/tiny.ts";
import {
  DEV_PRIVATE_KEYS,
  deployRegistry,
  startDevChain,
  type DeployedRegistry,
  type DevChain,
} from "../offchain/testing/chain.ts";

export { tickingClock, waitFor } from "../offchain/testing/world.ts";

/** The fixed date the tests' services start at (the simulator's VCEK is dated around it). */
export const NOW = new Date("2026-02-02T10:00:00.000Z");

export interface ServeWorld {
  chain: DevChain;
  registry: DeployedRegistry;
  work: string;
  modelPath: string;
  modelRoot: string;
  /**
   * The servers' anchoring key: another account with PUBLISHER_ROLE (as the verifier's key would be), so that the
   * fixture's own publishing (the verifier's part) never races a server for a nonce.
   */
  anchorKey: string;
  /** Publishes a record of the tiny model: an audit (kind 2) by default; returns its manifest digest. */
  publishModelRecord(kind?: 1 | 2, manifestDigest?: string): Promise<string>;
  /**
   * Publishes the serving record (kind 3) of a serving identity, as the verifier does for its bundle; with
   * `measurementHash` (SHA-256 of the bundle's report MEASUREMENT) the record matches the bundle as the explorer checks it.
   */
  publishServing(servingManifest: string, logId: string, measurementHash?: string): Promise<void>;
  /** Revokes a record with the revoker key (development key 0). */
  revoke(manifestDigest: string, reason: string): Promise<void>;
  close(): Promise<void>;
}

const hex32 = (hex: string): string => `0x${hex.replace(/^0x/, "")}`;

/** Bound on each chain call and each transaction's mining: the in-process chain answers in milliseconds. */
const CHAIN_TIMEOUT_MS = 30_000;

let counter = 0;

export async function createServeWorld(prefix: string): Promise<ServeWorld> {
  const started: (() => Promise<void> | void)[] = [];
  const closeStarted = async (): Promise<void> => {
    for (const close of started.splice(0).reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  try {
    const chain = await startDevChain();
    started.push(() => chain.close());
    const registry = await deployRegistry(chain.url);
    started.push(() => registry.provider.destroy());
    const work = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
    started.push(() => rmSync(work, { recursive: true, force: true }));
    const modelPath = path.join(work, "tiny.gguf");
    await writeTinyModel(modelPath);
    const modelRoot = (await hashModel(modelPath)).rootDigest;
    // A provider without a response cache and with a request timeout: a fresh Wallet on a caching provider reuses the
    // nonce it read before the deployment's last transaction ("nonce has already been used"), and a stuck call must
    // fail the test, not hang it.
    const request = new FetchRequest(chain.url);
    request.timeout = CHAIN_TIMEOUT_MS;
    const provider = new JsonRpcProvider(request, undefined, {
      staticNetwork: true,
      batchMaxCount: 1,
      cacheTimeout: -1,
    });
    started.push(() => provider.destroy());
    const publisher = new Wallet(registry.publisherKey, provider);
    const revoker = new Wallet(DEV_PRIVATE_KEYS[0], provider);
    const asPublisher = registry.contract.connect(publisher) as Contract;
    const asRevoker = registry.contract.connect(revoker) as Contract;
    const anchorKey = DEV_PRIVATE_KEYS[3];
    // One transaction at a time per key, each with the nonce the chain gives for the key right before it (tests also
    // send with these keys through the CLI, so no nonce is kept here), mined before the next one is sent.
    const queues = new Map<string, Promise<unknown>>();
    const send = (wallet: Wallet, contract: Contract, fn: string, args: unknown[]): Promise<void> => {
      const run = async (): Promise<void> => {
        const nonce = await provider.getTransactionCount(wallet.address, "pending");
        const tx = (await contract.getFunction(fn)(...args, { nonce })) as {
          wait(confirms?: number, timeout?: number): Promise<unknown>;
        };
        await tx.wait(1, CHAIN_TIMEOUT_MS);
      };
      const next = (queues.get(wallet.address) ?? Promise.resolve()).then(run, run);
      queues.set(
        wallet.address,
        next.catch(() => undefined),
      );
      return next;
    };
    const role = (await registry.contract.getFunction("PUBLISHER_ROLE")()) as string;
    await send(revoker, asRevoker, "grantRole", [role, new Wallet(anchorKey).address]);
    const publish = (item: unknown[]): Promise<void> => send(publisher, asPublisher, "publish", [[item]]);
    return {
      chain,
      registry,
      work,
      modelPath,
      modelRoot,
      anchorKey,
      async publishModelRecord(kind = 2, manifestDigest) {
        counter += 1;
        const digest = manifestDigest ?? (counter.toString(16).padStart(2, "0") + "5e").repeat(16).slice(0, 64);
        const parent = kind === 1 ? hex32("ba".repeat(32)) : hex32("00".repeat(32));
        await publish([
          hex32(modelRoot),
          hex32(digest),
          parent,
          hex32("11".repeat(32)),
          hex32("22".repeat(32)),
          0n,
          kind,
        ]);
        return digest;
      },
      async publishServing(servingManifest, logId, measurementHash = "11".repeat(32)) {
        await publish([
          hex32(modelRoot),
          hex32(servingManifest),
          hex32(logId),
          hex32(measurementHash),
          hex32("22".repeat(32)),
          0n,
          3,
        ]);
      },
      async revoke(manifestDigest, reason) {
        await send(revoker, asRevoker, "revoke", [hex32(manifestDigest), reason]);
      },
      close: closeStarted,
    };
  } catch (error) {
    await closeStarted();
    throw error;
  }
}

/** Reads an SSE body into its `data:` payloads (bounded). */
export async function readSse(response: Response, maxEvents = 10_000): Promise<string[]> {
  const text = await response.text();
  const events = text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
  if (events.length > maxEvents) throw new Error(`more than ${maxEvents} events`);
  return events;
}
