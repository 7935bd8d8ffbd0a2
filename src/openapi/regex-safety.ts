import { escapeToken } from './pointer.js';

/**
 * Spec `pattern`s run on the one event loop against what clients send, and no linear-time
 * engine (RE2) is available: a pattern that can backtrack exponentially would let one request
 * stop the gateway (`^([a-z0-9]+-?)*[a-z0-9]\.es$` against 26 letters and a `!`: 60 ms, each
 * letter more doubles it, so 36 take a minute).
 * Such patterns are found at spec load by their shape, star height above one: a repeated group
 * whose body holds a repetition of its own, so that one text splits into iterations in many
 * ways. A group whose every iteration starts or ends with one character nothing else in it can
 * match (`(-[a-z]+)*`, `(\.\d+)*`, `(\d+\.){3}`) splits one way only, and passes.
 * Not covered: overlapping alternatives (`(a|a)*`) and adjacent overlapping repetitions
 * (`\d+\d+`), which cost polynomial time, not exponential.
 */

/** Sorted, disjoint, inclusive code point ranges. */
type Ranges = readonly (readonly [number, number])[];

interface Term {
  readonly atom: Atom;
  readonly min: number;
  readonly max: number;
  /** The term as the pattern writes it, for the message. */
  readonly text: string;
}

type Atom = { readonly kind: 'set'; readonly set: Ranges } | { readonly kind: 'group'; readonly alts: readonly (readonly Term[])[] } | { readonly kind: 'assert' };

const MAX_CODE_POINT = 0x10ffff;
const ALL: Ranges = [[0, MAX_CODE_POINT]];
const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** JavaScript's `\s`: WhiteSpace and LineTerminator. */
const SPACE: Ranges = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];
/** Groups nested deeper than this are refused rather than analysed (a spec's patterns nest a few levels). */
const MAX_GROUP_DEPTH = 64;
const SIMPLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b, '0': 0 };

