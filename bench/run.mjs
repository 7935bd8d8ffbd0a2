#!/usr/bin/env node
// `npm run bench`: what the gateway costs over a bare Node TLS proxy, measured in one run on
// this machine (loopback only, a few minutes). See bench/README.md and issue 13.
//
// In turn: a bare floor proxy (https + http-proxy + keep-alive agent), the runtime's limits (a
// bare https server answering by itself; https forwarding through an undici Pool), the gateway
// with its full pipeline (TLS, JWT, Redis rate limit, audit log), the gateway with each feature
// off, two cluster workers, nginx and Caddy (when installed). Each row: 2 s warm-up, then 10 s
// of closed-loop load (wrk when installed, else autocannon), 32 connections. Then p99 latency
// at half the gateway's own peak rate (paced client, gateway and floor), the base RSS of a
// fresh gateway and RSS with 1,000 idle TLS connections; last, issue 13's targets, met or not.
//
// Environment (all optional): BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (32),
// BENCH_ONLY (comma-separated ids: floor always runs; rows floor, bare, undici, full, no-jwt,
// no-ratelimit, no-audit, core, workers, nginx, nginx-edge, caddy; openapi (bench/openapi.mjs,
// in-process validation cost per request); paced and hold need full;
// hold and base measure a fresh gateway), BENCH_PROFILE=1 (--cpu-prof on the full-pipeline row;
// prints the top self-time frames; BENCH_PROFILE=<row id> profiles that gateway row instead),
// BENCH_GATEWAY_NODE_ARGS (node flags for every gateway process, e.g. --max-semi-space-size=32), BENCH_TOOL=autocannon (even when wrk is installed).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, currentRss, freePort, listeners, machineCpu, peakRss, start, waitForPort, which } from './procs.mjs';
import { loadTool } from './load.mjs';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = join(REPO, 'bench');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
const PROFILE_ROW = process.env.BENCH_PROFILE === '1' ? 'full' : process.env.BENCH_PROFILE || undefined;
const PROFILE = PROFILE_ROW === 'full';
const HOLD_CONNECTIONS = 1_000;
/** Busier than this before any load, and the run says its figures are not comparable. */
const BUSY_BEFORE_WARN_PCT = 10;
/** After the fresh gateway's first answer, before its RSS is read: the request's audit line written. */
const BASE_SETTLE_MS = 500;
const MB = 1024 * 1024;

const log = (line) => process.stderr.write(`${line}\n`);

/** dist/ from this source tree: built unless every compiled file is newer than every source file. */
function ensureBuilt() {
  const newest = (dir, ext) => {
    let t = 0;
    for (const name of readdirSync(dir, { recursive: true })) {
      if (!String(name).endsWith(ext)) continue;
      t = Math.max(t, statSync(join(dir, String(name))).mtimeMs);
    }
    return t;
  };
  const main = join(REPO, 'dist', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newest(join(REPO, 'src'), '.ts')) return;
  log('building dist/ (npm run build) ...');
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
}

function machine(tool) {
  const sh = (cmd) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout.trim();
  return {
    nproc: Number(sh('nproc')) || cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memTotal: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    memFree: `${(freemem() / 1024 ** 3).toFixed(1)} GiB`,
    freeH: sh('free -h'),
    node: process.version,
    kernel: sh('uname -r'),
    loadTool: tool,
    nginx: which('nginx') ? sh('nginx -v 2>&1').replace(/^nginx version: /, '') : undefined,
    caddy: which('caddy') ? sh('caddy version').split(' ')[0] : undefined,
    wrk: which('wrk') ? sh('wrk -v 2>&1 | head -1') : undefined,
  };
}

/** One HTTPS GET; resolves with the status (certificate not checked: loopback, our own cert). */
function probe(port, headers = {}) {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/bench/probe', headers, rejectUnauthorized: false, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** The bench stays on loopback: a server that listens anywhere else is stopped before any load. */
function assertLoopback(name, pid) {
  const open = listeners(pid).filter((l) => !l.loopback);
  if (open.length > 0) throw new Error(`${name} listens on ${open.map((l) => `${l.host}:${l.port}`).join(', ')}, not only on loopback: not measured`);
}

async function until200(port, headers, server, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    if (server.exited) break;
    last = await probe(port, headers);
    if (last === 200) return;
    await sleep(200);
  }
  throw new Error(`${server.name}: no 200 within ${timeoutMs} ms (last status ${last})\n${server.output.slice(-3000)}`);
}

// -- the pieces ------------------------------------------------------------------------------

async function startNodeChild(name, script, env, nodeArgs = []) {
  const child = start(name, process.execPath, [...nodeArgs, script], { env: { PATH: process.env.PATH, HOME: process.env.HOME ?? tmpdir(), ...env }, cwd: REPO });
  await child.waitFor(/"ready":true/);
  const port = Number(/"port":(\d+)/.exec(child.output)?.[1]);
  return { child, port };
}

