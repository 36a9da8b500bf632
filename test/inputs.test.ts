import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { givenFlags, inputOptions } from "../src/commands/bootstrap.js";
import { defineInput, resolveInputs, type InputSpec, type Prompter } from "../src/core/inputs.js";
import { UsageError } from "../src/errors.js";
import { keycloak } from "../src/providers/keycloak/index.js";
import { thunder } from "../src/providers/thunder.js";

/**
 * Provider inputs as data: argv → the commander options generated from the specs → resolveInputs →
 * the typed input, or a one-line usage error (exit 2). In process, as tables.
 */
async function parse(specs: readonly InputSpec[], argv: string[], o: { env?: NodeJS.ProcessEnv; stdin?: string; prompter?: Prompter } = {}) {
  const cmd = new Command("x").exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const opt of inputOptions(specs)) cmd.addOption(opt);
  cmd.parse(argv, { from: "user" });
  return resolveInputs(specs, givenFlags(cmd, specs), { env: o.env ?? {}, readStdin: o.stdin === undefined ? undefined : async () => o.stdin!, prompter: o.prompter });
}

async function failure(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(UsageError);
  const u = e as UsageError;
  expect(u.exitCode).toBe(2);
  expect(u.message).not.toContain("\n");
  return u.hint ? `${u.message} (${u.hint})` : u.message;
}

const THUNDER_DEFAULTS = {
  url: "http://thunder.openchoreo.localhost:8080",
  adminUser: "admin",
  adminPassword: "s3cret",
  grant: "client_credentials",
  redirectPort: 33418,
  rotateSecret: false,
  name: "MCP client",
  clientId: "mcp_client",
  validity: 3600,
};
const ENV = { PW: "s3cret", EMPTY: "" };

