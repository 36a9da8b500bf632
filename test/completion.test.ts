import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, ROOT, runProcess, user, type Sandboxed } from "./helpers/cli.js";

/** Shell completion, exercised in a real bash the way bash-completion calls it. */
let u: Sandboxed;
afterEach(() => u?.cleanup());

async function complete(line: string): Promise<string[]> {
  const words = line.split(" ");
  const script = [
    `source ${join(u.home, "c.bash")}`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})`,
    `COMP_CWORD=${words.length - 1}`,
    "_mcp_auth",
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join("\n");
  const r = await runProcess("bash", ["-c", script], { ...u.env, PATH: `${join(u.home, "bin")}:${u.env.PATH}` });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split("\n").filter(Boolean).sort();
}

describe("completion", () => {
  it("completes commands, flags, flag values and profile names", async () => {
    u = user({ MCP_AUTH_STORE: "file" });
    const gen = await u.run(["completion", "bash"]);
    expect(gen.code).toBe(0);
    writeFileSync(join(u.home, "c.bash"), gen.stdout);
    // `mcp-auth` on PATH, as it is once installed
    mkdirSync(join(u.home, "bin"));
    writeFileSync(join(u.home, "bin", "mcp-auth"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(u.home, "bin", "mcp-auth"), 0o755);
    for (const name of ["dev", "ci"]) {
      expect((await u.run(["profiles", "add", name, "--issuer", "https://idp.example.com", "--client-id", "x", "--grant", "authorization_code"])).code).toBe(0);
    }
    expect(await complete("mcp-auth to")).toEqual(["token"]);
    expect(await complete("mcp-auth token --pro")).toEqual(["--profile", "--provider"]);
    expect(await complete("mcp-auth token --format h")).toEqual(["header", "headers-json"]);
    expect(await complete("mcp-auth token --profile ")).toEqual(["ci", "dev"]);
    expect(await complete("mcp-auth login d")).toEqual(["dev"]);
    expect(await complete("mcp-auth profiles a")).toEqual(["add"]);
    expect(await complete("mcp-auth bootstrap k")).toEqual(["keycloak"]);
    expect(await complete("mcp-auth --debug bootstrap thunder --admin-")).toEqual(["--admin-app-id", "--admin-password-env", "--admin-password-stdin", "--admin-token-env", "--admin-token-stdin", "--admin-user"]);
    // generated from the providers' inputs: choices, secret flags, variable names; hidden switches stay hidden
    expect(await complete("mcp-auth bootstrap thunder --grant ")).toEqual(["authorization_code", "client_credentials"]);
    expect(await complete("mcp-auth bootstrap keycloak --admin-client-")).toEqual(["--admin-client-id", "--admin-client-secret-env", "--admin-client-secret-stdin"]);
    expect(await complete("mcp-auth bootstrap thunder --admin-password-env MCP_AUTH_S")).toEqual(["MCP_AUTH_STORE"]);
    expect(await complete("mcp-auth bootstrap thunder --api")).toEqual([]);
    // positional arguments: MCP clients, profiles, shells; init's own provider choice
    expect(await complete("mcp-auth add-client c")).toEqual(["claude", "claude-desktop", "cline", "codex", "copilot", "cursor"]);
    expect(await complete("mcp-auth remove-client w")).toEqual(["windsurf"]);
    expect(await complete("mcp-auth status ")).toEqual(expect.arrayContaining(["ci", "dev"]));
    expect(await complete("mcp-auth status d")).toEqual(["dev"]);
    expect(await complete("mcp-auth completion ")).toEqual(expect.arrayContaining(["bash", "fish", "zsh"]));
    expect(await complete("mcp-auth completion f")).toEqual(["fish"]);
    expect(await complete("mcp-auth init --provider m")).toEqual(["mcp"]);
    expect(await complete("mcp-auth token --provider m")).toEqual([]); // `mcp` is init's choice only
  });

  it("ships the same scripts in completions/", async () => {
    u = user();
    for (const [shell, file] of [["bash", "mcp-auth.bash"], ["zsh", "_mcp-auth"], ["fish", "mcp-auth.fish"]] as const) {
      const r = await u.run(["completion", shell]);
      expect(r.stdout).toBe(readFileSync(join(ROOT, "completions", file), "utf8"));
    }
    expect((await u.run(["completion", "powershell"])).code).toBe(2);
    // fish (not installed here): the same positional arguments, read from the script
    const fish = (await u.run(["completion", "fish"])).stdout;
    expect(fish).toContain("complete -c mcp-auth -n '__fish_seen_subcommand_from add-client' -a 'claude claude-desktop cursor vscode codex gemini windsurf copilot opencode qwen kiro zed goose cline'");
    expect(fish).toContain("complete -c mcp-auth -n '__fish_seen_subcommand_from status' -a '(mcp-auth profiles list --quiet 2>/dev/null)'");
    expect(fish).toContain("complete -c mcp-auth -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'");
    expect(fish).toMatch(/-n '__fish_seen_subcommand_from init' -l provider -r -a '[^']* mcp'/);
  });
});
