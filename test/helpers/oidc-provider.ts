import https from 'node:https';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { testCertificate } from './harness.js';

/** An account of the test provider: the claims its id_tokens and userinfo carry. */
export interface ProviderAccount {
  email: string;
  email_verified: boolean;
  groups?: string[];
  name?: string;
}

/**
 * Rewrites the provider's answer to one path (its token endpoint, its discovery document) on its
 * way out: a real provider answering garbage, or signing claims it should not, for the refusal
 * tests. `body` is what the provider produced (an object for JSON answers); the result is sent
 * as JSON, or as it is when a string (bad JSON).
 */
export type Tamper = (body: unknown) => unknown;

export interface TestProvider {
  /** https://localhost:<port>: the issuer identifier. */
  readonly issuer: string;
  readonly port: number;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The CA that signed the provider's certificate (the harness's development CA), for `caFile`. */
  readonly caFile: string;
  /** Tampers, by request path (`/token`, `/.well-known/openid-configuration`, `/jwks`). */
  readonly tamper: Map<string, Tamper>;
  /** Signs a JWT with the provider's own key (its `kid`), as the provider signs id_tokens. */
  signJwt(header: Record<string, unknown>, claims: Record<string, unknown>): string;
  /** Stops listening (the provider is down); open connections are cut. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface TestProviderOptions {
  /** accountId (what the dev login form is given) → claims. */
  accounts: Record<string, ProviderAccount>;
  /** The gateway's callback URL(s), registered for the client. */
  redirectUris: string[];
  /** A fixed port (to restart a provider that was down at the gateway's startup); default ephemeral. */
  port?: number;
  /** id_token lifetime in seconds (oidc-provider's ttl.IdToken). */
  idTokenTtl?: number;
}

function b64url(v: Buffer | string | object): string {
  return (Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))).toString('base64url');
}

/**
 * A real OpenID Provider (oidc-provider 9, a certified OP) on HTTPS loopback, with the harness's
 * test certificate (localhost is in its names), one confidential client and the accounts given.
 * Its development interactions are the login and consent pages: any login name is accepted and
 * becomes the accountId. PKCE is required of every client. The id_token signing key is made
 * here, so a test can sign a tampered token with the provider's own key (signJwt).
 */
export async function startTestProvider(opts: TestProviderOptions): Promise<TestProvider> {
  // oidc-provider is a devDependency; imported here so only the tests that need it load it.
  const { default: Provider } = await import('oidc-provider');
  const cert = await testCertificate();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${randomBytes(4).toString('hex')}`;
  const jwk: JsonWebKey = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const clientId = `crm-gateway-${randomBytes(3).toString('hex')}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const tamper = new Map<string, Tamper>();

  const server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `https://localhost:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk as never] },
    findAccount: (_ctx: unknown, id: string) => {
      const account = opts.accounts[id];
      if (!account) return undefined;
      return { accountId: id, claims: () => ({ sub: id, ...account }) };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    ttl: {
      IdToken: opts.idTokenTtl ?? 600,
      AccessToken: 600,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    // oidc-provider's conform mode leaves email/groups out of the id_token when an access
    // token is issued (they go to userinfo). The gateway reads the id_token only, as Google
    // and Entra give these claims there.
    conformIdTokenClaims: false,
  } as never);
  provider.use(async (ctx, next) => {
    await next();
    const edit = tamper.get(ctx.path);
    if (!edit) return;
    const out = edit(ctx.body);
    ctx.body = typeof out === 'string' ? out : JSON.stringify(out);
    ctx.type = 'application/json';
  });
  server.on('request', provider.callback());

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  return {
    issuer,
    port,
    clientId,
    clientSecret,
    caFile: cert.ca,
    tamper,
    signJwt(header, claims) {
      const input = `${b64url({ alg: 'RS256', typ: 'JWT', kid, ...header })}.${b64url(claims)}`;
      return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
    },
    stop,
    start: listen,
    close: stop,
  };
}

/** The claims of a JWT, unverified (tests rewrite what the provider signed). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * A person at the provider, without a browser: follows the authorization URL through the
 * provider's own login and consent pages (posting them as a browser would, with the provider's
 * cookies kept) and returns the URL the provider finally redirects to: the gateway's callback
 * with `code`, `state` and `iss`, or with `error` when `abort` cancels the login.
 */
export async function signInAtProvider(provider: TestProvider, authorizationUrl: string, login: string, opts: { abort?: boolean } = {}): Promise<URL> {
  const { Agent, fetch } = await import('undici');
  const dispatcher = new Agent({ connect: { ca: readFileSync(provider.caFile) } });
  const jar = new Map<string, string>();
  const send = async (url: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; location: string | undefined; body: string }> => {
    const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method: init.method ?? 'GET', body: init.body, headers, redirect: 'manual', dispatcher });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, location: location ? new URL(location, url).href : undefined, body: await res.text() };
  };
  const formAction = (html: string, base: string): string => {
    const m = /<form[^>]*action="([^"]+)"/.exec(html);
    if (!m?.[1]) throw new Error(`no form on the provider's page: ${html.slice(0, 300)}`);
    return new URL(m[1].replace(/&amp;/g, '&'), base).href;
  };
  try {
    let url = authorizationUrl;
    for (let hop = 0; hop < 12; hop++) {
      if (!url.startsWith(provider.issuer)) return new URL(url);
      const res = await send(url);
      if (res.location) {
        url = res.location;
        continue;
      }
      if (res.status !== 200) throw new Error(`provider answered ${res.status} at ${url}: ${res.body.slice(0, 300)}`);
      const action = formAction(res.body, url);
      if (opts.abort) {
        const abort = await send(`${new URL(url).origin}${new URL(url).pathname}/abort`);
        url = abort.location ?? '';
        continue;
      }
      const body = res.body.includes('name="prompt" value="login"')
        ? new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString()
        : new URLSearchParams({ prompt: 'consent' }).toString();
      const posted = await send(action, { method: 'POST', body });
      if (!posted.location) throw new Error(`provider answered ${posted.status} to the form at ${action}: ${posted.body.slice(0, 300)}`);
      url = posted.location;
    }
    throw new Error('too many redirects at the provider');
  } finally {
    await dispatcher.close();
  }
}
