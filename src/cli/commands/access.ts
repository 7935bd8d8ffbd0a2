import { existsSync } from 'node:fs';
import { collectLogActivity, type LogActivity } from '../../audit/offline/access-activity.js';
import { buildAccessReport, DEFAULT_REVIEW_DAYS, formatAccessReport } from '../../auth/access-report.js';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../errors.js';
import { withAuth } from './with-auth.js';

const DAY_MS = 86_400_000;
const NO_LOGS: LogActivity = { lastSeen: new Map(), tokenLastUse: new Map(), tokens: [], revoked: new Set(), firstDay: undefined, filesRead: 0, unreadableFiles: [] };

/** `npx crm-gateway access report`: the quarterly review of who can get in (issue 18, item 13). */
export const accessCommand: Command = {
  name: 'access',
  usage: 'access report [--json] [--days 90]   users, factors, last sign-in, API clients and live tokens; flags what to review',
  subcommands: {
    report: {
      synopsis: `access report [--days ${DEFAULT_REVIEW_DAYS}] [--json]`,
      description: `users with roles, sign-in factors and last sign-in; API clients and live tokens with their last use;
flags accounts and clients unused for --days and admins without a second factor (exit 0 either way)`,
      options: { days: { type: 'string' }, json: { type: 'boolean' } },
    },
  },
  async run(inv) {
    if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${inv.positionals[0]}`, 2, 'access report');
    const daysText = stringOption(inv, 'days') ?? String(DEFAULT_REVIEW_DAYS);
    const days = Number(daysText);
    if (!/^\d+$/.test(daysText) || days < 1 || days > 3660) throw new CliError(`--days: a whole number of days (1 to 3660), not ${daysText}`, 2, 'access report');
    return withAuth(inv, async ({ cfg, auth, log }) => {
      const now = new Date();
      // Far enough back for the period, and for every token that can still be live.
      const since = new Date(now.getTime() - Math.max(days * DAY_MS, auth.config.maxTokenTtl + auth.config.clockSkew)).toISOString().slice(0, 10);
      const activity = existsSync(cfg.log.dir) ? await collectLogActivity(cfg.log.dir, since) : NO_LOGS;
      const report = await buildAccessReport({
        users: await auth.store.listUsers(),
        clients: await auth.store.listClients(),
        activity,
        isRevoked: (id) => auth.revocations.isRevoked(id),
        store: auth.store.kind,
        logDir: cfg.log.dir,
        now,
        days,
        secondFactors: async (user) => {
          const f = await auth.factors.get(user);
          return [...(f.totp ? (['totp'] as const) : []), ...(f.passkeys.length > 0 ? (['passkey'] as const) : [])];
        },
      });
      log.security('admin.access_reviewed', { days, users: report.summary.users, clients: report.summary.clients, liveTokens: report.summary.liveTokens, flagged: report.summary.flagged });
      process.stdout.write(flag(inv, 'json') ? `${JSON.stringify(report, null, 2)}\n` : formatAccessReport(report));
      return 0;
    });
  },
};
