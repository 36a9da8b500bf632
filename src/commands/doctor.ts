import type { Command } from "commander";
import type { Context } from "../context.js";
export function registerDoctor(_program: Command, _getCtx: () => Context): void {}
