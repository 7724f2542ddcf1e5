// Networks the client and the explorer know by name: their chain id and a public RPC endpoint. The registry
// address comes from deployments/<network>.json (Node) or from the explorer's config (browser).

export interface NetworkInfo {
  name: string;
  chainId: number;
  rpcUrl: string;
  /** Public nodes of Sapphire refuse eth_getLogs over more than 100 blocks. */
  logRange: number;
}

export const NETWORKS: Readonly<Record<string, NetworkInfo>> = {
  localhost: { name: "localhost", chainId: 31337, rpcUrl: "http://127.0.0.1:8545", logRange: 10_000 },
  "sapphire-localnet": { name: "sapphire-localnet", chainId: 23293, rpcUrl: "http://127.0.0.1:8545", logRange: 100 },
  "sapphire-testnet": {
    name: "sapphire-testnet",
    chainId: 23295,
    rpcUrl: "https://testnet.sapphire.oasis.io",
    logRange: 100,
  },
  sapphire: { name: "sapphire", chainId: 23294, rpcUrl: "https://sapphire.oasis.io", logRange: 100 },
};
