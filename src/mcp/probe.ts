import { markControl } from "../io/sanitize.js";

/**
 * What an MCP endpoint's answer to our `initialize` POST says about it, once a token was sent.
 *
 * The checks after a sign-in (doctor, the OpenProject and OctoPerf bootstraps) want to know one
 * thing: did the server take our token and answer as an MCP server? A JSON-RPC result says yes, and
 * so does a JSON-RPC *error*: a server that speaks only the stateless 2026-07-28 revision has no
 * `initialize` and answers our handshake with `400 Bad Request` and an `UnsupportedProtocolVersionError`
 * (-32022) that lists the versions it does speak, or with `404` and -32601 (method not found), or
 * with any other JSON-RPC error. It read the request past authentication, so the token was accepted.
 * A 401 or 403 is a refusal whatever its body; a 5xx is server trouble; anything without a JSON-RPC
 * envelope is not an MCP answer. Upstream: the 2026-07-28 specification, basic/versioning.mdx
 * ("Backward Compatibility") and basic/transports/streamable-http.mdx ("Protocol Version Header").
 */
export type McpAnswer =
  | { kind: "result"; status: number; serverName?: string; protocolVersion?: string }
  | { kind: "error"; status: number; code: number; message: string; supported?: string[] }
  | { kind: "refused"; status: number }
  | { kind: "none"; status: number };

/** MCP's UnsupportedProtocolVersionError code (2026-07-28 schema). */
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** Reads the server's answer: a JSON body, or an SSE stream whose events carry the response. */
export function readMcpAnswer(status: number, body: string): McpAnswer {
  if (status === 401 || status === 403) return { kind: "refused", status };
  if (status >= 500) return { kind: "none", status };
  const m = responseIn(body);
  if (m && "result" in m && m.result && typeof m.result === "object" && status < 300) {
    const r = m.result as Record<string, unknown>;
    const info = r.serverInfo as Record<string, unknown> | undefined;
    return {
      kind: "result",
      status,
      ...(typeof info?.name === "string" ? { serverName: text(info.name) } : {}),
      ...(typeof r.protocolVersion === "string" ? { protocolVersion: text(r.protocolVersion) } : {}),
    };
  }
  const e = m?.error as Record<string, unknown> | undefined;
  if (e && typeof e === "object" && Number.isInteger(e.code) && typeof e.message === "string") {
    const data = e.data as Record<string, unknown> | undefined;
    const supported = Array.isArray(data?.supported) ? data.supported.filter((v): v is string => typeof v === "string").slice(0, 10).map(text) : undefined;
    return { kind: "error", status, code: e.code as number, message: text(e.message), ...(supported?.length ? { supported } : {}) };
  }
  return { kind: "none", status };
}

/** The server answered as an MCP server and did not refuse the credentials. */
export function mcpReachable(a: McpAnswer): boolean {
  return a.kind === "result" || a.kind === "error";
}

/** One line for a report, e.g. `initialize answered 400: JSON-RPC error -32022 "…" (it speaks 2026-07-28)`. */
export function describeMcpAnswer(a: McpAnswer): string {
  const head = `initialize answered ${a.status}`;
  if (a.kind === "result") return `${head}${a.serverName ? ` (${a.serverName}${a.protocolVersion ? `, protocol ${a.protocolVersion}` : ""})` : ""}`;
  if (a.kind !== "error") return head;
  const speaks = a.supported ? `; it speaks ${a.supported.join(", ")}` : "";
  const why = a.code === UNSUPPORTED_PROTOCOL_VERSION || a.supported ? ", a server without the initialize handshake" : "";
  return `${head} with JSON-RPC error ${a.code} "${a.message}": it is an MCP server and took the token${why}${speaks}`;
}

/** Server text: no control characters, bounded. */
function text(v: string): string {
  return markControl(v).slice(0, 200);
}

type Message = Record<string, unknown>;

/** The JSON-RPC response (a message with `result` or `error`) in a JSON or SSE body, if any. */
export function responseIn(body: string): Message | undefined {
  const candidates: string[] = [];
  const trimmed = body.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) candidates.push(trimmed);
  else {
    // SSE: an event's data lines joined by newlines (WHATWG "server-sent events", dispatch on a blank line).
    let data: string[] = [];
    for (const line of `${body}\n\n`.split(/\r\n|\r|\n/)) {
      if (line === "") {
        if (data.length) candidates.push(data.join("\n"));
        data = [];
      } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
  }
  for (const c of candidates) {
    let v: unknown;
    try {
      v = JSON.parse(c);
    } catch {
      continue;
    }
    for (const m of Array.isArray(v) ? v : [v]) {
      if (m && typeof m === "object" && (m as Message).jsonrpc === "2.0" && ("result" in m || "error" in m)) return m as Message;
    }
  }
  return undefined;
}
