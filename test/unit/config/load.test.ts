import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfig, type ConfigProblem } from '../../../src/config/load.js';
import { ENV_SETTINGS, type Env } from '../../../src/config/env.js';

const ROUTE = `
routes:
  - name: crm-api
    host: api.\${GATEWAY_DOMAIN}
    upstream: http://127.0.0.1:8000
    auth: jwt
`;

function problemsOf(yaml: string, env: Env = {}): ConfigProblem[] {
  try {
    parseConfig(yaml, env, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig: defaults', () => {
  const cfg = parseConfig(ROUTE, {}, 'test.yaml');

  test('listeners: 8443 / 8880 / 9090, admin on loopback', () => {
    assert.deepEqual(cfg.listen, { address: '0.0.0.0', httpsPort: 8443, httpPort: 8880, adminAddress: '127.0.0.1', adminPort: 9090 });
  });

  test('route: 60 s timeout, 1 MiB body, no encoded slashes, no allowlist', () => {
    const [route] = cfg.routes;
    assert.ok(route);
    assert.equal(route.timeout, 60_000);
    assert.equal(route.maxBody, 1_048_576);
    assert.equal(route.allowEncodedSlashes, false);
    assert.deepEqual(route.ipAllowlist, []);
    assert.deepEqual(route.roles, []);
    assert.equal(route.stripPrefix, false);
    assert.equal(route.websocket, true);
    assert.equal(route.preserveHost, true, 'apps build URLs from Host: they see the public one');
  });

  test('the rest of the documented defaults', () => {
    assert.equal(cfg.env, 'development');
    assert.equal(cfg.domain, 'localhost');
    assert.equal(cfg.forceHttps, true);
    assert.deepEqual(cfg.trustedProxies, []);
    assert.deepEqual(cfg.corsOrigins, ['localhost', '127.0.0.1']);
    assert.deepEqual(cfg.log, { level: 'info', dir: 'logs', retentionDays: 30, failClosed: false, maxBacklog: 16 * 1024 * 1024 });
    assert.deepEqual(cfg.tls, {
      certFile: 'certs/gateway.crt',
      keyFile: 'certs/gateway.key',
      hstsMaxAge: 31_536_000,
      hstsIncludeSubDomains: true,
      hstsPreload: false,
      watch: true,
    });
    assert.deepEqual(cfg.server, {
      maxHeaderSize: 16_384,
      maxUrlLength: 8192,
      headersTimeout: 15_000,
      requestTimeout: 120_000,
      keepAliveTimeout: 5000,
      shutdownTimeout: 10_000,
      sendTimeout: 60_000,
      maxBufferedBodies: 64 * 1024 * 1024,
      bodyReadTimeout: 15_000,
      workers: 1,
    });
    assert.deepEqual(cfg.secrets, {});
    assert.deepEqual(cfg.stores, { dataDir: 'data' });
  });

  test('the default GATEWAY_DOMAIN fills ${GATEWAY_DOMAIN}', () => {
    assert.equal(cfg.routes[0]?.host, 'api.localhost');
  });
});

describe('parseConfig: ${VAR} interpolation', () => {
  test('${VAR} reads the environment', () => {
    const cfg = parseConfig(ROUTE, { GATEWAY_DOMAIN: 'crm.example.com' });
    assert.equal(cfg.routes[0]?.host, 'api.crm.example.com');
  });

  test('${VAR:-default} uses the default only when the variable is unset or empty', () => {
    const yaml = `
routes:
  - name: a
    host: x
    upstream: http://127.0.0.1:\${CRM_API_PORT:-8000}/\${API_BASE:-}
    auth: jwt
`;
    assert.equal(parseConfig(yaml, {}).routes[0]?.upstream, 'http://127.0.0.1:8000/');
    assert.equal(parseConfig(yaml, { CRM_API_PORT: '' }).routes[0]?.upstream, 'http://127.0.0.1:8000/');
    assert.equal(parseConfig(yaml, { CRM_API_PORT: '9000', API_BASE: 'v1' }).routes[0]?.upstream, 'http://127.0.0.1:9000/v1');
  });

  test('several references in one string, and $VAR without braces is literal', () => {
    const yaml = `
routes:
  - name: a
    host: \${SUB}.\${GATEWAY_DOMAIN}
    upstream: http://x
    auth: jwt
    requestHeaders: { set: { x-note: "$HOME \${SUB}" } }
`;
    const route = parseConfig(yaml, { SUB: 'api', GATEWAY_DOMAIN: 'example.org' }).routes[0];
    assert.equal(route?.host, 'api.example.org');
    assert.deepEqual(route?.requestHeaders?.set, { 'x-note': '$HOME api' });
  });

  test('a missing variable is reported with its path, together with what it broke', () => {
    const problems = problemsOf(`
routes:
  - name: a
    host: x
    upstream: \${CRM_API_URL}
    auth: jwt
    cors: { origins: ["https://app.example.com", "\${EXTRA_ORIGIN}"] }
`);
    assert.deepEqual(problems, [
      { path: 'routes[0].upstream', message: 'environment variable CRM_API_URL is not set' },
      { path: 'routes[0].cors.origins[1]', message: 'environment variable EXTRA_ORIGIN is not set' },
      { path: 'routes[0].upstream (route a)', message: 'not a URL: ""' },
    ]);
  });

  test('CORS_ORIGINS interpolated into a list is split on commas', () => {
    const yaml = `
routes:
  - name: a
    host: x
    upstream: http://x
    auth: jwt
    cors: { origins: ["\${CORS_ORIGINS}"] }
`;
    assert.deepEqual(parseConfig(yaml, {}).routes[0]?.cors?.origins, ['localhost', '127.0.0.1']);
    assert.deepEqual(parseConfig(yaml, { CORS_ORIGINS: 'https://a.example, https://b.example,,' }).routes[0]?.cors?.origins, [
      'https://a.example',
      'https://b.example',
    ]);
  });

  test('numbers and booleans pass through untouched', () => {
    const cfg = parseConfig(`listen: { httpsPort: 1443 }\nforceHttps: false\n${ROUTE}`, {});
    assert.equal(cfg.listen.httpsPort, 1443);
    assert.equal(cfg.forceHttps, false);
  });
});

describe('parseConfig: environment overrides', () => {
  test('ports from the environment beat the file', () => {
    const cfg = parseConfig(`listen: { httpsPort: 1, httpPort: 2, adminPort: 3 }\n${ROUTE}`, {
      HTTPS_PORT: '9443',
      HTTP_PORT: '9080',
      ADMIN_PORT: '9091',
      PUBLIC_HTTPS_PORT: '443',
    });
    assert.equal(cfg.listen.httpsPort, 9443);
    assert.equal(cfg.listen.httpPort, 9080);
    assert.equal(cfg.listen.adminPort, 9091);
    assert.equal(cfg.listen.publicHttpsPort, 443);
  });

  test('an empty variable is ignored and the file value stays', () => {
    const cfg = parseConfig(`listen: { httpsPort: 1443 }\n${ROUTE}`, { HTTPS_PORT: '' });
    assert.equal(cfg.listen.httpsPort, 1443);
  });

  test('the other variables land where ENV_SETTINGS says', () => {
    const cfg = parseConfig(ROUTE, {
      GATEWAY_ENV: 'production',
      GATEWAY_DOMAIN: 'CRM.Example.com',
      LISTEN_ADDRESS: '127.0.0.1',
      TLS_CERT_FILE: '/etc/gw/cert.pem',
      TLS_KEY_FILE: '/etc/gw/key.pem',
      HSTS_PRELOAD: 'yes',
      FORCE_HTTPS: 'false',
      TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.1',
      CORS_ORIGINS: 'https://a.example, https://b.example',
      API_SECRET_KEY: 'k',
      WHATSAPP_APP_SECRET: 's',
      WHATSAPP_VERIFY_TOKEN: 't',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: 'postgres://127.0.0.1/crm',
      LOG_LEVEL: 'debug',
      LOG_DIR: '/var/log/gw',
      LOG_RETENTION_DAYS: '7',
    });
    assert.equal(cfg.env, 'production');
    assert.equal(cfg.domain, 'crm.example.com');
    assert.equal(cfg.routes[0]?.host, 'api.crm.example.com');
    assert.equal(cfg.listen.address, '127.0.0.1');
    assert.equal(cfg.tls.certFile, '/etc/gw/cert.pem');
    assert.equal(cfg.tls.keyFile, '/etc/gw/key.pem');
    assert.equal(cfg.tls.hstsPreload, true);
    assert.equal(cfg.forceHttps, false);
    assert.deepEqual(cfg.trustedProxies, ['10.0.0.0/8', '192.168.0.1']);
    assert.deepEqual(cfg.corsOrigins, ['https://a.example', 'https://b.example']);
    assert.deepEqual(cfg.secrets, { apiSecretKey: 'k', whatsappAppSecret: 's', whatsappVerifyToken: 't' });
    assert.deepEqual(cfg.stores, { redisUrl: 'redis://127.0.0.1:6379', databaseUrl: 'postgres://127.0.0.1/crm', dataDir: 'data' });
    assert.deepEqual(cfg.log, { level: 'debug', dir: '/var/log/gw', retentionDays: 7, failClosed: false, maxBacklog: 16 * 1024 * 1024 });
  });

  test('every ENV_SETTINGS path exists in the schema (no variable silently lands on an unknown key)', () => {
    for (const [name, path] of ENV_SETTINGS) {
      let problems: ConfigProblem[] = [];
      try {
        parseConfig(ROUTE, { [name]: 'x' });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        problems = [...err.problems];
      }
      for (const p of problems) {
        assert.doesNotMatch(p.message, /Unrecognized key/, `${name} → ${path.join('.')}`);
        assert.ok(p.path.endsWith(`(from ${name})`), `${name}: problem not attributed: ${p.path}`);
      }
    }
  });

  test('bad values name the variable they came from, all at once', () => {
    const problems = problemsOf(ROUTE, {
      GATEWAY_ENV: 'staging',
      HTTPS_PORT: 'abc',
      HTTP_PORT: '70000',
      FORCE_HTTPS: 'nah',
      TRUSTED_PROXIES: '10.0.0.0/8, nope, 1.2.3.4/40',
      LOG_LEVEL: 'verbose',
      LOG_RETENTION_DAYS: '0',
    });
    const paths = problems.map((p) => p.path);
    assert.deepEqual(paths, [
      'env (from GATEWAY_ENV)',
      'listen.httpsPort (from HTTPS_PORT)',
      'listen.httpPort (from HTTP_PORT)',
      'forceHttps (from FORCE_HTTPS)',
      'trustedProxies (from TRUSTED_PROXIES)',
      'log.level (from LOG_LEVEL)',
      'log.retentionDays (from LOG_RETENTION_DAYS)',
    ]);
    assert.equal(
      problems.find((p) => p.path.startsWith('trustedProxies'))?.message,
      'invalid address or CIDR: nope (not an IP address), 1.2.3.4/40 (prefix longer than 32)',
    );
    assert.match(problems.find((p) => p.path.startsWith('listen.httpPort'))?.message ?? '', /65535/);
  });

  test('a bad value from the file does not claim to come from the environment', () => {
    const problems = problemsOf(`listen: { httpsPort: 70000 }\n${ROUTE}`, {});
    assert.equal(problems[0]?.path, 'listen.httpsPort');
  });
});

describe('parseConfig: unknown keys and every problem at once', () => {
  test('an unknown top-level key is an error', () => {
    assert.deepEqual(problemsOf(`foo: 1\n${ROUTE}`), [{ path: '', message: 'Unrecognized key: "foo"' }]);
  });

  test('an unknown key inside a route names the route', () => {
    const problems = problemsOf(`
routes:
  - name: crm-api
    host: api.localhost
    upstream: http://127.0.0.1:8000
    auth: jwt
    timout: 30s
`);
    assert.deepEqual(problems, [{ path: 'routes[0] (route crm-api)', message: 'Unrecognized key: "timout"' }]);
  });

  test('unknown keys in nested sections are errors too', () => {
    const problems = problemsOf(`listen: { httpsPort: 1, nope: 2 }\ntls: { hsts: 1 }\n${ROUTE}`);
    assert.deepEqual(problems, [
      { path: 'listen', message: 'Unrecognized key: "nope"' },
      { path: 'tls', message: 'Unrecognized key: "hsts"' },
    ]);
  });

  test('several problems in several places come back in one ConfigError', () => {
    const problems = problemsOf(`
foo: 1
routes:
  - name: a
    upstream: \${MISSING}
    auth: jwt
    bogus: 1
    timeout: 10 minutes
    maxBody: 1tb
    ipAllowlist: [10.0.0.0/8, 300.1.1.1, "::1/129"]
`);
    assert.deepEqual(problems, [
      { path: 'routes[0].upstream', message: 'environment variable MISSING is not set' },
      { path: 'routes[0].upstream (route a)', message: 'not a URL: ""' },
      { path: 'routes[0].ipAllowlist (route a)', message: 'invalid address or CIDR: 300.1.1.1 (not an IP address), ::1/129 (prefix longer than 128)' },
      { path: 'routes[0].timeout (route a)', message: 'not a duration: "10 minutes" (use e.g. 500ms, 60s, 10m)' },
      { path: 'routes[0].maxBody (route a)', message: 'not a size: "1tb" (use e.g. 512kb, 1mb)' },
      { path: 'routes[0] (route a)', message: 'Unrecognized key: "bogus"' },
      { path: '', message: 'Unrecognized key: "foo"' },
    ]);
  });

  test('the error message lists every problem, with (root) for the top level', () => {
    try {
      parseConfig(`foo: 1\nlisten: { httpsPort: x }\n${ROUTE}`, {}, 'gateway.yaml');
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.name, 'ConfigError');
      const lines = err.message.split('\n');
      assert.equal(lines[0], 'invalid config gateway.yaml:');
      assert.equal(lines.length, 1 + err.problems.length);
      assert.ok(lines.includes('  - (root): Unrecognized key: "foo"'), err.message);
      assert.ok(lines.some((l) => l.startsWith('  - listen.httpsPort: ')), err.message);
    }
  });
});