function union(...sets: Ranges[]): Ranges {
  const all = sets.flat().slice().sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of all) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(set: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of union(set)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

function intersects(a: Ranges, b: Ranges): boolean {
  return a.some(([alo, ahi]) => b.some(([blo, bhi]) => alo <= bhi && blo <= ahi));
}

class PatternSyntaxError extends Error {}

/** A recursive-descent reader of JavaScript `u`-mode pattern syntax, as far as the shape check needs. */
class Parser {
  private i = 0;
  private readonly cps: readonly string[];

  constructor(pattern: string) {
    this.cps = [...pattern];
  }

  parse(): Term[][] {
    const alts = this.alternatives(0);
    if (this.i < this.cps.length) throw new PatternSyntaxError(`unexpected ${this.cps[this.i]}`);
    return alts;
  }

  private peek(): string | undefined {
    return this.cps[this.i];
  }

  private take(): string {
    const c = this.cps[this.i++];
    if (c === undefined) throw new PatternSyntaxError('unexpected end');
    return c;
  }

  private alternatives(depth: number): Term[][] {
    if (depth > MAX_GROUP_DEPTH) throw new PatternSyntaxError(`groups nested deeper than ${MAX_GROUP_DEPTH}`);
    const alts: Term[][] = [[]];
    while (this.i < this.cps.length && this.peek() !== ')') {
      if (this.peek() === '|') {
        this.i++;
        alts.push([]);
        continue;
      }
      const start = this.i;
      const atom = this.atom(depth);
      const [min, max] = this.quantifier();
      (alts[alts.length - 1] as Term[]).push({ atom, min, max, text: this.cps.slice(start, this.i).join('') });
    }
    return alts;
  }

  private atom(depth: number): Atom {
    const c = this.take();
    if (c === '^' || c === '$') return { kind: 'assert' };
    if (c === '.') return { kind: 'set', set: complement(LINE_TERMINATORS) };
    if (c === '[') return { kind: 'set', set: this.characterClass() };
    if (c === '\\') return this.escape(false);
    if (c === '(') {
      // Lookarounds are kept as groups: their bodies run, and backtrack, where they stand.
      if (this.peek() === '?') {
        this.i++;
        const k = this.take();
        if (k === '<' && this.peek() !== '=' && this.peek() !== '!') {
          while (this.take() !== '>');
        } else if (k === '<') this.i++;
        else if (k !== ':' && k !== '=' && k !== '!') throw new PatternSyntaxError(`unknown group (?${k}`);
      }
      const alts = this.alternatives(depth + 1);
      if (this.take() !== ')') throw new PatternSyntaxError('unclosed group');
      return { kind: 'group', alts };
    }
    if (c === ')' || c === '*' || c === '+' || c === '?' || c === '{' || c === '|') throw new PatternSyntaxError(`unexpected ${c}`);
    return { kind: 'set', set: [[c.codePointAt(0) as number, c.codePointAt(0) as number]] };
  }

  /** After `\`: a class escape, an assertion, a back-reference or one character. */
  private escape(inClass: boolean): Atom {
    const c = this.take();
    const one = (cp: number): Atom => ({ kind: 'set', set: [[cp, cp]] });
    switch (c) {
      case 'd':
        return { kind: 'set', set: DIGIT };
      case 'D':
        return { kind: 'set', set: complement(DIGIT) };
      case 'w':
        return { kind: 'set', set: WORD };
      case 'W':
        return { kind: 'set', set: complement(WORD) };
      case 's':
        return { kind: 'set', set: SPACE };
      case 'S':
        return { kind: 'set', set: complement(SPACE) };
      case 'b':
        return inClass ? one(0x08) : { kind: 'assert' };
      case 'B':
        return { kind: 'assert' };
      case 'p':
      case 'P':
        // Unicode properties: taken as any character, so no separator is ever judged disjoint from one.
        if (this.take() !== '{') throw new PatternSyntaxError('\\p without {');
        while (this.take() !== '}');
        return { kind: 'set', set: ALL };
      case 'k':
        if (this.take() !== '<') throw new PatternSyntaxError('\\k without <');
        while (this.take() !== '>');
        return { kind: 'set', set: ALL };
      case 'c':
        return one((this.take().codePointAt(0) as number) % 32);
      case 'x':
        return one(this.hex(2));
      case 'u': {
        if (this.peek() !== '{') return one(this.hex(4));
        this.i++;
        let cp = 0;
        while (this.peek() !== '}') cp = cp * 16 + this.hexDigit();
        this.i++;
        return one(cp);
      }
      default: {
        const simple = SIMPLE_ESCAPES[c];
        if (simple !== undefined) return one(simple);
        // A back-reference matches what its group matched: any character, as far as this check knows.
        if (/[1-9]/.test(c)) {
          while (/[0-9]/.test(this.peek() ?? '')) this.i++;
          return { kind: 'set', set: ALL };
        }
        return one(c.codePointAt(0) as number);
      }
    }
  }

  private hexDigit(): number {
    const d = parseInt(this.take(), 16);
    if (Number.isNaN(d)) throw new PatternSyntaxError('bad hex escape');
    return d;
  }

  private hex(n: number): number {
    let v = 0;
    for (let k = 0; k < n; k++) v = v * 16 + this.hexDigit();
    return v;
  }

  private characterClass(): Ranges {
    const negated = this.peek() === '^';
    if (negated) this.i++;
    const parts: Ranges[] = [];
    const single = (): Ranges => {
      const c = this.take();
      if (c !== '\\') return [[c.codePointAt(0) as number, c.codePointAt(0) as number]];
      const atom = this.escape(true);
      return atom.kind === 'set' ? atom.set : ALL;
    };
    while (this.peek() !== ']') {
      const from = single();
      if (this.peek() === '-' && this.cps[this.i + 1] !== ']' && this.cps[this.i + 1] !== undefined) {
        this.i++;
        const to = single();
        const lo = from[0]?.[0];
        const hi = to[to.length - 1]?.[1];
        // `[\d-x]` is an error in u-mode; a range is between two single characters.
        if (from.length !== 1 || to.length !== 1 || lo === undefined || hi === undefined || lo > hi) throw new PatternSyntaxError('bad class range');
        parts.push([[lo, hi]]);
      } else parts.push(from);
    }
    this.i++;
    const set = union(...parts);
    return negated ? complement(set) : set;
  }

  private quantifier(): [number, number] {
    let bounds: [number, number];
    const c = this.peek();
    if (c === '*') bounds = [0, Infinity];
    else if (c === '+') bounds = [1, Infinity];
    else if (c === '?') bounds = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.cps.slice(this.i, this.i + 24).join(''));
      if (!m) throw new PatternSyntaxError('bad {} quantifier');
      const min = Number(m[1]);
      bounds = [min, m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3])];
      this.i += m[0].length - 1;
    } else return [1, 1];
    this.i++;
    if (this.peek() === '?') this.i++; // lazy: the same paths, tried in another order
    return bounds;
  }
}

