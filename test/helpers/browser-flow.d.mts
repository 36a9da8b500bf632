/** test/helpers/browser-flow.mjs */
import type { Browser } from "playwright-core";

/** browser.mjs's BROWSER_* settings, as data (see its header). */
export interface FlowOptions {
  login?: string;
  password?: string;
  action?: "approve" | "deny" | "deny-consent";
  userCode?: string;
  timeoutMs?: number;
  /** absolute path of the PNG to save */
  screenshot?: string;
  debug?: boolean;
  paste?: boolean;
  /** when browser.mjs started (ms since the epoch): the "in N ms" figures count from there */
  startedAt?: number;
}

/** Where the flow writes what browser.mjs prints. */
export interface FlowOutput {
  stderr(text: string): void;
  stdout(text: string): void;
}

export declare const ACTIONS: readonly string[];
export declare function runFlow(browser: Browser, url: string, options: FlowOptions, out: FlowOutput, signal?: AbortSignal): Promise<number>;
export declare function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T>;
