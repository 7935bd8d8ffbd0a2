import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameGate, closeFrame } from '../../../src/proxy/ws-frames.js';

/** A frame as a peer would send it: FIN + opcode, 7/16/64-bit length, optional mask. */
function frame(opcode: number, payload: Buffer, masked = false): Buffer {
  const len = payload.length;
  const ext = len < 126 ? Buffer.alloc(0) : len < 65_536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (ext.length === 2) ext.writeUInt16BE(len);
  if (ext.length === 8) ext.writeBigUInt64BE(BigInt(len));
  const b1 = (masked ? 0x80 : 0) | (len < 126 ? len : len < 65_536 ? 126 : 127);
  const mask = masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = masked ? Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number))) : payload;
  return Buffer.concat([Buffer.from([0x80 | opcode, b1]), ext, mask, body]);
}

/** Feeds `input` to a gate in chunks of `size`, calling finish after `finishAt` bytes. */
async function run(input: Buffer, size: number, finishAt: number, wait: boolean, onFrame?: (op: number) => void): Promise<Buffer> {
  const gate = new FrameGate(onFrame);
  const out: Buffer[] = [];
  gate.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => gate.once('end', r));
  for (let i = 0; i < input.length; i += size) {
    const end = Math.min(i + size, input.length);
    if (finishAt > i && finishAt < end) {
      gate.write(input.subarray(i, finishAt));
      gate.finish(closeFrame(1008, 'X', false), wait);
      gate.write(input.subarray(finishAt, end));
    } else {
      if (finishAt === i) gate.finish(closeFrame(1008, 'X', false), wait);
      gate.write(input.subarray(i, end));
    }
  }
  if (finishAt >= input.length) gate.finish(closeFrame(1008, 'X', false), wait);
  gate.end();
  await done;
  return Buffer.concat(out);
}

const CLOSE = closeFrame(1008, 'X', false);

test('closeFrame: unmasked to the client, masked (and unmaskable) to the upstream, reason capped at 123 bytes', () => {
  assert.deepEqual([...closeFrame(1008, 'AUTH_REVOKED', false)], [0x88, 14, 0x03, 0xf0, ...Buffer.from('AUTH_REVOKED')]);
  const m = closeFrame(1001, 'SHUTTING_DOWN', true);
  assert.equal(m[1], 0x80 | 15);
  const mask = m.subarray(2, 6);
  const payload = Buffer.from(m.subarray(6).map((b, i) => b ^ (mask[i % 4] as number)));
  assert.equal(payload.readUInt16BE(0), 1001);
  assert.equal(payload.subarray(2).toString(), 'SHUTTING_DOWN');
  assert.equal(closeFrame(1008, 'é'.repeat(100), false).length, 2 + 125);
});

/** Where each frame of `frames` ends in their concatenation. */
function endsOf(frames: Buffer[]): number[] {
  const ends: number[] = [];
  frames.reduce((at, f) => (ends.push(at + f.length), at + f.length), 0);
  return ends;
}

async function expectBoundaryCuts(frames: Buffer[], sizes: number[], cuts: number[]): Promise<void> {
  const input = Buffer.concat(frames);
  const ends = endsOf(frames);
  for (const size of sizes) {
    for (const finishAt of cuts) {
      const boundary = finishAt === 0 ? 0 : (ends.find((e) => e >= finishAt) as number);
      const out = await run(input, size, finishAt, true);
      assert.deepEqual(out, Buffer.concat([input.subarray(0, boundary), CLOSE]), `chunks of ${size}, cut at ${finishAt}`);
    }
  }
}

test('the close frame goes in only at a frame boundary, whatever the chunking and the moment of the cut', async () => {
  // Every cut point of small frames (7-bit and 16-bit lengths, masked, empty), byte by byte.
  const small = [frame(1, Buffer.from('hi')), frame(9, Buffer.alloc(0)), frame(2, Buffer.alloc(300, 1)), frame(1, Buffer.alloc(125, 2), true)];
  const len = Buffer.concat(small).length;
  await expectBoundaryCuts(small, [1, 2, 3, 50], Array.from({ length: len + 1 }, (_v, i) => i));
  // A 64-bit length, cut in its header and payload.
  const big = [frame(2, Buffer.alloc(70_000, 7)), ...small];
  await expectBoundaryCuts(big, [7, 100, 4096, 100_000], [0, 1, 2, 5, 9, 12, 1000, 70_009, 70_010, 70_011, 70_013, 70_014, 70_100, 70_000 + len]);
});

test('without wait, a frame in flight is cut where it stands and no close frame follows it', async () => {
  const input = Buffer.concat([frame(1, Buffer.from('one')), frame(2, Buffer.alloc(1000, 3))]);
  assert.deepEqual(await run(input, 64, 7, false), input.subarray(0, 7), 'mid-frame: nothing after the cut');
  assert.deepEqual(await run(input, 1, 6, false), input.subarray(0, 6), 'mid-header: nothing after the cut');
  assert.deepEqual(await run(input, 5, 5, false), Buffer.concat([input.subarray(0, 5), CLOSE]), 'at a boundary the close frame is sent');
});

test('after finishing, the peer\'s frames are still followed: its close frame is seen', async () => {
  const seen: number[] = [];
  const input = Buffer.concat([frame(2, Buffer.alloc(200_000, 1), true), frame(8, Buffer.from([3, 0xe8]), true)]);
  await run(input, 1000, 500, false, (op) => seen.push(op));
  assert.deepEqual(seen, [2, 8]);
});