async function startRedis(work) {
  const bin = which('redis-server');
  if (!bin) {
    if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, note: `redis-server not installed: using REDIS_URL=${process.env.REDIS_URL}` };
    return { url: undefined, note: 'redis-server not installed and REDIS_URL unset: rate limits use the in-memory store; no workers row' };
  }
  const port = await freePort();
  const server = start('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work]);
  await waitForPort(port);
  return { url: `redis://127.0.0.1:${port}`, server, note: `own redis-server on 127.0.0.1:${port}` };
}

/** The route under test: shaped like crm-api in config/gateway.yaml, with a limit never reached. */
function routeYaml(upstreamPort, { jwt = true, rateLimit = true } = {}) {
  const lines = ['routes:', '  - name: bench-api', '    path: /', `    upstream: http://127.0.0.1:${upstreamPort}`];
  if (jwt) lines.push('    auth: jwt', '    roles: [api, admin]');
  else lines.push('    auth: none');
  // `by: user` needs an authenticated route; without JWT the limit counts by address.
  if (rateLimit) lines.push(`    rateLimit: { window: 1m, max: 1000000000, by: ${jwt ? 'user' : 'ip'} }`);
  lines.push('    cors: { origins: ["localhost"] }', '    timeout: 60s', '    maxBody: 1mb', '');
  return lines.join('\n');
}

class Bench {
  constructor() {
    this.work = mkdtempSync(join(tmpdir(), 'crm-gw-bench-'));
    this.rows = [];
    this.notes = [];
    this.extra = {};
  }

  want(id) {
    // The floor always runs: every other figure is read against it.
    return !ONLY || id === 'floor' || ONLY.has(id);
  }

  async setup() {
    const { ensureDevCertificate } = await import(join(REPO, 'dist', 'tls', 'certificates.js'));
    this.cert = join(this.work, 'gateway.crt');
    this.key = join(this.work, 'gateway.key');
    await ensureDevCertificate(this.cert, this.key, 'bench.local');
    this.secret = randomBytes(32).toString('hex');
    this.redis = await startRedis(this.work);
    this.notes.push(this.redis.note);
    const up = await startNodeChild('upstream', join(BENCH, 'upstream.mjs'), {});
    assertLoopback('upstream', up.child.pid);
    if (this.redis.server) assertLoopback('redis-server', this.redis.server.pid);
    this.upstream = up;
    this.dataDir = join(this.work, 'data');
    // A registered API client and its token, made the way an operator does.
    const env = this.gatewayEnv({ configFile: this.writeConfig('cli', routeYaml(up.port)), logDir: join(this.work, 'cli-logs') });
    const r = spawnSync(process.execPath, [join(REPO, 'bin', 'crm-gateway.js'), 'tokens', 'issue', '--client', 'bench', '--roles', 'api', '--ttl', '1h'], { cwd: REPO, env, encoding: 'utf8' });
    const token = r.stdout.split('\n')[0]?.trim();
    if (r.status !== 0 || !token) throw new Error(`crm-gateway tokens issue failed (${r.status}):\n${r.stderr}`);
    this.auth = { authorization: `Bearer ${token}` };
  }

  writeConfig(name, yaml) {
    const file = join(this.work, `${name}.yaml`);
    writeFileSync(file, yaml);
    return file;
  }

