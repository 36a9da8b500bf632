import { Argument, type Command } from "commander";
import type { Context } from "../context.js";
import { completionScript, SHELLS, type Shell } from "../completion.js";

export function registerCompletion(program: Command, getCtx: () => Context): void {
  program
    .command("completion")
    .description("print a shell completion script")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(SHELLS))
    .addHelpText("after", "\nInstall:\n  bash: mcp-auth completion bash > ~/.local/share/bash-completion/completions/mcp-auth\n  zsh:  mcp-auth completion zsh > \"${fpath[1]}/_mcp-auth\"\n  fish: mcp-auth completion fish > ~/.config/fish/completions/mcp-auth.fish")
    .action((shell: Shell) => {
      // Never reads the config: completion must work even where nothing is set up.
      getCtx().io.out.write(completionScript(program, shell));
    });
}
