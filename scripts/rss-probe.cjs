// Preloaded by the benchmark: reports this process's peak RSS (KiB) to $MCP_AUTH_RSS_FILE at exit.
process.on("exit", () => {
  require("node:fs").appendFileSync(process.env.MCP_AUTH_RSS_FILE, `${process.resourceUsage().maxRSS}\n`);
});
