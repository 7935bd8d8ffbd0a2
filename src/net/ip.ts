import { BlockList, isIP } from 'node:net';

export type IpFamily = 'ipv4' | 'ipv6';

export interface ParsedIp {
  address: string;
  family: IpFamily;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
/** IPv4-mapped IPv6 as RFC 5952 writes it once compressed (`::ffff:a01:203` is 10.1.2.3). */
const MAPPED_V4_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * One canonical form per address, so every spelling of one address is one key (blocks, rate
 * limits, lockouts, logs): IPv4-mapped IPv6 (`::ffff:10.0.0.1`, `::ffff:a00:1`) becomes plain
 * IPv4, IPv6 is written as RFC 5952 says (lower case, no leading zeros, the longest zero run as
 * `::`: `2001:0DB8:0:0::1` is `2001:db8::1`), zone ids are refused. Returns undefined for
 * anything that is not an IP.
 */
export function normalizeIp(raw: string | undefined): ParsedIp | undefined {
  if (!raw) return undefined;
  let s = raw.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const mapped = MAPPED_V4.exec(s);
  if (mapped?.[1] && isIP(mapped[1]) === 4) return { address: mapped[1], family: 'ipv4' };
  const v = isIP(s);
  if (v === 4) return { address: s, family: 'ipv4' };
  if (v !== 6 || s.includes('%')) return undefined;
  const address = canonicalIpv6(s);
  const hex = MAPPED_V4_HEX.exec(address);
  if (hex) {
    const n = (parseInt(hex[1] as string, 16) << 16) | parseInt(hex[2] as string, 16);
    return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), family: 'ipv4' };
  }
  return { address, family: 'ipv6' };
}

/** RFC 5952 text of a valid IPv6 address; the WHATWG URL parser writes exactly that form. */
export function canonicalIpv6(v6: string): string {
  return new URL(`http://[${v6}]/`).hostname.slice(1, -1);
}

/** A set of addresses and CIDR blocks (IPv4, IPv6, IPv4-mapped IPv6). */
export class IpSet {
  readonly entries: readonly string[];
  private readonly list = new BlockList();

  /** Throws with every malformed entry named. */
  constructor(entries: readonly string[]) {
    const bad: string[] = [];
    for (const entry of entries) {
      const err = this.add(entry);
      if (err) bad.push(`${entry} (${err})`);
    }
    if (bad.length > 0) throw new Error(`invalid address or CIDR: ${bad.join(', ')}`);
    this.entries = [...entries];
  }

  get size(): number {
    return this.entries.length;
  }

  has(ip: ParsedIp): boolean {
    return this.list.check(ip.address, ip.family);
  }

  private add(entry: string): string | undefined {
    const [addr, prefixText, extra] = entry.trim().split('/');
    if (extra !== undefined) return 'too many slashes';
    const rawMapped = addr ? MAPPED_V4.exec(addr) : null;
    const ip = normalizeIp(addr);
    if (!ip) return 'not an IP address';
    if (prefixText === undefined) {
      this.list.addAddress(ip.address, ip.family);
      return undefined;
    }
    if (!/^\d{1,3}$/.test(prefixText)) return 'bad prefix length';
    let prefix = Number(prefixText);
    // `::ffff:10.0.0.0/104` names the IPv4 block 10.0.0.0/8.
    if (rawMapped) {
      if (prefix < 96) return 'mapped IPv4 prefix must be at least 96';
      prefix -= 96;
    }
    const max = ip.family === 'ipv4' ? 32 : 128;
    if (prefix > max) return `prefix longer than ${max}`;
    this.list.addSubnet(ip.address, prefix, ip.family);
    return undefined;
  }
}

/** Addresses spread over the whole IPv4 and IPv6 space: a set holding all of them trusts the world. */
const SPREAD_V4 = ['0.0.0.1', '64.0.0.1', '127.255.255.254', '128.0.0.1', '192.0.0.1', '255.255.255.254'];
const SPREAD_V6 = ['::1', '4000::1', '7fff::1', '8000::1', 'c000::1', 'ffff:ffff::1'];

/**
 * True when the set covers (nearly) every address of a family: `0.0.0.0/0`, `::/0`, but also
 * `0.0.0.0/1` + `128.0.0.0/1` or `0/00`. Judged by meaning, not spelling.
 */
export function coversEverything(entries: readonly string[]): boolean {
  let set: IpSet;
  try {
    set = new IpSet(entries);
  } catch {
    return false;
  }
  return (
    SPREAD_V4.every((address) => set.has({ address, family: 'ipv4' })) || SPREAD_V6.every((address) => set.has({ address, family: 'ipv6' }))
  );
}
