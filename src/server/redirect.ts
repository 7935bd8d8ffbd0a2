import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createClientIpResolver } from '../net/client-ip.js';
import { IpSet } from '../net/ip.js';
import { normalizePath } from '../routing/normalize-path.js';
import { readRequestTarget } from '../routing/request-target.js';
import { renderError, sendOwn } from '../respond.js';
import { accessEntry, deniedEvent } from '../log/access.js';
import type { RequestContext } from '../context.js';

/**
 * The plain-HTTP listener's answer: 308 to the same URL over HTTPS. Only hosts the gateway
 * serves are redirected, so the listener is not an open redirect for any Host a client sends.
 * Every request gets an access line like those of the HTTPS listener (outcome `answered`,
 * `listener: http`), and a refusal a `request.denied` event too.
 */
export function createRedirectHandler(cfg: GatewayConfig, httpsPort: () => number, log: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const hosts = new Set(cfg.routes.flatMap((r) => (r.host ? [r.host] : [])));
  const anyHostRoute = cfg.routes.some((r) => r.host === undefined);
  const served = (host: string): boolean =>
    hosts.has(host) || (anyHostRoute && (host === cfg.domain || host.endsWith(`.${cfg.domain}`) || host === 'localhost' || host === '127.0.0.1' || host === '[::1]'));
  const resolveAddress = createClientIpResolver(new IpSet(cfg.trustedProxies));

  return (req, res) => {
    const ctx: RequestContext = {
      id: randomUUID(),
      startedAt: performance.now(),
      kind: 'http',
      req,
      secure: false,
      servername: undefined,
      address: resolveAddress(req),
      responseHeaders: {},
      setCookies: [],
      bytesIn: 0,
      bytesOut: 0,
    };
    try {
      const target = readRequestTarget(req, cfg.server.maxUrlLength);
      ctx.target = target;
      const path = normalizePath(target.rawPath, { allowEncodedSlashes: true });
      ctx.path = path;
      if (!served(target.host)) throw new GatewayError('ROUTE_NOT_FOUND', `redirect for unknown host ${target.host}`);
      const port = cfg.listen.publicHttpsPort ?? httpsPort();
      const authority = port === 443 ? target.host : `${target.host}:${port}`;
      const location = `https://${authority}${path}${target.query ? `?${target.query}` : ''}`;
      ctx.outcome = 'answered';
      ctx.status = 308;
      sendOwn(req, res, 308, { location, 'x-request-id': ctx.id });
    } catch (err) {
      const error = err instanceof GatewayError ? err : new GatewayError('BAD_REQUEST', String(err));
      ctx.error = error;
      ctx.outcome = 'denied';
      ctx.status = error.status;
      sendOwn(req, res, error.status, { 'x-request-id': ctx.id }, renderError(error, ctx.id, false));
    }
    // The same line and event as the HTTPS listener's (log/access.ts), marked with the listener.
    log.access({ ...accessEntry(ctx), listener: 'http' });
    if (ctx.error) log.security('request.denied', { ...deniedEvent(ctx), listener: 'http' });
  };
}