  gatewayEnv({ configFile, logDir, workers = 1, ports = {} }) {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? this.work,
      GATEWAY_ENV: 'development',
      GATEWAY_CONFIG: configFile,
      LISTEN_ADDRESS: '127.0.0.1',
      HTTPS_PORT: String(ports.https ?? 0),
      HTTP_PORT: String(ports.http ?? 0),
      ADMIN_PORT: String(ports.admin ?? 0),
      TLS_CERT_FILE: this.cert,
      TLS_KEY_FILE: this.key,
      API_SECRET_KEY: this.secret,
      DATA_DIR: this.dataDir,
      LOG_DIR: logDir,
      LOG_LEVEL: 'info',
      LOG_HASH_KEY: randomBytes(32).toString('hex'),
      GATEWAY_WORKERS: String(workers),
      ...(this.redis.url ? { REDIS_URL: this.redis.url } : {}),
    };
  }

  async startGateway(id, { jwt = true, rateLimit = true, audit = true, workers = 1, nodeArgs = [], env = {} } = {}) {
    const https = await freePort();
    const configFile = this.writeConfig(id, routeYaml(this.upstream.port, { jwt, rateLimit }));
    const logDir = join(this.work, `logs-${id}`);
    const script = audit ? join(REPO, 'dist', 'main.js') : join(BENCH, 'gateway-noaudit.mjs');
    if (PROFILE_ROW === id && id !== 'full') {
      this.profileDir = join(BENCH, 'results', `profile-${id}-${stamp()}`);
      mkdirSync(this.profileDir, { recursive: true });
      nodeArgs = [...nodeArgs, '--cpu-prof', `--cpu-prof-dir=${this.profileDir}`];
    }
    if (process.env.BENCH_GATEWAY_NODE_ARGS) nodeArgs = [...process.env.BENCH_GATEWAY_NODE_ARGS.split(' '), ...nodeArgs];
    const server = start(id, process.execPath, [...nodeArgs, script], {
      env: { ...this.gatewayEnv({ configFile, logDir, workers, ports: { https, http: await freePort(), admin: await freePort() } }), ...env },
      cwd: REPO,
    });
    // Every worker says so once it listens.
    const listening = new RegExp(Array(workers).fill('gateway listening').join('[^]*'));
    await server.waitFor(listening, 60_000);
    await until200(https, jwt ? this.auth : {}, server);
    return { server, port: https, headers: jwt ? this.auth : {}, logDir };
  }

  /** Warm-up, then the measured run; CPU and peak RSS of the server's whole process tree. */
  async measure(id, label, target, opts = {}) {
    const { port, headers = {} } = target;
    const pids = target.pids ?? [target.pid];
    const cpuOf = () => pids.reduce((n, p) => n + cpuSeconds(p), 0);
    const url = `https://127.0.0.1:${port}/bench/item?id=42`;
    log(`- ${label}: ${WARMUP}s warm-up + ${SECONDS}s with ${this.tool.name}, ${CONNECTIONS} connections ...`);
    await this.tool.run({ url, headers, connections: CONNECTIONS, seconds: WARMUP });
    const cpu0 = cpuOf();
    const box0 = machineCpu();
    const r = await this.tool.run({ url, headers, connections: CONNECTIONS, seconds: SECONDS });
    const cpu = cpuOf() - cpu0;
    const box1 = machineCpu();
    const row = {
      id,
      label,
      rps: Math.round(r.rps),
      p50: round2(r.p50),
      p99: round2(r.p99),
      peakRssMB: round1(pids.reduce((n, p) => n + peakRss(p), 0) / MB),
      cpuUsPerReq: r.requests > 0 ? Math.round((cpu / r.requests) * 1e6) : undefined,
      // Cores the server under test kept busy, and how busy the whole machine was (load
      // generator, upstream and Redis included): at 100% nothing more can scale.
      serverCores: round2(cpu / SECONDS),
      machineBusyPct: Math.round(((box1.busy - box0.busy) / Math.max(1, box1.total - box0.total)) * 100),
      non2xx: r.non2xx,
      errors: r.errors,
      ...opts,
    };
    log(`  ${row.rps} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, peak RSS ${row.peakRssMB} MB, ${row.cpuUsPerReq} µs CPU/req, ${row.serverCores} cores, machine ${row.machineBusyPct}% busy${row.non2xx || row.errors ? `, ${row.non2xx} non-2xx, ${row.errors} errors` : ''}`);
    this.rows.push(row);
    return row;
  }

  async row(id, label, startFn, after) {
    if (!this.want(id)) return undefined;
    let target;
    try {
      target = await startFn();
      for (const pid of target.pids ?? [target.pid]) assertLoopback(label, pid);
      const row = await this.measure(id, label, target);
      if (after) await after(target, row);
      return row;
    } catch (err) {
      this.notes.push(`${label}: not measured: ${err.message.split('\n')[0]}`);
      log(`  ${label}: FAILED: ${err.message}`);
      return undefined;
    } finally {
      await target?.stop?.();
    }
  }

  /** A bench/*.mjs server in its own process, as a row's target. */
  async nodeRow(name, script, env) {
    const s = await startNodeChild(name, join(BENCH, script), env);
    return { port: s.port, pid: s.child.pid, child: s.child, stop: () => s.child.stop() };
  }

  gatewayTarget(g) {
    return { port: g.port, headers: g.headers, pid: g.server.pid, gateway: g, stop: () => g.server.stop() };
  }

  /** Paced load at `rate` req/s, latency from the scheduled send time. */
  async paced(label, port, headers, rate) {
    const client = start(`paced ${label}`, process.execPath, [join(BENCH, 'clients.mjs'), 'paced', JSON.stringify({ port, path: '/bench/item?id=42', headers, rate, connections: CONNECTIONS, seconds: SECONDS, warmup: WARMUP })]);
    await client.waitFor(/"p99"/, (SECONDS + 30) * 1000);
    const r = JSON.parse(client.output.trim().split('\n').pop());
    log(`  paced ${label} at ${rate} req/s: p50 ${r.p50} ms, p99 ${r.p99} ms (${r.requests} requests, ${r.non2xx} non-2xx, ${r.errors} errors)`);
    return r;
  }

  /** RSS of the server tree with HOLD_CONNECTIONS idle keep-alive TLS connections, each after one request. */
  async holdRss(label, port, headers, pid) {
    const before = currentRss(pid);
    const client = start(`hold ${label}`, process.execPath, [join(BENCH, 'clients.mjs'), 'hold', JSON.stringify({ port, path: '/bench/item?id=42', headers, count: HOLD_CONNECTIONS })]);
    await client.waitFor(/"open":\d+/, 120_000);
    const rss = currentRss(pid);
    const info = JSON.parse(/\{"open".*\}/.exec(client.output)[0]);
    await client.stop();
    const r = { label, connections: info.open, failed: info.failed, statuses: info.statuses, rssBeforeMB: round1(before / MB), rssMB: round1(rss / MB) };
    log(`  ${label}: ${r.rssMB} MB RSS with ${r.connections} open TLS connections (${r.rssBeforeMB} MB before)`);
    return r;
  }

  async run() {
    ensureBuilt();
    const wrk = process.env.BENCH_TOOL === 'autocannon' ? undefined : which('wrk');
    this.tool = loadTool(wrk);
    if (!wrk) this.notes.push('wrk not installed: load from autocannon, which runs in Node and takes more of the shared CPU than wrk would');
    this.machine = machine(this.tool.name);
    // How busy the machine is before the bench puts any load on it: other work on these cores
    // moves every figure, and the paced p99 most.
    const idle0 = machineCpu();
    await sleep(1_000);
    const idle1 = machineCpu();
    this.machine.busyBeforePct = Math.round(((idle1.busy - idle0.busy) / Math.max(1, idle1.total - idle0.total)) * 100);
    if (this.machine.busyBeforePct > BUSY_BEFORE_WARN_PCT) this.notes.push(`the machine was ${this.machine.busyBeforePct}% busy before the bench started: other work shares these cores, so these figures are not comparable with an idle run`);
    log(`crm-gateway benchmark: ${this.machine.nproc} CPUs (${this.machine.cpu}), node ${this.machine.node}, load from ${this.tool.name}, machine ${this.machine.busyBeforePct}% busy before the first row`);
    await this.setup();
    const up = this.upstream.port;
    const tlsEnv = { TLS_CERT_FILE: this.cert, TLS_KEY_FILE: this.key, UPSTREAM_URL: `http://127.0.0.1:${up}` };

    const floor = await this.row('floor', 'floor: https + http-proxy + keep-alive agent', () => this.nodeRow('floor', 'floor.mjs', tlsEnv));
    if (!floor) throw new Error('the floor could not be measured; nothing to compare with');
    // The physical limits of this runtime on this machine: no Node proxy serves more than `bare`,
    // and `undici` is what forwarding alone costs with the fastest client Node has.
    await this.row('bare', 'bare: https server answering by itself (no proxying)', () => this.nodeRow('bare', 'upstream.mjs', { TLS_CERT_FILE: this.cert, TLS_KEY_FILE: this.key }));
    await this.row('undici', 'undici: https + undici Pool (keep-alive, streamed)', () => this.nodeRow('undici', 'undici.mjs', tlsEnv));

    await this.row('full', 'gateway: full pipeline (TLS, JWT, Redis limit, audit log)', async () => {
      const profileDir = join(BENCH, 'results', `profile-${stamp()}`);
      if (PROFILE) mkdirSync(profileDir, { recursive: true });
      const g = await this.startGateway('full', { nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] });
      return { ...this.gatewayTarget(g), profileDir };
    }, async (t, row) => {
      const logged = countLines(t.gateway.logDir, 'access');
      row.accessLines = logged;
      // While this gateway is up: latency at half the gateway's own peak (a rate both it and the
      // floor can carry, so the difference is what the gateway adds, not a queue), and memory at
      // 1,000 connections after the load.
      this.extra.pacedOwnRate = Math.max(1, Math.round(row.rps / 2));
      if (this.want('paced') || this.want('hold')) {
        const ft = await startNodeChild('floor', join(BENCH, 'floor.mjs'), tlsEnv);
        try {
          if (this.want('paced')) this.extra.pacedOwnFloor = await this.paced('floor', ft.port, {}, this.extra.pacedOwnRate);
          if (this.want('hold')) this.extra.holdFloor = await this.holdRss('floor', ft.port, {}, ft.child.pid);
        } finally {
          await ft.child.stop();
        }
      }
      if (this.want('paced')) this.extra.pacedOwnFull = await this.paced('gateway full', t.port, t.headers, this.extra.pacedOwnRate);
      if (this.want('hold')) this.extra.holdFull = await this.holdRss('gateway full', t.port, t.headers, t.pid);
      if (PROFILE) {
        await t.stop();
        const { summarize } = await import('./profile.mjs');
        const file = readdirSync(t.profileDir).find((n) => n.endsWith('.cpuprofile'));
        if (file) this.extra.profile = { file: join(t.profileDir, file), ...summarize(join(t.profileDir, file), 25) };
      }
    });

    if (this.want('hold') || this.want('base')) {
      // A gateway that has served nothing before: its base RSS (full config, after startup and
      // the one request that shows it answers), then the same 1,000 connections: what the
      // connections themselves cost, apart from the heap a load before them left behind.
      try {
        const g = await this.startGateway('hold-fresh');
        try {
          await sleep(BASE_SETTLE_MS);
          const rss = currentRss(g.server.pid);
          this.extra.base = { label: 'gateway full, fresh: after startup and one request', rssMB: round1(rss / MB) };
          log(`  base RSS of a fresh gateway (full config, one request answered): ${this.extra.base.rssMB} MB`);
          if (this.want('hold')) this.extra.holdFresh = await this.holdRss('gateway full, fresh (no load before)', g.port, g.headers, g.server.pid);
        } finally {
          await g.server.stop();
        }
      } catch (err) {
        this.notes.push(`fresh gateway (base RSS, RSS at ${HOLD_CONNECTIONS} connections) not measured: ${err.message.split('\n')[0]}`);
      }
    }

    await this.row('no-jwt', 'gateway: JWT off (auth: none, limit by IP)', async () => this.gatewayTarget(await this.startGateway('no-jwt', { jwt: false })));
    await this.row('no-ratelimit', 'gateway: rate limit off', async () => this.gatewayTarget(await this.startGateway('no-ratelimit', { rateLimit: false })));
    await this.row('no-audit', 'gateway: audit log off (bench/gateway-noaudit.mjs)', async () => this.gatewayTarget(await this.startGateway('no-audit', { audit: false })));
    await this.row('core', 'gateway: JWT, limit and audit log all off', async () => this.gatewayTarget(await this.startGateway('core', { jwt: false, rateLimit: false, audit: false })));
    if (this.redis.url) {
      await this.row('workers', 'gateway: full pipeline, GATEWAY_WORKERS=2', async () => this.gatewayTarget(await this.startGateway('workers', { workers: 2 })));
    } else this.notes.push('GATEWAY_WORKERS=2 not measured: it needs Redis');

    if (which('nginx')) {
      await this.row('nginx', 'nginx → upstream (bench/nginx-bench.conf)', () => this.startNginx('nginx', readFileSync(join(BENCH, 'nginx-bench.conf'), 'utf8'), up));
      await this.row('nginx-edge', 'nginx/crm-gateway.conf edge → gateway full', async () => {
        const g = await this.startGateway('edge-gw', { env: { TRUSTED_PROXIES: '127.0.0.1/32' } });
        try {
          // nginx verifies the gateway's certificate by name (never by IP address) and sends that
          // name as SNI, so this row asks for a host name the development certificate carries.
          const headers = { ...g.headers, Host: 'api.bench.local' };
          const n = await this.startNginx('nginx-edge', edgeConf(readFileSync(join(REPO, 'nginx', 'crm-gateway.conf'), 'utf8')), up, g.port, headers);
          // Memory and CPU of both: the edge and the gateway behind it.
          return { ...n, pids: [n.pid, g.server.pid], stop: async () => Promise.all([n.stop(), g.server.stop()]) };
        } catch (err) {
          await g.server.stop();
          throw err;
        }
      });
    } else this.notes.push('nginx not installed: nginx rows skipped (apt-get install nginx)');
    if (which('caddy')) {
      await this.row('caddy', 'Caddy → upstream (bench/Caddyfile.bench)', () => this.startCaddy(up));
    } else this.notes.push('caddy not installed: Caddy row skipped (apt-get install caddy)');
    if (this.want('openapi')) this.openapi();
  }

  /** OpenAPI validation's own cost per request (bench/openapi.mjs, in-process): a figure, not a load row. */
  openapi() {
    const r = spawnSync(process.execPath, [join(BENCH, 'openapi.mjs'), '--json'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) {
      this.notes.push(`OpenAPI validation not measured: ${(r.stderr || r.error?.message || 'failed').split('\n')[0]}`);
      return;
    }
    this.extra.openapi = JSON.parse(r.stdout);
    log(`  openapi: ${this.extra.openapi.valid.medianUs} µs per valid request, ${this.extra.openapi.refused.medianUs} µs per refused one`);
  }

  async startNginx(id, conf, upstreamPort, gatewayPort, headers = {}) {
    const prefix = join(this.work, id);
    for (const d of ['certs', 'logs', 'run']) mkdirSync(join(prefix, d), { recursive: true });
    copyFileSync(this.cert, join(prefix, 'certs', 'edge.crt'));
    copyFileSync(this.key, join(prefix, 'certs', 'edge.key'));
    copyFileSync(this.cert, join(prefix, 'certs', 'gateway.crt'));
    const port = await freePort();
    const text = conf
      .replaceAll('__HTTPS_PORT__', String(port))
      .replaceAll('__HTTP_PORT__', String(await freePort()))
      .replaceAll('__UPSTREAM_PORT__', String(upstreamPort))
      .replaceAll('__GATEWAY_PORT__', String(gatewayPort ?? 0));
    writeFileSync(join(prefix, 'nginx.conf'), text);
    const args = ['-e', 'stderr', '-p', `${prefix}/`, '-c', join(prefix, 'nginx.conf')];
    const test = spawnSync(which('nginx'), ['-t', ...args], { encoding: 'utf8' });
    if (test.status !== 0) throw new Error(`nginx -t: ${test.stderr}`);
    const server = start(id, which('nginx'), [...args, ...(text.includes('daemon off') ? [] : ['-g', 'daemon off;'])]);
    await waitForPort(port);
    await until200(port, headers, server);
    return { port, headers, pid: server.pid, stop: () => server.stop() };
  }

  async startCaddy(upstreamPort) {
    const dir = join(this.work, 'caddy');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const text = readFileSync(join(BENCH, 'Caddyfile.bench'), 'utf8')
      .replaceAll('__HTTPS_PORT__', String(port))
      .replaceAll('__UPSTREAM_PORT__', String(upstreamPort))
      .replaceAll('__CERT__', this.cert)
      .replaceAll('__KEY__', this.key);
    writeFileSync(join(dir, 'Caddyfile'), text);
    const server = start('caddy', which('caddy'), ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    });
    await waitForPort(port);
    await until200(port, {}, server);
    return { port, headers: {}, pid: server.pid, stop: () => server.stop() };
  }

  async cleanup() {
    await this.upstream?.child.stop();
    await this.redis?.server?.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
}

