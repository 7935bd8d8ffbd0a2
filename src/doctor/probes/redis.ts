import { Redis } from 'ioredis';
import { probeOptions } from '../../stores/redis.js';

export type RedisProbe = 'open' | 'protected' | 'authenticated' | 'rejected' | 'unreachable';

/**
 * One bounded connection attempt: no retries, no reconnects, no offline queue beyond the one
 * command. `open`: PING answered without credentials; `protected`: NOAUTH; `authenticated`:
 * PING answered with the password; `rejected`: the password was refused.
 */
export async function probeRedis(url: string, password: string | undefined, timeoutMs: number): Promise<{ result: RedisProbe; detail?: string }> {
  const client = new Redis(url, { ...probeOptions(timeoutMs, password), enableOfflineQueue: true });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
    return { result: password ? 'authenticated' : 'open' };
  } catch (err) {
    const text = `${(err as Error).message} ${lastError?.message ?? ''}`;
    if (/NOAUTH/.test(text)) return { result: 'protected' };
    if (/WRONGPASS|invalid password|invalid username-password/i.test(text)) return { result: 'rejected' };
    return { result: 'unreachable', detail: lastError?.message ?? (err as Error).message };
  } finally {
    client.disconnect();
  }
}

/** The URL without its credentials (the first probe must not authenticate). */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
