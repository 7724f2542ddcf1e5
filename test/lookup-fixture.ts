// A local chain with a deployed ModelRegistry and a few published records, shared by the lookup tests, the browser
// test and the lookup benchmark: a base model with an audit, a fine-tune of it (with an audit), a revoked audit.
import { createHash } from "node:crypto";

import { ContractFactory, JsonRpcProvider, NonceManager, Wallet, type Contract } from "ethers";

import type { CliIo, Command } from "../lib/cli/index.ts";
import { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE } from "../lib/registry/abi.ts";
import type { AttestationKind } from "../lib/registry/record.ts";
import { DEV_PRIVATE_KEYS, startDevChain, type DevChain } from "../lib/registry/dev-chain.ts";
import type { VerifierPolicy } from "../offchain/pipeline/index.ts";
import type { RunningService } from "../offchain/service.ts";
import type { MadeBundle } from "../offchain/testing/bundles.ts";
import type { DeployedRegistry } from "../offchain/testing/chain.ts";
import type { MadeGpuBundle } from "../offchain/testing/gpu-bundles.ts";
import type { IssuedReceipt, ServingBundle } from "../offchain/testing/serving.ts";

export interface PublishedItem {
  modelHash: string;
  manifestDigest: string;
  parentModelHash: string;
  measurementHash: string;
  policyDigest: string;
  reportedTcb: bigint;
  kind: AttestationKind;
}

export interface LookupFixture {
  chain: DevChain;
  address: string;
  registry: Contract;
  provider: JsonRpcProvider;
  baseModel: string;
  fineTunedModel: string;
  revokedModel: string;
  items: PublishedItem[];
  publish(items: PublishedItem[]): Promise<void>;
  revoke(manifestDigest: string, reason: string): Promise<void>;
  close(): Promise<void>;
}

/** Deterministic test digests: hex SHA-256 of a label. */
/** Runs the command of `commands` that argv names, in-process, and captures what it prints (JSON parsed when it is). */
export async function runCli(
  commands: readonly Command[],
  argv: string[],
): Promise<{ code: number; out: string; err: string; json: Record<string, unknown> }> {
  let out = "";
  let err = "";
  const io: CliIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    isTty: false,
    env: {},
    cwd: process.cwd(),
  };
  const command = commands.find((c) => c.path.every((w, i) => argv[i] === w));
  if (command === undefined) throw new Error(`no command for ${argv.join(" ")}`);
  const code = await command.run(argv.slice(command.path.length), io);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out) as Record<string, unknown>;
  } catch {
    // Not JSON: a table or a check list.
  }
  return { code, out, err, json };
}

export function digestOf(label: string): string {
  return createHash("sha256").update(label).digest("hex");
}

const ZERO = "0".repeat(64);

export function item(
  modelHash: string,
  manifestLabel: string,
  parentModelHash: string | null,
  extra: Partial<PublishedItem> = {},
): PublishedItem {
  return {
    modelHash,
    manifestDigest: digestOf(manifestLabel),
    parentModelHash: parentModelHash ?? ZERO,
    measurementHash: digestOf(`measurement ${manifestLabel}`),
    policyDigest: digestOf("policy"),
    reportedTcb: 0x1b_00_00_00_00_00_04_03n,
    kind: parentModelHash === null ? 2 : 1,
    ...extra,
  };
}

function toTuple(i: PublishedItem): unknown[] {
  const b = (h: string) => `0x${h.replace(/^0x/, "")}`;
  return [
    b(i.modelHash),
    b(i.manifestDigest),
    b(i.parentModelHash),
    b(i.measurementHash),
    b(i.policyDigest),
    i.reportedTcb,
    i.kind,
  ];
}

