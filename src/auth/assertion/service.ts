import { join } from 'node:path';
import type { FSWatcher } from 'node:fs';
import type { GatewayConfig } from '../../config/schema.js';
import type { Principal } from '../../context.js';
import type { Logger } from '../../log/logger.js';
import { watchPrivateFile } from '../../stores/private-file.js';
import { ASSERTION_KEY_FILE_NAME, KEY_RELOAD_MS, ensureKeyFile, publishedKeys, readKeyFile, signingKey, type AssertionKey } from './keys.js';
import { ASSERTION_ALGORITHM, AssertionSigner } from './signer.js';

/** Where the key file is: GATEWAY_ASSERTION_KEY_FILE, else `assertion-keys.json` in DATA_DIR. */
export function assertionKeyFile(cfg: GatewayConfig): string {
  return cfg.assertion.keyFile ?? join(cfg.stores.dataDir, ASSERTION_KEY_FILE_NAME);
}

/**
 * The `iss` of every assertion: GATEWAY_ASSERTION_ISSUER, else the gateway's public origin,
 * `https://<GATEWAY_DOMAIN>` with PUBLIC_HTTPS_PORT when that is not 443. One value for every
 * route and instance, so an upstream checks a constant.
 */
export function assertionIssuer(cfg: GatewayConfig): string {
  if (cfg.assertion.issuer) return cfg.assertion.issuer;
  const port = cfg.listen.publicHttpsPort;
  return `https://${cfg.domain}${port !== undefined && port !== 443 ? `:${port}` : ''}`;
}

/** A JWK as published: the public key with its id, use and algorithm. */
export interface PublishedJwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  kid: string;
  use: 'sig';
  alg: typeof ASSERTION_ALGORITHM;
}

/**
 * The identity assertion of one process: the key set read from the shared key file (re-read
 * when it changes and every KEY_RELOAD_MS; a file that fails to read keeps the keys in use),
 * the signer, and the JWKS document.
 */
export class IdentityAssertions {
  private keys: AssertionKey[];
  private readonly signer: AssertionSigner;
  private readonly watcher: FSWatcher | undefined;
  private readonly timer: NodeJS.Timeout;
  private lastError: string | undefined;

  private constructor(
    readonly file: string,
    readonly issuer: string,
    keys: AssertionKey[],
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.keys = keys;
    this.signer = new AssertionSigner(issuer, (t) => signingKey(this.keys, t), now);
    this.watcher = watchPrivateFile(file, () => this.reload());
    this.timer = setInterval(() => this.reload(), KEY_RELOAD_MS);
    this.timer.unref();
  }

  /** Reads (or, the first time, creates) the key file; throws when it exists but is unusable. */
  static open(cfg: GatewayConfig, log: Logger, now: () => number = Date.now): IdentityAssertions {
    const file = assertionKeyFile(cfg);
    const { keys, created, tightened } = ensureKeyFile(file);
    if (created) log.security('assertion.key_created', { file, kid: keys[0]?.kid });
    if (tightened) log.app('warn', 'the identity assertion key file was readable by others: tightened to 0600', { file });
    const self = new IdentityAssertions(file, assertionIssuer(cfg), keys, log, now);
    log.app('info', 'identity assertions signed with ES256', { file, issuer: self.issuer, signingKid: self.signingKid(), publishedKids: self.publishedKids() });
    return self;
  }

  /** The `X-Gateway-Assertion` value for a principal on a route. */
  sign(principal: Principal, route: string): string {
    return this.signer.sign(principal, route);
  }

  signingKid(): string | undefined {
    return signingKey(this.keys, this.now())?.kid;
  }

  publishedKids(): string[] {
    return publishedKeys(this.keys, this.now()).map((k) => k.kid);
  }

  /** The JWKS document (RFC 7517): every key not yet retired, the next one before it signs. */
  jwks(): string {
    const keys: PublishedJwk[] = publishedKeys(this.keys, this.now()).map((k) => ({
      kty: k.publicJwk.kty as string,
      crv: k.publicJwk.crv as string,
      x: k.publicJwk.x as string,
      y: k.publicJwk.y as string,
      kid: k.kid,
      use: 'sig',
      alg: ASSERTION_ALGORITHM,
    }));
    return JSON.stringify({ keys });
  }

  /** Re-reads the key file now (also run on change and on a timer). */
  reload(): void {
    let next: AssertionKey[];
    try {
      next = readKeyFile(this.file);
    } catch (err) {
      const message = (err as Error).message;
      // Once per distinct problem, not every 30 s.
      if (message !== this.lastError) this.log.app('warn', 'identity assertion keys not reloaded; the keys in use stay', { file: this.file, error: message });
      this.lastError = message;
      return;
    }
    this.lastError = undefined;
    const before = this.keys.map((k) => `${k.kid}@${k.activeFrom}-${k.retireAfter ?? ''}`).join(',');
    const after = next.map((k) => `${k.kid}@${k.activeFrom}-${k.retireAfter ?? ''}`).join(',');
    if (before === after) return;
    const dropped = this.keys.some((k) => !next.some((n) => n.kid === k.kid));
    this.keys = next;
    // A key gone at once (rotation without grace): nothing it signed may be handed out again.
    if (dropped) this.signer.clear();
    this.log.security('assertion.keys_loaded', { file: this.file, signingKid: this.signingKid(), publishedKids: this.publishedKids() });
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.timer);
  }
}
