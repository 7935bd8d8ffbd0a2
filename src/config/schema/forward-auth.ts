/**
 * `forwardAuth`: forward-auth mode (src/auth/forward-auth/), an endpoint at `host` + `path` that
 * an edge proxy (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth) asks about each
 * request it serves. Its X-Forwarded-* / X-Original-* headers are believed only from `edges`
 * (default: TRUSTED_PROXIES); any other peer is refused.
 */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { cidrList, hostname } from './fields.js';

export const forwardAuthSchema = z.strictObject({
  host: hostname,
  path: z.string().regex(/^\/auth\/[a-z0-9/_-]+$/, 'a path under /auth/').default(DEFAULTS.forwardAuthPath),
  edges: cidrList.prefault([]),
});
