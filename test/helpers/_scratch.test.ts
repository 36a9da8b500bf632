import { it } from 'vitest';
import { spawn } from 'node:child_process';
import * as client from 'openid-client';
import { startOidc } from './oidc.js';
it('scratch', async () => {
  const op = await startOidc();
  const cfg = await client.discovery(new URL(op.issuer), 'cli', undefined, client.None(), { execute: [client.allowInsecureRequests] });
  const da = await client.initiateDeviceAuthorization(cfg, { scope: 'read' });
  console.log(da);
  for (const [u, env] of [[da.verification_uri, { BROWSER_USER_CODE: da.user_code, BROWSER_DEBUG: '1', BROWSER_SCREENSHOT: '/tmp/bt/device.png' }], [da.verification_uri, { BROWSER_DEBUG: '1' }]] as const) {
    const child = spawn(process.execPath, ['test/helpers/browser.mjs', u], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'pipe'] });
    let err = ''; child.stderr.on('data', d => err += d);
    const code = await new Promise(r => child.on('close', (c, s) => r(c ?? s)));
    console.log('exit', code, err);
  }
  await op.close();
}, 60000);
