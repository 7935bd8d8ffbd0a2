import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiateLanguage } from '../../../src/i18n/language.js';

test('Accept-Language picks es or en by weight, region subtags and case ignored', () => {
  const cases: [string | undefined, 'es' | 'en', 'es' | 'en'][] = [
    // header, default, expected
    [undefined, 'es', 'es'],
    [undefined, 'en', 'en'],
    ['', 'es', 'es'],
    ['es-ES,es;q=0.9', 'en', 'es'],
    ['es-419', 'en', 'es'],
    ['ES-mx', 'en', 'es'],
    ['en-US,en;q=0.9', 'es', 'en'],
    ['en-US,en;q=0.9,es;q=0.8', 'es', 'en'],
    ['es;q=0.8, en;q=0.9', 'es', 'en'],
    ['en;q=0.5, es', 'en', 'es'],
    ['fr-FR, fr;q=0.9', 'es', 'es'],
    ['fr-FR, fr;q=0.9', 'en', 'en'],
    ['fr, en;q=0.2', 'es', 'en'],
    ['de;q=1, es;q=0.1', 'en', 'es'],
    // equal weight: the first listed
    ['en, es', 'es', 'en'],
    ['es, en', 'en', 'es'],
    // the wildcard stands for the languages not named: the default first
    ['*', 'en', 'en'],
    ['*', 'es', 'es'],
    ['es;q=0.1, *;q=0.5', 'es', 'en'],
    ['es;q=0, *', 'es', 'en'],
    // q=0 refuses
    ['es;q=0', 'es', 'en'],
    ['en;q=0', 'en', 'es'],
    ['en;q=0, es;q=0', 'es', 'es'],
    // the first mention of a language is its weight
    ['es-ES;q=0.9, es;q=0, en;q=0.5', 'en', 'es'],
  ];
  for (const [header, fallback, expected] of cases) assert.equal(negotiateLanguage(header, fallback), expected, `${JSON.stringify(header)} with default ${fallback}`);
});

test('malformed ranges and weights are ignored, not trusted', () => {
  const cases: [string, 'es' | 'en', 'es' | 'en'][] = [
    ['en;q=2', 'es', 'es'],
    ['en;q=abc', 'es', 'es'],
    ['en;q=0.5555', 'es', 'es'],
    ['en;q=-1', 'es', 'es'],
    ['en;q=', 'es', 'es'],
    ['en<script>', 'es', 'es'],
    ['e n', 'es', 'es'],
    ['english-language-tag', 'es', 'es'],
    [';;;,,,;q=1', 'en', 'en'],
    ['en;q=0.5;q=1', 'es', 'en'],
    ['enx, en-', 'es', 'es'],
    ['spanish', 'en', 'en'],
    ['en;Q=1', 'es', 'en'],
    ['  en  ;  q = 0.7 ', 'es', 'en'],
  ];
  for (const [header, fallback, expected] of cases) assert.equal(negotiateLanguage(header, fallback), expected, JSON.stringify(header));
});

test('a huge header costs a bounded amount of work and still answers', () => {
  const hostile = `${'xx;q=0.5,'.repeat(200_000)}en`;
  const started = performance.now();
  assert.equal(negotiateLanguage(hostile, 'es'), 'es', 'ranges past the first 32 are not read');
  assert.ok(performance.now() - started < 50, 'bounded');
  assert.equal(negotiateLanguage(`${'fr,'.repeat(10)}en`, 'es'), 'en');
});
