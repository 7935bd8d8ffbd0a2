import { parse as parseYaml } from 'yaml';
import type { Env } from '../config/env.js';

/**
 * Just enough of the Compose file format to judge exposure: services, their published ports,
 * commands and environments, with `${VAR}` interpolated the way Compose does from `.env`.
 */
export interface PublishedPort {
  /** As written, for messages. */
  spec: string;
  /** Container port (first of a range). */
  target: number | undefined;
  /** Address the host binds; undefined means every interface. */
  hostIp: string | undefined;
}

export interface ComposeService {
  name: string;
  image: string;
  /** The command as one string (interpolated). */
  command: string;
  /** The command before interpolation: shows whether secrets come from `${VAR}` or are typed in. */
  rawCommand: string;
  /** Environment: interpolated values, and the raw text (to tell `${VAR}` from a literal). */
  environment: { key: string; value: string; raw: string }[];
  ports: PublishedPort[];
  networkMode: string | undefined;
  envFiles: string[];
  /** Every `${VAR}` / `$VAR` named anywhere in the service's definition. */
  references: Set<string>;
}

export class ComposeError extends Error {}

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?msg}`, `$VAR`, `$$`. */
export function interpolateCompose(text: string, env: Env): string {
  return text
    .split('$$')
    .map((part) =>
      part.replace(REF, (_m, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
        const name = braced ?? bare ?? '';
        const v = env[name];
        if (op === ':-') return v ? v : (arg ?? '');
        if (op === '-') return v !== undefined ? v : (arg ?? '');
        if (op === ':+') return v ? (arg ?? '') : '';
        if (op === '+') return v !== undefined ? (arg ?? '') : '';
        return v ?? '';
      }),
    )
    .join('$');
}

export function referencedNames(text: string): string[] {
  return [...text.split('$$').join('').matchAll(REF)].map((m) => m[1] ?? m[4] ?? '').filter(Boolean);
}

function asText(v: unknown): string {
  if (Array.isArray(v)) return v.map(String).join(' ');
  return v === undefined || v === null ? '' : String(v);
}

function parsePort(raw: unknown, env: Env): PublishedPort {
  if (raw !== null && typeof raw === 'object') {
    const o = raw as Record<string, unknown>;
    const target = Number(interpolateCompose(String(o.target ?? ''), env));
    const hostIp = o.host_ip === undefined ? undefined : interpolateCompose(String(o.host_ip), env) || undefined;
    return { spec: JSON.stringify(raw), target: Number.isFinite(target) ? target : undefined, hostIp };
  }
  const spec = interpolateCompose(String(raw), env);
  const noProto = spec.replace(/\/(tcp|udp|sctp)$/i, '');
  let hostIp: string | undefined;
  let rest = noProto;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(noProto);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2] ?? '';
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts[0] || undefined;
  const containerPart = parts[parts.length - 1] ?? '';
  const target = Number(containerPart.split('-')[0]);
  return { spec, target: Number.isFinite(target) && containerPart !== '' ? target : undefined, hostIp };
}

function parseEnvironment(raw: unknown, env: Env): { key: string; value: string; raw: string }[] {
  if (Array.isArray(raw)) {
    return raw.map((entry) => {
      const s = String(entry);
      const eq = s.indexOf('=');
      const key = eq < 0 ? s : s.slice(0, eq);
      const value = eq < 0 ? '' : s.slice(eq + 1);
      return { key, value: interpolateCompose(value, env), raw: value };
    });
  }
  if (raw !== null && typeof raw === 'object') {
    return Object.entries(raw as Record<string, unknown>).map(([key, v]) => ({ key, value: interpolateCompose(asText(v), env), raw: asText(v) }));
  }
  return [];
}

function collectRefs(node: unknown, into: Set<string>): void {
  if (typeof node === 'string') for (const n of referencedNames(node)) into.add(n);
  else if (Array.isArray(node)) for (const v of node) collectRefs(v, into);
  else if (node !== null && typeof node === 'object') for (const v of Object.values(node)) collectRefs(v, into);
}

/** Parses a compose file's text into its services; throws ComposeError on YAML or shape problems. */
export function parseCompose(text: string, env: Env, source: string): ComposeService[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { merge: true, uniqueKeys: true });
  } catch (err) {
    throw new ComposeError(`${source}: YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const services = (doc as Record<string, unknown> | null)?.services;
  if (services === null || typeof services !== 'object' || Array.isArray(services)) throw new ComposeError(`${source}: no services mapping`);
  return Object.entries(services as Record<string, unknown>).map(([name, def]) => {
    const s = (def ?? {}) as Record<string, unknown>;
    const references = new Set<string>();
    collectRefs(s, references);
    const envFiles = (Array.isArray(s.env_file) ? s.env_file : s.env_file === undefined ? [] : [s.env_file]).map((f) =>
      typeof f === 'object' && f !== null ? String((f as Record<string, unknown>).path ?? '') : String(f),
    );
    return {
      name,
      image: interpolateCompose(asText(s.image), env),
      command: interpolateCompose(asText(s.command), env),
      rawCommand: asText(s.command),
      environment: parseEnvironment(s.environment, env),
      ports: (Array.isArray(s.ports) ? s.ports : []).map((p) => parsePort(p, env)),
      networkMode: s.network_mode === undefined ? undefined : interpolateCompose(asText(s.network_mode), env),
      envFiles,
      references,
    };
  });
}

export function isLoopback(ip: string | undefined): boolean {
  if (!ip) return false;
  return /^127\./.test(ip) || ip === '::1' || ip === 'localhost';
}

/** Service roles by name (or image): the compose check needs to know which one is the gateway. */
export function roleOf(s: ComposeService): 'gateway' | 'redis' | 'postgres' | 'other' {
  const n = s.name.toLowerCase();
  const image = s.image.toLowerCase().replace(/^docker\.io\/(library\/)?/, '');
  if (n.includes('gateway')) return 'gateway';
  if (n.includes('redis') || /^redis(:|$)/.test(image)) return 'redis';
  if (n.includes('postgres') || /^postgres(:|$)/.test(image)) return 'postgres';
  return 'other';
}
