import { createHash, randomBytes } from 'node:crypto';
import { NAME_PATTERN } from '../../auth/store/types.js';
import type { Command } from '../command.js';
import { CliError, parseArgs } from '../context.js';
import { parseRoles } from './users.js';
import { withAuth } from './with-auth.js';

export const clientsCommand: Command = {
  name: 'clients',
  usage: 'clients add NAME --roles a,b | list | disable NAME | enable NAME   API clients for POST /auth/token (add prints the secret once)',
  run(args) {
    const { positional, options } = parseArgs(args);
    const [sub, name] = positional;
    return withAuth(async ({ auth, log }) => {
      if (sub === 'list') {
        for (const c of await auth.store.listClients()) process.stdout.write(`${c.name}\t${c.roles.join(',')}\t${c.disabled ? 'disabled' : 'enabled'}\n`);
        log.security('admin.clients_listed', {});
        return 0;
      }
      if (!name || !NAME_PATTERN.test(name)) throw new CliError('usage: crm-gateway clients add NAME --roles a,b | list | disable NAME | enable NAME', 2);
      if (sub === 'add') {
        const roles = parseRoles(options.get('roles'));
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
        log.security(`admin.client_${sub}d`, { client: name });
        process.stderr.write(`client ${name} ${sub}d\n`);
        return 0;
      }
      throw new CliError('usage: crm-gateway clients add NAME --roles a,b | list | disable NAME | enable NAME', 2);
    });
  },
};
