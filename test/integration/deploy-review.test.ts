import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseCompose } from '../../src/doctor/compose.js';
import { ALL_SECRET_NAMES } from '../../src/secrets/specs.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { parseDuration } from '../../src/config/units.js';
import { REPO } from '../helpers/deployment.js';

/**
 * Review of the shipped deployment files, read the way the doctor reads them (Docker has no
 * engine here): docker-compose.yml parsed and interpolated with a .env of distinct secrets,
 * nginx/crm-gateway.conf read against the gateway's own defaults.
 */
const COMPOSE = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');
const NGINX = readFileSync(join(REPO, 'nginx', 'crm-gateway.conf'), 'utf8');

/** A .env where every secret has a value no other text could contain by chance. */
function secretEnv(): Record<string, string> {
  const env: Record<string, string> = { GATEWAY_DOMAIN: 'example.com', CORS_ORIGINS: 'https://app.example.com' };
  for (const name of ALL_SECRET_NAMES) env[name] = `s3cr3t${randomBytes(12).toString('hex')}`;
  return env;
}

type RawService = Record<string, unknown>;
function rawServices(): Record<string, RawService> {
  return (parseYaml(COMPOSE, { merge: true }) as { services: Record<string, RawService> }).services;
}

describe('docker-compose.yml', () => {
  test('no secret reaches a container command line (docker ps --no-trunc, docker inspect, ps on the host)', () => {
    const env = secretEnv();
    const secrets = ALL_SECRET_NAMES.map((n) => [n, env[n] as string] as const);
    for (const s of parseCompose(COMPOSE, env, 'docker-compose.yml')) {
      for (const [name, value] of secrets) assert.ok(!s.command.includes(value), `${s.name}'s command carries ${name}`);
    }
  });

  test('Redis still gets its password (from its environment) and refuses to start without one', () => {
    const env = secretEnv();
    const redis = parseCompose(COMPOSE, env, 'docker-compose.yml').find((s) => s.name === 'redis');
    assert.ok(redis);
    assert.match(redis.rawCommand, /--requirepass "\$\$REDISCLI_AUTH"/);
    const auth = redis.environment.find((e) => e.key === 'REDISCLI_AUTH');
    assert.equal(auth?.value, env.REDIS_PASSWORD);
    assert.match(auth?.raw ?? '', /^\$\{REDIS_PASSWORD:\?/, 'compose stops when .env lacks it, rather than starting Redis open');
  });

  test('Redis runs as its own user, read-only, without capabilities (its shell command skips the image entrypoint that would drop root)', () => {
    const redis = rawServices().redis;
    assert.ok(redis);
    assert.equal(redis.user, 'redis');
    assert.equal(redis.read_only, true);
    assert.deepEqual(redis.cap_drop, ['ALL']);
  });

  test('every service: no-new-privileges; only the gateway publishes ports; backends only on internal or outbound networks', () => {
    const doc = parseYaml(COMPOSE, { merge: true }) as { services: Record<string, RawService>; networks: Record<string, { internal?: boolean } | null> };
    for (const [name, s] of Object.entries(doc.services)) {
      assert.deepEqual(s.security_opt, ['no-new-privileges:true'], name);
      if (name !== 'gateway') assert.equal(s.ports, undefined, `${name} publishes ports`);
      if (name !== 'gateway') assert.ok(!(s.networks as string[]).includes('edge'), `${name} is on the edge network`);
    }
    assert.equal(doc.networks.backend?.internal, true);
  });

  test('each application is told it is behind the gateway (README "Behind the gateway")', () => {
    const services = rawServices();
    const gatewayIp = /:-([\d.]+)\}/.exec(String((services.gateway?.networks as Record<string, { ipv4_address?: string }>).backend?.ipv4_address))?.[1];
    const subnet = /:-([\d.]+)\.0\/24\}/.exec(COMPOSE)?.[1];
    assert.ok(gatewayIp && subnet && gatewayIp.startsWith(`${subnet}.`), 'the gateway has a fixed address inside the backend subnet');
    // uvicorn trusts X-Forwarded-Proto/-For from the gateway alone, so FastAPI builds https:// URLs.
    const command = (services['crm-api']?.command as string[]).join(' ');
    assert.match(command, /--proxy-headers/);
    assert.ok(command.includes(`--forwarded-allow-ips \${GATEWAY_BACKEND_IP:-${gatewayIp}}`), command);
    const env = (name: string): Record<string, string> => services[name]?.environment as Record<string, string>;
    assert.equal(env('nocodb').NC_PUBLIC_URL, 'https://nocodb.${GATEWAY_DOMAIN}');
    assert.equal(env('metabase').MB_SITE_URL, 'https://metabase.${GATEWAY_DOMAIN}');
  });
});

describe('nginx/crm-gateway.conf', () => {
  test("nginx drops idle gateway connections before the gateway does (no 502 from reusing a socket the gateway is closing)", () => {
    // Every pool that keeps connections (one per public host) sets the timeout.
    const pools = [...NGINX.matchAll(/upstream (crm_gateway_\w+) \{([^}]*)\}/g)].filter((m) => /keepalive\s+\d+;/.test(m[2] ?? ''));
    assert.ok(pools.length >= 3, 'a keep-alive pool per public host');
    const gatewayIdleMs = parseDuration(DEFAULTS.keepAliveTimeout) ?? 0;
    for (const [, name, body] of pools) {
      const m = /^\s*keepalive_timeout\s+(\d+)s;/m.exec(body ?? '');
      assert.ok(m, `keepalive_timeout set in ${name} (nginx defaults to 60 s)`);
      assert.ok(Number(m[1]) * 1000 < gatewayIdleMs, `${name} keeps idle upstream sockets ${m[1]} s, the gateway closes them after ${gatewayIdleMs} ms`);
    }
  });
});
