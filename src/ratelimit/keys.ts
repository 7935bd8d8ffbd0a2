import { createHash } from 'node:crypto';
import { ipKeyGenerator } from 'express-rate-limit';
import type { ParsedIp } from '../net/ip.js';

/**
 * Bucket names. Every key starts with the limit's name (a route name, or `login:`/`token:`), so
 * one route's traffic never spends another's budget; the rest comes from the one client-IP
 * resolver or the authenticated principal, never from anything the client can respell.
 */

/**
 * The client's bucket: IPv4 as is, IPv6 grouped by its network prefix (a client that rotates
 * through its own /64 stays in one bucket). `ip` is already canonical (src/net/ip.ts), so an
 * IPv4-mapped IPv6 address shares the IPv4 bucket.
 */
export function ipBucket(ip: ParsedIp, ipv6Prefix: number): string {
  return `ip:${ipGroup(ip, ipv6Prefix)}`;
}

/** The address a client is counted as: IPv4 itself, IPv6 its network (`2001:db8:1:2::/64`). */
export function ipGroup(ip: ParsedIp, ipv6Prefix: number): string {
  return ip.family === 'ipv6' ? ipKeyGenerator(ip.address, ipv6Prefix) : ip.address;
}

/**
 * A user's bucket. Hashed: the subject or the typed user name can be long or odd (a login form
 * field is attacker-chosen), and Redis keys should not list who uses the gateway.
 */
export function userBucket(name: string): string {
  return `user:${createHash('sha256').update(name, 'utf8').digest('base64url').slice(0, 32)}`;
}

/** One spelling per login name: Unicode NFKC, trimmed, lower-case, so `Ana`, ` ana` and `ＡＮＡ` share a bucket. */
export function canonicalUserName(raw: string): string {
  return raw.normalize('NFKC').trim().toLowerCase();
}
