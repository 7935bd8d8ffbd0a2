import { createHash, randomBytes } from 'node:crypto';
import { parseDuration } from '../../config/units.js';
import { CLIENT_SUBJECT_PREFIX, NAME_PATTERN } from '../../auth/store/types.js';
import type { Command } from '../command.js';
import { CliError, parseArgs } from '../context.js';
import { parseRoles } from './users.js';
import { withAuth } from './with-auth.js';

const DEFAULT_TTL = '1h';

function clientName(name: string | true | undefined): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw new CliError('--client NAME is required: letters, digits, . _ @ - (at most 64)', 2);
  return name;
}

export const tokensCommand: Command = {
  name: 'tokens',
  usage: 'tokens issue --client NAME --roles a,b [--ttl 1h] | revoke JTI   bearer tokens for API clients (issue prints the token alone)',
  run(args) {
    const { positional, options } = parseArgs(args);
    const [sub, jti] = positional;
    return withAuth(async ({ auth, log }) => {
      if (sub === 'issue') {
        const name = clientName(options.get('client'));
        const roles = parseRoles(options.get('roles'));
        const ttlText = options.get('ttl');
        const ttl = parseDuration(typeof ttlText === 'string' ? ttlText : DEFAULT_TTL);
        if (ttl === undefined || ttl <= 0) throw new CliError('--ttl must be a duration such as 30m or 1h', 2);
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
      }
      if (sub === 'revoke') {
        if (!jti || !/^[A-Za-z0-9_-]{8,128}$/.test(jti)) throw new CliError('usage: crm-gateway tokens revoke JTI', 2);
        // The token's own expiry is unknown here; no token lives longer than the maximum lifetime.
        const until = Math.ceil((Date.now() + auth.config.maxTokenTtl + auth.config.clockSkew) / 1000);
        await auth.revocations.revoke(jti, until);
        log.security('admin.token_revoked', { tokenId: jti });
        process.stderr.write(`token ${jti} revoked on every instance\n`);
        return 0;
      }
      throw new CliError('usage: crm-gateway tokens issue --client NAME --roles a,b [--ttl 1h] | tokens revoke JTI', 2);
    });
  },
};