/** Starts the dev chain, deploys the registry from MODEL_REGISTRY_BYTECODE and publishes the standard records. */
export async function startLookupFixture(options: { port?: number; records?: boolean } = {}): Promise<LookupFixture> {
  const chain = await startDevChain(options.port === undefined ? {} : { port: options.port });
  const provider = new JsonRpcProvider(chain.url, undefined, { staticNetwork: true, batchStallTime: 0 });
  const admin = new NonceManager(new Wallet(DEV_PRIVATE_KEYS[0], provider));
  const factory = new ContractFactory(MODEL_REGISTRY_ABI as never, MODEL_REGISTRY_BYTECODE, admin);
  const deployed = await factory.deploy(await admin.getAddress(), 0); // admin, admin delay (s)
  await deployed.waitForDeployment();
  const registry = deployed as unknown as Contract;
  const address = await registry.getAddress();
  const me = await admin.getAddress();
  await (await registry.getFunction("grantRole")(await registry.getFunction("PUBLISHER_ROLE")(), me)).wait();
  await (await registry.getFunction("grantRole")(await registry.getFunction("REVOKER_ROLE")(), me)).wait();

  const publish = async (items: PublishedItem[]): Promise<void> => {
    await (await registry.getFunction("publish")(items.map(toTuple))).wait();
  };
  const revoke = async (manifestDigest: string, reason: string): Promise<void> => {
    await (await registry.getFunction("revoke")(`0x${manifestDigest}`, reason)).wait();
  };

  const baseModel = digestOf("base model");
  const fineTunedModel = digestOf("fine-tuned model");
  const revokedModel = digestOf("revoked model");
  const items = [
    item(baseModel, "audit of base", null),
    item(fineTunedModel, "fine-tune of base", baseModel),
    item(fineTunedModel, "audit of fine-tune", null),
    item(revokedModel, "audit of revoked", null),
  ];
  if (options.records !== false) {
    await publish(items.slice(0, 2));
    await publish(items.slice(2));
    await revoke(items[3]!.manifestDigest, "evaluation harness was tampered with");
  }
  return {
    chain,
    address,
    registry,
    provider,
    baseModel,
    fineTunedModel,
    revokedModel,
    items,
    publish,
    revoke,
    async close() {
      provider.destroy();
      await chain.close();
    },
  };
}

export interface TestBundle {
  bytes: Uint8Array;
  manifestDigest: string;
  measurementHash: string;
  item: PublishedItem;
}

/**
 * A provenance bundle for an audit of `modelHash`, signed with a fresh key (P-384 DER by default, or P-256 with
 * IEEE-P1363 signatures), and a report stub that binds the key and nonce as a real one would. Its SNP signature is
 * not real: the browser checks DSSE and binding only; the chain record stands for the verifier's full check.
 */
export async function makeTestBundle(
  modelHash: string,
  options: {
    curve?: "P-384" | "P-256";
    encoding?: "der" | "ieee-p1363";
    /** Rewrites the manifest's JSON text before it is signed (to make payloads a strict reader refuses). */
    payload?: (json: string) => string;
  } = {},
): Promise<TestBundle> {
  const { generateKeyPairSync, sign } = await import("node:crypto");
  const { buildEvalStatement } = await import("../lib/intoto/index.ts");
  const { INTOTO_PAYLOAD_TYPE, pae, keyIdOf } = await import("../lib/dsse/index.ts");
  const { BUNDLE_MEDIA_TYPE, manifestDigestOf, writeBundle } = await import("../lib/bundle/index.ts");
  const curve = options.curve ?? "P-384";
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: curve === "P-384" ? "secp384r1" : "prime256v1",
  });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const statement = buildEvalStatement({
    model: { name: "tiny.gguf", rootDigest: modelHash },
    suite: { name: "tiny-mc", digest: digestOf("suite") },
    harness: { name: "provenant", version: "0.1.0", digest: digestOf("harness") },
    metrics: [{ name: "accuracy", value: 0.75, sampleSize: 8, comparator: ">=", threshold: 0.5, passed: true }],
    startedOn: new Date("2026-11-21T10:00:00Z"),
    finishedOn: new Date("2026-11-21T10:05:00Z"),
  });
  const text = JSON.stringify(statement);
  const payload = Buffer.from(options.payload === undefined ? text : options.payload(text));
  const signature = sign(curve === "P-384" ? "sha384" : "sha256", pae(INTOTO_PAYLOAD_TYPE, payload), {
    key: privateKey,
    dsaEncoding: options.encoding ?? "der",
  });
  const envelope = {
    payloadType: INTOTO_PAYLOAD_TYPE,
    payload: payload.toString("base64"),
    signatures: [{ keyid: keyIdOf(publicKey), sig: signature.toString("base64") }],
  };
  const nonce = digestOf(`nonce ${modelHash}`);
  const report = Buffer.alloc(1184);
  report.writeUInt32LE(3, 0); // version 3
  report.writeBigUInt64LE(1n << 17n, 0x08); // guest policy: bit 17 is reserved and must be one (56860 Table 9)
  createHash("sha256").update(spki).digest().copy(report, 0x50);
  Buffer.from(nonce, "hex").copy(report, 0x70);
  const measurement = createHash("sha384").update(`measurement ${modelHash}`).digest();
  measurement.copy(report, 0x90);
  report.writeBigUInt64LE(0x1b_00_00_00_00_00_04_03n, 0x180);
  report[0x188] = 0x19; // family 19h
  report[0x189] = 0x11; // model 11h: Genoa
  const bytes = writeBundle({
    mediaType: BUNDLE_MEDIA_TYPE,
    envelopes: [envelope],
    signer: { publicKey: spki.toString("base64") },
    nonce,
    evidence: {
      cpu: { type: "sev-snp", report: report.toString("base64"), vcek: spki.toString("base64"), provider: "sim" },
    },
  });
  const manifestDigest = manifestDigestOf(envelope);
  const measurementHash = createHash("sha256").update(measurement).digest("hex");
  return {
    bytes,
    manifestDigest,
    measurementHash,
    item: {
      modelHash,
      manifestDigest,
      parentModelHash: ZERO,
      measurementHash,
      policyDigest: digestOf("policy"),
      reportedTcb: 0x1b_00_00_00_00_00_04_03n,
      kind: 2,
    },
  };
}

