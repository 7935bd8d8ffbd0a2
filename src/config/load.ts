import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { gatewaySchema, type GatewayConfig } from './schema.js';
import { envOverlay, INTERPOLATION_DEFAULTS, type Env } from './env.js';
import { interpolate, type InterpolationProblem } from './interpolate.js';

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Every problem found in a config, reported together. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(`invalid config ${source}:\n${problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepMerge(base: unknown, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(over)) out[k] = isPlainObject(v) ? deepMerge(out[k], v) : v;
  return out;
}

/** Parses YAML text + environment into a validated config, or throws ConfigError with every problem. */
export function parseConfig(text: string, env: Env, source = 'config'): GatewayConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true }) ?? {};
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] ?? err.message : String(err);
    throw new ConfigError(source, [{ path: '', message: `YAML: ${msg}` }]);
  }
  if (!isPlainObject(doc)) throw new ConfigError(source, [{ path: '', message: 'the file must hold a mapping' }]);

  const problems: InterpolationProblem[] = [];
  // An empty variable counts as unset here, as it does for the environment overlay.
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const interpolated = interpolate(doc, { ...INTERPOLATION_DEFAULTS, ...set }, problems);
  const { overlay, sources } = envOverlay(env);
  const merged = deepMerge(interpolated, overlay);

  const result = gatewaySchema.safeParse(merged);
  const all: ConfigProblem[] = [...problems];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
      const fromEnv = envSourceOf(sources, issue.path);
      const routeName = routeNameAt(merged, issue.path);
      all.push({ path: `${path}${routeName ? ` (route ${routeName})` : ''}${fromEnv ? ` (from ${fromEnv})` : ''}`, message: issue.message });
    }
  }
  if (all.length > 0 || !result.success) throw new ConfigError(source, all);
  return result.data;
}

/** The variable that set this path or one of its parents (`stores.redisSentinels[0]` came from REDIS_SENTINELS). */
function envSourceOf(sources: ReadonlyMap<string, string>, path: readonly PropertyKey[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const hit = sources.get(path.slice(0, n).map(String).join('.'));
    if (hit) return hit;
  }
  return undefined;
}

function routeNameAt(doc: Record<string, unknown>, path: readonly PropertyKey[]): string | undefined {
  if (path[0] !== 'routes' || typeof path[1] !== 'number') return undefined;
  const routes = doc.routes;
  const route = Array.isArray(routes) ? routes[path[1]] : undefined;
  return isPlainObject(route) && typeof route.name === 'string' ? route.name : undefined;
}

export function loadConfigFile(file: string, env: Env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, env, file);
}
