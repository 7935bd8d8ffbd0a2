/** `tls`: the certificate files, HSTS, and ACME when the gateway obtains the certificate itself. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { bool } from './fields.js';

/**
 * ACME (RFC 8555): the certificate for every routed host is obtained and renewed from
 * `directoryUrl` and written to certFile/keyFile (src/tls/acme/). Unset: files by hand.
 */
const acmeSchema = z
  .strictObject({
    directoryUrl: z.string().refine((u) => /^https:\/\//i.test(u) && URL.canParse(u), 'an https:// URL (RFC 8555 §6.1: ACME runs over HTTPS)').optional(),
    email: z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, 'an e-mail address').optional(),
    /** Extra CA (PEM) trusted for the directory only, for a private ACME server. */
    caFile: z.string().min(1).optional(),
    challenge: z.enum(['http-01', 'tls-alpn-01']).optional(),
  })
  // Each setting without the directory is named on its own path, so the message names its variable.
  .superRefine((a, ctx) => {
    if (a.directoryUrl) return;
    for (const key of ['email', 'caFile', 'challenge'] as const) {
      if (a[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'has no effect without ACME_DIRECTORY_URL (tls.acme.directoryUrl)' });
    }
  })
  .transform((a) => (a.directoryUrl ? { directoryUrl: a.directoryUrl, email: a.email, caFile: a.caFile, challenge: a.challenge ?? ('http-01' as const) } : undefined));

export const tlsSchema = z
  .strictObject({
    certFile: z.string().default(DEFAULTS.certFile),
    keyFile: z.string().default(DEFAULTS.keyFile),
    hstsMaxAge: z.number().int().min(0).default(DEFAULTS.hstsMaxAge),
    hstsIncludeSubDomains: bool.default(true),
    hstsPreload: bool.default(false),
    watch: bool.default(true),
    acme: acmeSchema.optional(),
  })
  .prefault({});