/**
 * The shipped edge config with the bench's ports: its listeners on loopback high ports and its
 * upstream on the gateway under test. Throws when the file no longer has the lines replaced.
 */
function edgeConf(text) {
  const swaps = [
    [/^(\s*)listen 80;\s*$/m, '$1listen 127.0.0.1:__HTTP_PORT__;'],
    [/^\s*listen \[::\]:80;\s*$/m, ''],
    [/^(\s*)listen 443 ssl( http2)?;\s*$/m, '$1listen 127.0.0.1:__HTTPS_PORT__ ssl$2;'],
    [/^\s*listen \[::\]:443 ssl( http2)?;\s*$/m, ''],
    [/^(\s*)server 127\.0\.0\.1:8443;\s*$/gm, '$1server 127.0.0.1:__GATEWAY_PORT__;'],
    // The per-host pools name example.com hosts; the bench asks for api.bench.local.
    [/\.example\.com(\s)/g, '.bench.local$1'],
  ];
  let out = text;
  for (const [re, to] of swaps) {
    if (!re.test(out)) throw new Error(`nginx/crm-gateway.conf has no line matching ${re}: update bench/run.mjs edgeConf()`);
    out = out.replace(re, to);
  }
  return out;
}

function countLines(dir, prefix) {
  try {
    return readdirSync(dir)
      .filter((n) => n.startsWith(prefix) && n.endsWith('.log'))
      .reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
  } catch {
    return undefined;
  }
}

