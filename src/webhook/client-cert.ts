import type { TLSSocket } from 'node:tls';
import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { judgeClientCert, type ClientCa, type ClientCertMode } from '../tls/client-certs.js';
import type { WebhookMetrics } from './metrics.js';

/**
 * Meta's client certificate on a webhook request (WHATSAPP_MTLS), checked before the body is
 * read: a refused request never reaches the signature check, the queue or the CRM API.
 * `required`: none or a wrong one is refused; `optional`: none passes (counted and logged as
 * such), a wrong one is refused all the same (a certificate sent is a claim, and a false claim
 * is an attack, not an old client).
 */
export function checkClientCert(ctx: RequestContext, route: RouteConfig, mtls: { mode: ClientCertMode; ca: ClientCa }, log: Logger, metrics: WebhookMetrics): void {
  const mode = mtls.mode;
  const socket = ctx.secure ? (ctx.req.socket as TLSSocket) : undefined;
  const verdict = judgeClientCert(socket);
  const where = { route: route.name, requestId: ctx.id, clientIp: ctx.address?.client.address, servername: ctx.servername, mode };
  if (verdict.ok) {
    metrics.countClientCert(route.name, 'accepted');
    return;
  }
  if (verdict.reason === 'missing' && mode === 'optional') {
    metrics.countClientCert(route.name, 'absent');
    log.security('webhook.client_cert_absent', where);
    return;
  }
  metrics.countClientCert(route.name, 'rejected');
  log.security('webhook.client_cert_rejected', { ...where, reason: verdict.reason, ...verdict.facts });
  throw new GatewayError(verdict.reason === 'missing' ? 'WEBHOOK_CLIENT_CERT_REQUIRED' : 'WEBHOOK_CLIENT_CERT_INVALID', `${route.name}: ${verdict.detail}`);
}
