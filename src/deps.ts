import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from './log/logger.js';
import type { OverviewRange, OverviewSnapshot } from './audit/overview/overview-data.js';
import type { AuthService } from './auth/service.js';
import type { WhatsappWebhooks } from './webhook/service.js';
import type { OpenApiSpecs } from './openapi/registry.js';
import type { Containment } from './containment/service.js';
import type { IdentityAssertions } from './auth/assertion/service.js';
import type { Http01Responder } from './tls/acme/http01.js';
import type { GatewayMetrics } from './metrics/gateway.js';

/**
 * Process-wide services handed to the pipeline. Stores are optional: without REDIS_URL /
 * DATABASE_URL each feature uses its embedded single-instance store.
 */
export interface GatewayDeps {
  readonly log: Logger;
  /** This gateway's metrics and their registry (served on its admin listener), made once by what builds it. */
  readonly metrics: GatewayMetrics;
  readonly redis?: Redis | undefined;
  readonly postgres?: pg.Pool | undefined;
  /** Present when API_SECRET_KEY is set; without it, routes that need auth refuse. */
  readonly auth?: AuthService | undefined;
  /**
   * Who is asking, for admin pages on the admin listener (the security overview). Missing, or
   * answering undefined or a principal without the `admin` role, means refused (fail closed).
   */
  readonly adminAuth?: ((req: IncomingMessage) => Promise<{ subject: string; roles: readonly string[] } | undefined>) | undefined;
  /** The last 30 days of access and security records, for the overview page (the audit logger's). */
  readonly securityOverview?: { snapshot(range?: OverviewRange): OverviewSnapshot } | undefined;
  /** Blocks (`crm-gateway block`), kept current from Redis or DATA_DIR; absent: none enforced. */
  readonly containment?: Containment | undefined;
  /** The compiled OpenAPI specs of routes with `openapi:` (src/openapi/registry.ts); a route whose spec is missing refuses to build. */
  readonly openapi?: OpenApiSpecs | undefined;
  /**
   * With ACME (tls.acme, http-01): answers `/.well-known/acme-challenge/<token>` on the plain-HTTP
   * listener (src/tls/acme/http01.ts) for the Hosts it covers; it writes the reply itself, refusals included.
   */
  readonly acmeHttp01?: Http01Responder | undefined;
  /** Built by startGateway when a route has `auth: whatsapp`. */
  readonly whatsapp?: WhatsappWebhooks | undefined;
  /** The signed identity assertion's keys and signer (src/auth/assertion/), loaded by main.ts whenever auth is on and a route carries one. */
  readonly assertions?: IdentityAssertions | undefined;
}