const round1 = (v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : v);
const round2 = (v) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : v);
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : undefined);
const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/** Issue 13's targets. */
const TARGET = {
  caddyRps: 1.0, // full pipeline req/s ≥ this × Caddy's
  floorRps: 0.9, // full pipeline req/s ≥ this × the floor's ...
  floorCpu: 1.3, // ... and its CPU µs/req ≤ this × the floor's
  coreRps: 1.2, // every feature off: req/s ≥ this × the floor's
  p99Ms: 2, // p99 at half the gateway's own peak ≤ the floor's p99 at that rate + this
  baseRssMB: 70, // a fresh gateway after startup and one request
  holdRssMB: 120, // the fresh gateway with HOLD_CONNECTIONS idle TLS connections
};

/** Every target, in a fixed order: MET, NOT MET, or NOT MEASURED (with why) when its rows did not run. */
function verdicts(b) {
  const by = Object.fromEntries(b.rows.map((r) => [r.id, r]));
  const { floor, full, core, caddy } = by;
  const out = [];
  const add = (id, target, measured, value, met) => out.push(measured ? { id, target, value, met, status: met ? 'MET' : 'NOT MET' } : { id, target, value, met: false, status: 'NOT MEASURED' });
  const missing = (...ids) => `no ${ids.join(', ')} row in this run`;

  const caddyX = ratio(full?.rps, caddy?.rps);
  add('caddy', `full pipeline req/s ≥ ${TARGET.caddyRps.toFixed(1)} × Caddy`, full && caddy, full && caddy ? `${full.rps} vs ${caddy.rps} req/s: ${caddyX} × Caddy` : missing(...['full', 'caddy'].filter((id) => !by[id])), caddyX >= TARGET.caddyRps);

  const rpsX = ratio(full?.rps, floor?.rps);
  const cpuX = ratio(full?.cpuUsPerReq, floor?.cpuUsPerReq);
  add(
    'floor',
    `full pipeline req/s ≥ ${TARGET.floorRps} × floor and CPU µs/req ≤ ${TARGET.floorCpu} × floor`,
    full && floor,
    full && floor ? `req/s ${rpsX} × floor (${full.rps} vs ${floor.rps}) ${rpsX >= TARGET.floorRps ? 'met' : 'not met'}; CPU ${cpuX} × floor (${full.cpuUsPerReq} vs ${floor.cpuUsPerReq} µs/req) ${cpuX <= TARGET.floorCpu ? 'met' : 'not met'}` : missing('full'),
    rpsX >= TARGET.floorRps && cpuX <= TARGET.floorCpu,
  );

  const coreX = ratio(core?.rps, floor?.rps);
  add('core', `every feature off (core) req/s ≥ ${TARGET.coreRps} × floor`, core && floor, core ? `${core.rps} vs ${floor.rps} req/s: ${coreX} × floor` : missing('core'), coreX >= TARGET.coreRps);

  const gw = b.extra.pacedOwnFull;
  const fl = b.extra.pacedOwnFloor;
  const d = round2(gw?.p99 - fl?.p99);
  add(
    'p99',
    `p99 at half the gateway's own peak ≤ floor's p99 + ${TARGET.p99Ms} ms`,
    gw && fl,
    gw && fl ? `at ${b.extra.pacedOwnRate} req/s: ${gw.p99} vs ${fl.p99} ms (${d >= 0 ? '+' : ''}${d} ms)` : 'needs the full row and paced (see notes if both ran)',
    d <= TARGET.p99Ms,
  );

  const base = b.extra.base;
  add('base-rss', `base RSS ≤ ${TARGET.baseRssMB} MB (fresh gateway, full config, after startup and one request)`, base, base ? `${base.rssMB} MB` : missing('base or hold'), base?.rssMB <= TARGET.baseRssMB);

  const hold = b.extra.holdFresh;
  const allOpen = hold && hold.connections >= HOLD_CONNECTIONS * 0.99;
  add(
    'hold-rss',
    `RSS ≤ ${TARGET.holdRssMB} MB with ${HOLD_CONNECTIONS} idle TLS connections (fresh gateway)`,
    hold,
    hold ? `${hold.rssMB} MB with ${hold.connections} open${allOpen ? '' : ` (fewer than ${HOLD_CONNECTIONS * 0.99} held: not a valid measure)`}` : missing('hold'),
    allOpen && hold.rssMB <= TARGET.holdRssMB,
  );

  // Issue 16: OpenAPI validation of a typical CRM body (bench/openapi.mjs).
  const oa = b.extra.openapi;
  add('openapi', `OpenAPI validation of a 15-field contact ≤ ${oa?.targetUs ?? 20} µs per request (issue 16)`, oa, oa ? `${oa.valid.medianUs} µs valid, ${oa.refused.medianUs} µs refused (${oa.bodyBytes}-byte body)` : missing('openapi'), oa?.met === true);
  return out;
}

