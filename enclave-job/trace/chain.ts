// The block that recorded a manifest: its hash is the spot-check's randomness (the trainer committed to its trace
// root before that block existed). Found through the registry's AttestationRecorded event (the offchain client scans
// the logs within the node's range limits) and read with ethers.
import { JsonRpcProvider } from "ethers";

import { IoError, VerificationError } from "../../lib/errors.ts";
import type { Entropy } from "./spot-check.ts";

export async function recordingBlock(
  rpcUrl: string,
  registry: string,
  manifestDigest: string,
  options: { timeoutMs?: number } = {},
): Promise<Entropy & { source: "chain" }> {
  const { createRegistryClient } = await import("../../offchain/client/index.ts");
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true });
  try {
    const client = await createRegistryClient({
      provider,
      address: registry,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    try {
      const record = await client.record(manifestDigest);
      if (record === null)
        throw new VerificationError("NOT_FOUND", `manifest ${manifestDigest} is not recorded in registry ${registry}`);
      if (record.blockNumber === null || record.txHash === null)
        throw new IoError("RPC_UNAVAILABLE", `the AttestationRecorded event of ${manifestDigest} could not be read`);
      const block = await provider.getBlock(record.blockNumber);
      if (block?.hash === null || block?.hash === undefined)
        throw new IoError("RPC_UNAVAILABLE", `block ${record.blockNumber} could not be read`);
      return {
        source: "chain",
        chainId: client.chainId,
        blockNumber: record.blockNumber,
        blockHash: block.hash,
        txHash: record.txHash,
      };
    } finally {
      client.close();
    }
  } finally {
    provider.destroy();
  }
}
