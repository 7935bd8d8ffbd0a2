import type { IncomingHttpHeaders } from 'node:http';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { GatewayError } from '../errors.js';
import { createAjv, type Ajv } from './ajv.js';
import { OpenApiSpecError } from './errors.js';
import { parseJsonBody } from './json-body.js';
import { PathMatcher } from './path-match.js';
import { findUnsafePattern } from './regex-safety.js';
import { escapeToken, localRefTokens, resolveTokens } from './pointer.js';
import { SchemaNormalizer, type OpenApiVersion } from './normalize.js';

/** The operations of one OpenAPI 3.0 or 3.1 document, each with its validators compiled once. */

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
/** OpenAPI: header parameters of these names "SHALL be ignored" (the spec says them elsewhere). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);
/** A pointer names a place the client chose (a property name can be long): the answer keeps this much. */
const MAX_POINTER_LENGTH = 256;
/** A media type as RFC 9110 writes one: only such a type is named in the log. */
const TOKEN_TYPE = /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+*-]{1,64}$/;
/** `$ref` hops from one reference object to what it names (parameters, request bodies, path items). */
const MAX_REF_HOPS = 32;

export interface ApiRequest {
  readonly method: string;
  /** The path the upstream is asked for, normalized (percent-escapes kept as the gateway keeps them). */
  readonly path: string;
  /** The raw query, without `?`. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

type Location = 'path' | 'query' | 'header';

interface Parameter {
  readonly name: string;
  readonly in: Location;
  /** A list: several values (repeated keys, or comma-separated when not exploded). */
  readonly list: boolean;
  readonly explode: boolean;
  /** Given as `content`: the value is JSON. */
  readonly json: boolean;
}

interface Media {
  readonly validate: ValidateFunction | undefined;
}

export interface Operation {
  readonly method: string;
  readonly template: string;
  readonly parameters: readonly Parameter[];
  readonly validateParameters: ValidateFunction | undefined;
  readonly body: { readonly required: boolean; readonly media: ReadonlyMap<string, Media> } | undefined;
}

interface PathEntry {
  readonly template: string;
  readonly operations: ReadonlyMap<string, Operation>;
  readonly allow: string;
}

/** What the request's body needs: nothing (none, or a type not read as JSON), or parsing and validating. */
export type BodyPlan = { readonly json: false } | { readonly json: true; readonly media: Media; readonly operation: Operation };