/** GATEWAY_WORKERS=2 against one worker and Caddy: kept in the output, no longer a target. */
function workersInfo(b) {
  const by = Object.fromEntries(b.rows.map((r) => [r.id, r]));
  const { workers, full, caddy } = by;
  if (!workers) return undefined;
  const vsFull = ratio(workers.rps, full?.rps);
  const vsCaddy = ratio(workers.rps, caddy?.rps);
  const parts = [`${workers.rps} req/s`];
  if (vsFull !== undefined) parts.push(`${vsFull} × one worker`);
  if (vsCaddy !== undefined) parts.push(`${vsCaddy} × Caddy`);
  return { rps: workers.rps, vsOneWorker: vsFull, vsCaddy, text: parts.join(', ') };
}

function table(b) {
  const floor = b.rows.find((r) => r.id === 'floor');
  const head = ['', 'req/s', '× floor', 'p50 ms', 'p99 ms', 'peak RSS MB', '× floor', 'CPU µs/req', '× floor', 'server cores', 'machine busy', 'non-2xx/err'];
  const lines = b.rows.map((r) => [
    r.label,
    r.rps,
    ratio(r.rps, floor.rps),
    r.p50,
    r.p99,
    r.peakRssMB,
    ratio(r.peakRssMB, floor.peakRssMB),
    r.cpuUsPerReq,
    ratio(r.cpuUsPerReq, floor.cpuUsPerReq),
    r.serverCores,
    `${r.machineBusyPct}%`,
    `${r.non2xx}/${r.errors}`,
  ]);
  const md = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...lines.map((l) => `| ${l.map((v) => (v === undefined ? '–' : String(v))).join(' | ')} |`)];
  return md.join('\n');
}

