import http from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import { readiness } from './readiness.js';
import { metrics } from '../metrics.js';
import { handleOverview, type OverviewDeps } from './overview.js';

/**
 * The admin listener, bound to loopback only: `/healthz` (the process answers) and
 * `/readyz` (upstreams and stores reachable) and `/metrics` (Prometheus), and `/security`, the
 * security overview (admin role). Never served on the public port.
 */
export function createAdminServer(cfg: GatewayConfig, isDraining: () => boolean, overview?: OverviewDeps): http.Server {
  return http.createServer(createAdminHandler(cfg, isDraining, overview));
}

/** The admin listener's request handler, for a server bound before the gateway is built (bindGateway). */
export function createAdminHandler(cfg: GatewayConfig, isDraining: () => boolean, overview?: OverviewDeps): http.RequestListener {
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') return send(200, { status: 'ok', pid: process.pid, uptimeSeconds: Math.round(process.uptime()) });
    if (path === '/readyz') {
      if (isDraining()) return send(503, { status: 'draining' });
      readiness(cfg).then(
        (r) => send(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks }),
        (err: Error) => send(503, { status: 'error', error: err.message }),
      );
      return;
    }
    if (path === '/metrics') {
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
          res.end(text);
        },
        (err: Error) => send(500, { error: err.message }),
      );
      return;
    }
    // The security overview (admin role only; refused when no admin authentication is wired).
    if (overview && handleOverview(overview, req, res, path ?? '')) return;
    send(404, { error: 'not found' });
  };
}
