import { OpenApiSpecError } from './errors.js';
import { escapeToken, localRefTokens, resolveTokens } from './pointer.js';

/**
 * OpenAPI Schema Objects as JSON Schema 2020-12 for ajv. 3.1 schemas are 2020-12 already; 3.0's
 * dialect differs in `nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum` and siblings of
 * `$ref` (ignored in 3.0). Every local `$ref` target is copied once under `$defs` of one schema
 * (id DEFS_ID) and the refs rewritten to it, so ajv resolves them without reading the document;
 * a ref that leaves the document is refused: nothing is fetched, at startup or later.
 */

export const DEFS_ID = 'urn:crm-gateway:openapi-defs';

/** How deep a spec's own schemas may nest: a hostile spec must not exhaust the stack at startup. */
const MAX_SCHEMA_DEPTH = 256;

export type OpenApiVersion = '3.0' | '3.1';

/** Keywords whose subschemas apply to the same value: a `$ref` cycle through these alone never ends. */
const SAME_VALUE_LISTS = ['allOf', 'anyOf', 'oneOf'];
const SAME_VALUE_ONE = ['not', 'if', 'then', 'else'];
const SAME_VALUE_MAPS = ['dependentSchemas'];
/** Keywords whose subschemas apply to a part of the value: recursion through them ends with the data. */
const PART_ONE = ['additionalProperties', 'unevaluatedProperties', 'items', 'additionalItems', 'unevaluatedItems', 'contains', 'propertyNames'];
const PART_MAPS = ['properties', 'patternProperties', '$defs', 'definitions'];
const PART_LISTS = ['prefixItems'];
/** Identifiers that would move a copied schema's base URI away from DEFS_ID. */
const DROPPED = new Set(['$id', '$schema', '$anchor', '$dynamicAnchor', '$comment']);

export class SchemaNormalizer {
  /** The `$defs` of DEFS_ID, keyed by the escaped pointer of each ref target (a Map: a key may be `__proto__`). */
  private readonly defs = new Map<string, unknown>();
  /** Per def: the defs its schema reaches on the same value (for loop detection). */
  private readonly sameValue = new Map<string, Set<string>>();
  private readonly pending: { key: string; tokens: string[] }[] = [];

  constructor(
    private readonly doc: unknown,
    private readonly version: OpenApiVersion,
    private readonly source: string,
  ) {}

  /** A copy of `schema` in 2020-12 form, its refs rewritten; `where` names it in errors. */
  schema(schema: unknown, where: string): unknown {
    const out = this.convert(schema, undefined, 0, where);
    this.drain();
    return out;
  }

  /** The schema document ajv gets once, holding every ref target; throws on a `$ref` loop. */
  defsSchema(): Record<string, unknown> {
    this.drain();
    this.refuseLoops();
    // fromEntries defines own properties, so no key can reach a prototype.
    return { $id: DEFS_ID, $defs: Object.fromEntries(this.defs) };
  }

  private fail(reason: string): never {
    throw new OpenApiSpecError(this.source, reason);
  }

  private drain(): void {
    for (let next = this.pending.pop(); next; next = this.pending.pop()) {
      const target = resolveTokens(this.doc, next.tokens);
      if (target === undefined) this.fail(`$ref to nothing: #/${next.key}`);
      const edges = new Set<string>();
      this.sameValue.set(next.key, edges);
      this.defs.set(next.key, this.convert(target, edges, 0, `#/${next.key}`));
    }
  }

  private refFor(ref: unknown, edges: Set<string> | undefined, where: string): string {
    if (typeof ref !== 'string') this.fail(`${where}: $ref is not a string`);
    const tokens = localRefTokens(ref);
    if (!tokens) this.fail(`${where}: only local $refs (#/...) are supported, not ${JSON.stringify(ref.slice(0, 200))}`);
    const key = tokens.map(escapeToken).join('/');
    if (!this.defs.has(key)) {
      this.defs.set(key, true);
      this.pending.push({ key, tokens });
    }
    edges?.add(key);
    return `${DEFS_ID}#/$defs/${encodeURIComponent(escapeToken(key))}`;
  }

