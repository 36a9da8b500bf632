import { type ProviderContext, NetworkError, registerSecret } from "../../sdk.js";

/**
 * A browser-like session with OpenProject's web UI, for the one thing it has no API for: creating an
 * OAuth application (docs/idp/openproject.md, `app/controllers/oauth/applications_controller.rb`).
 * Cookies are kept for the instance's origin only and never sent anywhere else; redirects are followed
 * by hand, same origin only (a redirect elsewhere is refused); session cookies are registered as
 * secrets, so no trace or message ever shows them. Pages are read with small, tolerant HTML helpers:
 * the markup differs across OpenProject versions, so field names come from the page served.
 */
export interface Page {
  status: number;
  /** The URL the page was finally served from, after same-origin redirects. */
  url: URL;
  html: string;
}

export class WebSession {
  private readonly jar = new Map<string, string>();
  private readonly origin: string;
  constructor(
    private readonly ctx: ProviderContext,
    readonly base: string,
  ) {
    this.origin = new URL(base).origin;
  }

  get(path: string): Promise<Page> {
    return this.request("GET", path);
  }

  /** A form POST as a browser sends it (urlencoded), then the redirects it answers with. */
  post(path: string, fields: Array<[string, string]>, headers: Record<string, string> = {}): Promise<Page> {
    return this.request("POST", path, new URLSearchParams(fields).toString(), headers);
  }

  /** JSON from API v3 with the session cookie (OpenProject wants X-Requested-With on cookie-authenticated API calls; UNVERIFIED for every version). */
  async api(path: string): Promise<{ status: number; body: unknown }> {
    const page = await this.request("GET", path, undefined, { accept: "application/hal+json, application/json", "x-requested-with": "XMLHttpRequest" });
    try {
      return { status: page.status, body: JSON.parse(page.html) };
    } catch {
      return { status: page.status, body: undefined };
    }
  }

  private async request(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Page> {
    let url = new URL(path, this.base + "/");
    for (let hop = 0; ; hop++) {
      if (url.origin !== this.origin) throw new NetworkError(`OpenProject redirected to another site (${url.origin}); mcp-auth keeps the admin session to ${this.origin}`);
      const h: Record<string, string> = { accept: "text/html,application/xhtml+xml", ...headers };
      if (this.jar.size) h.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
      if (body !== undefined) h["content-type"] = "application/x-www-form-urlencoded";
      const res = await this.ctx.fetch(url.href, { method, headers: h, body, redirect: "manual", returnRedirects: true });
      for (const line of res.headers.getSetCookie?.() ?? []) this.keep(line);
      const html = await res.text();
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location) {
        if (hop >= 5) throw new NetworkError(`OpenProject redirected more than 5 times from ${path}`);
        url = new URL(location, url);
        // 302/303 after a POST: the browser GETs the new page (Rails' redirect_to after create).
        if (res.status !== 307 && res.status !== 308) {
          method = "GET";
          body = undefined;
        }
        continue;
      }
      return { status: res.status, url, html };
    }
  }

  private keep(setCookie: string): void {
    const pair = setCookie.split(";", 1)[0]!;
    const i = pair.indexOf("=");
    if (i <= 0) return;
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (/;\s*max-age=0\b/i.test(setCookie) || value === "") this.jar.delete(name);
    else {
      registerSecret(value);
      this.jar.set(name, value);
    }
  }
}

export interface Form {
  action: string;
  method: string;
  /** The fields a browser would submit untouched: hidden inputs, text values, checked boxes (in order). */
  fields: Array<[string, string]>;
  /** Every checkbox: name and value, checked or not. */
  checkboxes: Array<{ name: string; value: string }>;
  /** Every field name in the form, textareas included. */
  names: Set<string>;
  html: string;
}

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_, e: string) => {
    const k = e.toLowerCase();
    if (k.startsWith("#x")) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith("#")) return String.fromCodePoint(Number(k.slice(1)));
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[k] ?? "";
  });
}

export function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([\w:.-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1]!.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}

/** The forms of a page. */
export function forms(html: string): Form[] {
  const out: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1]!);
    const inner = m[2]!;
    const fields: Form["fields"] = [];
    const checkboxes: Form["checkboxes"] = [];
    const names = new Set<string>();
    for (const f of inner.matchAll(/<input\b([^>]*)>|<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/gi)) {
      if (f[2] !== undefined) {
        const t = attrs(f[2]);
        if (t.name) (names.add(t.name), fields.push([t.name, decodeEntities(f[3]!)]));
        continue;
      }
      const t = attrs(f[1]!);
      if (!t.name) continue;
      names.add(t.name);
      const type = (t.type ?? "text").toLowerCase();
      if (type === "checkbox" || type === "radio") {
        checkboxes.push({ name: t.name, value: t.value ?? "on" });
        if ("checked" in t) fields.push([t.name, t.value ?? "on"]);
      } else if (type !== "submit" && type !== "button" && type !== "image" && type !== "file") {
        fields.push([t.name, t.value ?? ""]);
      }
    }
    out.push({ action: a.action ?? "", method: (a.method ?? "get").toLowerCase(), fields, checkboxes, names, html: inner });
  }
  return out;
}

/** Replaces every value of `name` (Rails takes the last one anyway) with these. */
export function setField(fields: Array<[string, string]>, name: string, ...values: string[]): Array<[string, string]> {
  return [...fields.filter(([n]) => n !== name), ...values.map((v): [string, string] => [name, v])];
}

