import { writerIn, type ClientWriter } from "./core/client.js";
import type { IssuerMetadata, Plugins, Provider } from "./core/provider.js";
import type { InputSpec } from "./core/inputs.js";
import { keycloak } from "./providers/keycloak/index.js";
import { oci } from "./providers/oci/index.js";
import { openproject } from "./providers/openproject/index.js";
import { octoperf } from "./providers/octoperf.js";
import { thunder } from "./providers/thunder.js";
import { claude } from "./clients/claude.js";
import { claudeDesktop } from "./clients/claude-desktop.js";
import { cline } from "./clients/cline.js";
import { codex } from "./clients/codex.js";
import { copilot } from "./clients/copilot.js";
import { cursor } from "./clients/cursor.js";
import { gemini } from "./clients/gemini.js";
import { goose } from "./clients/goose.js";
import { kiro } from "./clients/kiro.js";
import { opencode } from "./clients/opencode.js";
import { qwen } from "./clients/qwen.js";
import { vscode } from "./clients/vscode.js";
import { windsurf } from "./clients/windsurf.js";
import { zed } from "./clients/zed.js";

/**
 * The plug-in registries, assembled here at the wiring layer: core never imports a plug-in, it gets
 * these lists through the Context (src/cli.ts passes them to createContext). A new IdP or MCP client
 * is one module plus one line below.
 */

/** Every IdP module; `mcp-auth bootstrap <id>` is generated from this list. */
export const providers: readonly Provider<readonly InputSpec[]>[] = [thunder, keycloak, oci, openproject, octoperf] as unknown as Provider<readonly InputSpec[]>[];

/** Every supported MCP client. */
export const CLIENTS: readonly ClientWriter[] = [claude, claudeDesktop, cursor, vscode, codex, gemini, windsurf, copilot, opencode, qwen, kiro, zed, goose, cline];

export const plugins: Plugins = { providers, clients: CLIENTS };

/** The provider an issuer (or its metadata document) belongs to, if any; for doctor and discovery. */
export function providerFor(issuerOrMetadata: string | IssuerMetadata): Provider<readonly InputSpec[]> | undefined {
  return providers.find((p) => p.matches(issuerOrMetadata));
}

export function clientWriter(id: string): ClientWriter {
  return writerIn(CLIENTS, id);
}
