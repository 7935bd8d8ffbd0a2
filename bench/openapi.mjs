#!/usr/bin/env node
// OpenAPI validation's cost per request (issue 16, item 3; target ≤ 20 µs for a typical CRM
// body), measured in-process: the compiled validator of src/openapi/spec.ts checking a POST of
// a 15-field contact (operation match, a required header, content type, the depth scan,
// JSON.parse and the schema) against the spec FastAPI generates for it (test/helpers/apps/
// crm_api.py's ContactRecord, OpenAPI 3.0.2). No network: what the step adds to a request.
//
// `node bench/openapi.mjs [--json] [--dist <dir>]` (dist/ by default; `npm run bench` builds it
// and runs this as its `openapi` row). Environment: OPENAPI_BENCH_ROUNDS (7),
// OPENAPI_BENCH_ITERATIONS (50000 per round).
import { join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const distArg = args.indexOf('--dist');
const DIST = resolve(distArg >= 0 ? args[distArg + 1] : join(fileURLToPath(new URL('..', import.meta.url)), 'dist'));
const ROUNDS = Number(process.env.OPENAPI_BENCH_ROUNDS ?? 7);
const ITERATIONS = Number(process.env.OPENAPI_BENCH_ITERATIONS ?? 50_000);
export const TARGET_US = 20;

const { ApiSpec } = await import(pathToFileURL(join(DIST, 'openapi', 'spec.js')).href);

/** What FastAPI 0.92 / pydantic 1.10 publish for crm_api.py's contact records (trimmed of responses). */
const SPEC = {
  openapi: '3.0.2',
  info: { title: 'CRM API (test bed)', version: '0.1.0' },
  paths: {
    '/v1/companies/': { get: {}, post: {} },
    '/v1/companies/{company_id}': { get: { parameters: [{ required: true, schema: { title: 'Company Id', type: 'integer' }, name: 'company_id', in: 'path' }] } },
    '/v1/contact-records/': {
      post: {
        parameters: [{ required: true, schema: { title: 'X-Tenant', pattern: '^[a-z]{2,16}$', type: 'string' }, name: 'x-tenant', in: 'header' }],
        requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/ContactRecord' } } }, required: true },
      },
    },
    '/v1/contact-records/{record_id}': {
      get: {
        parameters: [
          { required: true, schema: { title: 'Record Id', minimum: 1.0, type: 'integer' }, name: 'record_id', in: 'path' },
          { required: false, schema: { title: 'View', enum: ['short', 'full'], type: 'string', default: 'short' }, name: 'view', in: 'query' },
          { required: false, schema: { title: 'Limit', maximum: 100.0, minimum: 1.0, type: 'integer', default: 10 }, name: 'limit', in: 'query' },
        ],
      },
    },
  },
  components: {
    schemas: {
      ContactRecord: {
        title: 'ContactRecord',
        required: ['first_name', 'last_name', 'email', 'owner_id'],
        type: 'object',
        properties: {
          first_name: { title: 'First Name', maxLength: 80, minLength: 1, type: 'string' },
          last_name: { title: 'Last Name', maxLength: 80, minLength: 1, type: 'string' },
          email: { title: 'Email', maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$', type: 'string' },
          phone: { title: 'Phone', maxLength: 32, type: 'string' },
          company: { title: 'Company', maxLength: 120, type: 'string' },
          job_title: { title: 'Job Title', type: 'string' },
          status: { title: 'Status', enum: ['lead', 'prospect', 'customer', 'lost'], type: 'string', default: 'lead' },
          source: { title: 'Source', type: 'string' },
          owner_id: { title: 'Owner Id', minimum: 1.0, type: 'integer' },
          score: { title: 'Score', maximum: 100.0, minimum: 0.0, type: 'number', default: 0 },
          tags: { title: 'Tags', maxItems: 20, type: 'array', items: { type: 'string' } },
          newsletter: { title: 'Newsletter', type: 'boolean', default: false },
          city: { title: 'City', type: 'string' },
          country: { title: 'Country', maxLength: 2, minLength: 2, type: 'string', default: 'ES' },
          notes: { title: 'Notes', maxLength: 2000, type: 'string' },
        },
      },
    },
  },
};

const CONTACT = {
  first_name: 'Lucía', last_name: 'Fernández', email: 'lucia@example.es', phone: '+34 600 000 000', company: 'Acme SL', job_title: 'CFO', status: 'prospect',
  source: 'web', owner_id: 7, score: 71.5, tags: ['vip', 'madrid'], newsletter: true, city: 'Madrid', country: 'ES', notes: 'Llamar el lunes por la mañana',
};

const spec = ApiSpec.compile(SPEC, 'bench');
const body = Buffer.from(JSON.stringify(CONTACT));
const request = { method: 'POST', path: '/v1/contact-records/', query: '', headers: { host: 'api.example.com', 'content-type': 'application/json', 'content-length': String(body.length), 'x-tenant': 'acme', accept: 'application/json', 'user-agent': 'bench' } };
const invalid = Buffer.from(JSON.stringify({ ...CONTACT, status: 'vip' }));

function run(iterations, fn) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - started) / 1000 / iterations;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function measure(fn) {
  run(Math.min(ITERATIONS, 20_000), fn); // warm-up: ajv's and V8's code optimized
  const rounds = Array.from({ length: ROUNDS }, () => run(ITERATIONS, fn));
  return { medianUs: Math.round(median(rounds) * 100) / 100, minUs: Math.round(Math.min(...rounds) * 100) / 100, maxUs: Math.round(Math.max(...rounds) * 100) / 100 };
}

const valid = measure(() => spec.validate(request, body));
const refused = measure(() => {
  try {
    spec.validate(request, invalid);
  } catch {
    // the refusal is what is measured
  }
});
const result = { bodyBytes: body.length, fields: Object.keys(CONTACT).length, rounds: ROUNDS, iterations: ITERATIONS, valid, refused, targetUs: TARGET_US, met: valid.medianUs <= TARGET_US };

if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    `OpenAPI validation, POST of a ${result.fields}-field contact (${result.bodyBytes} bytes), median of ${ROUNDS} rounds of ${ITERATIONS}:\n` +
      `  valid:   ${valid.medianUs} µs/request (rounds ${valid.minUs}–${valid.maxUs})\n` +
      `  refused: ${refused.medianUs} µs/request (rounds ${refused.minUs}–${refused.maxUs})\n` +
      `  target ≤ ${TARGET_US} µs: ${result.met ? 'MET' : 'NOT MET'}\n`,
  );
}