export interface Matched {
  readonly operation: Operation;
  readonly pathParams: Readonly<Record<string, string>>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `application/json; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === '' ? undefined : type;
}

export function isJsonType(type: string): boolean {
  return type === 'application/json' || type.endsWith('+json');
}

function pointerOf(prefix: string, err: ErrorObject): string {
  const params = err.params as Record<string, unknown>;
  const extra =
    err.keyword === 'required' && typeof params.missingProperty === 'string'
      ? `/${escapeToken(params.missingProperty)}`
      : err.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string'
        ? `/${escapeToken(params.additionalProperty)}`
        : '';
  const pointer = `${prefix}${err.instancePath}${extra}`;
  return pointer.length > MAX_POINTER_LENGTH ? pointer.slice(0, MAX_POINTER_LENGTH) : pointer;
}

function violation(code: 'API_PARAMETER_INVALID' | 'API_BODY_INVALID', op: Operation, prefix: string, err: ErrorObject | undefined): GatewayError {
  const pointer = err ? pointerOf(prefix, err) : prefix || '/';
  // The keyword and the place, never the value: the detail goes to the security log.
  return new GatewayError(code, `${op.method} ${op.template}: ${pointer} fails ${err?.keyword ?? 'validation'}`, {}, pointer);
}

export class ApiSpec {
  private constructor(
    readonly source: string,
    readonly version: OpenApiVersion,
    /** The path of the spec's first server URL (`/api` of `https://x/api`), '' for none. */
    readonly basePath: string,
    private readonly paths: PathMatcher<PathEntry>,
    readonly operationCount: number,
  ) {}

  /** Compiles every operation of `doc`; throws OpenApiSpecError naming what is wrong. */
  static compile(doc: unknown, source: string): ApiSpec {
    return new SpecCompiler(doc, source).compile();
  }

  /** @internal for SpecCompiler */
  static of(source: string, version: OpenApiVersion, basePath: string, paths: PathMatcher<PathEntry>, count: number): ApiSpec {
    return new ApiSpec(source, version, basePath, paths, count);
  }

  /** The operation the request names, or API_PATH_UNKNOWN (404) / API_METHOD_NOT_ALLOWED (405 with Allow). */
  match(method: string, path: string): Matched {
    let specPath = path;
    if (this.basePath !== '') {
      if (path !== this.basePath && !path.startsWith(`${this.basePath}/`)) throw new GatewayError('API_PATH_UNKNOWN', `${path} is outside the spec's server path ${this.basePath}`);
      specPath = path.slice(this.basePath.length) || '/';
    }
    const hit = this.paths.match(specPath);
    if (!hit) throw new GatewayError('API_PATH_UNKNOWN', `no path of the spec matches ${specPath}`);
    const ops = hit.entry.operations;
    // HEAD only where the spec lists it: FastAPI (0.92 here) answers 405 to HEAD on a GET route,
    // unlike Starlette's own Route, and a spec says what its application serves.
    const operation = ops.get(method);
    if (!operation) throw new GatewayError('API_METHOD_NOT_ALLOWED', `${method} on ${hit.entry.template}`, { allow: hit.entry.allow });
    return { operation, pathParams: hit.params };
  }

  /** Path, query and header parameters against their schemas, strings coerced to the declared types. */
  checkParameters(matched: Matched, req: ApiRequest): void {
    const op = matched.operation;
    if (!op.validateParameters) return;
    // Null prototypes: a parameter named `__proto__` in a spec stays a property.
    const data: Record<Location, Record<string, unknown>> = { path: Object.create(null), query: Object.create(null), header: Object.create(null) };
    let query: URLSearchParams | undefined;
    for (const p of op.parameters) {
      let values: string[];
      if (p.in === 'path') {
        const raw = matched.pathParams[p.name];
        if (raw === undefined) continue;
        try {
          values = [decodeURIComponent(raw)];
        } catch {
          throw new GatewayError('API_PARAMETER_INVALID', `${op.method} ${op.template}: /path/${p.name} is not valid percent-encoding`, {}, `/path/${escapeToken(p.name)}`);
        }
      } else if (p.in === 'query') {
        query ??= new URLSearchParams(req.query);
        values = query.getAll(p.name);
      } else {
        const raw = req.headers[p.name];
        values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      }
      if (values.length === 0) continue;
      // Not exploded (and path and header lists, always `simple`): one value, comma-separated.
      if (p.list && (!p.explode || p.in !== 'query') && values.length === 1) values = (values[0] as string).split(',').map((v) => (p.in === 'header' ? v.trim() : v));
      let value: unknown = p.list || values.length > 1 ? values : values[0];
      if (p.json) {
        try {
          value = JSON.parse(values[0] as string);
        } catch {
          throw new GatewayError('API_PARAMETER_INVALID', `${op.method} ${op.template}: /${p.in}/${p.name} is not JSON`, {}, `/${p.in}/${escapeToken(p.name)}`);
        }
      }
      data[p.in][p.name] = value;
    }
    if (!op.validateParameters(data)) throw violation('API_PARAMETER_INVALID', op, '', op.validateParameters.errors?.[0]);
  }

  /**
   * The body's content type against the operation's: none declared and a body sent, or a type
   * it does not list, is API_CONTENT_TYPE_UNSUPPORTED (415); a required body missing is
   * API_BODY_INVALID. JSON bodies are then parsed and validated by checkBody.
   */
  bodyPlan(matched: Matched, contentType: string | undefined, hasBody: boolean): BodyPlan {
    const op = matched.operation;
    if (!hasBody) {
      if (op.body?.required) throw new GatewayError('API_BODY_INVALID', `${op.method} ${op.template}: the required body is missing`, {}, '/body');
      return { json: false };
    }
    if (!op.body) throw new GatewayError('API_CONTENT_TYPE_UNSUPPORTED', `${op.method} ${op.template} takes no body`);
    const type = mediaType(contentType);
    const slash = type?.indexOf('/') ?? -1;
    const media = type === undefined ? undefined : (op.body.media.get(type) ?? (slash > 0 ? op.body.media.get(`${type.slice(0, slash)}/*`) : undefined) ?? op.body.media.get('*/*'));
    if (!type || !media) {
      const named = type === undefined ? 'a body without Content-Type' : TOKEN_TYPE.test(type) ? type : 'a malformed Content-Type';
      throw new GatewayError('API_CONTENT_TYPE_UNSUPPORTED', `${op.method} ${op.template} does not take ${named}`);
    }
    return isJsonType(type) ? { json: true, media, operation: op } : { json: false };
  }

  /** A JSON body: well-formed (API_BODY_MALFORMED) and valid against its schema (API_BODY_INVALID). */
  checkBody(plan: BodyPlan, body: Buffer): void {
    if (!plan.json) return;
    const value = parseJsonBody(body);
    const validate = plan.media.validate;
    if (validate && !validate(value)) throw violation('API_BODY_INVALID', plan.operation, '/body', validate.errors?.[0]);
  }

  /** Every check of one request in order (the pipeline step runs them as the body arrives; tests and the bench call this). */
  validate(req: ApiRequest, body?: Buffer): void {
    const matched = this.match(req.method, req.path);
    this.checkParameters(matched, req);
    const ct = req.headers['content-type'];
    const plan = this.bodyPlan(matched, ct, body !== undefined && body.length > 0);
    if (body) this.checkBody(plan, body);
  }
}

