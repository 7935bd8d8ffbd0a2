import { openAuth, type CliContext } from '../context.js';
import type { Invocation } from '../command.js';

/** Runs a CLI action with the auth stores open; failures reach the CLI's one error printer. */
export async function withAuth(inv: Invocation, action: (c: CliContext) => Promise<number>): Promise<number> {
  let c: CliContext | undefined;
  try {
    c = await openAuth(inv.verbose);
    return await action(c);
  } finally {
    await c?.close();
  }
}
