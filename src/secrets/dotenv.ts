/**
 * A `.env` file as a document: every line is kept (comments, blanks, order), so a rewrite
 * changes only the values it means to change. Errors name the file and line, never a value:
 * a value in a `.env` is usually a secret.
 */

export interface DotenvProblem {
  line: number;
  message: string;
}

export class DotenvError extends Error {
  readonly problems: readonly DotenvProblem[];
  constructor(source: string, problems: readonly DotenvProblem[]) {
    super(`malformed ${source}:\n${problems.map((p) => `  - line ${p.line}: ${p.message}`).join('\n')}`);
    this.name = 'DotenvError';
    this.problems = problems;
  }
}

type Line = { kind: 'other'; raw: string } | { kind: 'entry'; raw: string; key: string; value: string };

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Values written without quotes: generated secrets, dates, key rings, URLs. No spaces, quotes,
 * `#` (a comment) or `$` (compose interpolates it).
 */
const PLAIN_VALUE = /^[A-Za-z0-9_+/=:.,@*?&%~![\]-]*$/;
/** `# created: <ISO date>` right above an entry records when its value was made. */
const CREATED = /^#\s*created:\s*(\S+)\s*$/;

export class DotenvDocument {
  private readonly lines: Line[];

  constructor(lines: Line[] = []) {
    this.lines = lines;
  }

  clone(): DotenvDocument {
    return new DotenvDocument(this.lines.map((l) => ({ ...l })));
  }

  keys(): string[] {
    return this.lines.flatMap((l) => (l.kind === 'entry' ? [l.key] : []));
  }

  has(key: string): boolean {
    return this.index(key) >= 0;
  }

  /** The value, or undefined when the key is absent (an empty value is ''). */
  get(key: string): string | undefined {
    const l = this.lines[this.index(key)];
    return l?.kind === 'entry' ? l.value : undefined;
  }

  /** Every entry as a plain map. */
  toRecord(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const l of this.lines) if (l.kind === 'entry') out[l.key] = l.value;
    return out;
  }

  /** Sets a value in place, or appends `comments` + the entry at the end when the key is new. */
  set(key: string, value: string, comments: readonly string[] = []): void {
    if (!KEY.test(key)) throw new Error(`not a valid variable name: ${key}`);
    if (!PLAIN_VALUE.test(value)) throw new Error(`${key}: refusing to write a value with characters that need quoting`);
    const raw = `${key}=${value}`;
    const i = this.index(key);
    if (i >= 0) {
      this.lines[i] = { kind: 'entry', raw, key, value };
      return;
    }
    const last = this.lines[this.lines.length - 1];
    if (comments.length > 0 && last && last.raw.trim() !== '') this.lines.push({ kind: 'other', raw: '' });
    for (const c of comments) this.lines.push({ kind: 'other', raw: c });
    this.lines.push({ kind: 'entry', raw, key, value });
  }

  /** Appends another document's entry for `key` as written there, with its description. */
  copyFrom(other: DotenvDocument, key: string): void {
    if (this.has(key)) throw new Error(`${key} is already in the file`);
    const line = other.lines[other.index(key)];
    if (line?.kind !== 'entry') throw new Error(`${key} is not in the other file`);
    const last = this.lines[this.lines.length - 1];
    if (last && last.raw.trim() !== '') this.lines.push({ kind: 'other', raw: '' });
    for (const c of other.commentsAbove(key)) this.lines.push({ kind: 'other', raw: c });
    this.lines.push({ ...line });
  }

  /** When the key's value was made, from the `# created:` line above it. */
  createdAt(key: string): Date | undefined {
    const i = this.index(key);
    const above = i > 0 ? this.lines[i - 1] : undefined;
    const m = above?.kind === 'other' ? CREATED.exec(above.raw.trim()) : null;
    if (!m?.[1]) return undefined;
    const d = new Date(m[1]);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }

  setCreatedAt(key: string, when: Date): void {
    const i = this.index(key);
    if (i < 0) throw new Error(`${key} is not in the file`);
    const line: Line = { kind: 'other', raw: `# created: ${when.toISOString()}` };
    const above = i > 0 ? this.lines[i - 1] : undefined;
    if (above?.kind === 'other' && CREATED.test(above.raw.trim())) this.lines[i - 1] = line;
    else this.lines.splice(i, 0, line);
  }

  /** The comment lines directly above a key (its description in a template). */
  commentsAbove(key: string): string[] {
    const out: string[] = [];
    for (let i = this.index(key) - 1; i >= 0; i--) {
      const l = this.lines[i];
      if (!l || l.kind !== 'other' || !l.raw.trim().startsWith('#')) break;
      if (!CREATED.test(l.raw.trim())) out.unshift(l.raw);
    }
    return out;
  }

  toString(): string {
    return `${this.lines.map((l) => l.raw).join('\n')}\n`;
  }

  private index(key: string): number {
    return this.lines.findIndex((l) => l.kind === 'entry' && l.key === key);
  }
}

/**
 * Parses `.env` text: `KEY=value`, optional `export `, `#` comments, single or double quoted
 * values. Throws DotenvError listing every malformed line; a key set twice is malformed too,
 * because tools disagree on which one wins.
 */
export function parseDotenv(text: string, source = '.env'): DotenvDocument {
  const problems: DotenvProblem[] = [];
  const lines: Line[] = [];
  const seen = new Map<string, number>();
  const rawLines = text.replace(/\r\n/g, '\n').split('\n');
  if (rawLines[rawLines.length - 1] === '') rawLines.pop();
  rawLines.forEach((raw, i) => {
    const n = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      lines.push({ kind: 'other', raw });
      return;
    }
    const body = trimmed.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    if (eq < 0) {
      problems.push({ line: n, message: 'not KEY=value (no "=")' });
      return;
    }
    const key = body.slice(0, eq).trim();
    if (!KEY.test(key)) {
      problems.push({ line: n, message: `invalid variable name ${JSON.stringify(key.slice(0, 40))}` });
      return;
    }
    const value = parseValue(body.slice(eq + 1));
    if (typeof value !== 'string') {
      problems.push({ line: n, message: `${key}: ${value.error}` });
      return;
    }
    const first = seen.get(key);
    if (first !== undefined) problems.push({ line: n, message: `${key} is already set on line ${first}` });
    seen.set(key, n);
    lines.push({ kind: 'entry', raw, key, value });
  });
  if (problems.length > 0) throw new DotenvError(source, problems);
  return new DotenvDocument(lines);
}

function parseValue(rest: string): string | { error: string } {
  const s = rest.trimStart();
  const quote = s[0];
  if (quote === '"' || quote === "'") {
    let out = '';
    for (let i = 1; i < s.length; i++) {
      const c = s[i] as string;
      if (quote === '"' && c === '\\' && i + 1 < s.length) {
        const next = s[++i] as string;
        out += next === 'n' ? '\n' : next;
        continue;
      }
      if (c === quote) {
        const after = s.slice(i + 1).trim();
        if (after !== '' && !after.startsWith('#')) return { error: 'text after the closing quote' };
        return out;
      }
      out += c;
    }
    return { error: 'unterminated quote (multi-line values are not supported)' };
  }
  // An unquoted value ends at whitespace followed by `#` (an inline comment).
  return s.replace(/\s+#.*$/, '').trim();
}
