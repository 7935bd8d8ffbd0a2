import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { processEnv } from '../../config/env.js';
import { loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { buildContext } from '../../doctor/context.js';
import { runChecks, STATIC_CHECKS } from '../../doctor/run.js';
import { runLive } from '../../doctor/live/run.js';
import { exitCode, formatReport } from '../../doctor/report.js';
import type { CheckResult } from '../../doctor/types.js';
import type { Command } from '../command.js';

const USAGE = `doctor [--production] [--env-file .env] [--config file] [--compose file]... [--json]
                         the pre-deployment and maintenance checklist: PASS / WARN / FAIL with fixes; exit 1 on FAIL
  doctor --live https://host[:port] [--http-url http://host[:port]] [--ca file] [--timeout 5s] [--ports 5432,6379]
                         the post-deployment checks from outside (TLS versions, HSTS, redirect, routes, webhook)`;

/** Routes of the shipped config, for `--live` from a machine without the deployment's config. */
function packagedRoutes(domain: string): ReturnType<typeof loadConfigFile>['routes'] {
  return loadConfigFile(fileURLToPath(new URL('../../../config/gateway.yaml', import.meta.url)), { GATEWAY_DOMAIN: domain }).routes;
}

export const doctorCommand: Command = {
  name: 'doctor',
  usage: USAGE,
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args: [...args],
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
      });
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\nusage: crm-gateway ${USAGE}\n`);
      return 2;
    }
    const v = parsed.values;
    const ctx = buildContext({ cwd: process.cwd(), env: processEnv(), envFile: v['env-file'], configFile: v.config, composeFiles: v.compose, production: v.production === true });
    let results: CheckResult[];
    if (v.live !== undefined) {
      const timeoutMs = v.timeout ? parseDuration(v.timeout) : undefined;
      const ports = v.ports?.split(',').map((p) => Number(p.trim()));
      if ((v.timeout && !timeoutMs) || ports?.some((p) => !Number.isInteger(p) || p < 1 || p > 65_535)) {
        process.stderr.write(`bad --timeout or --ports\nusage: crm-gateway ${USAGE}\n`);
        return 2;
      }
      let url: URL;
      try {
        url = new URL(v.live);
      } catch {
        process.stderr.write(`--live needs a URL such as https://example.com\n`);
        return 2;
      }
      results = [];
      let routes = ctx.config?.routes;
      if (!routes) {
        const domain = isIP(url.hostname.replace(/^\[|\]$/g, '')) ? 'localhost' : url.hostname;
        results.push({ id: 'live-config', status: 'WARN', message: `no usable local config (${ctx.configError?.split('\n')[0] ?? 'none'}): probing the shipped routes under ${domain}` });
        routes = packagedRoutes(domain);
      }
      try {
        results.push(...(await runLive({ url: v.live, routes, production: ctx.production, ca: v.ca ? readFileSync(v.ca, 'utf8') : undefined, httpUrl: v['http-url'], timeoutMs, ports })));
      } catch (err) {
        process.stderr.write(`doctor: ${(err as Error).message}\n`);
        return 2;
      }
    } else {
      results = await runChecks(ctx, STATIC_CHECKS);
    }
    process.stdout.write(v.json ? `${JSON.stringify({ production: ctx.production, results }, null, 2)}\n` : formatReport(results));
    return exitCode(results);
  },
};
