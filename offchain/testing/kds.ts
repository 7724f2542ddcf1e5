// Test helper: a local HTTP server that answers like AMD's Key Distribution Service (spec 57230 §4): the product's
// `cert_chain` (PEM, ASK|ASVK then ARK), a VCEK by hwID (DER) and the CRL, 404 otherwise. It can be switched to
// answer 503 or to refuse connections, and records every path asked, so tests run the real fetch path offline.
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

import type { Product } from "../../lib/snp/index.ts";

export interface KdsChain {
  product: Product;
  signer?: "vcek" | "vlek";
  /** DER ASK|ASVK then ARK. */
  chain: readonly Uint8Array[];
}

export interface FakeKds {
  /** Base URL to give `createCertificateStore({ kdsBaseUrl })`. */
  url: string;
  /** Every request path (with query), in order. */
  requests: string[];
  /** "up" answers, "busy" answers 503 to everything, "down" closes every connection without answering. */
  mode: "up" | "busy" | "down";
  /** The CRL (DER) served at every `{vcek|vlek}/v1/{product}/crl`; change it to serve a newer one. */
  crl: Uint8Array | undefined;
  close(): Promise<void>;
}

export const toPem = (der: Uint8Array): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`;

export async function startFakeKds(
  options: { chains?: readonly KdsChain[]; vceks?: Readonly<Record<string, Uint8Array>>; crl?: Uint8Array } = {},
): Promise<FakeKds> {
  const sockets = new Set<Socket>();
  const state: FakeKds = {
    url: "",
    requests: [],
    mode: "up",
    crl: options.crl,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    state.requests.push(path);
    if (state.mode === "down") {
      req.socket.destroy();
      return;
    }
    if (state.mode === "busy") {
      res.writeHead(503, { "retry-after": "0" }).end("busy");
      return;
    }
    const m = /^\/(vcek|vlek)\/v1\/(Milan|Genoa|Turin)\/([^?]+)/.exec(path);
    if (m !== null) {
      const [, signer, product, rest] = m;
      if (rest === "cert_chain") {
        const found = options.chains?.find((c) => c.product === product && (c.signer ?? "vcek") === signer);
        if (found !== undefined) {
          res.writeHead(200, { "content-type": "application/x-pem-file" }).end(found.chain.map(toPem).join(""));
          return;
        }
      } else if (rest === "crl" && state.crl !== undefined) {
        res.writeHead(200, { "content-type": "application/pkix-crl" }).end(Buffer.from(state.crl));
        return;
      } else {
        const vcek = options.vceks?.[rest!.toLowerCase()];
        if (vcek !== undefined) {
          res.writeHead(200, { "content-type": "application/pkix-cert" }).end(Buffer.from(vcek));
          return;
        }
      }
    }
    res.writeHead(404).end("not found");
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
