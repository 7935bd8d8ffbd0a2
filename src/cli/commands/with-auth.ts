import { ConfigError } from '../../config/load.js';
import { CliError, openAuth, type CliContext } from '../context.js';

/** Runs a CLI action with the auth stores open, and turns expected failures into exit codes. */
export async function withAuth(action: (c: CliContext) => Promise<number>): Promise<number> {
  let c: CliContext | undefined;
  try {
    c = await openAuth();
    return await action(c);
  } catch (err) {
    if (err instanceof CliError || err instanceof ConfigError) {
      process.stderr.write(`crm-gateway: ${err.message}\n`);
      return err instanceof CliError ? err.exitCode : 1;
    }
    throw err;
  } finally {
    await c?.close();
  }
}
