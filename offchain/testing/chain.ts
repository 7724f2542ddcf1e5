// Test helpers: the in-process Hardhat chain (lib/registry/dev-chain.ts) and a freshly deployed ModelRegistry,
// deployed by lib/registry/deploy.ts (what scripts/deploy.ts and the demo use) with Hardhat development key 0 as
// admin and another development key as publisher.
import { Contract, JsonRpcProvider, NonceManager, Wallet } from "ethers";

import { MODEL_REGISTRY_ABI } from "../../lib/registry/abi.ts";
import { deployRegistry as deployRegistryOn } from "../../lib/registry/deploy.ts";
import { DEV_PRIVATE_KEYS, startDevChain, type DevChain } from "../../lib/registry/dev-chain.ts";

export { DEV_PRIVATE_KEYS, startDevChain, type DevChain };

export interface DeployedRegistry {
  address: string;
  contract: Contract;
  provider: JsonRpcProvider;
  /** The key that holds PUBLISHER_ROLE. */
  publisherKey: string;
}

/** Deploys a registry on the chain at `url`: key 0 is admin (and revoker), `publisherKey` gets PUBLISHER_ROLE. */
export async function deployRegistry(
  url: string,
  publisherKey: string = DEV_PRIVATE_KEYS[1],
): Promise<DeployedRegistry> {
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
  const admin = new NonceManager(new Wallet(DEV_PRIVATE_KEYS[0], provider));
  const deployment = await deployRegistryOn({
    signer: admin,
    network: "test",
    publisher: new Wallet(publisherKey).address,
  });
  const contract = new Contract(deployment.address, MODEL_REGISTRY_ABI, provider);
  return { address: deployment.address, contract, provider, publisherKey };
}
