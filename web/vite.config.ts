// Vite config of the explorer page: a static build in web/dist; the dev server forwards /rpc to the local chain
// (PROVENANT_RPC, default http://127.0.0.1:8545) and answers /config.json from deployments/, as `provenant explorer`.
// The page imports lib's browser-safe cores; importing a Node built-in anywhere in its graph fails the build.
import { builtinModules } from "node:module";

import { defineConfig, type Plugin } from "vite";

import { explorerConfig } from "../offchain/client/serve.ts";

/** Fails the build (page and workers) when any module of the page imports a Node built-in such as node:crypto. */
export function noNodeBuiltins(): Plugin {
  const builtins = new Set(builtinModules.map((m) => m.replace(/^node:/, "")));
  return {
    name: "provenant-no-node-builtins",
    enforce: "pre",
    resolveId(source, importer) {
      if (source.startsWith("node:") || builtins.has(source.split("/")[0]!)) {
        this.error(
          `${importer ?? "the page"} imports the Node built-in '${source}': the explorer runs in a browser, so it ` +
            "imports lib's browser-safe modules (lib/dsse/core.ts, lib/bundle/core.ts, lib/oms/digest.ts, …) only",
        );
      }
      return null;
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 1024 },
  // Workers are ES modules so that hash-wasm loads lazily (only where a range streams) as its own chunk.
  worker: { format: "es", plugins: () => [noNodeBuiltins()] },
  server: {
    host: "127.0.0.1",
    proxy: { "/rpc": { target: process.env.PROVENANT_RPC ?? "http://127.0.0.1:8545", ignorePath: true } },
  },
  preview: { host: "127.0.0.1" },
  plugins: [
    noNodeBuiltins(),
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
