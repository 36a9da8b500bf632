/** MCP answers in HTTP bodies; the era and reachability decisions are src/mcp/era.ts's. */

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
