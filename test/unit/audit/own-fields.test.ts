import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAudit, rawSecurity } from '../../helpers/audit.js';

test('a caller field named like the line’s own time, event, level or message cannot replace them', async () => {
  const audit = await startTestAudit();
  try {
    rawSecurity(audit.log)('auth.login_failed', { time: '2001-01-01T00:00:00.000Z', event: 'auth.login_succeeded', user: 'mallory' });
    audit.log.access({ time: '2001-01-01T00:00:00.000Z', status: 200 });
    audit.log.app('warn', 'real message', { level: 'info', message: 'forged' });
    await audit.log.flush(5_000);
    const read = (prefix: string): Record<string, unknown> => {
      const file = readdirSync(audit.dir).find((f) => f.startsWith(prefix)) as string;
      return JSON.parse(readFileSync(join(audit.dir, file), 'utf8').trim().split('\n').at(-1) as string) as Record<string, unknown>;
    };
    const sec = read('security-');
    assert.equal(sec.event, 'auth.login_failed');
    assert.equal(sec._event, 'auth.login_succeeded');
    assert.notEqual(sec.time, '2001-01-01T00:00:00.000Z');
    assert.equal(sec._time, '2001-01-01T00:00:00.000Z');
    assert.notEqual(read('access-').time, '2001-01-01T00:00:00.000Z');
    const app = read('app-');
    assert.equal(app.message, 'real message');
    assert.equal(app.level, 'warn');
    assert.equal(app._message, 'forged');
  } finally {
    await audit.close();
  }
});
