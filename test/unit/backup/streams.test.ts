import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { HashTap, HoldBack } from '../../../src/backup/streams.js';
import { FanOut } from '../../../src/backup/fan-out.js';

function collector(): { sink: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(c: Buffer, _e, done) {
        chunks.push(c);
        done();
      },
    }),
    data: () => Buffer.concat(chunks),
  };
}

test('HoldBack passes everything on a clean end, in order, whatever the chunking', async () => {
  const input = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
  for (const hold of [1, 7, 4096, 20_000]) {
    const out = collector();
    await pipeline(Readable.from([input.subarray(0, 3), input.subarray(3, 5000), input.subarray(5000)]), new HoldBack(hold), out.sink);
    assert.ok(out.data().equals(input), `hold ${hold}`);
  }
});

test('HoldBack never releases its last bytes when the input fails', async () => {
  const out = collector();
  const source = new Readable({ read() {} });
  const done = pipeline(source, new HoldBack(100), out.sink);
  source.push(Buffer.alloc(1000, 1));
  source.push(Buffer.alloc(50, 2));
  await new Promise((r) => setImmediate(r));
  source.destroy(new Error('tag mismatch'));
  await assert.rejects(done, /tag mismatch/);
  assert.equal(out.data().length, 950);
  assert.ok(!out.data().includes(2));
});

test('HashTap counts and hashes what passes', async () => {
  const tap = new HashTap();
  const out = collector();
  await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('cñ')]), tap, out.sink);
  assert.equal(tap.bytes, 5);
  assert.equal(tap.sha256(), createHash('sha256').update('abcñ').digest('hex'));
});

test('FanOut feeds every sink at the pace of the slowest, and drops one that closes early', async () => {
  const a = collector();
  const slow = new PassThrough({ highWaterMark: 16 });
  const slowOut = collector();
  slow.pipe(slowOut.sink);
  const early = new Writable({
    highWaterMark: 16,
    write(_c, _e, done) {
      this.destroy();
      done();
    },
  });
  early.on('error', () => undefined);
  const data = Buffer.alloc(100_000, 7);
  await pipeline(Readable.from([data.subarray(0, 40_000), data.subarray(40_000)]), new FanOut([a.sink, slow, early]));
  await finished(slowOut.sink);
  assert.equal(a.data().length, data.length);
  assert.equal(slowOut.data().length, data.length);
});
