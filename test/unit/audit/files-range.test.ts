import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { gzipContentSize, readLogRange } from '../../../src/audit/writer/files.js';

async function lines(path: string, gzipped: boolean, opts: Parameters<typeof readLogRange>[2]): Promise<{ got: string[]; next: number; reachedEnd: boolean; error?: string }> {
  const got: string[] = [];
  const r = await readLogRange(path, gzipped, opts, (l) => got.push(l));
  return { got, next: r.next, reachedEnd: r.reachedEnd, ...(r.error ? { error: r.error.code } : {}) };
}

test('readLogRange: complete lines from an offset, a torn tail left for later, a byte budget, CRLF, multi-byte text', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-range-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'access.x-2026-12-06.log');
  const text = 'one\ntwo\r\nthrée\nfour-torn';
  writeFileSync(path, text);
  const size = Buffer.byteLength(text);
  const all = await lines(path, false, { start: 0, end: size });
  assert.deepEqual(all, { got: ['one', 'two', 'thrée'], next: size - 'four-torn'.length, reachedEnd: true });
  assert.deepEqual(await lines(path, false, { start: 4, end: size }), { got: ['two', 'thrée'], next: all.next, reachedEnd: true });
  // The budget is soft: the line that reaches it is handed over whole.
  assert.deepEqual(await lines(path, false, { start: 0, end: size, maxBytes: 5 }), { got: ['one', 'two'], next: 9, reachedEnd: false });
  assert.deepEqual(await lines(path, false, { start: all.next, end: size }), { got: [], next: all.next, reachedEnd: true });
  assert.deepEqual(await lines(path, false, { start: size, end: size }), { got: [], next: size, reachedEnd: true });
  // `end` cuts the read even where the file goes on.
  assert.deepEqual(await lines(path, false, { start: 0, end: 6 }), { got: ['one'], next: 4, reachedEnd: true });

  const gz = `${path}.gz`;
  writeFileSync(gz, gzipSync('one\ntwo\nthree\n'));
  assert.equal(await gzipContentSize(gz), 14);
  assert.deepEqual(await lines(gz, true, { start: 4 }), { got: ['two', 'three'], next: 14, reachedEnd: true });
  // Cut short (a crash while compressing): what it holds, and done.
  writeFileSync(gz, gzipSync('one\ntwo\nthree\n'.repeat(2000)).subarray(0, 200));
  const cut = await lines(gz, true, { start: 0 });
  assert.equal(cut.reachedEnd, true);
  assert.equal(cut.error, undefined);

  assert.deepEqual(await lines(join(dir, 'gone.log'), false, { start: 0 }), { got: [], next: 0, reachedEnd: false, error: 'ENOENT' });
  symlinkSync('/dev/null', join(dir, 'null.log.gz'));
  assert.equal(await gzipContentSize(join(dir, 'null.log.gz')), undefined);
});
