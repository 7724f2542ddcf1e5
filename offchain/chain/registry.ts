// The registry contract as the verifier sees it, with the ABI from lib/registry/abi.ts (never from artifacts/).
import { Contract, type JsonRpcProvider, type Signer } from "ethers";

import { IoError } from "../../lib/errors.ts";
import { MODEL_REGISTRY_ABI } from "../../lib/registry/abi.ts";
import { toChainError } from "./index.ts";

/** The registry with the functions the verifier uses. */
export function registryContract(address: string, runner: JsonRpcProvider | Signer): Contract {
  return new Contract(address, MODEL_REGISTRY_ABI, runner);
}

/** Checks that `address` holds code and answers like a registry; REGISTRY_NOT_FOUND otherwise. */
export async function assertRegistry(provider: JsonRpcProvider, address: string): Promise<void> {
  let code: string;
  try {
    code = await provider.getCode(address);
  } catch (error) {
    throw toChainError(error, "reading registry code");
  }
  if (code === "0x") throw new IoError("REGISTRY_NOT_FOUND", `no contract at ${address}`);
}
