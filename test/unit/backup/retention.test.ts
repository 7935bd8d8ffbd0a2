import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRetention, DAY_MS, STALE_PARTIAL_MS } from '../../../src/backup/retention.js';
import type { Catalog, CatalogEntry } from '../../../src/backup/catalog.js';

const NOW = new Date('2025-02-10T03:00:00Z');
function entry(name: string, daysAgo: number, verified: boolean): CatalogEntry {
  return { name, dataPath: `/b/${name}.dump.enc`, manifestPath: `/b/${name}.manifest.json`, manifest: undefined, problem: undefined, time: new Date(NOW.getTime() - daysAgo * DAY_MS), verified, bytes: 1 };
}
const plan = (entries: CatalogEntry[], days = 7, partials: Catalog['partials'] = [], own = new Set<string>()) => planRetention({ entries, partials }, NOW, days, own);
const names = (es: CatalogEntry[]): string[] => es.map((e) => e.name);

test('past retention and superseded by a newer verified backup: deleted; the rest kept', () => {
  const p = plan([entry('d10', 10, true), entry('d8', 8, false), entry('d7-', 7.01, true), entry('d6', 6, true), entry('d0', 0, true)]);
  assert.deepEqual(names(p.delete), ['d10', 'd8', 'd7-']);
  assert.deepEqual(names(p.keep), ['d6', 'd0']);
});

test('the newest verified backup is never deleted, even past retention', () => {
  const p = plan([entry('d30', 30, true), entry('d20', 20, false), entry('d10', 10, false)]);
  assert.deepEqual(names(p.delete), []);
  const q = plan([entry('d30', 30, true), entry('d20', 20, true), entry('d10', 10, false)]);
  assert.deepEqual(names(q.delete), ['d30']);
  assert.deepEqual(names(q.keep), ['d20', 'd10']);
});

test('without any verified backup nothing is deleted (a changed key or broken dumps must not empty the folder)', () => {
  assert.deepEqual(names(plan([entry('a', 100, false), entry('b', 50, false)]).delete), []);
  assert.deepEqual(names(plan([]).delete), []);
});

test('partial files: stale ones go, recent ones and this process’s own stay', () => {
  const old = new Date(NOW.getTime() - STALE_PARTIAL_MS - 1);
  const p = plan([], 7, [{ path: '/b/a.partial', mtime: old }, { path: '/b/b.partial', mtime: NOW }, { path: '/b/c.partial', mtime: old }], new Set(['/b/c.partial']));
  assert.deepEqual(p.stalePartials, ['/b/a.partial']);
});
