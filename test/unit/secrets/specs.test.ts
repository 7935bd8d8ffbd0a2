import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecret, secretSpec, SECRET_SPECS } from '../../../src/secrets/specs.js';
import { assessSecret } from '../../../src/secrets/strength.js';

const spec = (name: string) => {
  const s = secretSpec(name);
  assert.ok(s, name);
  return s;
};

/** The architecture's strengths, as formats a test can check on every generated value. */
const FORMATS: Record<string, (v: string) => boolean> = {
  CRM_DB_PASSWORD: (v) => /^[A-Za-z0-9]{32}$/.test(v),
  CRM_API_SECRET: (v) => /^[0-9a-f]{64}$/.test(v),
  API_SECRET_KEY: (v) => /^[0-9a-f]{64}$/.test(v),
  NOCODB_JWT_SECRET: (v) => /^[A-Za-z0-9+/]{43}=$/.test(v) && Buffer.from(v, 'base64').length === 32,
  WHATSAPP_VERIFY_TOKEN: (v) => /^[0-9a-f]{32}$/.test(v),
  REDIS_PASSWORD: (v) => /^[0-9a-f]{64}$/.test(v),
  LOG_HASH_KEY: (v) => /^[0-9a-f]{64}$/.test(v),
  WHATSAPP_QUEUE_KEY: (v) => /^[0-9a-f]{64}$/.test(v),
};

describe('generated secrets', () => {
  test('every generated secret has a format test, and the list matches the coordination notes', () => {
    assert.deepEqual(SECRET_SPECS.map((s) => s.name).sort(), Object.keys(FORMATS).sort());
  });

  test('sizes and encodings of the architecture, on 300 draws each, all distinct', () => {
    for (const s of SECRET_SPECS) {
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const v = generateSecret(s);
        assert.ok(FORMATS[s.name]?.(v), `${s.name}: ${v.length} chars, bad format`);
        seen.add(v);
      }
      assert.equal(seen.size, 300, `${s.name} repeats`);
    }
  });

  test('hex secrets decode to exactly their byte count (32, or 16 for the verify token)', () => {
    assert.equal(Buffer.from(generateSecret(spec('API_SECRET_KEY')), 'hex').length, 32);
    assert.equal(Buffer.from(generateSecret(spec('WHATSAPP_VERIFY_TOKEN')), 'hex').length, 16);
  });

  test('database passwords use the whole alphanumeric alphabet (base64 reduced, not hex)', () => {
    const chars = new Set(Array.from({ length: 50 }, () => generateSecret(spec('CRM_DB_PASSWORD'))).join(''));
    assert.ok(chars.size > 55, `only ${chars.size} distinct characters in 1600`);
  });

  test('every generated value passes the strength check doctor applies', () => {
    for (const s of SECRET_SPECS) assert.equal(assessSecret(s.name, generateSecret(s), s), undefined, s.name);
  });
});

describe('assessSecret', () => {
  const hex = spec('API_SECRET_KEY');
  test('missing and empty', () => {
    assert.match(assessSecret('X', undefined, hex)?.message ?? '', /not set/);
    assert.match(assessSecret('X', '', hex)?.message ?? '', /not set/);
  });
  test('defaults and placeholders fail whatever their length', () => {
    for (const v of ['changeme', 'Password', 'postgres', 'your_secret_here', 'CHANGE_ME_PLEASE', '<api secret>', 'replace-with-a-real-key-0123456789abcdef0123456789abcdef']) {
      assert.equal(assessSecret('X', v, hex)?.level, 'fail', v);
    }
  });
  test('short and predictable values fail; the message never contains the value', () => {
    const short = assessSecret('API_SECRET_KEY', 'abc123def456', hex);
    assert.equal(short?.level, 'fail');
    assert.match(short?.message ?? '', /too short \(12 characters; at least 64\)/);
    assert.doesNotMatch(short?.message ?? '', /abc123/);
    assert.equal(assessSecret('X', 'a'.repeat(64), hex)?.level, 'fail');
    assert.equal(assessSecret('X', 'abababababababababababababababababababababababababababababababab', hex)?.level, 'fail');
  });
  test('long enough but not the asked encoding is a warning', () => {
    const notHex = 'zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA0123456789AB';
    assert.equal(assessSecret('X', notHex, hex)?.level, 'warn');
    assert.equal(assessSecret('X', 'Xk9mP2qR7vT4wZ8nL3jH6fD1sG5aB0c+/', spec('CRM_DB_PASSWORD'))?.level, 'warn');
  });
});