describe('parseConfig: YAML-level problems', () => {
  test('duplicate keys are an error, not last-one-wins', () => {
    const problems = problemsOf(`routes: []\nroutes: []\n`);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, '');
    assert.match(problems[0]?.message ?? '', /^YAML: Map keys must be unique/);
  });

  test('a syntax error is reported with its position', () => {
    const problems = problemsOf('routes: [ {name: a');
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? '', /^YAML: .*line 1/);
  });

  test('a document that is not a mapping', () => {
    assert.deepEqual(problemsOf('- a\n- b\n'), [{ path: '', message: 'the file must hold a mapping' }]);
    assert.deepEqual(problemsOf('just a string'), [{ path: '', message: 'the file must hold a mapping' }]);
  });

  test('an empty file needs routes', () => {
    const problems = problemsOf('');
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'routes');
  });
});

describe('loadConfigFile', () => {
  test('an unreadable file is a ConfigError naming the file and the errno', () => {
    const file = join(import.meta.dirname, 'does-not-exist.yaml');
    assert.throws(
      () => loadConfigFile(file, {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems, [{ path: '', message: 'cannot read: ENOENT' }]);
        assert.ok(err.message.includes(file));
        return true;
      },
    );
  });

  const shipped = join(import.meta.dirname, '../../../config/gateway.yaml');
  test('the shipped config/gateway.yaml parses with an empty environment', () => {
    const cfg = loadConfigFile(shipped, {});
    const hosts = new Set(cfg.routes.map((r) => r.host));
    for (const host of ['api.localhost', 'nocodb.localhost', 'metabase.localhost']) assert.ok(hosts.has(host), `route for ${host}`);
    const webhook = cfg.routes.find((r) => r.host === 'api.localhost' && r.path === '/webhook/whatsapp');
    assert.ok(webhook, 'webhook route on the api host');
    assert.equal(webhook.auth, 'whatsapp');
  });

  test('the shipped config/gateway.yaml follows GATEWAY_DOMAIN', () => {
    const cfg = loadConfigFile(shipped, { GATEWAY_DOMAIN: 'crm.example.com' });
    for (const r of cfg.routes) if (r.host !== undefined) assert.ok(r.host.endsWith('.crm.example.com'), r.host);
  });
});
