import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { processEnv } from '../../config/env.js';
import { loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { buildContext } from '../../doctor/context.js';
import { runChecks, STATIC_CHECKS } from '../../doctor/run.js';
import { runLive, type LiveOptions } from '../../doctor/live/run.js';
import { BACKEND_PORTS } from '../../doctor/live/checks.js';
import type { GatewayConfig } from '../../config/schema.js';
import { exitCode, formatReport } from '../../doctor/report.js';
import type { CheckResult } from '../../doctor/types.js';
import { flag, listOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';

/** Routes of the shipped config, for `--live` from a machine without the deployment's config. */
function packagedRoutes(domain: string): ReturnType<typeof loadConfigFile>['routes'] {
  return loadConfigFile(fileURLToPath(new URL('../../../config/gateway.yaml', import.meta.url)), { GATEWAY_DOMAIN: domain }).routes;
}

/** A URL's port, or its scheme's default. */
function portOf(url: string | undefined, fallback: number): number | undefined {
  if (!url) return undefined;
  try {
    return Number(new URL(url).port || fallback);
  } catch {
    return undefined;
  }
}

/**
 * The ports `doctor --live` probes and names in its fix lines, from the deployment's config:
 * its stores, its upstreams and its admin listener, beside the stack's usual ones.
 */
function livePortsOf(cfg: GatewayConfig | undefined): Pick<LiveOptions, 'backendPorts' | 'gatewayPorts'> {
  if (!cfg) return {};
  const ports = new Map(BACKEND_PORTS);
  const add = (port: number | undefined, name: string): void => {
    if (port !== undefined && !ports.has(port)) ports.set(port, name);
  };
  add(portOf(cfg.stores.databaseUrl, 5432), 'PostgreSQL');
  add(portOf(cfg.stores.redisUrl, 6379), 'Redis');
  add(cfg.listen.adminPort, 'gateway admin');
  for (const r of cfg.routes) add(portOf(r.upstream, r.upstream.startsWith('https:') ? 443 : 80), `upstream of ${r.name}`);
  // The gateway's own ports are meant to answer.
  ports.delete(cfg.listen.httpsPort);
  ports.delete(cfg.listen.httpPort);
  return { backendPorts: ports, gatewayPorts: { https: cfg.listen.httpsPort, http: cfg.listen.httpPort } };
}

export const doctorCommand: Command = {
  name: 'doctor',
  usage: 'doctor [--production] | doctor --live https://host[:port]\n                         the deployment checklist: PASS / WARN / FAIL with fixes, or the checks from outside (doctor --help)',
  help: {
    synopsis: `doctor [--production] [--env-file .env] [--config file] [--compose file]... [--json]
  doctor --live https://host[:port] [--http-url http://host[:port]] [--ca file] [--timeout 5s] [--ports 5432,6379]`,
    description: `the pre-deployment and maintenance checklist: PASS / WARN / FAIL with fixes; exit 1 on FAIL;
--live: the post-deployment checks from outside (TLS versions, HSTS, redirect, routes, webhook, exposed ports)`,
    options: {
      production: { type: 'boolean' },
      'env-file': { type: 'string' },
      config: { type: 'string' },
      compose: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      live: { type: 'string' },
      'http-url': { type: 'string' },
      ca: { type: 'string' },
      timeout: { type: 'string' },
      ports: { type: 'string' },
    },
  },
  async run(inv) {
    if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${inv.positionals[0]}`, 2, 'doctor');
    const v = {
      production: flag(inv, 'production'),
      'env-file': stringOption(inv, 'env-file'),
      config: stringOption(inv, 'config'),
      compose: listOption(inv, 'compose'),
      json: flag(inv, 'json'),
      live: stringOption(inv, 'live'),
      'http-url': stringOption(inv, 'http-url'),
      ca: stringOption(inv, 'ca'),
      timeout: stringOption(inv, 'timeout'),
      ports: stringOption(inv, 'ports'),
    };
    const ctx = buildContext({ cwd: process.cwd(), env: processEnv(), envFile: v['env-file'], configFile: v.config, composeFiles: v.compose, production: v.production === true });
    let results: CheckResult[];
    if (v.live !== undefined) {
      const timeoutMs = v.timeout ? parseDuration(v.timeout) : undefined;
      const ports = v.ports?.split(',').map((p) => Number(p.trim()));
      if (v.timeout && !timeoutMs) throw new CliError(`--timeout: a duration such as 5s, not ${v.timeout}`, 2, 'doctor');
      if (ports?.some((p) => !Number.isInteger(p) || p < 1 || p > 65_535)) throw new CliError(`--ports: port numbers separated by commas, not ${v.ports ?? ''}`, 2, 'doctor');
      let url: URL;
      try {
        url = new URL(v.live);
      } catch {
        throw new CliError('--live needs a URL such as https://example.com', 2, 'doctor');
      }
      results = [];
      let routes = ctx.config?.routes;
      if (!routes) {
        const domain = isIP(url.hostname.replace(/^\[|\]$/g, '')) ? 'localhost' : url.hostname;
        results.push({ id: 'live-config', status: 'WARN', message: `no usable local config (${ctx.configError?.split('\n')[0] ?? 'none'}): probing the shipped routes under ${domain}` });
        routes = packagedRoutes(domain);
      }
      const ca = v.ca ? readFileSync(v.ca, 'utf8') : undefined;
      try {
        results.push(...(await runLive({ url: v.live, routes, production: ctx.production, ca, httpUrl: v['http-url'], timeoutMs, ports, ...livePortsOf(ctx.config) })));
      } catch (err) {
        throw new CliError(`doctor: ${(err as Error).message}`, 2, 'doctor');
      }
    } else {
      results = await runChecks(ctx, STATIC_CHECKS);
    }
    process.stdout.write(v.json ? `${JSON.stringify({ production: ctx.production, results }, null, 2)}\n` : formatReport(results));
    return exitCode(results);
  },
};
