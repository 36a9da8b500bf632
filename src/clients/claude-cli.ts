import { spawn } from "node:child_process";
import { type ClaudeCli, onPath } from "../sdk.js";

/** Claude Code's own CLI (the claude writer's cliScopes), spawned asynchronously with the user's env. */

export function findClaudeCli(env: NodeJS.ProcessEnv, platform: string): ClaudeCli | undefined {
  // On Windows `claude` is a .cmd shim that only runs through cmd.exe, whose quoting would mangle the
  // JSON argument: there the file is edited directly (with the same checks).
  if (platform === "win32") return undefined;
  const path = onPath(env, "claude", platform);
  if (!path) return undefined;
  return {
    path,
    run: (args, cwd) =>
      new Promise((resolve, reject) => {
        const child = spawn(path, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      }),
  };
}
