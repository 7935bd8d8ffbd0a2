import { processEnv } from '../config/env.js';
import { main, exitOnStartupError } from '../main.js';
import { startEchoUpstream } from './echo-upstream.js';

/**
 * `npm run demo`: stand-in upstreams on the seed's ports (CRM API 8000, NocoDB 8080,
 * Metabase 3000) that echo back what reached them, then the gateway in front of them.
 */
async function demo(): Promise<void> {
  const env = processEnv();
  const upstreams = await Promise.all([
    startEchoUpstream('crm-api (stand-in)', 8000),
    startEchoUpstream('nocodb (stand-in)', 8080),
    startEchoUpstream('metabase (stand-in)', 3000),
  ]);
  const running = await main(env);
  const domain = env.GATEWAY_DOMAIN || 'localhost';
  const port = running.ports.https;
  const out = process.stderr;
  out.write(`
crm-gateway demo is running (self-signed certificate: your browser will ask you to accept it).

  https://api.${domain}:${port}/public/hello     CRM API public route: the echo shows what passed the gateway
  https://api.${domain}:${port}/                 CRM API (JWT): refused without a valid token
  https://nocodb.${domain}:${port}/              NocoDB (login session): refused until you log in
  https://metabase.${domain}:${port}/            Metabase (login session): refused until you log in
  http://api.${domain}:${running.ports.http}/public/hello      plain HTTP: 308 to HTTPS
  http://127.0.0.1:${running.ports.admin}/readyz           health (loopback only)

Demo login: browser login and JWT come with the authentication feature; until it is enabled,
routes that need them refuse every request (they fail closed). Try a hostile path:
  curl -k 'https://api.${domain}:${port}/public/..%2fadmin'

Stop with Ctrl-C.
`);
  const stop = (): void => {
    void Promise.all(upstreams.map((u) => u.close()));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch(exitOnStartupError);