/** Every term below `alts`, at any depth. */
function* termsIn(alts: readonly (readonly Term[])[]): Generator<Term> {
  for (const seq of alts) {
    for (const t of seq) {
      yield t;
      if (t.atom.kind === 'group') yield* termsIn(t.atom.alts);
    }
  }
}

/** Each iteration begins or ends with exactly one character that nothing else in the body can match. */
function separated(alts: readonly (readonly Term[])[]): boolean {
  if (alts.length !== 1) return false;
  const seq = alts[0] as readonly Term[];
  return [seq[0], seq[seq.length - 1]].some((edge) => {
    if (!edge || edge.atom.kind !== 'set' || edge.min !== 1 || edge.max !== 1) return false;
    const set = edge.atom.set;
    for (const t of termsIn(alts)) if (t !== edge && t.atom.kind === 'set' && intersects(t.atom.set, set)) return false;
    return true;
  });
}

/** Why the pattern can backtrack exponentially, or undefined. */
function nestedRepetition(alts: readonly (readonly Term[])[]): string | undefined {
  for (const t of termsIn(alts)) {
    if (t.atom.kind !== 'group' || t.max <= 1) continue;
    // Repeated without end, any variable part inside multiplies the splits; repeated a fixed
    // number of times, only an unbounded part inside does.
    const inner = [...termsIn(t.atom.alts)].find((u) => (t.max === Infinity ? u.max > u.min : u.max === Infinity));
    if (inner && !separated(t.atom.alts)) {
      const growth = t.max === Infinity ? 'a number of ways exponential in its length' : `a number of ways that grows as its length to the power ${t.max}`;
      return `the repeated group ${t.text} holds the repetition ${inner.text}, so one text splits into its iterations in ${growth}`;
    }
  }
  return undefined;
}

/**
 * Why `pattern` is refused, or undefined when it is safe to run. A pattern JavaScript cannot
 * compile is left to ajv, which names it; one this check cannot read is refused (fail closed).
 */
export function unsafePatternReason(pattern: string): string | undefined {
  try {
    new RegExp(pattern, 'u');
  } catch {
    return undefined;
  }
  let alts: Term[][];
  try {
    alts = new Parser(pattern).parse();
  } catch (err) {
    return `it cannot be checked for catastrophic backtracking (${(err as Error).message})`;
  }
  return nestedRepetition(alts);
}

/** Subtrees that hold data, not schemas: a `pattern` string there is not a regular expression. */
const DATA_KEYWORDS = new Set(['example', 'examples', 'default', 'enum', 'const']);
/** Objects whose keys are names the spec chose (a property may be called `default`), not keywords. */
const NAME_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'schemas', 'paths', 'parameters', 'requestBodies', 'content']);

export interface UnsafePattern {
  /** Where the pattern is, as a JSON pointer into the document (`#/components/schemas/Domain/pattern`). */
  readonly pointer: string;
  readonly pattern: string;
  readonly reason: string;
}

/**
 * The first `pattern` (or `patternProperties` key) of the document that could backtrack
 * exponentially. The whole document is read, without recursion (a hostile spec may nest deep),
 * so a pattern is named at the place it is written, whichever operations use it.
 */
export function findUnsafePattern(doc: unknown): UnsafePattern | undefined {
  const stack: { value: unknown; pointer: string; names: boolean }[] = [{ value: doc, pointer: '#', names: false }];
  const check = (pattern: string, pointer: string): UnsafePattern | undefined => {
    const reason = unsafePatternReason(pattern);
    return reason === undefined ? undefined : { pointer, pattern, reason };
  };
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { value, pointer, names } = next;
    if (value === null || typeof value !== 'object') continue;
    const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    for (const [key, v] of entries) {
      const at = `${pointer}/${escapeToken(key)}`;
      if (names) {
        if (v !== null && typeof v === 'object') stack.push({ value: v, pointer: at, names: false });
        continue;
      }
      if (key === 'pattern' && typeof v === 'string') {
        const found = check(v, at);
        if (found) return found;
      } else if (key === 'patternProperties' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
        for (const name of Object.keys(v)) {
          const found = check(name, `${at}/${escapeToken(name)}`);
          if (found) return found;
        }
      }
      if (!DATA_KEYWORDS.has(key) && v !== null && typeof v === 'object') stack.push({ value: v, pointer: at, names: NAME_MAPS.has(key) });
    }
  }
  return undefined;
}