describe("bootstrap thunder: flags → input", () => {
  it.each<[string, string[], Record<string, unknown>]>([
    ["defaults", ["--admin-password-env", "PW"], {}],
    ["authorization_code changes the default client id", ["--admin-password-env", "PW", "--grant", "authorization_code"], { grant: "authorization_code", clientId: "mcp_cli" }],
    ["an explicit client id wins", ["--admin-password-env", "PW", "--grant", "authorization_code", "--client-id", "me"], { grant: "authorization_code", clientId: "me" }],
    ["numbers and ports are numbers", ["--admin-password-env", "PW", "--redirect-port", "43111", "--validity", "60"], { redirectPort: 43111, validity: 60 }],
    ["booleans and strings", ["--admin-password-env", "PW", "--rotate-secret", "--name", "CI", "--app-id", "a1", "--url", "https://idp.example.com"], { rotateSecret: true, name: "CI", appId: "a1", url: "https://idp.example.com" }],
    ["the hidden casing switch still parses", ["--admin-password-env", "PW", "--api-casing", "camel"], { apiCasing: "camel" }],
  ])("%s", async (_name, argv, expected) => {
    expect(await parse(thunder.inputs, argv, { env: ENV })).toEqual({ ...THUNDER_DEFAULTS, ...expected });
  });

  it("reads the password from stdin with --admin-password-stdin", async () => {
    expect((await parse(thunder.inputs, ["--admin-password-stdin"], { stdin: "from-stdin" })).adminPassword).toBe("from-stdin");
  });

  it("asks for a missing password only through the prompter, with the question for that user", async () => {
    const asked: string[] = [];
    const prompter: Prompter = { ask: async (spec, _d, answers) => (asked.push(typeof spec.prompt === "function" ? spec.prompt(answers) : String(spec.prompt)), "typed") };
    expect((await parse(thunder.inputs, ["--admin-user", "root"], { prompter })).adminPassword).toBe("typed");
    expect(asked).toEqual(['Password of Thunder user "root"']);
  });

  it.each<[string, string[], string]>([
    ["no password and nobody to ask", [], "the Thunder admin password is needed (pass --admin-password-stdin or --admin-password-env VAR (or --admin-token-env VAR))"],
    ["both secret sources", ["--admin-password-stdin", "--admin-password-env", "PW"], "pass only one of --admin-password-stdin and --admin-password-env"],
    ["an empty variable", ["--admin-password-env", "EMPTY"], "$EMPTY is empty or not set (it should hold the Thunder admin password)"],
    ["an unset variable", ["--admin-password-env", "NOPE"], "$NOPE is empty or not set (it should hold the Thunder admin password)"],
    ["nothing on stdin", ["--admin-password-stdin"], "--admin-password-stdin: nothing was read from standard input"],
    ["port 0", ["--admin-password-env", "PW", "--redirect-port", "0"], '--redirect-port must be 1-65535, got "0"'],
    ["port words", ["--admin-password-env", "PW", "--redirect-port", "http"], '--redirect-port must be 1-65535, got "http"'],
    ["a zero lifetime", ["--admin-password-env", "PW", "--validity", "0"], '--validity must be a positive number of seconds, got "0"'],
    ["a fractional lifetime", ["--admin-password-env", "PW", "--validity", "1.5"], '--validity must be a positive number of seconds, got "1.5"'],
    ["a lifetime that is no number", ["--admin-password-env", "PW", "--validity", "1h"], '--validity must be a number, got "1h"'],
    ["a URL that is no http(s)", ["--admin-password-env", "PW", "--url", "ftp://idp.example.com"], '--url must be an http(s) URL, got "ftp://idp.example.com"'],
    ["a URL that is no URL", ["--admin-password-env", "PW", "--url", "not a url"], '--url must be an http(s) URL, got "not a url"'],
    ["a URL without its scheme", ["--admin-password-env", "PW", "--url", "idp.example.com"], '--url must be an http(s) URL, got "idp.example.com" (did you mean https://idp.example.com?)'],
    ["a loopback URL without its scheme", ["--admin-password-env", "PW", "--url", "localhost:8080"], '--url must be an http(s) URL, got "localhost:8080" (did you mean http://localhost:8080?)'],
  ])("%s → exit 2, one line", async (_name, argv, message) => {
    expect(await failure(parse(thunder.inputs, argv, { env: ENV, stdin: "" }))).toBe(message);
  });

  it("there is no flag that takes a secret on the command line", async () => {
    const flags = inputOptions(thunder.inputs).map((o) => o.long);
    expect(flags).toContain("--admin-password-stdin");
    expect(flags).toContain("--admin-password-env");
    expect(flags).not.toContain("--admin-password");
    const cmd = new Command("x").exitOverride().configureOutput({ writeErr: () => {} });
    for (const opt of inputOptions(thunder.inputs)) cmd.addOption(opt);
    expect(() => cmd.parse(["--admin-password", "hunter2"], { from: "user" })).toThrow(/unknown option/);
  });

  it("a choice outside its list is refused, by commander and by resolveInputs alike", async () => {
    await expect(parse(thunder.inputs, ["--grant", "password"], { env: ENV })).rejects.toThrow(/Allowed choices are client_credentials, authorization_code/);
    expect(await failure(resolveInputs(thunder.inputs, { grant: "password", adminPasswordEnv: "PW" }, { env: ENV }))).toBe('--grant must be client_credentials or authorization_code, got "password"');
  });
});

