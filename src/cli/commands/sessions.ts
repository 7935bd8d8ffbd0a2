import { userInfo } from 'node:os';
import { NAME_PATTERN } from '../../auth/store/types.js';
import { OIDC_SUBJECT_PATTERN } from '../../auth/oidc/rules.js';
import { SESSION_ID } from '../../auth/sessions/registry.js';
import { utcMinute } from '../../auth/sessions/page.js';
import type { StaffSession } from '../../auth/sessions/types.js';
import { describeBrowser } from '../../auth/sessions/user-agent.js';
import { escapeUnprintable } from '../../containment/model.js';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../context.js';
import { withAuth } from './with-auth.js';

function userOption(inv: Parameters<Command['run']>[0], where: string): string | undefined {
  const user = stringOption(inv, 'user');
  if (user !== undefined && !NAME_PATTERN.test(user) && !OIDC_SUBJECT_PATTERN.test(user)) throw new CliError('--user takes a user name: letters, digits, . _ @ - (at most 64)', 2, where);
  return user;
}

/** Control characters of a stored User-Agent would rewrite the operator's terminal. */
const printable = (s: string): string => escapeUnprintable(s);

function table(sessions: readonly StaffSession[]): string {
  const rows = sessions.map((s) => [s.id, s.subject, utcMinute(s.createdAt), utcMinute(s.lastSeenAt), s.ip || '-', s.factors.join('+'), printable(describeBrowser(s.userAgent))]);
  const head = ['ID', 'USER', 'STARTED', 'LAST SEEN', 'ADDRESS', 'FACTORS', 'BROWSER'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/**
 * `crm-gateway sessions list [--user U] [--json]` and `sessions revoke ID | --user U`: the staff
 * sessions of issue 14, item 4. With Redis, against the store every instance shares, and a
 * revocation is refused by every instance at once (pub/sub). With the embedded stores, against
 * the data folder's files: the gateway, running or not, reads the revocation from its watched
 * revocations file.
 */
export const sessionsCommand: Command = {
  name: 'sessions',
  usage: 'sessions list [--user U] [--json] | revoke ID | revoke --user U   staff sign-in sessions, ended on every host and instance',
  subcommands: {
    list: {
      synopsis: 'sessions list [--user U] [--json]',
      description: 'the staff sessions (newest first): id, user, started, last seen, address, factors, browser; --json for one JSON document',
      options: { user: { type: 'string' }, json: { type: 'boolean' } },
    },
    revoke: {
      synopsis: 'sessions revoke ID | sessions revoke --user U',
      description: 'end a session (or every session of a user) on every host and instance: its cookies are refused at once (recorded: auth.session_revoked, with who ran it)',
      options: { user: { type: 'string' } },
    },
  },
  async run(inv) {
    const where = `sessions ${inv.sub ?? ''}`;
    const user = userOption(inv, where);
    if (inv.sub === 'list') {
      if (inv.positionals.length > 0) throw new CliError(`unexpected argument ${String(inv.positionals[0])}`, 2, where);
      return withAuth(inv, async ({ auth }) => {
        const sessions = await auth.sessions.registry.list({ subject: user });
        if (flag(inv, 'json')) process.stdout.write(`${JSON.stringify({ sessions }, null, 2)}\n`);
        else process.stdout.write(sessions.length === 0 ? 'no sessions\n' : `${table(sessions)}\n`);
        return 0;
      });
    }
    const [id, extra] = inv.positionals;
    if (extra !== undefined) throw new CliError(`unexpected argument ${extra}`, 2, where);
    if ((id === undefined) === (user === undefined)) throw new CliError('give a session id or --user U (one of them)', 2, where);
    if (id !== undefined && !SESSION_ID.test(id)) throw new CliError(`${printable(id.slice(0, 64))} is not a session id (see sessions list)`, 2, where);
    return withAuth(inv, async ({ auth }) => {
      const by = { actor: `cli:${userInfo().username}`, reason: 'cli' };
      if (user !== undefined) {
        const n = await auth.sessions.endAll(user, by);
        process.stderr.write(`${n} session(s) of ${user} ended on every host and instance\n`);
        return 0;
      }
      const ended = await auth.sessions.end(id as string, by);
      if (!ended) {
        process.stderr.write(`session ${id as string} is not in the registry (expired or already ended); it is refused anyway\n`);
        return 1;
      }
      process.stderr.write(`session ${ended.id} of ${ended.subject} ended on every host and instance\n`);
      return 0;
    });
  },
};
