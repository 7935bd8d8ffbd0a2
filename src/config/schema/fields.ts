/**
 * Field types shared by the config's sections: human units, ports, lists, networks, host names,
 * URLs, header names and CORS origins. Each checks its value once, at load, with a message that
 * says what to write instead.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from '../units.js';
import { IpSet } from '../../net/ip.js';

/** "500ms", "60s", "10m" (a bare number is milliseconds) → milliseconds. */
export const duration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. 500ms, 60s, 10m)` });
      return z.NEVER;
    }
    return ms;
  });

/** "512kb", "1mb" (a bare number is bytes) → bytes. */
export const size = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(v)} (use e.g. 512kb, 1mb)` });
      return z.NEVER;
    }
    return bytes;
  });

/** A port as YAML number or environment string. */
export const port = z
  .union([z.number(), z.string().regex(/^\d+$/, 'not a port number').transform(Number)])
  .pipe(z.number().int().min(0).max(65_535));

/** A whole number of days (at least one), as YAML number or environment string. */
export const days = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().min(1));

/** A boolean as YAML boolean or environment string (true/false, 1/0, yes/no). */
export const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v)),
]);

/** A list given as YAML list or comma-separated string; each element may itself hold commas. */
export const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== ''));

/** Addresses and CIDR networks, checked by the one parser the gateway matches them with. */
export const cidrList = list.superRefine((entries, ctx) => {
  try {
    new IpSet(entries);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** A DNS name in normal form: lower case, no trailing dot. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const normalHost = (h: string): string => h.trim().toLowerCase().replace(/\.$/, '');

export const hostname = z
  .string()
  .transform(normalHost)
  .refine((h) => HOST_NAME.test(h), { message: 'not a valid host name' });

/** A PostgreSQL connection URL (the CRM database, the gateway's own stores). */
export const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, 'use postgres:// or postgresql://');

/** An http(s) URL to POST or connect to. */
export const httpUrl = z.url({ protocol: /^https?$/, message: 'use an http(s) URL' });

export const upstreamUrl = z.string().superRefine((u, ctx) => {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a URL: ${JSON.stringify(u)}` });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'upstream must be http:// or https://' });
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'upstream URL must not carry credentials' });
  if (url.search || url.hash) ctx.addIssue({ code: 'custom', message: 'upstream URL must not have a query or fragment' });
});

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name').transform((h) => h.toLowerCase());
export const headerEdits = z.strictObject({
  set: z.record(headerName, z.string()).prefault({}),
  remove: z.array(headerName).default([]),
});
/** `keep`: banner headers (Server, X-Powered-By, ...) that this route lets through; all are dropped by default. */
export const responseHeaderEdits = headerEdits.extend({ keep: z.array(headerName).default([]) });

/**
 * A CORS origin: `*`, a bare host name (any scheme and port), or an exact http(s) origin with no
 * path. Checked here: a bad one (`https://`) used to crash startup with a raw TypeError.
 */
const corsOrigin = z.string().superRefine((o, ctx) => {
  if (o === '*') return;
  if (!/^https?:\/\//i.test(o)) {
    if (!HOST_NAME.test(normalHost(o)) && !/^\[?[0-9a-f:.]+\]?$/i.test(o)) {
      ctx.addIssue({ code: 'custom', message: `not an origin or host name: ${JSON.stringify(o)} (use https://app.example.com or app.example.com)` });
    }
    return;
  }
  let url: URL | undefined;
  try {
    url = new URL(o);
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '') || /\/.+$/.test(o.replace(/^https?:\/\//i, ''))) {
    ctx.addIssue({ code: 'custom', message: `not an origin: ${JSON.stringify(o)} (scheme, host and optional port only, e.g. https://app.example.com:8443)` });
  }
});
export const corsOrigins = list.pipe(z.array(corsOrigin));
