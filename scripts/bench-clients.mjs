// Minimal MCP clients for `npm run bench` (bench-proxy.mjs): each era over HTTP (fetch) and over stdio
// (one JSON-RPC message per line), doing the same small work on both sides of a comparison, so a
// measured difference is mcp-auth's own and not one client library's against another's.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const LEGACY = "2025-11-25";
const MODERN = "2026-07-28";
const META = { "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "bench", version: "0" } };
const INITIALIZE = { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "bench-legacy", version: "0" } };

/** A JSON body, or the data of an SSE body's events. */
function parseAnswer(text) {
  const json = text.trimStart().startsWith("{") ? text : text.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
  return JSON.parse(json);
}

/**
 * An MCP client over Streamable HTTP with `Authorization: Bearer <bearer>`. A legacy one says
 * initialize (and notifications/initialized) first and then sends its session id and version; a
 * 2026-07-28 one sends `_meta` and the request-metadata headers on each request.
 */
export async function httpClient(url, bearer, era) {
  const base = { authorization: `Bearer ${bearer}`, accept: "application/json, text/event-stream", "content-type": "application/json" };
  let id = 0;
  const post = async (headers, body) => {
    const res = await fetch(url, { method: "POST", headers: { ...base, ...headers }, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${res.status}: ${text.slice(0, 200)}`);
    return { res, m: text ? parseAnswer(text) : undefined };
  };
  let session = {};
  if (era === "legacy") {
    const { res } = await post({}, { jsonrpc: "2.0", id: ++id, method: "initialize", params: INITIALIZE });
    const sid = res.headers.get("mcp-session-id");
    session = { "mcp-protocol-version": LEGACY, ...(sid ? { "mcp-session-id": sid } : {}) };
    await post(session, { jsonrpc: "2.0", method: "notifications/initialized" });
  }
  return {
    async list() {
      const { m } = era === "legacy"
        ? await post(session, { jsonrpc: "2.0", id: ++id, method: "tools/list" })
        : await post({ "mcp-protocol-version": MODERN, "mcp-method": "tools/list" }, { jsonrpc: "2.0", id: ++id, method: "tools/list", params: { _meta: META } });
      if (m.error) throw new Error(JSON.stringify(m.error));
      return m.result;
    },
    async close() {
      if (session["mcp-session-id"]) await fetch(url, { method: "DELETE", headers: { ...base, ...session } }).catch(() => {});
    },
  };
}

/** An MCP client of a stdio server (`command args`), one message per line; legacy says initialize first. */
export async function stdioClient(command, args, env, era) {
  const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "inherit"] });
  const owed = new Map();
  createInterface({ input: child.stdout }).on("line", (l) => {
    const m = JSON.parse(l);
    owed.get(m.id)?.(m);
    owed.delete(m.id);
  });
  let id = 0;
  const request = (method, params) => {
    const n = ++id;
    const p = new Promise((resolve, reject) => owed.set(n, (m) => (m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result))));
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: n, method, ...(params ? { params } : {}) }) + "\n");
    return p;
  };
  if (era === "legacy") {
    await request("initialize", INITIALIZE);
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
  }
  return {
    pid: child.pid,
    list: () => (era === "legacy" ? request("tools/list") : request("tools/list", { _meta: META })),
    close: async () => {
      child.stdin.end();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    },
  };
}
