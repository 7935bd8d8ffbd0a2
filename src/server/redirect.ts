import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { createClientIpResolver } from '../net/client-ip.js';
import { IpSet } from '../net/ip.js';
import { normalizePath } from '../routing/normalize-path.js';
import { readRequestTarget, type RequestTarget } from '../routing/request-target.js';
import { renderError, sendOwn } from '../respond.js';

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
    const startedAt = performance.now();
    const id = randomUUID();
    let target: RequestTarget | undefined;
    let path: string | undefined;
    let error: GatewayError | undefined;
    try {
      target = readRequestTarget(req, cfg.server.maxUrlLength);
      path = normalizePath(target.rawPath, { allowEncodedSlashes: true });
      if (!served(target.host)) throw new GatewayError('ROUTE_NOT_FOUND', `redirect for unknown host ${target.host}`);
      const port = cfg.listen.publicHttpsPort ?? httpsPort();
      const authority = port === 443 ? target.host : `${target.host}:${port}`;
      const location = `https://${authority}${path}${target.query ? `?${target.query}` : ''}`;
      sendOwn(req, res, 308, { location, 'x-request-id': id });
    } catch (err) {
      error = err instanceof GatewayError ? err : new GatewayError('BAD_REQUEST', String(err));
      sendOwn(req, res, error.status, { 'x-request-id': id }, renderError(error, id, false));
    }
    const address = resolveAddress(req);
    const entry = {
      requestId: id,
      kind: 'http',
      listener: 'http',
      clientIp: address.client.address,
      peerIp: address.peer.address,
      method: req.method,
      host: target?.host,
      path: path ?? target?.rawPath,
      query: target?.query || undefined,
      status: error?.status ?? 308,
      outcome: error ? 'denied' : 'answered',
      code: error?.code,
      detail: error?.detail,
      durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
    };
    log.access(entry);
    if (error) log.security('request.denied', { requestId: id, code: error.code, detail: error.detail, status: error.status, clientIp: entry.clientIp, method: req.method, host: entry.host, path: entry.path, query: entry.query, listener: 'http' });
  };
}
