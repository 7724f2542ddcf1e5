// Vite config of the explorer page: a static build in web/dist; the dev server forwards /rpc to the local chain
// (PROVENANT_RPC, default http://127.0.0.1:8545) and answers /config.json from deployments/, as `provenant explorer`.
import { defineConfig } from "vite";

import { explorerConfig } from "../offchain/client/serve.ts";

export default defineConfig({
  root: import.meta.dirname,
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 1024 },
  server: {
    host: "127.0.0.1",
    proxy: { "/rpc": { target: process.env.PROVENANT_RPC ?? "http://127.0.0.1:8545", ignorePath: true } },
  },
  preview: { host: "127.0.0.1" },
  plugins: [
    {
      name: "provenant-config",
      configureServer(server) {
        server.middlewares.use("/config.json", (_req, res) => {
          void explorerConfig().then((config) => {
            res.setHeader("content-type", "application/json");
            res.end(JSON.stringify(config));
          });
        });
      },
    },
  ],
});
