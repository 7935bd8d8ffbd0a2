import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RejectionSampler } from '../../../src/ratelimit/sample.js';

test('one rejection logged per bucket per period; the next one reports how many were left out', () => {
  let now = 1_000_000;
  const s = new RejectionSampler(60_000, () => now);
  assert.equal(s.take('ip:a'), 0);
  for (let i = 0; i < 50; i++) assert.equal(s.take('ip:a'), undefined);
  assert.equal(s.take('ip:b'), 0, 'another client still shows up');
  now += 60_000;
  assert.equal(s.take('ip:a'), 50);
  assert.equal(s.take('ip:a'), undefined);
});

test('a window shorter than the period samples per window', () => {
  let now = 0;
  const s = new RejectionSampler(5_000, () => now);
  assert.equal(s.take('k'), 0);
  now += 5_000;
  assert.equal(s.take('k'), 0);
});
