import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS } from '../../../src/errors.js';
import { LANGUAGES } from '../../../src/i18n/language.js';
import { CATALOGUES } from '../../../src/i18n/messages.js';

const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();

test('every key of each catalogue is in every other', () => {
  for (const a of LANGUAGES) {
    for (const b of LANGUAGES) {
      if (a === b) continue;
      const missing = Object.keys(CATALOGUES[a]).filter((k) => !Object.hasOwn(CATALOGUES[b], k));
      assert.deepEqual(missing, [], `keys of src/i18n/${a}.ts missing from src/i18n/${b}.ts: ${missing.join(', ')}`);
    }
  }
});

/** Each language's missing keys, as "src/i18n/es.ts: error.X" lines (empty when none is). */
function missingKeys(keys: readonly string[]): string[] {
  return LANGUAGES.flatMap((lang) => keys.filter((k) => !Object.hasOwn(CATALOGUES[lang], k)).map((k) => `src/i18n/${lang}.ts: ${k}`));
}

test('every error code of src/errors.ts has a page message in every language', () => {
  const missing = missingKeys(Object.keys(ERRORS).map((code) => `error.${code}`));
  assert.deepEqual(missing, [], `add these page messages:\n  ${missing.join('\n  ')}`);
});

test('every status an error answers with has a page heading in every language', () => {
  const missing = missingKeys([...new Set(Object.values(ERRORS).map((e) => `status.${e.status}`))]);
  assert.deepEqual(missing, [], `add these headings:\n  ${missing.join('\n  ')}`);
});

test('no catalogue keeps a message for an error code that no longer exists', () => {
  for (const lang of LANGUAGES) {
    const stale = Object.keys(CATALOGUES[lang]).filter((k) => k.startsWith('error.') && !Object.hasOwn(ERRORS, k.slice('error.'.length)));
    assert.deepEqual(stale, [], `src/i18n/${lang}.ts: messages of unknown codes`);
  }
});

test('translations are not empty and use the same placeholders', () => {
  const [first, ...others] = LANGUAGES;
  for (const [key, text] of Object.entries(CATALOGUES[first])) {
    assert.ok(text.trim().length > 0, `${first} ${key} is empty`);
    for (const lang of others) {
      const other = (CATALOGUES[lang] as Readonly<Record<string, string>>)[key] ?? '';
      assert.ok(other.trim().length > 0, `${lang} ${key} is empty`);
      assert.deepEqual(placeholders(other), placeholders(text), `${key}: ${lang} and ${first} fill in the same {names}`);
    }
  }
});
