import { userInfo } from 'node:os';
import { hashPassword, passwordProblem } from '../../auth/password.js';
import { OIDC_SUBJECT_PATTERN } from '../../auth/oidc/rules.js';
import { NAME_PATTERN, ROLE_PATTERN } from '../../auth/store/types.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError, readSecret } from '../context.js';
import { withAuth } from './with-auth.js';

export function parseRoles(text: string | undefined, helpFor?: string): string[] {
  if (text === undefined || text.trim() === '') throw new CliError('--roles needs a comma-separated list, e.g. --roles staff,admin', 2, helpFor);
  const roles = [...new Set(text.split(',').map((r) => r.trim()).filter(Boolean))];
  const bad = roles.filter((r) => !ROLE_PATTERN.test(r));
  if (bad.length > 0) throw new CliError(`invalid role name(s): ${bad.join(', ')} (lower-case letters, digits, - and _)`, 2);
  return roles;
}

function userName(name: string | undefined, sub: string): string {
  if (!name || !NAME_PATTERN.test(name)) throw new CliError('a user name is required: letters, digits, . _ @ - (at most 64)', 2, `users ${sub}`);
  return name;
}

async function newPassword(): Promise<string> {
  const password = await readSecret('Password: ', true);
  const problem = passwordProblem(password);
  if (problem) throw new CliError(`password: ${problem}`);
  return hashPassword(password);
}

const NO_OPTIONS = {};
const SUBCOMMANDS = {
  add: { synopsis: 'users add NAME --roles a,b', description: 'add a sign-in user; the password comes from a prompt, or the first line of stdin', options: { roles: { type: 'string' } } },
  list: { synopsis: 'users list [--json]', description: 'users with roles, state and last sign-in (never password hashes)', options: { json: { type: 'boolean' } } },
  disable: { synopsis: 'users disable NAME', description: 'refuse sign-in and end open sessions', options: NO_OPTIONS },
  enable: { synopsis: 'users enable NAME', description: 'allow sign-in again (sessions ended by disable stay ended)', options: NO_OPTIONS },
  'set-password': { synopsis: 'users set-password NAME', description: 'a new password from a prompt or stdin; sessions begun before end', options: NO_OPTIONS },
  'set-roles': { synopsis: 'users set-roles NAME a,b', description: 'replace the roles (sessions pick them up at their next renewal)', options: { roles: { type: 'string' } } },
  show: { synopsis: 'users show NAME [--json]', description: 'one user: roles, state, last sign-in and second factors (never a secret or code)', options: { json: { type: 'boolean' } } },
  'reset-factors': {
    synopsis: 'users reset-factors NAME',
    description: 'forget the TOTP secret, recovery codes and passkeys (a lost device); sessions begun before end, and the next sign-in enrols again where a factor is required',
    options: NO_OPTIONS,
  },
} as const;

