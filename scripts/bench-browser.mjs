#!/usr/bin/env node
// A "browser command" for the sandbox (oidc-provider's devInteractions pages) that needs no browser:
// follows the authorization URL with plain HTTP, signs in as `bench` and consents, until the
// redirect reaches mcp-auth's loopback callback. Used by the benchmark (and tests) to get a real
// refresh token without starting Chromium. Exit 0 when the callback answered 200.
const start = new URL(process.argv[process.argv.length - 1]);
const cookies = new Map();
const jar = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");

async function go(url, init = {}) {
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie: jar() } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    const loc = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && loc) {
      url = new URL(loc, url);
      init = {};
      continue;
    }
    return { url, res, text: await res.text() };
  }
  throw new Error("too many redirects");
}

try {
  let page = await go(start);
  for (let step = 0; step < 4 && /<form/i.test(page.text); step++) {
    const action = /<form[^>]*action="([^"]+)"/i.exec(page.text)?.[1];
    if (!action) break;
    const fields = new URLSearchParams();
    for (const m of page.text.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/gi)) fields.set(m[1], m[2]);
    if (/name="login"/.test(page.text)) fields.set("login", "bench"), fields.set("password", "bench");
    page = await go(new URL(action, page.url), { method: "POST", body: fields, headers: { "content-type": "application/x-www-form-urlencoded" } });
  }
  process.exit(page.res.status === 200 && /callback/.test(page.url.pathname) ? 0 : 1);
} catch (e) {
  process.stderr.write(`[bench-browser] ${e.message}\n`);
  process.exit(1);
}
