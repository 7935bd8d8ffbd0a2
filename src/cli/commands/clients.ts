import { createHash, randomBytes } from 'node:crypto';
import { NAME_PATTERN } from '../../auth/store/types.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import { CliError } from '../context.js';
import { parseRoles } from './users.js';
import { withAuth } from './with-auth.js';

export const clientsCommand: Command = {
  name: 'clients',
  usage: 'clients add NAME --roles a,b | list | disable NAME | enable NAME   API clients for POST /auth/token (add prints the secret once)',
  subcommands: {
    add: { synopsis: 'clients add NAME --roles a,b', description: 'an API client for POST /auth/token; its secret is printed once on stdout', options: { roles: { type: 'string' } } },
    list: { synopsis: 'clients list', description: 'clients with roles and state', options: {} },
    disable: { synopsis: 'clients disable NAME', description: 'refuse its secret at POST /auth/token', options: {} },
    enable: { synopsis: 'clients enable NAME', description: 'accept its secret again', options: {} },
  },
  async run(inv) {
    const sub = inv.sub ?? '';
    const [name] = inv.positionals;
    const max = sub === 'list' ? 0 : 1;
    if (inv.positionals.length > max) throw new CliError(`unexpected argument ${String(inv.positionals[max])}`, 2, `clients ${sub}`);
    if (sub !== 'list' && (!name || !NAME_PATTERN.test(name))) throw new CliError('a client name is required: letters, digits, . _ @ - (at most 64)', 2, `clients ${sub}`);
    return withAuth(inv, async ({ auth, log }) => {
      if (sub === 'list') {
        for (const c of await auth.store.listClients()) process.stdout.write(`${c.name}\t${c.roles.join(',')}\t${c.disabled ? 'disabled' : 'enabled'}\n`);
        log.security('admin.clients_listed', {});
        return 0;
      }
      if (!name) return 2;
      if (sub === 'add') {
        const roles = parseRoles(stringOption(inv, 'roles'), 'clients add');
        if (await auth.store.getClient(name)) throw new CliError(`client ${name} exists`);
        const secret = randomBytes(32).toString('base64url');
        await auth.store.addClient({ name, secretHash: createHash('sha256').update(secret).digest('hex'), roles, disabled: false, createdAt: new Date() });
        log.security('admin.client_added', { client: name, roles });
        process.stdout.write(`${secret}\n`);
        process.stderr.write(`client ${name} added; the secret above is shown once (POST /auth/token with Basic ${name}:<secret>)\n`);
        return 0;
      }
      if (sub === 'disable' || sub === 'enable') {
        if (!(await auth.store.updateClient(name, { disabled: sub === 'disable' }))) throw new CliError(`no client ${name}`);
        log.security(sub === 'disable' ? 'admin.client_disabled' : 'admin.client_enabled', { client: name });
        process.stderr.write(`client ${name} ${sub}d\n`);
        return 0;
      }
      throw new CliError(`unknown clients command ${sub}`, 2, 'clients');
    });
  },
};
