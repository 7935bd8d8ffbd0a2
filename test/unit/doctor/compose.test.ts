import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { interpolateCompose, isLoopback, parseCompose, roleOf } from '../../../src/doctor/compose.js';
import { REPO } from '../../helpers/deployment.js';

describe('compose interpolation', () => {
  const env = { A: 'a', EMPTY: '' };
  test('${VAR}, defaults, $$ escapes', () => {
    assert.equal(interpolateCompose('${A}-$A-${B:-dflt}-${EMPTY:-e}-${EMPTY-kept}-$${A}', env), 'a-a-dflt-e--${A}');
    assert.equal(interpolateCompose('${B:?set B}', env), '');
    assert.equal(interpolateCompose('${A:+alt}${B:+no}', env), 'alt');
  });
});

describe('published ports, every syntax', () => {
  const services = parseCompose(
    `services:
  s:
    ports:
      - 8080
      - "5432:5432"
      - "127.0.0.1:6379:6379"
      - "[::1]:3000:3000/tcp"
      - "8000-8002:8000-8002"
      - target: 9090
        published: 9090
        host_ip: 127.0.0.1
      - "\${PORT:-443}:8443"
`,
    {},
    'test.yml',
  );
  const ports = services[0]?.ports ?? [];
  test('container port and host address of each', () => {
    assert.deepEqual(
      ports.map((p) => [p.target, p.hostIp ?? null]),
      [
        [8080, null],
        [5432, null],
        [6379, '127.0.0.1'],
        [3000, '::1'],
        [8000, null],
        [9090, '127.0.0.1'],
        [8443, null],
      ],
    );
  });
  test('loopback addresses', () => {
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && !isLoopback(undefined) && !isLoopback('0.0.0.0'));
  });
});

describe('the shipped docker-compose.yml', () => {
  const text = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');
  const services = parseCompose(text, {}, 'docker-compose.yml');
  const byName = new Map(services.map((s) => [s.name, s]));

  test('the whole stack is there', () => {
    assert.deepEqual([...byName.keys()].sort(), ['backup', 'crm-api', 'gateway', 'metabase', 'nocodb', 'postgres', 'redis']);
  });

  test('only the gateway publishes ports: 443 → 8443 and 80 → 8880', () => {
    for (const s of services) if (s.name !== 'gateway') assert.deepEqual(s.ports, [], `${s.name} publishes`);
    assert.deepEqual(byName.get('gateway')?.ports.map((p) => p.spec), ['443:8443', '80:8880']);
    assert.equal(roleOf(byName.get('gateway') as never), 'gateway');
  });

  test('Redis requires the password from .env; PostgreSQL is not published and runs TLS', () => {
    // The password reaches redis-server through the container's environment, never its command
    // line (which `docker ps --no-trunc` shows), and compose refuses to start without it.
    assert.match(byName.get('redis')?.rawCommand ?? '', /--requirepass \\?"?\$\$REDISCLI_AUTH/);
    assert.match(text, /REDISCLI_AUTH: \$\{REDIS_PASSWORD:\?/);
    assert.match(byName.get('postgres')?.command ?? '', /ssl=on/);
    assert.match(byName.get('postgres')?.command ?? '', /ssl_min_protocol_version=TLSv1\.2/);
  });

  test('no service loads .env whole; secrets come one by one', () => {
    for (const s of services) assert.deepEqual(s.envFiles, [], s.name);
  });

  test('every variable the file requires (${VAR:?…}) is one setup writes or the template fills', () => {
    const code = text.replace(/^\s*#.*$/gm, '');
    const required = [...new Set([...code.matchAll(/\$\{([A-Z_][A-Z0-9_]*):\?/g)].map((m) => m[1]))];
    assert.ok(required.length >= 8, required.join(','));
    const template = readFileSync(join(REPO, '.env.example'), 'utf8');
    const generated = ['API_SECRET_KEY', 'CRM_API_SECRET', 'CRM_DB_PASSWORD', 'NOCODB_JWT_SECRET', 'WHATSAPP_VERIFY_TOKEN', 'REDIS_PASSWORD', 'LOG_HASH_KEY', 'WHATSAPP_QUEUE_KEY'];
    for (const name of required) {
      const filled = new RegExp(`^${name}=\\S`, 'm').test(template);
      assert.ok(generated.includes(name ?? '') || filled, `${name} is required by compose but neither generated nor filled in .env.example`);
    }
  });
});
