/**
 * A person at oidc-provider's devInteractions pages: follows the authorization URL, signs in and
 * consents, and sends the final redirect to `host` (as a browser resolving `localhost` would pick one).
 */
export function devBrowser(host?: "127.0.0.1" | "[::1]") {
  return async (start: string): Promise<void> => {
    const cookies = new Map<string, string>();
    let url = new URL(start);
    let init: RequestInit = {};
    for (let hop = 0; hop < 30; hop++) {
      if (host && url.hostname === "localhost") url.hostname = host;
      const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers as Record<string, string>), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        cookies.set(pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1));
      }
      const loc = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && loc) {
        url = new URL(loc, url);
        init = {};
        continue;
      }
      const text = await res.text();
      const action = /<form[^>]*action="([^"]+)"/i.exec(text)?.[1];
      if (!action) return;
      const fields = new URLSearchParams();
      for (const m of text.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/gi)) fields.set(m[1]!, m[2]!);
      if (/name="login"/.test(text)) fields.set("login", "alice"), fields.set("password", "alice");
      url = new URL(action, url);
      init = { method: "POST", body: fields, headers: { "content-type": "application/x-www-form-urlencoded" } };
    }
  };
}
