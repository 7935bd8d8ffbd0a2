import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseCompose } from '../../src/doctor/compose.js';
import { ALL_SECRET_NAMES } from '../../src/secrets/specs.js';
import { REPO } from '../helpers/deployment.js';

/**
 * The shipped docker-compose.yml, read the way the doctor reads it (Docker has no engine here):
 * parsed and interpolated with a .env of distinct secrets. From the review of the deployment files.
 */
const COMPOSE = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');

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

  test('each application is told it is behind the gateway (docs/applications.md, "Behind the gateway")', () => {
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
