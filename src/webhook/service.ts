import type { Redis } from 'ioredis';
import type { GatewayConfig, RouteConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { IdentifierHasher } from '../audit/redact/identifiers.js';
import { UpstreamAgents } from '../proxy/agents.js';
import type { BodyBuffers } from '../proxy/body-buffers.js';
import type { TerminalHandler } from '../routes.js';
import type { Step } from '../step.js';
import { createWebhookRoute, type WebhookDeps, type WebhookRoute } from './handler.js';
import type { WebhookMetrics } from './metrics.js';
import { whatsappSettings, type WhatsappSettings } from './settings.js';
import { checkClientCert } from './client-cert.js';

/**
 * The WhatsApp webhook of one process: a handler per `auth: whatsapp` route, and one delivery
 * worker per route, started with the listeners and stopped on shutdown.
 */
export class WhatsappWebhooks {
  private readonly routes = new Map<string, WebhookRoute>();
  private readonly agents = new UpstreamAgents();
  private started = false;

  constructor(
    private readonly settings: WhatsappSettings,
    private readonly deps: WebhookDeps,
  ) {}

  /** Both secrets are set: the signature and the handshake can be checked. */
  get verifying(): boolean {
    return this.settings.appSecret !== undefined && this.settings.verifyToken !== undefined;
  }

  /**
   * The authentication step of a whatsapp route. The signature covers the raw body, so it is
   * checked by the route's handler once the body is read, before any byte goes upstream; this
   * step names the caller for authorization (which needs a principal) and the upstream headers.
   * Without the secrets it refuses every request.
   */
  authenticate(route: RouteConfig): Step {
    if (!this.verifying) return refuse(route, 'WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN are needed');
    return (ctx) => {
      // An upgrade would go to the plain websocket proxy, past the handler that checks the
      // signature: never, whatever the route's `websocket` says.
      if (ctx.kind === 'upgrade') throw new GatewayError('UPGRADE_NOT_ALLOWED', `route ${route.name} is a WhatsApp webhook`);
      // Meta's client certificate (WHATSAPP_MTLS), before any byte of the body is read.
      if (this.settings.mtls) checkClientCert(ctx, route, this.settings.mtls, this.deps.log, this.deps.metrics);
      ctx.principal = { subject: 'whatsapp-webhook', roles: [], method: 'whatsapp' };
    };
  }

  /** The route's terminal handler; it reads payloads within the budget and deadline of `bodies` (the gateway's). */
  handlerFor(route: RouteConfig, bodies: BodyBuffers): TerminalHandler {
    let r = this.routes.get(route.name);
    if (!r) {
      r = createWebhookRoute(route, this.settings, this.deps, this.agents.for(new URL(route.upstream), route.upstreamTls));
      this.routes.set(route.name, r);
      if (this.started) r.start();
    }
    const handle = r.handle;
    return (ctx, res, fail) => handle(ctx, res, fail, bodies);
  }

  start(): void {
    this.started = true;
    for (const r of this.routes.values()) r.start();
  }

  /** Waits for deliveries under way (each bounded by its route's timeout), then frees the lease. */
  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.routes.values()].map((r) => r.stop()));
    this.agents.destroy();
  }
}

function refuse(route: RouteConfig, why: string): Step {
  return () => {
    throw new GatewayError('AUTH_UNAVAILABLE', `route ${route.name}: ${why}`);
  };
}


/** The service when some route has `auth: whatsapp`; undefined otherwise. */
export function createWhatsappWebhooks(cfg: GatewayConfig, deps: { log: Logger; redis?: Redis | undefined; metrics: { webhook: WebhookMetrics } }): WhatsappWebhooks | undefined {
  if (!cfg.routes.some((r) => r.auth === 'whatsapp')) return undefined;
  // Phone numbers are hashed before they reach any logger, with LOG_HASH_KEY as the audit logger
  // hashes identifiers: the same key gives the same hash, so webhook lines correlate with the rest.
  return new WhatsappWebhooks(whatsappSettings(cfg), { log: deps.log, redis: deps.redis, metrics: deps.metrics.webhook, identifiers: new IdentifierHasher(cfg.log.hashKey) });
}