export const usersCommand: Command = {
  name: 'users',
  usage: `users <add|list|disable|enable|set-password|set-roles|show|reset-factors>   manage login users (password from a prompt or stdin) and their second factors`,
  subcommands: SUBCOMMANDS,
  async run(inv) {
    const sub = inv.sub ?? '';
    const [rawName, rolesArg] = inv.positionals;
    const max = sub === 'list' ? 0 : sub === 'set-roles' ? 2 : 1;
    // Not echoed: a stray word here is often a password typed where it must never go.
    if (inv.positionals.length > max) throw new CliError(`users ${sub} takes ${max === 0 ? 'no name' : max === 1 ? 'one name' : 'a name and roles'}; a password comes from the prompt or stdin, never the command line`, 2, `users ${sub}`);
    return withAuth(inv, async ({ auth, log }) => {
      switch (sub) {
        case 'add': {
          const name = userName(rawName, sub);
          const roles = parseRoles(stringOption(inv, 'roles'), 'users add');
          if (await auth.store.getUser(name)) throw new CliError(`user ${name} exists`);
          await auth.store.addUser({ name, passwordHash: await newPassword(), roles, disabled: false, createdAt: new Date() });
          log.security('admin.user_added', { user: name, roles });
          process.stderr.write(`user ${name} added with roles ${roles.join(', ')}\n`);
          return 0;
        }
        case 'list': {
          const users = await auth.store.listUsers();
          log.security('admin.users_listed', { count: users.length });
          if (inv.values.json === true) {
            process.stdout.write(`${JSON.stringify(users.map(({ passwordHash: _h, ...u }) => u), null, 2)}\n`);
          } else {
            for (const u of users) {
              process.stdout.write(`${u.name}\t${u.roles.join(',')}\t${u.disabled ? 'disabled' : 'enabled'}\tlast login ${u.lastLoginAt?.toISOString() ?? 'never'}\n`);
            }
          }
          return 0;
        }
        case 'disable':
        case 'enable': {
          const name = userName(rawName, sub);
          // Disabling also voids every session begun so far: enabling the account again later
          // does not bring back a session someone may have kept meanwhile.
          const patch = sub === 'disable' ? { disabled: true, sessionsValidFrom: new Date() } : { disabled: false };
          if (!(await auth.store.updateUser(name, patch))) throw new CliError(`no user ${name}`);
          log.security(sub === 'disable' ? 'admin.user_disabled' : 'admin.user_enabled', { user: name });
          process.stderr.write(`user ${name} ${sub}d${sub === 'disable' ? ' (open sessions end at their next request and websockets close: at once on gateways that share Redis, within about 10 s on one without it)' : ''}\n`);
          return 0;
        }
        case 'set-password': {
          const name = userName(rawName, sub);
          if (!(await auth.store.getUser(name))) throw new CliError(`no user ${name}`);
          // Every session begun with the old password ends (within 5 s, at its next request or renewal).
          await auth.store.updateUser(name, { passwordHash: await newPassword(), sessionsValidFrom: new Date() });
          log.security('admin.user_password_set', { user: name, sessionsEnded: true });
          process.stderr.write(`password of ${name} changed; sessions begun before now are ended\n`);
          return 0;
        }
        case 'set-roles': {
          const name = userName(rawName, sub);
          const roles = parseRoles(rolesArg ?? stringOption(inv, 'roles'), 'users set-roles');
          if (!(await auth.store.updateUser(name, { roles }))) throw new CliError(`no user ${name}`);
          log.security('admin.user_roles_set', { user: name, roles });
          process.stderr.write(`roles of ${name}: ${roles.join(', ')} (sessions pick them up at their next renewal)\n`);
          return 0;
        }
        case 'show': {
          const name = userName(rawName, sub);
          const u = await auth.store.getUser(name);
          if (!u) throw new CliError(`no user ${name}`);
          const f = await auth.factors.get(name);
          const factors = {
            totp: f.totp ? { enrolledAt: f.totp.enrolledAt.toISOString() } : null,
            recoveryCodesLeft: f.recoveryHashes.length,
            passkeys: f.passkeys.map((p) => ({ id: `${p.id.slice(0, 12)}…`, createdAt: p.createdAt.toISOString(), lastUsedAt: p.lastUsedAt?.toISOString() ?? null })),
          };
          log.security('admin.user_shown', { user: name });
          if (inv.values.json === true) {
            const shown = { name: u.name, roles: u.roles, disabled: u.disabled, createdAt: u.createdAt, lastLoginAt: u.lastLoginAt, sessionsValidFrom: u.sessionsValidFrom };
            process.stdout.write(`${JSON.stringify({ ...shown, factors }, null, 2)}\n`);
          } else {
            process.stdout.write(
              `${u.name}\troles ${u.roles.join(',') || '-'}\t${u.disabled ? 'disabled' : 'enabled'}\tlast login ${u.lastLoginAt?.toISOString() ?? 'never'}\n` +
                `  totp: ${factors.totp ? `enrolled ${factors.totp.enrolledAt}` : 'none'}\n  recovery codes left: ${factors.recoveryCodesLeft}\n` +
                `  passkeys: ${factors.passkeys.length === 0 ? 'none' : factors.passkeys.map((p) => `${p.id} (added ${p.createdAt}, last used ${p.lastUsedAt ?? 'never'})`).join(', ')}\n`,
            );
          }
          return 0;
        }
        case 'reset-factors': {
          // Someone an identity provider signs in (oidc:<tag>:<sub>, see `sessions list`) has factors
          // here but no local record: their sessions end through the registry alone.
          const oidc = rawName !== undefined && OIDC_SUBJECT_PATTERN.test(rawName);
          const name = oidc ? (rawName as string) : userName(rawName, sub);
          if (!oidc && !(await auth.store.getUser(name))) throw new CliError(`no user ${name}`);
          const had = await auth.factors.reset(name);
          // A reset follows a lost or stolen device: sessions it may have opened end with it, in the
          // registry too (gone from `sessions list`, refused by every instance at once).
          if (!oidc) await auth.store.updateUser(name, { sessionsValidFrom: new Date() });
          const ended = await auth.sessions.endAll(name, { actor: `cli:${userInfo().username}`, reason: 'factors_reset' });
          log.security('auth.factors_reset', { user: name, totp: had.totp, recoveryCodes: had.recoveryCodes, passkeys: had.passkeys, sessionsEnded: true, registrySessionsEnded: ended });
          process.stderr.write(`second factors of ${name} reset (totp ${had.totp ? 'removed' : 'none'}, ${had.recoveryCodes} recovery codes, ${had.passkeys} passkeys); sessions begun before now are ended\n`);
          return 0;
        }
        default:
          throw new CliError(`unknown users command ${sub}`, 2, 'users');
      }
    });
  },
};
