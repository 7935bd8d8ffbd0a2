#!/usr/bin/env node
// The identity assertion's cost per request (issue 14, item 5), measured in-process with the
// gateway's own signer (src/auth/assertion/signer.ts) and a real P-256 key: what the proxy's
// header hygiene adds to a forwarded request. No network.
//   hit:     the usual case, the assertion cached for this token and route (a busy session);
//   miss:    a fresh ES256 signature (a new token, a new route, or every ~50 s per pair);
//   headers: buildUpstreamHeaders with a cached assertion vs without one (the whole step).
//
// `node bench/assertion.mjs [--json] [--dist <dir>]` (dist/ by default; `npm run build` first),
// or on the sources: `node --import tsx bench/assertion.mjs --dist src`.
// Environment: ASSERTION_BENCH_ROUNDS (7), ASSERTION_BENCH_ITERATIONS (20000 per round).
import { join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';

const args = process.argv.slice(2);
const distArg = args.indexOf('--dist');
const DIST = resolve(distArg >= 0 ? args[distArg + 1] : join(fileURLToPath(new URL('..', import.meta.url)), 'dist'));
const ROUNDS = Number(process.env.ASSERTION_BENCH_ROUNDS ?? 7);
const ITERATIONS = Number(process.env.ASSERTION_BENCH_ITERATIONS ?? 20_000);

const load = (path) => import(pathToFileURL(join(DIST, ...path.split('/'))).href);
const { AssertionSigner } = await load('auth/assertion/signer.js');
const { jwkThumbprint } = await load('auth/assertion/keys.js');
const { buildUpstreamHeaders } = await load('proxy/request-headers.js');

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = publicKey.export({ format: 'jwk' });
const key = { kid: jwkThumbprint(publicJwk), privateKey, publicJwk, activeFrom: 0, retireAfter: undefined };
const signer = new AssertionSigner('https://example.com', () => key);
const principal = { subject: 'ana', roles: ['staff', 'admin'], method: 'session', tokenId: 'tok-0123456789abcdef', expiresAt: Date.now() + 3_600_000, sessionId: 'sess-0123456789', factors: ['password', 'totp'] };
let n = 0;

const route = { name: 'nocodb', passCredentials: false, requestHeaders: undefined };
const ctx = {
  id: 'req-0123456789',
  secure: true,
  address: { client: { address: '203.0.113.7' }, peer: { address: '203.0.113.7' }, peerTrusted: false },
  req: { headers: { host: 'nocodb.example.com', 'user-agent': 'Mozilla/5.0', accept: 'text/html', 'accept-language': 'es-ES', cookie: 'nc=1', 'x-gateway-assertion': 'forged' } },
  principal,
};

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
  run(Math.min(ITERATIONS, 5_000), fn); // warm-up
  const rounds = Array.from({ length: ROUNDS }, () => run(ITERATIONS, fn));
  return { medianUs: Math.round(median(rounds) * 100) / 100, minUs: Math.round(Math.min(...rounds) * 100) / 100, maxUs: Math.round(Math.max(...rounds) * 100) / 100 };
}

const hit = measure(() => signer.sign(principal, 'nocodb'));
const miss = measure(() => signer.sign({ ...principal, tokenId: `tok-${n++}` }, 'nocodb'));
const headersWith = measure(() => buildUpstreamHeaders(ctx, route, false, signer.sign(principal, 'nocodb')));
const headersWithout = measure(() => buildUpstreamHeaders(ctx, route, false));
const token = signer.sign(principal, 'nocodb');
const result = { rounds: ROUNDS, iterations: ITERATIONS, headerBytes: token.length, hit, miss, headersWith, headersWithout };

if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    `Identity assertion (ES256, ${result.headerBytes}-byte header), median of ${ROUNDS} rounds of ${ITERATIONS}:\n` +
      `  cached (per token and route): ${hit.medianUs} µs/request (rounds ${hit.minUs}–${hit.maxUs})\n` +
      `  fresh signature:              ${miss.medianUs} µs/request (rounds ${miss.minUs}–${miss.maxUs})\n` +
      `  header hygiene with it:       ${headersWith.medianUs} µs/request, without: ${headersWithout.medianUs} µs/request\n`,
  );
}
