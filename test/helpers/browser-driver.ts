// The test run's browser driver: runs test/helpers/browser.mjs's page flows (browser-flow.mjs) in
// the run's main process, on one playwright connection to the shared Chromium, so that a sign-in
// costs browser.mjs a small HTTP request instead of loading playwright (about 0.5 s of CPU each).
//
//   POST /flow   {"url": "...", "options": FlowOptions}  → 200, application/x-ndjson:
//                {"stderr": "..."} / {"stdout": "..."} lines as the flow writes, then {"exit": 0|1}.
//                The flow runs in a context of its own; when the request's connection closes
//                before the end (browser.mjs killed), the flow is aborted and its context closed.
//   GET /flows   {"flows": [<url of each running flow>], "contexts": <open contexts>} (self-tests)
//
// Loopback only, port 0; global-setup.ts names it in .vitest/chromium.json beside the wsEndpoint.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, BrowserType } from "playwright-core";
import { ACTIONS, runFlow, type FlowOptions } from "./browser-flow.mjs";

export interface BrowserDriver {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Aborts the running flows, waits for their contexts to close, disconnects. */
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

export async function startBrowserDriver(chromium: BrowserType, wsEndpoint: string): Promise<BrowserDriver> {
  let connection: Promise<Browser> | undefined;
  /** The connection, made again if the previous one was lost. */
  const connect = (): Promise<Browser> =>
    (connection ??= chromium.connect(wsEndpoint).then(
      (b) => {
        b.on("disconnected", () => { connection = undefined; });
        return b;
      },
      (e: unknown) => {
        connection = undefined;
        throw e;
      },
    ));
  await connect();

  const flows = new Set<{ url: string; done: Promise<unknown> }>();

  async function flow(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) {
      body += chunk;
      if (body.length > MAX_BODY) return void res.writeHead(413).end();
    }
    const parsed = parseRequest(body);
    if (typeof parsed === "string") return void res.writeHead(400, { "content-type": "text/plain" }).end(`${parsed}\n`);
    const { url, options } = parsed;

    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    const send = (line: object) => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(line)}\n`);
    };
    const ac = new AbortController();
    res.on("close", () => { if (!res.writableFinished) ac.abort(); });
    if (res.destroyed || req.socket.destroyed) ac.abort(); // gone while we read the body
    const out = { stderr: (text: string) => send({ stderr: text }), stdout: (text: string) => send({ stdout: text }) };
    const done = connect().then(
      (browser) => runFlow(browser, url, options, out, ac.signal),
      (e: unknown) => {
        const t0 = options.startedAt ?? Date.now();
        out.stderr(`[browser] FAILED after ${Date.now() - t0} ms: the shared Chromium is gone: ${String((e as Error)?.message ?? e).split("\n")[0]}\n`);
        return 1;
      },
    );
    const entry = { url, done };
    flows.add(entry);
    try {
      const code = await done;
      if (!res.destroyed) res.end(`${JSON.stringify({ exit: code })}\n`);
    } finally {
      flows.delete(entry);
    }
  }

  const server = http.createServer((req, res) => {
    if (req.method === "POST" && req.url === "/flow") {
      flow(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
        console.error(`browser driver: ${String(e)}`);
      });
    } else if (req.method === "GET" && req.url === "/flows") {
      void connect().then(
        (b) => b.contexts().length,
        () => 0,
      ).then((contexts) => {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ flows: [...flows].map((f) => f.url), contexts }));
      });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.close();
      server.closeAllConnections(); // each running flow's response closes: the flow aborts
      await Promise.allSettled([...flows].map((f) => f.done));
      const b = await connection?.catch(() => undefined);
      await b?.close().catch(() => {});
    },
  };
}

/** The request body, checked: {url, options} or why not. */
function parseRequest(body: string): { url: string; options: FlowOptions } | string {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return "body is not JSON";
  }
  if (!v || typeof v !== "object") return "body is not an object";
  const { url, options = {} } = v as { url?: unknown; options?: Record<string, unknown> };
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return "url must be an http(s) URL";
  if (!options || typeof options !== "object") return "options must be an object";
  const o: FlowOptions = {};
  for (const k of ["login", "password", "userCode", "screenshot"] as const) {
    if (options[k] === undefined) continue;
    if (typeof options[k] !== "string") return `${k} must be a string`;
    o[k] = options[k];
  }
  for (const k of ["timeoutMs", "startedAt"] as const) {
    if (options[k] === undefined) continue;
    if (typeof options[k] !== "number" || !Number.isFinite(options[k])) return `${k} must be a number`;
    o[k] = options[k];
  }
  for (const k of ["debug", "paste"] as const) {
    if (options[k] === undefined) continue;
    if (typeof options[k] !== "boolean") return `${k} must be a boolean`;
    o[k] = options[k];
  }
  if (options.action !== undefined) {
    if (typeof options.action !== "string" || !ACTIONS.includes(options.action)) return `action must be one of ${ACTIONS.join(", ")}`;
    o.action = options.action as FlowOptions["action"];
  }
  return { url, options: o };
}
