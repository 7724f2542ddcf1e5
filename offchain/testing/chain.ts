// Test helpers: the in-process Hardhat chain (scripts/dev-chain.ts) and a freshly deployed ModelRegistry, deployed
// with ethers' ContractFactory from lib/registry/abi.ts and a Hardhat development key that gets PUBLISHER_ROLE.
import { ContractFactory, JsonRpcProvider, NonceManager, Wallet, type Contract } from "ethers";

import { MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE } from "../../lib/registry/abi.ts";
import { DEV_PRIVATE_KEYS, startDevChain, type DevChain } from "../../scripts/dev-chain.ts";

export { DEV_PRIVATE_KEYS, startDevChain, type DevChain };

export interface DeployedRegistry {
  address: string;
  contract: Contract;
  provider: JsonRpcProvider;
  /** The key that holds PUBLISHER_ROLE. */
  publisherKey: string;
}

export async function deployRegistry(
  url: string,
  publisherKey: string = DEV_PRIVATE_KEYS[1],
): Promise<DeployedRegistry> {
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, batchMaxCount: 1 });
  const admin = new NonceManager(new Wallet(DEV_PRIVATE_KEYS[0], provider));
  const factory = new ContractFactory(MODEL_REGISTRY_ABI, MODEL_REGISTRY_BYTECODE, admin);
  const deployed = await factory.deploy(await admin.getAddress());
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const contract = deployed.connect(admin) as Contract;
  const role = (await contract.getFunction("PUBLISHER_ROLE")()) as string;
  const publisher = new Wallet(publisherKey);
  await (await contract.getFunction("grantRole")(role, publisher.address)).wait();
  return { address, contract: contract.connect(provider) as Contract, provider, publisherKey };
}
