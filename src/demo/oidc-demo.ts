import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { devCaPaths } from '../tls/certificates.js';

/** The demo provider's port on loopback (https://localhost:9443). */
export const DEMO_OIDC_PORT = 9443;
/** The demo provider's one account: what its login page is given. */
export const DEMO_OIDC_LOGIN = 'ana.garcia';

export interface DemoProvider {
  readonly issuer: string;
  close(): Promise<void>;
}

/**
 * `npm run demo -- --oidc`: a local OpenID Provider (oidc-provider, a devDependency, loaded only
 * with the flag) with one client (the gateway) and one account, on the gateway's own
 * development certificate. Its development login page takes any password for DEMO_OIDC_LOGIN
 * (email ana.garcia@example.com, verified, group crm-staff). Not for anything but the demo.
 */
export async function startDemoProvider(opts: { certFile: string; keyFile: string; clientId: string; clientSecret: string; redirectUris: string[] }): Promise<DemoProvider> {
  let Provider: typeof import('oidc-provider').default;
  try {
    ({ default: Provider } = await import('oidc-provider'));
  } catch (err) {
    throw new Error(`--oidc needs oidc-provider, a devDependency of crm-gateway (install with \`npm ci\`, not --omit=dev): ${(err as Error).message}`);
  }
  const issuer = `https://localhost:${DEMO_OIDC_PORT}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: opts.clientId, client_secret: opts.clientSecret, redirect_uris: opts.redirectUris, grant_types: ['authorization_code'], response_types: ['code'] }],
    findAccount: (_ctx: unknown, id: string) =>
      id === DEMO_OIDC_LOGIN ? { accountId: id, claims: () => ({ sub: id, email: 'ana.garcia@example.com', email_verified: true, name: 'Ana García', groups: ['crm-staff'] }) } : undefined,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    conformIdTokenClaims: false,
  });
  const server = https.createServer({ cert: readFileSync(opts.certFile), key: readFileSync(opts.keyFile) }, provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(DEMO_OIDC_PORT, '127.0.0.1', () => resolve());
  });
  return {
    issuer,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * What `--oidc` adds to the demo: the gateway's OIDC_* settings for the local provider (started
 * after the gateway, which has made its development certificate by then: discovery waits for
 * the first sign-in), and the lines the demo prints.
 */
export function demoOidc(base: Readonly<Record<string, string | undefined>>, defaults: { certFile: string; keyFile: string; httpsPort: number }): {
  env: Record<string, string>;
  start(): Promise<DemoProvider>;
  lines(): string;
} {
  const certFile = base.TLS_CERT_FILE || defaults.certFile;
  const keyFile = base.TLS_KEY_FILE || defaults.keyFile;
  const domain = base.GATEWAY_DOMAIN || 'localhost';
  const port = Number(base.PUBLIC_HTTPS_PORT || base.HTTPS_PORT || defaults.httpsPort);
  const authority = (h: string): string => (port === 443 ? h : `${h}:${port}`);
  const clientId = 'crm-gateway-demo';
  const clientSecret = randomBytes(24).toString('base64url');
  // The gateway trusts the provider's certificate (its own development one) through its CA.
  const ca = devCaPaths(certFile).cert;
  const env: Record<string, string> = {
    OIDC_ISSUER: `https://localhost:${DEMO_OIDC_PORT}`,
    OIDC_CLIENT_ID: clientId,
    OIDC_CLIENT_SECRET: clientSecret,
    OIDC_ALLOWED_EMAIL_DOMAINS: 'example.com',
    OIDC_DEFAULT_ROLES: 'staff',
    ...(existsSync(ca) || !existsSync(certFile) ? { OIDC_CA_FILE: ca } : {}),
  };
  return {
    env,
    start: () => startDemoProvider({ certFile, keyFile, clientId, clientSecret, redirectUris: ['nocodb', 'metabase'].map((h) => `https://${authority(`${h}.${domain}`)}/auth/oidc/callback`) }),
    lines: () => `  https://localhost:${DEMO_OIDC_PORT}/         a local OpenID Provider (--oidc): on the login page, "Sign in with your organisation account", then log in as ${DEMO_OIDC_LOGIN} (any password)\n`,
  };
}
