// `provenant registry revoke`: the off-switch. Revokes a record (an audit, a fine-tune or a serving record) in the
// registry with a REVOKER_ROLE key; every `provenant serve` of that model (or of that serving record) refuses requests
// with MODEL_REVOKED within one check interval. The chain is read first: an unknown manifest or a key without the
// role is refused before any transaction, and revoking twice reports the first revocation instead of reverting.
import { Interface } from "ethers";

import { defineCommand, requiredOption, type Command } from "../lib/cli/index.ts";
import { PolicyError, UsageError, VerificationError } from "../lib/errors.ts";
import { MODEL_REGISTRY_ABI } from "../lib/registry/abi.ts";

const REVOKE_USAGE =
  "provenant registry revoke <manifestDigest> --reason <text> [--rpc <url>] [--registry <address>] " +
  "[--network <name>] [--key-file <file>] [--json]";

/** Longest reason accepted (bytes of UTF-8): it is calldata and an event field, paid for by the revoker. */
export const MAX_REASON_BYTES = 1024;
/** Explicit gas for revoke(): ~33,000 with a short reason, plus calldata and log data for a long one. */
const REVOKE_GAS_LIMIT = 200_000n;
const KIND_NAMES: Readonly<Record<number, string>> = { 1: "finetune", 2: "audit", 3: "serving" };

const registryInterface = new Interface(MODEL_REGISTRY_ABI);

const revoke = defineCommand({
  path: ["registry", "revoke"],
  summary: "revoke a record in the registry (the off-switch: provenant serve refuses a revoked model)",
  usage: REVOKE_USAGE,
  positionals: ["manifestDigest"],
  options: {
    reason: { type: "string" },
    rpc: { type: "string" },
    registry: { type: "string" },
    network: { type: "string" },
    "key-file": { type: "string" },
  },
  async run({ values, positionals, io }) {
    const { toBytes32 } = await import("../offchain/client/core.ts");
    const digest = toBytes32(positionals[0]!, "manifestDigest");
    const reason = requiredOption(values.reason, "reason", REVOKE_USAGE);
    const reasonBytes = Buffer.byteLength(reason, "utf8");
    const control = [...reason].some((ch) => {
      const c = ch.charCodeAt(0);
      return (c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f;
    });
    if (reasonBytes > MAX_REASON_BYTES || reason.trim() === "" || control)
      throw new UsageError(`--reason must be 1 to ${MAX_REASON_BYTES} bytes of text without control characters`);
    // --rpc/--registry/--network, then PROVENANT_RPC/PROVENANT_REGISTRY/PROVENANT_NETWORK, then localhost.
    const network = values.network ?? io.env.PROVENANT_NETWORK;
    let address = values.registry ?? io.env.PROVENANT_REGISTRY;
    let rpcUrl = values.rpc ?? io.env.PROVENANT_RPC;
    const { NETWORKS, readDeployment } = await import("../offchain/client/index.ts");
    const named = network ?? (address === undefined ? "localhost" : undefined);
    if (named !== undefined) {
      address ??= (await readDeployment(named)).address;
      rpcUrl ??= NETWORKS[named]?.rpcUrl;
    }
    if (rpcUrl === undefined)
      throw new UsageError(`--rpc is needed for network ${String(named)}\nusage: ${REVOKE_USAGE}`);
    if (address === undefined || !/^0x[0-9a-fA-F]{40}$/.test(address))
      throw new UsageError(`--registry must be a 0x address\nusage: ${REVOKE_USAGE}`);
    const { readLocalSignerKey } = await import("../offchain/daemon.ts");
    const privateKey = await readLocalSignerKey(
      io,
      values["key-file"],
      "the revoker key comes from PROVENANT_PRIVATE_KEY or --key-file (a key with REVOKER_ROLE)",
    );

    const { createLocalSender, createProvider, redactUrl, toChainError } = await import("../offchain/chain/index.ts");
    const { assertRegistry, registryContract } = await import("../offchain/chain/registry.ts");
    const provider = createProvider(rpcUrl);
    try {
      await assertRegistry(provider, address);
      const sender = await createLocalSender(provider, privateKey);
      const contract = registryContract(address, provider);
      let record: [string, bigint, bigint, boolean];
      let allowed: boolean;
      try {
        record = (await contract.getFunction("recordOf")(digest)) as [string, bigint, bigint, boolean];
        const role = (await contract.getFunction("REVOKER_ROLE")()) as string;
        allowed = (await contract.getFunction("hasRole")(role, sender.address)) as boolean;
      } catch (error) {
        throw toChainError(error, "reading the registry");
      }
      const manifestDigest = digest.slice(2);
      const modelHash = record[0].slice(2).toLowerCase();
      if (/^0+$/.test(modelHash))
        throw new VerificationError("NOT_FOUND", `no record with manifest digest ${manifestDigest} in ${address}`, {
          details: { manifestDigest, registry: address },
        });
      const kind = KIND_NAMES[Number(record[2])] ?? `kind ${Number(record[2])}`;
      const fields = { manifestDigest, modelHash, kind, registry: address, rpc: redactUrl(rpcUrl) };
      if (record[3])
        return {
          ok: true,
          fields: { ...fields, alreadyRevoked: true, txHash: null },
          text: `${kind} record ${manifestDigest} of model ${modelHash} was already revoked`,
        };
      if (!allowed)
        throw new PolicyError("REGISTRY_UNAUTHORIZED", `${sender.address} does not hold REVOKER_ROLE in ${address}`, {
          details: { account: sender.address, registry: address },
        });
      const sent = await sender.send({
        to: address,
        data: registryInterface.encodeFunctionData("revoke", [digest, reason]),
        gasLimit: REVOKE_GAS_LIMIT,
      });
      return {
        ok: true,
        fields: {
          ...fields,
          alreadyRevoked: false,
          reason,
          txHash: sent.txHash,
          block: sent.block,
          gasUsed: sent.gasUsed?.toString() ?? null,
          revoker: sender.address,
        },
        text: `revoked ${kind} record ${manifestDigest} of model ${modelHash} in ${sent.txHash ?? "a transaction"} (block ${sent.block ?? "?"})`,
      };
    } finally {
      provider.destroy();
    }
  },
});

export const commands: readonly Command[] = [revoke];