  /** `edges`: the same-value refs of the def being converted; undefined below a part keyword. */
  private convert(schema: unknown, edges: Set<string> | undefined, depth: number, where: string): unknown {
    if (depth > MAX_SCHEMA_DEPTH) this.fail(`${where}: schemas nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (typeof schema === 'boolean') return schema;
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) this.fail(`${where}: a schema must be an object`);
    const src = schema as Record<string, unknown>;
    if (src.$dynamicRef !== undefined || src.$recursiveRef !== undefined) this.fail(`${where}: $dynamicRef is not supported`);
    const ref = src.$ref !== undefined ? this.refFor(src.$ref, edges, where) : undefined;
    // OpenAPI 3.0: "properties adjacent to $ref are ignored".
    if (ref !== undefined && this.version === '3.0') return { $ref: ref };
    const out: Record<string, unknown> = {};
    const sub = (v: unknown, e: Set<string> | undefined, at: string): unknown => this.convert(v, e, depth + 1, at);
    for (const [k, v] of Object.entries(src)) {
      // `__proto__` is no keyword; assigned, it would replace the copy's prototype.
      if (DROPPED.has(k) || k === '__proto__') continue;
      if (k === '$ref') out.$ref = ref;
      else if (SAME_VALUE_LISTS.includes(k) || PART_LISTS.includes(k)) {
        if (!Array.isArray(v)) this.fail(`${where}/${k}: must be a list of schemas`);
        const e = PART_LISTS.includes(k) ? undefined : edges;
        out[k] = v.map((s, i) => sub(s, e, `${where}/${k}/${i}`));
      } else if (SAME_VALUE_ONE.includes(k) || PART_ONE.includes(k)) {
        // 3.0 has no tuple form of `items`; a list there is a spec error ajv would refuse anyway.
        out[k] = sub(v, SAME_VALUE_ONE.includes(k) ? edges : undefined, `${where}/${k}`);
      } else if (SAME_VALUE_MAPS.includes(k) || PART_MAPS.includes(k)) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(`${where}/${k}: must map names to schemas`);
        const e = SAME_VALUE_MAPS.includes(k) ? edges : undefined;
        out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, sub(s, e, `${where}/${k}/${escapeToken(name)}`)]));
      } else out[k] = v;
    }
    return this.version === '3.0' ? from30(out) : out;
  }

  /** A cycle of same-value refs (A is B, B is A): no data ends it, so it is refused at load. */
  private refuseLoops(): void {
    const state = new Map<string, 'open' | 'done'>();
    for (const start of this.sameValue.keys()) {
      if (state.has(start)) continue;
      // Iterative depth-first search: a long chain of refs must not exhaust the stack.
      const stack: { key: string; next: Iterator<string> }[] = [{ key: start, next: (this.sameValue.get(start) ?? new Set<string>()).values() }];
      state.set(start, 'open');
      while (stack.length > 0) {
        const top = stack[stack.length - 1] as { key: string; next: Iterator<string> };
        const step = top.next.next();
        if (step.done) {
          state.set(top.key, 'done');
          stack.pop();
          continue;
        }
        const to = step.value;
        if (state.get(to) === 'open') {
          const path = [...stack.slice(stack.findIndex((s) => s.key === to)).map((s) => s.key), to];
          this.fail(`$ref loop: ${path.map((k) => `#/${k}`).join(' → ')}`);
        }
        if (state.has(to)) continue;
        state.set(to, 'open');
        stack.push({ key: to, next: (this.sameValue.get(to) ?? new Set<string>()).values() });
      }
    }
  }
}

/** 3.0's own keywords in their 2020-12 form. */
function from30(s: Record<string, unknown>): Record<string, unknown> {
  for (const [flag, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof s[flag] !== 'boolean') continue;
    if (s[flag] === true && typeof s[bound] === 'number') {
      s[flag] = s[bound];
      delete s[bound];
    } else delete s[flag];
  }
  if (s.nullable !== true) {
    delete s.nullable;
    return s;
  }
  delete s.nullable;
  if (typeof s.type === 'string') {
    s.type = [s.type, 'null'];
    if (Array.isArray(s.enum) && !s.enum.includes(null)) s.enum = [...s.enum, null];
    return s;
  }
  // No single type to widen (allOf, oneOf, ...): null, or whatever the rest allows.
  return { anyOf: [s, { type: 'null' }] };
}