const bench = new Bench();
let failed = false;
try {
  await bench.run();
} catch (err) {
  failed = true;
  log(`benchmark failed: ${err.stack ?? err}`);
} finally {
  await bench.cleanup();
}
if (bench.profileDir && !bench.extra.profile) {
  // A row other than `full` was profiled: its gateway has stopped, so its profile is written.
  const { summarize } = await import('./profile.mjs');
  const file = readdirSync(bench.profileDir).find((n) => n.endsWith('.cpuprofile'));
  if (file) bench.extra.profile = { file: join(bench.profileDir, file), ...summarize(join(bench.profileDir, file), 25) };
}
if (bench.rows.length > 0) {
  const results = {
    when: new Date().toISOString(),
    machine: bench.machine,
    settings: { seconds: SECONDS, warmup: WARMUP, connections: CONNECTIONS, loadTool: bench.tool?.name, holdConnections: HOLD_CONNECTIONS, pacedOwnRate: bench.extra.pacedOwnRate },
    rows: bench.rows,
    paced: { ownRate: bench.extra.pacedOwnRate, floorAtOwnRate: bench.extra.pacedOwnFloor, fullAtOwnRate: bench.extra.pacedOwnFull },
    baseRss: bench.extra.base,
    rssAtConnections: { floor: bench.extra.holdFloor, full: bench.extra.holdFull, fresh: bench.extra.holdFresh },
    workers: workersInfo(bench),
    openapi: bench.extra.openapi,
    targets: verdicts(bench),
    profile: bench.extra.profile,
    notes: bench.notes,
  };
  mkdirSync(join(BENCH, 'results'), { recursive: true });
  const file = join(BENCH, 'results', `bench-${stamp()}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const out = [];
  out.push('', `## crm-gateway benchmark (${results.when})`, '');
  out.push(`${results.machine.nproc} CPUs (${results.machine.cpu}), ${results.machine.memTotal} RAM, Node ${results.machine.node}, load: ${results.settings.loadTool}, ${CONNECTIONS} connections, ${SECONDS} s per row after ${WARMUP} s warm-up; load generator, upstream and Redis share the same CPUs.`, '');
  out.push(table(bench), '');
  if (results.paced.floorAtOwnRate && results.paced.fullAtOwnRate) {
    out.push(`Paced load at ${results.paced.ownRate} req/s (half the gateway's peak): floor p50 ${results.paced.floorAtOwnRate.p50} ms / p99 ${results.paced.floorAtOwnRate.p99} ms; gateway full p50 ${results.paced.fullAtOwnRate.p50} ms / p99 ${results.paced.fullAtOwnRate.p99} ms.`);
  }
  if (results.baseRss) out.push(`Base RSS: ${results.baseRss.label}: ${results.baseRss.rssMB} MB.`);
  for (const h of [results.rssAtConnections.floor, results.rssAtConnections.full, results.rssAtConnections.fresh].filter(Boolean)) out.push(`RSS with ${h.connections} idle TLS keep-alive connections: ${h.label} ${h.rssMB} MB (${h.rssBeforeMB} MB before).`);
  if (results.workers) out.push(`Two workers (information, not a target): ${results.workers.text}.`);
  out.push('', 'Targets (issue 13):');
  const width = Math.max(...results.targets.map((t) => t.status.length));
  for (const t of results.targets) out.push(`- ${t.status.padEnd(width)}  ${t.target}: ${t.value}`);
  if (results.profile) {
    out.push('', `CPU profile of the ${PROFILE_ROW} gateway row (${results.profile.file}), self time:`);
    for (const g of results.profile.groups.slice(0, 15)) out.push(`  ${String(g.pct).padStart(5)}%  ${g.name}`);
    out.push('  top frames:');
    for (const f of results.profile.frames.slice(0, 20)) out.push(`  ${String(f.pct).padStart(5)}%  ${f.name}`);
  }
  if (results.notes.length > 0) out.push('', 'Notes:', ...results.notes.map((n) => `- ${n}`));
  out.push('', `Results: ${file}`, '');
  process.stdout.write(out.join('\n'));
}
process.exitCode = failed ? 1 : 0;
