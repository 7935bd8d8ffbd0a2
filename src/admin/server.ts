import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type pg from 'pg';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { renderError } from '../respond.js';
import { readiness } from './readiness.js';
import { createOverviewHandler, type OverviewDeps } from './overview.js';
import { createHostCheck } from './origin.js';
import { JWKS_CACHE_CONTROL, JWKS_CONTENT_TYPE, JWKS_PATH } from '../auth/assertion/routes.js';

export interface AdminDeps extends OverviewDeps {
  readonly postgres?: pg.Pool | undefined;
  /** The public HTTPS listener accepts connections (readiness); assumed true when not given. */
  readonly listening?: (() => boolean) | undefined;
  /** The identity assertion's public keys, served at JWKS_PATH for upstreams on the admin network. */
  readonly assertions?: { jwks(): string } | undefined;
}

/**
 * The admin listener, bound to loopback only: `/healthz` (the process answers), `/readyz` (the
 * gateway can serve; upstream health beside it), `/metrics` (Prometheus), and `/security`, the
 * security overview (admin role, bearer token or browser sign-in). Never served on the public port.
 */
export function createAdminServer(cfg: GatewayConfig, isDraining: () => boolean, deps?: AdminDeps): http.Server {
  return http.createServer(createAdminHandler(cfg, isDraining, deps));
}

/** The admin listener's request handler, for a server bound before the gateway is built (bindGateway). */
export function createAdminHandler(cfg: GatewayConfig, isDraining: () => boolean, deps?: AdminDeps): http.RequestListener {
  const overview = deps ? createOverviewHandler(cfg, deps) : undefined;
  const hostAllowed = createHostCheck(cfg.admin.hosts);
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    /** Refusals in the documented format (`{"error":{"code","message","requestId"}}`). */
    const refuse = (err: GatewayError): void => {
      const body = renderError(err, randomUUID(), false);
      res.writeHead(err.status, { 'content-type': body.contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(body.body), ...err.headers });
      res.end(req.method === 'HEAD' ? undefined : body.body);
    };
    const path = (req.url ?? '').split('?')[0] ?? '';
    // The overview's sign-in posts forms; it answers its own methods.
    if (overview?.(req, res, path)) return;
    // The other paths too (the overview checks its own): a page on another site that rebinds its name to
    // 127.0.0.1 must not read /readyz (every upstream's address) or /metrics either.
    if (!hostAllowed(req)) return refuse(new GatewayError('HOST_INVALID', `Host ${String(req.headers.host).slice(0, 100)} on the admin listener`));
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(new GatewayError('METHOD_NOT_ALLOWED', `${req.method} ${path} on the admin listener`, { allow: 'GET, HEAD' }));
    const assertions = deps?.assertions;
    if (path === JWKS_PATH && assertions) {
      const text = assertions.jwks();
      res.writeHead(200, { 'content-type': JWKS_CONTENT_TYPE, 'cache-control': JWKS_CACHE_CONTROL, 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === '/healthz') return send(200, { status: 'ok', pid: process.pid, uptimeSeconds: Math.round(process.uptime()) });
    if (path === '/readyz') {
      readiness(cfg, { draining: isDraining, listening: deps?.listening ?? (() => true), redis: deps?.redis, postgres: deps?.postgres, log: deps?.log }).then(
        (r) => send(r.ready ? 200 : 503, { status: r.status, checks: r.checks, upstreams: r.upstreams }),
        (err: Error) => send(503, { status: 'error', error: err.message }),
      );
      return;
    }
    const registry = deps?.metrics.registry;
    if (path === '/metrics' && registry) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
          res.end(text);
        },
        (err: Error) => send(500, { error: err.message }),
      );
      return;
    }
    refuse(new GatewayError('ROUTE_NOT_FOUND', `${path} on the admin listener`));
  };
}
