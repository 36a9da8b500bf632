import { spawn } from "node:child_process";
import { envWithoutSecrets } from "./sanitize.js";

/** How a URL reaches a browser. Tests use one that records the URL and follows the login itself. */
export interface Browser {
  /** `command` (--browser-command) wins over $BROWSER, which wins over the platform opener. */
  open(url: string, o?: { command?: string }): Promise<void>;
}

/**
 * The real browser. The opener runs with an environment stripped of mcp-auth's secret-bearing
 * variables (MCP_AUTH_CLIENT_SECRET, --client-secret-env / --admin-password-env variables…): a
 * browser or a wrapper script has no business seeing them. Its output goes to stderr, never stdout.
 */
export function systemBrowser(env: NodeJS.ProcessEnv, warn: (m: string) => void): Browser {
  return {
    async open(url, o = {}) {
      const command = o.command ?? env.BROWSER;
      const childEnv = envWithoutSecrets(env);
      if (command) {
        const win = process.platform === "win32";
        const child = spawn(win ? "cmd" : "/bin/sh", win ? ["/c", `${command} "${url}"`] : ["-c", `${command} "$1"`, "sh", url], {
          stdio: ["ignore", "ignore", "inherit"],
          env: childEnv,
        });
        child.on("error", (e) => warn(`could not run the browser command: ${e.message}`));
        child.on("exit", (code) => {
          if (code) warn(`the browser command exited with ${code}`);
        });
        child.unref();
        return;
      }
      // `open` spawns with process.env and takes no env option: hide the secrets while it spawns.
      const hidden = Object.keys(process.env).filter((k) => !(k in childEnv));
      const saved = hidden.map((k) => [k, process.env[k]] as const);
      for (const k of hidden) delete process.env[k];
      try {
        const { default: open } = await import("open");
        const child = await open(url);
        child.on("error", () => warn("could not open a browser; open the URL above yourself"));
      } catch {
        warn("could not open a browser; open the URL above yourself");
      } finally {
        for (const [k, v] of saved) process.env[k] = v;
      }
    },
  };
}
