import type { Context } from "../context.js";
import { checkUrl } from "../oauth/client.js";

/** An MCP server URL tokens may be sent to: https, or plain http only on loopback (or with --allow-http). */
export function checkMcpUrl(ctx: Context, raw: string): URL {
  return checkUrl(raw, "the MCP server URL", ctx.allowHttp);
}