describe("bootstrap keycloak: flags → input", () => {
  const base = ["--url", "https://kc.example.com", "--realm", "kcp"];
  it.each<[string, string[], NodeJS.ProcessEnv, Record<string, unknown>]>([
    ["a user signs in", [...base, "--admin-password-env", "PW"], ENV, { adminPassword: "s3cret", adminRealm: "master", adminUser: "admin", clientScope: "mcp-audience", grant: "client_credentials", redirectPort: 33418 }],
    ["a service account, its secret from the default variable", [...base, "--admin-client-id", "sa"], { MCP_AUTH_ADMIN_CLIENT_SECRET: "sa-secret" }, { adminClientId: "sa", adminClientSecret: "sa-secret" }],
    ["a service account, its secret from a named variable", [...base, "--admin-client-id", "sa", "--admin-client-secret-env", "SA"], { SA: "x" }, { adminClientId: "sa", adminClientSecret: "x" }],
    ["a service account: no admin password is read", [...base, "--admin-client-id", "sa", "--admin-password-env", "PW"], { MCP_AUTH_ADMIN_CLIENT_SECRET: "s", PW: "pw" }, { adminClientId: "sa", adminClientSecret: "s", adminPassword: undefined }],
    ["several MCP hosts", [...base, "--admin-password-env", "PW", "--mcp-host", "a.example.com", "https://b.example.com/mcp"], ENV, { mcpHost: ["a.example.com", "https://b.example.com/mcp"] }],
    ["an audience, as a client id", [...base, "--admin-password-env", "PW", "--audience", "kcp", "--audience-client"], ENV, { audience: "kcp", audienceClient: true }],
    ["--audience-client means nothing without --audience", [...base, "--admin-password-env", "PW", "--audience-client"], ENV, { audience: undefined, audienceClient: undefined }],
  ])("%s", async (_name, argv, env, expected) => {
    const input = await parse(keycloak.inputs, argv, { env });
    for (const [k, v] of Object.entries(expected)) {
      if (v === undefined) expect(input).not.toHaveProperty(k); // not asked, not read
      else expect(input).toHaveProperty(k, v);
    }
  });

  it.each<[string, string[], string]>([
    ["no URL", ["--realm", "kcp", "--admin-password-env", "PW"], "--url is required (Keycloak base URL (e.g. https://auth.example.com))"],
    ["no realm", ["--url", "https://kc.example.com", "--admin-password-env", "PW"], "--realm is required (realm the MCP server trusts)"],
    ["no password", [...base], "the Keycloak admin password is needed (pass --admin-password-stdin or --admin-password-env VAR (or --admin-client-id with --admin-client-secret-env))"],
    ["a service account without its secret", [...base, "--admin-client-id", "sa"], "the service-account client's secret is needed (pass --admin-client-secret-stdin or --admin-client-secret-env VAR)"],
    ["a host that is no host", [...base, "--admin-password-env", "PW", "--mcp-host", "http://[x"], '--mcp-host has a value that is not a host name: "http://[x"'],
  ])("%s → exit 2, one line", async (_name, argv, message) => {
    expect(await failure(parse(keycloak.inputs, argv, { env: ENV }))).toBe(message);
  });
});

describe("resolveInputs for a wizard", () => {
  it("asks every active input in order, skips what does not apply, and validates the answers", async () => {
    const specs = [
      defineInput({ name: "grant", flag: "--grant <g>", kind: "choice", choices: ["a", "b"] as const, description: "grant", default: "a" }),
      defineInput({ name: "port", flag: "--port <p>", kind: "port", description: "port", askIf: (x: Record<string, unknown>) => x.grant === "b" }),
      defineInput({ name: "name", flag: "--name <n>", kind: "string", description: "name", default: (x: Record<string, unknown>) => `n-${String(x.grant)}` }),
    ] as const;
    const run = async (answers: Record<string, string | undefined>) => {
      const asked: Array<[string, unknown]> = [];
      const prompter: Prompter = { ask: async (spec, d) => (asked.push([spec.name, d]), answers[spec.name]) };
      const input = await resolveInputs(specs, {}, { env: {}, prompter, askAll: true });
      return { input, asked };
    };
    expect(await run({ grant: "b", port: "8080" })).toEqual({ input: { grant: "b", port: 8080, name: "n-b" }, asked: [["grant", "a"], ["port", undefined], ["name", "n-b"]] });
    expect(await run({})).toEqual({ input: { grant: "a", name: "n-a" }, asked: [["grant", "a"], ["name", "n-a"]] });
    expect(await failure(run({ grant: "b", port: "99999" }))).toBe('--port must be 1-65535, got "99999"');
  });
});
