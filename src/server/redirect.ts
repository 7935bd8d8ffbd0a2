import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import { normalizePath } from '../routing/normalize-path.js';
import { readRequestTarget } from '../routing/request-target.js';
import { renderError, sendOwn } from '../respond.js';

/**
 * The plain-HTTP listener's answer: 308 to the same URL over HTTPS. Only hosts the gateway
 * serves are redirected, so the listener is not an open redirect for any Host a client sends.
 */
export function createRedirectHandler(cfg: GatewayConfig, httpsPort: () => number): (req: IncomingMessage, res: ServerResponse) => void {
  const hosts = new Set(cfg.routes.flatMap((r) => (r.host ? [r.host] : [])));
  const anyHostRoute = cfg.routes.some((r) => r.host === undefined);
  const served = (host: string): boolean =>
    hosts.has(host) || (anyHostRoute && (host === cfg.domain || host.endsWith(`.${cfg.domain}`) || host === 'localhost' || host === '127.0.0.1' || host === '[::1]'));

  return (req, res) => {
    try {
      const target = readRequestTarget(req, cfg.server.maxUrlLength);
      const path = normalizePath(target.rawPath, { allowEncodedSlashes: true });
      if (!served(target.host)) throw new GatewayError('ROUTE_NOT_FOUND', `redirect for unknown host ${target.host}`);
      const port = cfg.listen.publicHttpsPort ?? httpsPort();
      const authority = port === 443 ? target.host : `${target.host}:${port}`;
      const location = `https://${authority}${path}${target.query ? `?${target.query}` : ''}`;
      sendOwn(req, res, 308, { location });
    } catch (err) {
      const gerr = err instanceof GatewayError ? err : new GatewayError('BAD_REQUEST', String(err));
      sendOwn(req, res, gerr.status, {}, renderError(gerr, 'redirect', false));
    }
  };
}

