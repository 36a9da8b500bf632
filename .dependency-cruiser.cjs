/**
 * The module boundaries, checked by `npm run lint:deps` (part of `npm test`). Plug-ins (IdP providers
 * in src/providers/, MCP client writers in src/clients/) depend one way: on src/sdk.ts only, which
 * re-exports the interfaces core defines. Core never imports a plug-in; the registries are assembled
 * at the wiring layer (src/plugins.ts, passed in by src/cli.ts).
 * dependency-cruiser 17: the newest release that still runs on Node 20 (package.json engines).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import loop: split the shared part into its own module.",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "core-imports-no-plugin",
      severity: "error",
      comment: "Below the wiring layer nothing imports a provider or client module: define an interface in src/core/ and reach the plug-in through Context.plugins.",
      from: { path: "^src/", pathNot: ["^src/(plugins|cli|completion)\\.ts$", "^src/commands/", "^src/(providers|clients)/"] },
      to: { path: "^src/(providers|clients)/" },
    },
    {
      name: "plugin-imports-sdk-only",
      severity: "error",
      comment: "A plug-in imports mcp-auth through src/sdk.ts only (add what it legitimately needs there).",
      from: { path: "^src/(providers|clients)/" },
      to: { path: "^src/", pathNot: ["^src/sdk\\.ts$", "^src/(providers|clients)/"] },
    },
    {
      name: "providers-and-clients-apart",
      severity: "error",
      comment: "IdP providers and MCP client writers do not depend on each other.",
      from: { path: "^src/providers/" },
      to: { path: "^src/clients/" },
    },
    {
      name: "clients-and-providers-apart",
      severity: "error",
      comment: "IdP providers and MCP client writers do not depend on each other.",
      from: { path: "^src/clients/" },
      to: { path: "^src/providers/" },
    },
    {
      name: "sdk-has-no-plugin",
      severity: "error",
      comment: "The SDK is what plug-ins build on; it cannot depend on one.",
      from: { path: "^src/sdk\\.ts$" },
      to: { path: "^src/(providers|clients)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|node_modules)/" },
  },
};
