import type { Command } from "commander";
import type { Context } from "../context.js";
import { registerLogin } from "./login.js";
import { registerLogout } from "./logout.js";
import { registerProfiles } from "./profiles.js";
import { registerSandbox } from "./sandbox.js";
import { registerStatus } from "./status.js";
import { registerToken } from "./token.js";
import { registerBootstrap } from "./bootstrap.js";
import { registerCompletion } from "./completion.js";
import { registerProxy } from "./proxy.js";
import { registerExec } from "./exec.js";
import { registerServe } from "./serve.js";
import { registerClients } from "./clients.js";
import { registerDecode } from "./decode.js";
import { registerDoctor } from "./doctor.js";
import { addExamples } from "./examples.js";
import { registerInit } from "./init.js";

/** Every command is one module with one register function; add new ones here. */
export function registerCommands(program: Command, getCtx: () => Context): void {
  registerInit(program, getCtx);
  registerToken(program, getCtx);
  registerLogin(program, getCtx);
  registerLogout(program, getCtx);
  registerStatus(program, getCtx);
  registerProfiles(program, getCtx);
  registerSandbox(program, getCtx);
  registerBootstrap(program, getCtx);
  registerCompletion(program, getCtx);
  registerProxy(program, getCtx);
  registerExec(program, getCtx);
  registerServe(program, getCtx);
  registerClients(program, getCtx);
  registerDecode(program, getCtx);
  registerDoctor(program, getCtx);
  addExamples(program); // last: every command above is there to get its examples
}
