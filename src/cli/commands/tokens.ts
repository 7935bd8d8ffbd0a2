import { createHash, randomBytes } from 'node:crypto';
import { parseDuration } from '../../config/units.js';
import { CLIENT_SUBJECT_PREFIX, NAME_PATTERN } from '../../auth/store/types.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../context.js';
import { parseRoles } from './users.js';
import { withAuth } from './with-auth.js';

const DEFAULT_TTL = '1h';

function clientName(name: string | undefined): string {
  if (name === undefined || !NAME_PATTERN.test(name)) throw new CliError('--client NAME is required: letters, digits, . _ @ - (at most 64)', 2, 'tokens issue');
  return name;
}

export const tokensCommand: Command = {
  name: 'tokens',
  usage: 'tokens issue --client NAME --roles a,b [--ttl 1h] | revoke JTI   bearer tokens for API clients (issue prints the token alone)',
  subcommands: {
    issue: {
      synopsis: `tokens issue --client NAME --roles a,b [--ttl ${DEFAULT_TTL}]`,
      description: 'a bearer token for an API client, printed alone on stdout (its id and expiry on stderr)',
      options: { client: { type: 'string' }, roles: { type: 'string' }, ttl: { type: 'string' } },
    },
    revoke: { synopsis: 'tokens revoke JTI', description: 'refuse that token on every instance until it would have expired', options: {} },
  },
  async run(inv) {
    const { sub } = inv;
    const [jti] = inv.positionals;
    if (inv.positionals.length > (sub === 'revoke' ? 1 : 0)) throw new CliError(`unexpected argument ${String(inv.positionals.at(-1))}`, 2, `tokens ${sub ?? ''}`);
    if (sub === 'issue') {
      const name = clientName(stringOption(inv, 'client'));
      const roles = parseRoles(stringOption(inv, 'roles'), 'tokens issue');
      const ttl = parseDuration(stringOption(inv, 'ttl') ?? DEFAULT_TTL);
      if (ttl === undefined || ttl <= 0) throw new CliError('--ttl must be a duration such as 30m or 1h', 2, 'tokens issue');
      return withAuth(inv, async ({ auth, log }) => {
        if (ttl > auth.config.maxTokenTtl) throw new CliError(`--ttl is over the maximum token lifetime (${auth.config.maxTokenTtl / 1000} s; JWT_MAX_TTL)`);
        const client = await auth.store.getClient(name);
        if (client?.disabled) throw new CliError(`client ${name} is disabled`);
        if (!client) {
          // A client created here has no secret: it can only use tokens issued by an operator.
          const unusable = createHash('sha256').update(randomBytes(32)).digest('hex');
          await auth.store.addClient({ name, secretHash: unusable, roles, disabled: false, createdAt: new Date() });
        }
        const issued = auth.tokens.issue({ sub: `${CLIENT_SUBJECT_PREFIX}${name}`, roles, ttlMs: ttl, typ: 'access' });
        log.security('admin.token_issued', { client: name, roles, tokenId: issued.claims.jti, expiresAt: new Date(issued.claims.exp * 1000).toISOString() });
        process.stdout.write(`${issued.token}\n`);
        process.stderr.write(`token id ${issued.claims.jti}, expires ${new Date(issued.claims.exp * 1000).toISOString()}\n`);
        return 0;
      });
    }
    if (!jti || !/^[A-Za-z0-9_-]{8,128}$/.test(jti)) throw new CliError('a token id (jti) is required', 2, 'tokens revoke');
    return withAuth(inv, async ({ auth, log }) => {
      {
        // The token's own expiry is unknown here; no token lives longer than the maximum lifetime.
        const until = Math.ceil((Date.now() + auth.config.maxTokenTtl + auth.config.clockSkew) / 1000);
        await auth.revocations.revoke(jti, until);
        log.security('admin.token_revoked', { tokenId: jti });
        process.stderr.write(`token ${jti} revoked on every instance\n`);
        return 0;
      }
    });
  },
};