class SpecCompiler {
  private readonly version: OpenApiVersion;
  private readonly schemas: SchemaNormalizer;
  private readonly pending: { compile: (params: Ajv, bodies: Ajv) => void }[] = [];

  constructor(
    private readonly doc: unknown,
    private readonly source: string,
  ) {
    if (!isObject(doc)) this.fail('not a JSON or YAML object');
    const v = typeof doc.openapi === 'string' ? /^3\.(0|1)\.\d+/.exec(doc.openapi) : null;
    if (!v) this.fail(`not an OpenAPI 3.0 or 3.1 document (openapi: ${JSON.stringify(doc.openapi ?? doc.swagger ?? null)})`);
    this.version = v[1] === '0' ? '3.0' : '3.1';
    this.schemas = new SchemaNormalizer(doc, this.version, source);
  }

  private fail(reason: string): never {
    throw new OpenApiSpecError(this.source, reason);
  }

  compile(): ApiSpec {
    const doc = this.doc as Record<string, unknown>;
    // Before anything compiles: ajv would build the regex, and a client could then stall the event loop with it.
    const unsafe = findUnsafePattern(doc);
    if (unsafe) {
      this.fail(`the pattern at ${unsafe.pointer} (${JSON.stringify(unsafe.pattern.slice(0, 200))}) can backtrack exponentially on crafted input: ${unsafe.reason}; rewrite it (e.g. make each repetition start with a character nothing else in it matches) or drop it from the spec`);
    }
    const paths = doc.paths ?? {};
    if (!isObject(paths)) this.fail('paths must be an object');
    const matcher = new PathMatcher<PathEntry>();
    const entries: { template: string; operations: Map<string, Operation> }[] = [];
    let count = 0;
    for (const [template, rawItem] of Object.entries(paths)) {
      if (!template.startsWith('/')) this.fail(`path ${JSON.stringify(template)} does not start with /`);
      const item = this.resolve(rawItem, `#/paths/${escapeToken(template)}`);
      const shared = this.parameterList(item.parameters, `${template} parameters`);
      const operations = new Map<string, Operation>();
      for (const method of METHODS) {
        if (item[method] === undefined) continue;
        const op = this.resolve(item[method], `${template} ${method}`);
        operations.set(method.toUpperCase(), this.operation(method.toUpperCase(), template, op, shared));
        count++;
      }
      entries.push({ template, operations });
    }
    // Every schema is known now: the loop check, then ajv gets the ref targets before any operation compiles.
    const defs = this.schemas.defsSchema();
    const params = createAjv(true);
    const bodies = createAjv(false);
    try {
      params.addSchema(defs);
      bodies.addSchema(defs);
      for (const p of this.pending) p.compile(params, bodies);
    } catch (err) {
      if (err instanceof OpenApiSpecError) throw err;
      this.fail(`a schema does not compile: ${(err as Error).message}`);
    }
    for (const e of entries) matcher.add(e.template, { template: e.template, operations: e.operations, allow: [...e.operations.keys()].join(', ') });
    return ApiSpec.of(this.source, this.version, this.basePath(doc.servers), matcher, count);
  }

  private basePath(servers: unknown): string {
    if (!Array.isArray(servers) || !isObject(servers[0]) || typeof servers[0].url !== 'string') return '';
    const server = servers[0];
    const variables = isObject(server.variables) ? server.variables : {};
    const url = (server.url as string).replace(/\{([^{}]+)\}/g, (_m, name: string) => {
      const v = variables[name];
      return isObject(v) && typeof v.default === 'string' ? v.default : '';
    });
    let path: string;
    try {
      path = new URL(url, 'http://relative.invalid').pathname;
    } catch {
      this.fail(`servers[0].url ${JSON.stringify(url)} is not a URL`);
    }
    return path.replace(/\/+$/, '');
  }

