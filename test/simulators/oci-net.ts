/**
 * Puts a simulated OCI identity domain at its real kind of name, https://idcs-<guid>.identity.oraclecloud.com,
 * without any name resolution or outside connection: the simulator speaks TLS on 127.0.0.1 (port 0)
 * with a throw-away certificate for *.identity.oraclecloud.com, and a forward proxy on 127.0.0.1
 * tunnels `CONNECT <that host>:443` to it. Clients reach the domain the way users behind a proxy do —
 * HTTPS_PROXY plus a CA (`--ca-file`, or NODE_EXTRA_CA_CERTS for a spawned CLI) — so every URL, host
 * check and issuer comparison sees the real host name. Any other CONNECT (Oracle's own
 * identity.oraclecloud.com included) is refused with 403 and recorded in `refused`, and so is any
 * plain-http request: nothing ever leaves the machine.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";
import { readBody } from "./common.js";

export interface DomainHost {
  /** https://idcs-….identity.oraclecloud.com (no port: 443). */
  url: string;
  host: string;
  /** http://127.0.0.1:PORT, the proxy that alone knows where the domain is. */
  proxy: string;
  /** PEM of the certificate the domain presents (its own CA). */
  caFile: string;
  /** For a spawned CLI: HTTPS_PROXY and NODE_EXTRA_CA_CERTS. */
  env: NodeJS.ProcessEnv;
  /** A `--browser-command` that follows the authorization request through the proxy to the loopback callback. */
  browserCommand: string;
  /** Every CONNECT or plain request the proxy refused (host:port or URL), in order. */
  refused: string[];
  /** fetch for the test itself, through the proxy. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

const require_ = createRequire(import.meta.url);
let material: { dir: string; key: Buffer; cert: Buffer; caFile: string } | undefined;

/** One certificate per test process: EC P-256, valid a day, for *.identity.oraclecloud.com. */
function certificate(): NonNullable<typeof material> {
  if (material) return material;
  const dir = mkdtempSync(join(tmpdir(), "mcp-auth-oci-tls-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=*.identity.oraclecloud.com", "-addext", "subjectAltName=DNS:*.identity.oraclecloud.com"], { stdio: "ignore" });
  material = { dir, key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")), caFile: join(dir, "cert.pem") };
  writeFileSync(join(dir, "browser.mjs"), browserScript());
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return material;
}

/**
 * The "browser": fetches the authorization URL through the proxy (the signed-in user approves at
 * once), then follows the redirect to the loopback callback directly, as a browser would.
 */
function browserScript(): string {
  const undici = pathToFileURL(require_.resolve("undici")).href;
  return `const { ProxyAgent, fetch } = await import(${JSON.stringify(undici)});
import { readFileSync } from "node:fs";
const url = process.argv[process.argv.length - 1];
const dispatcher = new ProxyAgent({ uri: process.env.HTTPS_PROXY, requestTls: { ca: readFileSync(process.env.NODE_EXTRA_CA_CERTS, "utf8") } });
try {
  const r = await fetch(url, { redirect: "manual", dispatcher });
  const to = r.headers.get("location");
  if (!to) throw new Error("the authorization endpoint answered " + r.status + " without a redirect");
  const cb = await globalThis.fetch(to);
  process.stderr.write("[oci-browser] " + cb.status + "\\n");
  process.exit(cb.status === 200 ? 0 : 1);
} catch (e) {
  process.stderr.write("[oci-browser] FAILED: " + e.message + "\\n");
  process.exit(1);
}
`;
}

export async function serveDomain(host: string, handler: (req: IncomingMessage, res: ServerResponse, raw: string) => Promise<void>, onError: (res: ServerResponse, e: unknown) => void): Promise<DomainHost> {
  const { key, cert, caFile, dir } = certificate();
  const tls = createHttpsServer({ key, cert }, (req, res) => {
    void (async () => handler(req, res, await readBody(req)))().catch((e: unknown) => (res.headersSent ? res.end() : onError(res, e)));
  });
  await new Promise<void>((r) => tls.listen(0, "127.0.0.1", r));
  const tlsPort = (tls.address() as AddressInfo).port;

  const refused: string[] = [];
  const tunnels = new Set<Socket>();
  const proxy = createHttpServer((req, res) => {
    refused.push(req.url ?? "");
    res.writeHead(502).end();
  });
  proxy.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    if ((req.url ?? "").toLowerCase() !== `${host}:443`) {
      refused.push(req.url ?? "");
      client.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    const upstream = connect(tlsPort, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      tunnels.add(s);
      s.on("error", () => {});
      s.on("close", () => tunnels.delete(s));
    }
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  let dispatcher: unknown;
  return {
    url: `https://${host}`,
    host,
    proxy: proxyUrl,
    caFile,
    env: { HTTPS_PROXY: proxyUrl, NODE_EXTRA_CA_CERTS: caFile },
    browserCommand: `${process.execPath} ${join(dir, "browser.mjs")}`,
    refused,
    async fetch(url, init) {
      const undici = await import("undici");
      dispatcher ??= new undici.ProxyAgent({ uri: proxyUrl, requestTls: { ca: cert.toString() } });
      const res = await undici.fetch(url, { ...(init as object), dispatcher } as never);
      return new Response(res.body as never, { status: res.status, headers: res.headers as never });
    },
    close: async () => {
      for (const s of tunnels) s.destroy();
      await (dispatcher as { close?: () => Promise<void> } | undefined)?.close?.();
      tls.closeAllConnections();
      proxy.closeAllConnections();
      await Promise.all([new Promise((r) => tls.close(r)), new Promise((r) => proxy.close(r))]);
    },
  };
}
