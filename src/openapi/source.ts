import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { OpenApiSpecError } from './errors.js';

/** A spec larger than this is refused: FastAPI's for a large CRM is well under 1 MB. */
export const MAX_SPEC_BYTES = 10 * 1024 * 1024;
/** How long a spec URL may take to answer, at startup and on SIGHUP. */
export const SPEC_FETCH_TIMEOUT_MS = 10_000;

function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

async function fetchText(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(SPEC_FETCH_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/json, application/yaml;q=0.9' } });
  } catch (err) {
    throw new OpenApiSpecError(url, `cannot fetch it: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new OpenApiSpecError(url, `fetching it answered ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_SPEC_BYTES) {
    await res.body?.cancel();
    throw new OpenApiSpecError(url, `larger than ${MAX_SPEC_BYTES} bytes`);
  }
  // Read by chunks: an endless body stops at the limit, not at the end of memory.
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    if (size > MAX_SPEC_BYTES) throw new OpenApiSpecError(url, `larger than ${MAX_SPEC_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readText(file: string): Promise<string> {
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_SPEC_BYTES) throw new OpenApiSpecError(file, `larger than ${MAX_SPEC_BYTES} bytes`);
    return buf.toString('utf8');
  } catch (err) {
    if (err instanceof OpenApiSpecError) throw err;
    throw new OpenApiSpecError(file, `cannot read it: ${(err as Error).message}`);
  }
}

/** The spec at `spec` (an http(s) URL or a file, relative to the working directory), parsed from JSON or YAML. */
export async function loadSpecDocument(spec: string): Promise<unknown> {
  const text = isUrl(spec) ? await fetchText(spec) : await readText(resolve(spec));
  try {
    if (/^\s*\{/.test(text)) return JSON.parse(text);
    // YAML aliases are capped: a "billion laughs" spec must not expand at startup.
    return parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    throw new OpenApiSpecError(spec, `does not parse: ${((err as Error).message.split('\n')[0] ?? '').slice(0, 200)}`);
  }
}