/** The page's CSRF token (`<meta name="csrf-token">`, Rails' csrf_meta_tags). */
export function csrfMeta(html: string): string | undefined {
  for (const m of html.matchAll(/<meta\b([^>]*)>/gi)) {
    const a = attrs(m[1]!);
    if (a.name === "csrf-token" && a.content) return a.content;
  }
  return undefined;
}

/**
 * The inner HTML of the element that opens at `at` (a `<tag …>` start), up to its matching end tag:
 * nested elements of the same name are counted, so a `<div>` holding `<div>`s is taken whole.
 */
export function innerOf(html: string, at: number): string {
  const tag = /^<([\w-]+)/.exec(html.slice(at))?.[1]?.toLowerCase();
  if (!tag) return "";
  const open = html.indexOf(">", at) + 1;
  const re = new RegExp(`<(/?)${tag}\\b[^>]*>`, "gi");
  re.lastIndex = open;
  let depth = 1;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    depth += m[1] ? -1 : 1;
    if (depth === 0) return html.slice(open, m.index);
  }
  return html.slice(open);
}

/** Visible text of an HTML fragment: tags gone, entities decoded, whitespace collapsed. */
export function textOf(fragment: string): string {
  return decodeEntities(fragment.replace(/<(script|style|svg)\b[\s\S]*?<\/\1>/gi, " ").replace(/<br\s*\/?>/gi, " ").replace(/<[^>]*>/g, " ")).replace(/\s+/g, " ").trim();
}

/** Elements whose class attribute has this class, in document order: their inner HTML. */
export function byClass(html: string, cls: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<[\w-]+\b[^>]*\bclass\s*=\s*"([^"]*)"[^>]*>/gi)) {
    if (m[1]!.split(/\s+/).includes(cls)) out.push(innerOf(html, m.index));
  }
  return out;
}

/**
 * The key/value cells of an attribute group, as OpenProject's show pages render them
 * (`AttributeGroups::AttributeKeyValueComponent`: a `attributes-key-value--key` div, then its
 * `attributes-key-value--value-container`), in page order. Keys are the translated labels, so
 * callers go by position and by what a value cell holds, never by a key's words (docs/idp/openproject.md).
 */
export function attributePairs(html: string): Array<{ key: string; value: string }> {
  const body = html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, "");
  const out: Array<{ key: string; value: string }> = [];
  const re = /<div\b[^>]*\bclass\s*=\s*"([^"]*)"[^>]*>/gi;
  let key: string | undefined;
  for (const m of body.matchAll(re)) {
    const classes = m[1]!.split(/\s+/);
    if (classes.includes("attributes-key-value--key")) key = textOf(innerOf(body, m.index));
    else if (classes.includes("attributes-key-value--value-container") && key !== undefined) {
      out.push({ key, value: innerOf(body, m.index) });
      key = undefined;
    }
  }
  return out;
}

/**
 * What a value cell offers to copy: the `value` of its copy button (`<clipboard-copy>`, the Primer
 * ClipboardCopy of newer releases), else the text of its `<code>` (older releases show the secret so),
 * else its visible text.
 */
export function copyableValue(cell: string): { value: string; kind: "copy" | "code" | "text" } {
  const copy = /<clipboard-copy\b([^>]*)>/i.exec(cell);
  if (copy) return { value: (attrs(copy[1]!).value ?? "").trim(), kind: "copy" };
  const code = /<code\b[^>]*>([\s\S]*?)<\/code>/i.exec(cell);
  if (code) return { value: textOf(code[1]!), kind: "code" };
  return { value: textOf(cell), kind: "text" };
}

/**
 * OpenProject's own words on a page that came back: its flash banners (Primer `Banner`: title and
 * description), older flash/toast/errorExplanation boxes, and Primer forms' inline field validation.
 */
export function errorTexts(html: string): string[] {
  const body = html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, "");
  const out: string[] = [];
  const add = (t: string) => {
    const text = t.slice(0, 300);
    if (text && !out.includes(text)) out.push(text);
  };
  for (const m of body.matchAll(/<[\w-]+\b[^>]*\bclass\s*=\s*"([^"]*)"[^>]*>/gi)) {
    const classes = m[1]!.split(/\s+/);
    // A success banner is no reason; an error one (or an unmarked flash) is.
    if (classes.includes("Banner") && !classes.some((c) => /--(success|default)$/.test(c))) {
      const message = byClass(innerOf(body, m.index), "Banner-message")[0];
      if (message !== undefined) {
        const parts = [...message.matchAll(/<p\b[^>]*>([\s\S]*?)<\/p>/gi)].map((p) => textOf(p[1]!)).filter(Boolean);
        // Title and description read as one sentence: "N errors prohibited …: The following fields …: …".
        add(parts.length ? parts.reduce((a, p) => (/[.:!?]$/.test(a) ? `${a} ${p}` : `${a}: ${p}`)) : textOf(message));
      }
    } else if (classes.some((c) => /^(errorExplanation|flash|-error|FormControl-inlineValidation)$/.test(c) || /^op-toast$/.test(c))) {
      if (!classes.includes("-success") && !classes.includes("notice")) add(textOf(innerOf(body, m.index)));
    }
  }
  return out;
}