  /** A Reference Object followed to what it names (parameters, request bodies, path items). */
  private resolve(value: unknown, where: string): Record<string, unknown> {
    const seen: string[] = [];
    let at = value;
    while (isObject(at) && typeof at.$ref === 'string') {
      const ref = at.$ref;
      if (seen.includes(ref)) this.fail(`${where}: $ref loop: ${[...seen, ref].join(' → ')}`);
      if (seen.length >= MAX_REF_HOPS) this.fail(`${where}: more than ${MAX_REF_HOPS} $ref hops`);
      seen.push(ref);
      const tokens = localRefTokens(ref);
      if (!tokens) this.fail(`${where}: only local $refs (#/...) are supported, not ${JSON.stringify(ref.slice(0, 200))}`);
      at = resolveTokens(this.doc, tokens);
      if (at === undefined) this.fail(`${where}: $ref to nothing: ${ref}`);
    }
    if (!isObject(at)) this.fail(`${where}: not an object`);
    return at;
  }

  private parameterList(list: unknown, where: string): Record<string, unknown>[] {
    if (list === undefined) return [];
    if (!Array.isArray(list)) this.fail(`${where}: parameters must be a list`);
    return list.map((p, i) => this.resolve(p, `${where}[${i}]`));
  }

  /** The schema a parameter's value is checked against, and whether it is a list. */
  private isList(schema: unknown): boolean {
    const s = isObject(schema) && typeof schema.$ref === 'string' ? this.resolve(schema, 'parameter schema') : schema;
    if (!isObject(s)) return false;
    return s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'));
  }

  private operation(method: string, template: string, op: Record<string, unknown>, shared: Record<string, unknown>[]): Operation {
    const where = `${method} ${template}`;
    // Operation-level parameters override path-level ones of the same name and location.
    const byKey = new Map<string, Record<string, unknown>>();
    for (const p of [...shared, ...this.parameterList(op.parameters, `${where} parameters`)]) {
      if (typeof p.name !== 'string' || typeof p.in !== 'string') this.fail(`${where}: a parameter without name or in`);
      byKey.set(`${p.in}:${p.name}`, p);
    }
    const parameters: Parameter[] = [];
    // Maps, turned into objects by fromEntries: a parameter may be named `__proto__`.
    const groups: Record<Location, { properties: Map<string, unknown>; required: string[] }> = {
      path: { properties: new Map(), required: [] },
      query: { properties: new Map(), required: [] },
      header: { properties: new Map(), required: [] },
    };
    for (const p of byKey.values()) {
      const at = p.in as string;
      // Cookie parameters are not checked (the gateway's own cookies are taken out before forwarding).
      if (at !== 'path' && at !== 'query' && at !== 'header') continue;
      const name = at === 'header' ? (p.name as string).toLowerCase() : (p.name as string);
      if (at === 'header' && IGNORED_HEADERS.has(name)) continue;
      const content = isObject(p.content) ? Object.values(p.content)[0] : undefined;
      const rawSchema = p.schema ?? (isObject(content) ? content.schema : undefined) ?? {};
      const list = this.isList(rawSchema);
      const style = typeof p.style === 'string' ? p.style : at === 'query' ? 'form' : 'simple';
      parameters.push({ name, in: at, list, explode: typeof p.explode === 'boolean' ? p.explode : style === 'form', json: p.schema === undefined && content !== undefined });
      groups[at].properties.set(name, this.schemas.schema(rawSchema, `${where} parameter ${name}`));
      if (p.required === true || at === 'path') groups[at].required.push(name);
    }
    const paramsSchema = {
      type: 'object',
      properties: Object.fromEntries(Object.entries(groups).map(([k, g]) => [k, { type: 'object', properties: Object.fromEntries(g.properties), required: g.required }])),
    };
    const operation: { -readonly [K in keyof Operation]: Operation[K] } = { method, template, parameters, validateParameters: undefined, body: undefined };
    if (parameters.length > 0) this.pending.push({ compile: (ajv) => (operation.validateParameters = ajv.compile(paramsSchema)) });

    if (op.requestBody !== undefined) {
      const rb = this.resolve(op.requestBody, `${where} requestBody`);
      if (!isObject(rb.content)) this.fail(`${where}: requestBody without content`);
      const media = new Map<string, Media>();
      for (const [type, m] of Object.entries(rb.content)) {
        const key = mediaType(type);
        if (!key) continue;
        const schema = isObject(m) && m.schema !== undefined ? this.schemas.schema(m.schema, `${where} body ${key}`) : undefined;
        const entry: { validate: ValidateFunction | undefined } = { validate: undefined };
        if (schema !== undefined) this.pending.push({ compile: (_p, bodies) => (entry.validate = bodies.compile(schema as object)) });
        media.set(key, entry);
      }
      operation.body = { required: rb.required === true, media };
    }
    return operation;
  }
}
