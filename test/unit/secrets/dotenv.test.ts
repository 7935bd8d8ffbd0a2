import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DotenvError, parseDotenv } from '../../../src/secrets/dotenv.js';

const SAMPLE = `# header comment

# JWT signing key
API_SECRET_KEY=abc123
export CORS_ORIGINS=localhost,127.0.0.1
BACKUP_SCHEDULE=0 2 * * *
QUOTED="a value # not a comment"
SINGLE='single # quoted'
ESCAPED="line\\nnext \\"q\\""
INLINE=value # a comment
EMPTY=
`;

describe('parseDotenv', () => {
  test('reads plain, exported, spaced, quoted and inline-commented values', () => {
    const doc = parseDotenv(SAMPLE);
    assert.equal(doc.get('API_SECRET_KEY'), 'abc123');
    assert.equal(doc.get('CORS_ORIGINS'), 'localhost,127.0.0.1');
    assert.equal(doc.get('BACKUP_SCHEDULE'), '0 2 * * *');
    assert.equal(doc.get('QUOTED'), 'a value # not a comment');
    assert.equal(doc.get('SINGLE'), 'single # quoted');
    assert.equal(doc.get('ESCAPED'), 'line\nnext "q"');
    assert.equal(doc.get('INLINE'), 'value');
    assert.equal(doc.get('EMPTY'), '');
    assert.equal(doc.get('MISSING'), undefined);
  });

  test('writing back an untouched document gives the same text (comments, blanks, order kept)', () => {
    assert.equal(parseDotenv(SAMPLE).toString(), SAMPLE);
  });

  test('set() changes only that line; a new key goes at the end with its comments', () => {
    const doc = parseDotenv('# a\nA=1\n# b\nB=2\n');
    doc.set('A', 'x');
    doc.set('C', '3', ['# c explained']);
    assert.equal(doc.toString(), '# a\nA=x\n# b\nB=2\n\n# c explained\nC=3\n');
  });

  test('set() refuses values that would need quoting rather than writing a broken file', () => {
    const doc = parseDotenv('A=1\n');
    assert.throws(() => doc.set('A', 'has space'), /quoting/);
    assert.throws(() => doc.set('A', 'x\nB=evil'), /quoting/);
    assert.throws(() => doc.set('1BAD', 'x'), /variable name/);
  });

  test('created dates live in a "# created:" line right above the entry', () => {
    const doc = parseDotenv('# description\nA=1\n');
    assert.equal(doc.createdAt('A'), undefined);
    doc.setCreatedAt('A', new Date('2025-01-02T03:04:05.000Z'));
    assert.equal(doc.toString(), '# description\n# created: 2025-01-02T03:04:05.000Z\nA=1\n');
    doc.setCreatedAt('A', new Date('2025-02-01T00:00:00.000Z'));
    assert.equal(doc.toString(), '# description\n# created: 2025-02-01T00:00:00.000Z\nA=1\n', 'replaced, not stacked');
    assert.equal(doc.createdAt('A')?.toISOString(), '2025-02-01T00:00:00.000Z');
    assert.deepEqual(doc.commentsAbove('A'), ['# description']);
  });

  test('every malformed line is reported at once, by line number, without echoing values', () => {
    const text = 'GOOD=1\nno equals sign here\n9BAD=secretvalue\nQ="unterminated secretvalue\nGOOD=2\nT="x" trailing\n';
    try {
      parseDotenv(text, '/srv/crm/.env');
      assert.fail('expected DotenvError');
    } catch (err) {
      assert.ok(err instanceof DotenvError);
      assert.deepEqual(err.problems.map((p) => p.line), [2, 3, 4, 5, 6]);
      assert.match(err.message, /\/srv\/crm\/\.env/);
      assert.match(err.message, /line 5: GOOD is already set on line 1/);
      assert.doesNotMatch(err.message, /secretvalue/);
    }
  });

  test('CRLF files parse like LF files', () => {
    assert.equal(parseDotenv('A=1\r\nB=2\r\n').get('B'), '2');
  });
});
