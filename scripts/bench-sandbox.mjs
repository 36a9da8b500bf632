// The sandbox (IdP + MCP server) as its own process, so the timed runs of a benchmark measure the CLI
// alone. Resolves with the sandbox's `--json` line (issuer, mcpUrl, clients) once it is up.
import { spawn } from "node:child_process";

export async function startSandboxProcess(bin, env, protocol, extra = []) {
  const sandbox = spawn(process.execPath, [bin, "sandbox", "--save", "--json", ...(protocol ? ["--protocol", protocol] : []), ...extra], { env, stdio: ["ignore", "pipe", "pipe"] });
  const info = await new Promise((resolve, reject) => {
    let buf = "";
    sandbox.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(JSON.parse(buf.split("\n")[0]));
    });
    sandbox.on("exit", (c) => reject(new Error(`sandbox exited with ${c}`)));
  });
  return { sandbox, info };
}
