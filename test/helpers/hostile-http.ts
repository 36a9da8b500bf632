import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from "node:net";

/**
 * Hostile or nosy HTTP parties on 127.0.0.1 (port 0) for the transport tests: a reverse proxy that
 * redirects chosen requests elsewhere, a server that records what reached it, a forward proxy that
 * logs what it carries, a proxy that drops every CONNECT, and a server streaming an endless body.
 */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Running {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function listen(server: Server | TcpServer): Promise<{ port: number; url: string; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        if ("closeAllConnections" in server) server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => resolve(body));
    req.on("error", () => resolve(body));
  });
}

/** Records every request and answers 200 `{}`: the "other port" a redirect points to. */
export async function recorder(): Promise<Running & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: await readBody(req) });
    res.setHeader("content-type", "application/json");
    res.end("{}");
  });
  return { ...(await listen(server)), seen };
}

/** Forwards everything to `target`, except requests `redirect(req)` picks: those get a 307 to `location`. */
export async function redirectingFront(target: string, redirect: (req: IncomingMessage) => boolean, location: string): Promise<Running & { redirected: string[] }> {
  const redirected: string[] = [];
  const t = new URL(target);
  const server = createServer((req, res) => {
    if (redirect(req)) {
      redirected.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(307, { location, "content-type": "text/plain" });
      return void res.end("moved");
    }
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  return { ...(await listen(server)), redirected };
}

/**
 * A forward proxy that logs every request line it is given (absolute-form and CONNECT) and answers
 * itself: it never contacts anything (502 to plain requests, 403 to CONNECT).
 */
export async function loggingProxy(): Promise<Running & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: await readBody(req) });
    res.writeHead(502, { "content-type": "text/plain" });
    res.end("logging proxy: not forwarding");
  });
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    seen.push({ method: "CONNECT", url: req.url ?? "", headers: req.headers, body: "" });
    socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
  });
  return { ...(await listen(server)), seen };
}

/** Accepts TCP, and destroys the socket as soon as a CONNECT arrives; counts connections. */
export async function droppingProxy(): Promise<Running & { connections: () => number }> {
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections++;
    socket.on("error", () => {});
    socket.on("data", (d) => {
      if (d.toString("latin1").startsWith("CONNECT ")) socket.destroy();
    });
  });
  return { ...(await listen(server)), connections: () => connections };
}

export interface Flood {
  /** Bytes the server managed to write before the client went away. */
  written: () => number;
  /** Resolves once the client closed the flooding connection. */
  closed: Promise<void>;
}

/**
 * Streams `total` bytes of a JSON string (with backpressure, so `written` is what the client took),
 * optionally announcing the size in Content-Length.
 */
export function flood(res: ServerResponse, total: number, opts: { prefix: string; contentLength?: boolean }): Flood {
  let written = 0;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  res.on("close", () => resolveClosed());
  res.writeHead(200, { "content-type": "application/json", ...(opts.contentLength ? { "content-length": String(total) } : {}) });
  const chunk = Buffer.alloc(64 * 1024, "a");
  const pump = () => {
    if (written === 0) {
      res.write(opts.prefix);
      written += opts.prefix.length;
    }
    while (written < total && !res.destroyed) {
      const n = Math.min(chunk.length, total - written);
      written += n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once("drain", pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
  return { written: () => written, closed };
}
