// The bounded node:http server under both HTTP APIs (the verifier's and `provenant serve`'s): header, request and
// socket timeouts enforced every second, header and connection caps, at most `maxConcurrent` requests answered at
// once (the rest get the caller's 503), malformed requests answered with a bare status and closed, and no error of a
// client's socket ever reaching the process. The routes are the caller's.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

import type { HttpLimits } from "./index.ts";

export interface GuardedServer {
  server: Server;
  /** http://host:port as bound (an IPv6 host in brackets). */
  url: string;
  close(): Promise<void>;
}

export interface GuardedServerOptions {
  limits: HttpLimits;
  listen: { host: string; port: number };
  /** Answers one request inside the concurrency bound; must not throw (callers wrap their routes in a guard). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Answers a request over `maxConcurrent` (503 with Retry-After; the body and metrics are the caller's). */
  busy(req: IncomingMessage, res: ServerResponse): void;
  /**
   * On close, how long answers in progress (a streamed completion) may take before their connections are cut;
   * 0 (the default) cuts every connection at once.
   */
  closeGraceMs?: number;
}

export async function startGuardedServer(options: GuardedServerOptions): Promise<GuardedServer> {
  const { limits } = options;
  let inFlight = 0;
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the two timeouts above are enforced (node's default is 30 s: a slow client would outlive them).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      inFlight += 1;
      let counted = true;
      const release = () => {
        if (counted) inFlight -= 1;
        counted = false;
      };
      res.once("close", release);
      res.once("finish", release);
      req.on("error", () => undefined);
      res.on("error", () => undefined);
      if (inFlight > limits.maxConcurrent) {
        req.resume();
        return options.busy(req, res);
      }
      options.handle(req, res);
    },
  );
  server.maxHeadersCount = limits.maxHeaders;
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.socketTimeoutMs, (socket: Socket) => socket.destroy());
  // A malformed request (bad method token, bad header, header too large, a slow client's timeout): answer if the
  // socket still can, then close it; never an uncaught error.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && !socket.destroyed) {
      const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const reason =
        status === 431 ? "Request Header Fields Too Large" : status === 408 ? "Request Timeout" : "Bad Request";
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  server.on("error", () => undefined);
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const graceMs = options.closeGraceMs ?? 0;
  return {
    server,
    url: `http://${host}:${address.port}`,
    async close() {
      if (graceMs <= 0) server.closeAllConnections();
      else server.closeIdleConnections();
      await new Promise<void>((resolve) => {
        const force = graceMs > 0 ? setTimeout(() => server.closeAllConnections(), graceMs) : undefined;
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
