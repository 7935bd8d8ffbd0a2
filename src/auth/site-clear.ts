import type { GatewayConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Kv } from '../stores/kv.js';
import { OneTimeTickets } from './one-time-tickets.js';

/** The hop of the clearing chain on each session host. */
export const CLEAR_PATH = '/auth/clear';

/**
 * What a logout clears on each host. "storage" is per origin (localStorage, IndexedDB, service
 * workers: NocoDB keeps its token in localStorage). "cookies" clears the whole registered
 * domain (Clear Site Data §4.2.4): under `nocodb.crm.example.com` every `*.example.com` cookie
 * of that browser goes, other applications' included. The issue asks for both; a deployment
 * that shares its registered domain with other sites would want "storage" alone (not
 * configurable yet: src/config/schema.ts is outside this change).
 */
export const CLEAR_SITE_DATA = '"cookies", "storage"';
/**
 * On a login only "storage": Chromium applies "cookies" to the Set-Cookie of the same response
 * too (checked in Debian's Chromium 156), which would delete the session just set. The cookies the
 * browser sent are expired one by one instead.
 */
export const CLEAR_STORAGE = '"storage"';

/**
 * Session cookies of the applications behind the gateway, expired by name besides
 * Clear-Site-Data (which browsers before 2023 ignore, and which reaches no cookie the request
 * did not carry): NocoDB's `refresh_token` (Path=/), Metabase's `metabase.SESSION`,
 * `metabase.EMBEDDED_SESSION` and `metabase.TIMEOUT` (all Path=/, metabase/metabase
 * src/metabase/request/cookies.clj). `metabase.DEVICE` only names the browser for login
 * notification mails, and is left.
 */
export const APP_SESSION_COOKIES = ['refresh_token', 'metabase.SESSION', 'metabase.EMBEDDED_SESSION', 'metabase.TIMEOUT'] as const;

/** A hop link lives this long: a browser follows it at once. */
const TICKET_TTL_MS = 60_000;
/** 192 random bits. */
const TICKET_BYTES = 24;

interface Ticket {
  /** The host this ticket may be redeemed on. */
  host: string;
  /** Hosts still to clear after it, in order. */
  rest: string[];
  /** Where the chain ends: a URL this gateway built (login page or a validated return URL). */
  done: string;
}

/** Hosts whose routes hold browser sessions, in config order. */
export function sessionHosts(cfg: GatewayConfig): string[] {
  return [...new Set(cfg.routes.filter((r) => r.host && (r.auth === 'session' || r.auth === 'jwt-or-session')).map((r) => (r.host as string).toLowerCase()))];
}

/**
 * A top-level redirect chain through every other session host, each answering
 * Clear-Site-Data for its own origin. Why not an image or iframe per host from the logout page:
 * a cross-site subresource's "cookies" is ignored (third-party) and its "storage" reaches only
 * the partitioned copy in browsers that partition storage, while a redirect is a first-party
 * navigation that Chromium honors Clear-Site-Data on (both checked in Chromium).
 *
 * Hostile use: each hop needs a ticket minted by a CSRF-checked logout or a login, random,
 * single use, for one named host, 60 s; hosts and the final URL come from the ticket (server
 * side), never from the link, so the chain is no open redirect. Someone who mints a ticket
 * and lures a browser to it makes that browser clear its own site data on the gateway's hosts
 * (a sign-out), nothing more.
 */
export class SiteClearChain {
  private readonly hosts: readonly string[];
  private readonly tickets: OneTimeTickets;

  constructor(
    kv: Kv,
    cfg: GatewayConfig,
    private readonly port: number,
  ) {
    this.hosts = sessionHosts(cfg);
    this.tickets = new OneTimeTickets(kv, 'sclr', TICKET_BYTES, TICKET_TTL_MS);
  }

  /** The session hosts other than `from`, in the chain's order. */
  others(from: string): string[] {
    return this.hosts.filter((h) => h !== from.toLowerCase());
  }

  /**
   * The first hop of a chain through every other session host and then `from` itself, ending
   * at `done`. `from` comes last: "cookies" clears the whole registered domain, so a host
   * whose hop came after it would arrive without the cookies its session could be ended by.
   */
  async start(from: string, done: string): Promise<string> {
    const [first, ...rest] = [...this.others(from), from.toLowerCase()];
    return this.link({ host: first as string, rest, done });
  }

  /** Redeems the ticket of a hop on `host` and returns where to go next. */
  async next(ticket: string | null, host: string): Promise<string> {
    if (!ticket || !this.tickets.wellFormed(ticket)) throw new GatewayError('SITE_CLEAR_INVALID', 'missing or malformed ticket');
    const raw = await this.tickets.take(ticket);
    if (!raw) throw new GatewayError('SITE_CLEAR_INVALID', 'unknown, used or expired ticket');
    const t = JSON.parse(raw) as Ticket;
    if (t.host !== host.toLowerCase()) throw new GatewayError('SITE_CLEAR_INVALID', `ticket for ${t.host} redeemed on ${host}`);
    const [following, ...rest] = t.rest;
    return following === undefined ? t.done : this.link({ host: following, rest, done: t.done });
  }

  /** The absolute URL of `host` on the gateway's public port. */
  origin(host: string): string {
    return `https://${host}${this.port === 443 ? '' : `:${this.port}`}`;
  }

  private async link(t: Ticket): Promise<string> {
    const ticket = await this.tickets.issue(() => JSON.stringify(t));
    // `token=`: the audit log redacts query values of token-like names.
    return `${this.origin(t.host)}${CLEAR_PATH}?token=${ticket}`;
  }
}
