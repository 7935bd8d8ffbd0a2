/**
 * OpenAPI path templates (`/v1/contacts/{contact_id}`) matched against a request path. As the
 * specification says, concrete paths win over templated ones; among templated paths the one
 * with more literal segments first, so `/v1/contacts/export` beats `/v1/contacts/{id}`.
 */

export interface PathMatch<T> {
  readonly entry: T;
  /** The template's parameters, still percent-encoded as the path carried them. */
  readonly params: Record<string, string>;
}

interface Templated<T> {
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly literalSegments: number;
  readonly entry: T;
}

const PARAM = /\{([^{}/]+)\}/g;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class PathMatcher<T> {
  private readonly exact = new Map<string, T>();
  private readonly templated: Templated<T>[] = [];

  add(template: string, entry: T): void {
    if (!template.includes('{')) {
      this.exact.set(template, entry);
      return;
    }
    const names: string[] = [];
    // A parameter matches within one segment, never across a '/'; an empty value does not match.
    const pattern = template
      .split(PARAM)
      .map((part, i) => {
        if (i % 2 === 1) {
          names.push(part);
          return '([^/]+)';
        }
        return escapeRegex(part);
      })
      .join('');
    const literalSegments = template.split('/').filter((s) => s !== '' && !s.includes('{')).length;
    this.templated.push({ regex: new RegExp(`^${pattern}$`), names, literalSegments, entry });
    this.templated.sort((a, b) => b.literalSegments - a.literalSegments);
  }

  match(path: string): PathMatch<T> | undefined {
    const hit = this.exact.get(path);
    if (hit !== undefined) return { entry: hit, params: {} };
    for (const t of this.templated) {
      const m = t.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      t.names.forEach((name, i) => (params[name] = m[i + 1] as string));
      return { entry: t.entry, params };
    }
    return undefined;
  }
}