/** The fixed date the attested fixture's simulators mint at and its verifier's clock starts from. */
export const ATTESTED_NOW = new Date("2026-11-21T12:00:00Z");
/** The name the attested fixture's policy gives the simulator's launch measurement. */
export const SIM_MEASUREMENT_NAME = "provenant-job test image (simulator)";
/** The simulator's default MEASUREMENT (lib/snp/sim.ts): SHA-384 of "provenant-sim-measurement". */
export const SIM_MEASUREMENT = createHash("sha384").update("provenant-sim-measurement").digest("hex");

export interface AttestedFixture {
  chain: DevChain;
  registry: DeployedRegistry;
  /** The verifier service's HTTP API. */
  apiUrl: string;
  service: RunningService;
  policy: VerifierPolicy;
  policyDigest: string;
  /** An audit, a fine-tune, an audit with one simulated Hopper GPU, and a server of the audited model (kind 3). */
  audit: MadeBundle;
  finetune: MadeBundle;
  gpu: MadeGpuBundle;
  serving: ServingBundle;
  gpuDriver: string;
  gpuVbios: string;
  /** The checkpoint anchored for the serving log (two receipts). */
  checkpoint: { treeSize: number; rootHash: string };
  /** The two receipts of the serving log, as a completion returned them (with their salt, request and response). */
  receipts: IssuedReceipt[];
  /** Receipt `i` as a receipt file with its inclusion proof against the anchored checkpoint (`{receipt, proof}`). */
  receiptFile(i: number): string;
  /** Hex manifest digest of each bundle (the record's manifestDigest). */
  manifestOf(bytes: Uint8Array): string;
  work: string;
  /** Stops the service and starts it again on the same data directory (a new port: `apiUrl` and `service` change). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real chain and registry, the verifier service running in process (real git, SQLite, HTTP on 127.0.0.1:0) under a
 * development policy that names the simulator's measurement and the job code, and four bundles it verified and
 * published: an audit, a fine-tune, an audit with simulated GPU evidence, and a serving statement for the audited
 * model, whose log then gets an anchored checkpoint. Everything is minted at ATTESTED_NOW.
 */
export async function startAttestedFixture(): Promise<AttestedFixture> {
  // Whatever was started is stopped again, in reverse order, when a step fails (or on close): nothing keeps the
  // test process alive after a failed before().
  const cleanups: (() => unknown)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
  };
  try {
    return await buildAttestedFixture(cleanups, cleanup);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function buildAttestedFixture(cleanups: (() => unknown)[], close: () => Promise<void>): Promise<AttestedFixture> {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const { Contract, NonceManager, Wallet } = await import("ethers");
  const pino = (await import("pino")).default;
  const { createLocalSender } = await import("../offchain/chain/index.ts");
  const { parseVerifierPolicy, policyDigest } = await import("../offchain/pipeline/index.ts");
  const { startService } = await import("../offchain/service.ts");
  const { createBundleFactory } = await import("../offchain/testing/bundles.ts");
  const { deployRegistry, startDevChain } = await import("../offchain/testing/chain.ts");
  const { createTestRepo } = await import("../offchain/testing/git.ts");
  const { createGpuBundleFactory } = await import("../offchain/testing/gpu-bundles.ts");
  const { makeServingBundle, modelOfBundle, TestReceiptLog } = await import("../offchain/testing/serving.ts");
  const { tickingClock, waitFor } = await import("../offchain/testing/world.ts");
  const { manifestDigestOf, readBundle } = await import("../lib/bundle/index.ts");
  const { DEFAULT_SNP_POLICY, snpPolicyToJson } = await import("../lib/snp/index.ts");

  const work = await mkdtemp(path.join(tmpdir(), "provenant-attested-"));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  const keyDir = path.join(work, "keys");
  const chain = await startDevChain();
  cleanups.push(() => chain.close());
  const registry = await deployRegistry(chain.url);
  cleanups.push(() => registry.provider.destroy());
  const factory = await createBundleFactory({ keyDir, now: ATTESTED_NOW });
  const gpuFactory = await createGpuBundleFactory({ now: ATTESTED_NOW, keyDir });
  const audit = factory.make({ seed: "attested audit", kind: "eval" });
  const finetune = factory.make({ seed: "attested finetune", kind: "finetune" });
  const gpu = gpuFactory.make({ seed: "attested gpu" });
  const manifestOf = (bytes: Uint8Array): string => {
    const bundle = readBundle(bytes);
    return manifestDigestOf(bundle.envelopes[0]!);
  };
  const serving = makeServingBundle(factory, {
    seed: "attested server",
    admission: manifestOf(audit.bytes),
    model: modelOfBundle(audit.bundle),
  });
  const hex = (s: string) => createHash("sha256").update(s).digest("hex");
  const policy = parseVerifierPolicy({
    snp: {
      ...snpPolicyToJson(DEFAULT_SNP_POLICY),
      measurements: [{ name: SIM_MEASUREMENT_NAME, value: SIM_MEASUREMENT }],
    },
    trustedRoots: [factory.sim.rootFingerprint],
    gpu: gpuFactory.policyJson.gpu,
    acceptedKinds: ["eval", "finetune", "serving"],
    jobCodeDigests: [
      { name: "provenant harness 0.1.0 (test)", value: `sha256:${hex("harness")}` },
      { name: "fine-tune job (test)", value: `sha256:${hex("job-attested finetune")}` },
      { name: "server (test)", value: `sha256:${hex("job-code-attested server")}` },
    ],
    development: true,
  });
  const repo = createTestRepo();
  cleanups.push(() => repo.cleanup());
  repo.write("bundles/audit.provenance.json", audit.bytes);
  repo.write("bundles/finetune.provenance.json", finetune.bytes);
  repo.write("bundles/gpu.provenance.json", gpu.bytes);
  repo.write("bundles/serving.provenance.json", serving.bytes);
  repo.commitAndPush("four bundles");
  const serviceOptions = {
    repos: [repo.origin],
    rpcUrl: chain.url,
    registry: registry.address,
    policy,
    createSender: (provider) => createLocalSender(provider, registry.publisherKey),
    dataDir: path.join(work, "verifier"),
    listen: { host: "127.0.0.1", port: 0 },
    intervalMs: 200,
    maxWaitMs: 50,
    workers: 1,
    logger: pino({ level: process.env.LOOKUP_DEBUG === undefined ? "silent" : "info" }),
    now: tickingClock(ATTESTED_NOW),
  } satisfies Parameters<typeof startService>[0];
  let service = await startService(serviceOptions);
  cleanups.push(() => service.stop());
  await waitFor(
    "four records published",
    () => {
      const counts = service.store.countByStatus();
      if (counts.rejected > 0 || counts.failed > 0)
        throw new Error(`refused: ${JSON.stringify(service.store.listBundles().map((b) => b.errors))}`);
      return counts.published === 4 ? true : undefined;
    },
    120_000,
  );
  // Two receipts of the server, anchored as the log's checkpoint (the service is idle: its key is free).
  const log = new TestReceiptLog(serving);
  log.issue(ATTESTED_NOW);
  log.issue(new Date(ATTESTED_NOW.getTime() + 1000));
  const checkpoint = log.checkpoint(2);
  const publisher = new Contract(
    registry.address,
    registry.contract.interface,
    new NonceManager(new Wallet(registry.publisherKey, registry.provider)),
  );
  await (await publisher.getFunction("anchorCheckpoint")(`0x${serving.logId}`, 2, `0x${checkpoint.rootHash}`)).wait();
  const fixture: AttestedFixture = {
    chain,
    registry,
    apiUrl: service.apiUrl!,
    service,
    policy,
    policyDigest: policyDigest(policy),
    audit,
    finetune,
    gpu,
    serving,
    gpuDriver: gpuFactory.gpu.hopper.driverVersion,
    gpuVbios: gpuFactory.gpu.hopper.vbiosVersion,
    checkpoint: { treeSize: 2, rootHash: checkpoint.rootHash },
    receipts: log.receipts,
    receiptFile: (i) =>
      JSON.stringify({
        receipt: log.receipts[i]!.object,
        proof: {
          logId: serving.logId,
          leafIndex: log.receipts[i]!.object.leafIndex,
          treeSize: 2,
          rootHash: checkpoint.rootHash,
          proof: log.proof(log.receipts[i]!.object.leafIndex, 2),
          checkpoint: { note: checkpoint.note, signerLogId: serving.logId },
        },
      }),
    manifestOf,
    work,
    async restart() {
      await service.stop();
      service = await startService(serviceOptions);
      fixture.service = service;
      fixture.apiUrl = service.apiUrl!;
    },
    close,
  };
  return fixture;
}
