import { portNumber } from "../core/inputs.js";
import type { Command } from "commander";
import type { Context } from "../context.js";
import { startSandboxProfiles } from "../core/sandbox.js";
import { invocation } from "../io/invocation.js";
import { choice, seconds } from "./shared.js";

export function registerSandbox(program: Command, getCtx: () => Context): void {
  program
    .command("sandbox")
    .description("run a local OpenID provider and a protected MCP server to try mcp-auth against")
    .option("--port <port>", "IdP port (default: the one saved with profile 'sandbox' if free, else a free port)")
    .option("--mcp-port <port>", "MCP server port (default: as for --port)")
    .option("--token-ttl <seconds>", "access token lifetime", "3600")
    .addOption(choice("--protocol <era>", "the MCP server's era: both (answers 2026-07-28 and initialize) | 2026-07-28 (stateless only) | legacy (initialize handshake)", ["both", "2026-07-28", "legacy"]).default("both"))
    .option("--save", "save profiles 'sandbox' (client credentials) and 'sandbox-login' (browser login)")
    .option("--json", "print the endpoints as one JSON line on stdout")
    .action(async (o) => {
      const ctx = getCtx();
      const sb = await startSandboxProfiles(ctx, { port: port("--port", o.port), mcpPort: port("--mcp-port", o.mcpPort), tokenTtl: seconds("--token-ttl", o.tokenTtl, 3600), save: o.save, protocol: o.protocol });
      if (o.json) ctx.io.out.write(JSON.stringify({ issuer: sb.issuer, mcpUrl: sb.mcpUrl, protocol: o.protocol, clients: sb.clients, profiles: o.save ? ["sandbox", "sandbox-login"] : [] }) + "\n");
      // The commands to try, in the form that runs from here (`npx mcp-auth` when it is not on PATH).
      const me = invocation(ctx.env);
      const lines = [
        "mcp-auth sandbox is running (Ctrl-C to stop)",
        `  OpenID provider: ${sb.issuer}   (any username and password log in)`,
        `  MCP server:      ${sb.mcpUrl}   (wants a token for this audience; speaks ${o.protocol === "both" ? "2026-07-28 and the initialize handshake" : o.protocol === "legacy" ? "the initialize handshake (2025-11-25)" : "2026-07-28 only"})`,
        "",
      ];
      if (o.save) {
        lines.push("Saved profiles 'sandbox' and 'sandbox-login'. Try, in another terminal:", `  ${me} token --profile sandbox`, `  ${me} login sandbox-login`, `  ${me} status`);
      } else {
        lines.push(
          "Try, in another terminal (the sandbox client's secret is the demo value 'sandbox-secret'):",
          `  printf sandbox-secret | ${me} profiles add sandbox --issuer ${sb.issuer} --client-id sandbox-m2m --client-secret-stdin --resource ${sb.mcpUrl}`,
          `  ${me} token --profile sandbox`,
          `  ${me} profiles add sandbox-login --issuer ${sb.issuer} --client-id sandbox-cli --grant authorization_code --scope openid mcp:read --resource ${sb.mcpUrl}`,
          `  ${me} login sandbox-login`,
          "Or restart with --save to create both profiles.",
        );
      }
      ctx.info(lines.join("\n"));
      await new Promise<void>((resolve) => {
        const stop = () => {
          ctx.info("Stopping the sandbox.");
          void sb.close().then(resolve);
        };
        process.removeAllListeners("SIGINT");
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}

function port(flag: string, value: string | undefined): number {
  if (value === undefined) return 0;
  return portNumber(flag, value, { allowZero: true });
}
