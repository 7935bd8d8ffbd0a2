/** JSON pointers (RFC 6901) as OpenAPI's `$ref` fragments and ajv's instance paths write them. */

export function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** `#/components/schemas/Contact` → its tokens; undefined for a ref that is not local to the document. */
export function localRefTokens(ref: string): string[] | undefined {
  if (!ref.startsWith('#')) return undefined;
  let fragment: string;
  try {
    fragment = decodeURIComponent(ref.slice(1));
  } catch {
    return undefined;
  }
  if (fragment === '') return [];
  if (!fragment.startsWith('/')) return undefined;
  return fragment.slice(1).split('/').map(unescapeToken);
}

/** What `tokens` point at in `doc`, or undefined when nothing is there. */
export function resolveTokens(doc: unknown, tokens: readonly string[]): unknown {
  let at: unknown = doc;
  for (const token of tokens) {
    if (at === null || typeof at !== 'object') return undefined;
    if (Array.isArray(at)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      at = at[Number(token)];
    } else {
      if (!Object.hasOwn(at, token)) return undefined;
      at = (at as Record<string, unknown>)[token];
    }
  }
  return at;
}
