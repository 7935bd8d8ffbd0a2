import type { Logger } from '../log/logger.js';
import type { FailMode } from './limiter.js';

/**
 * Tells the security log when a limit's store goes away and comes back: once per outage, not
 * once per request, with the fail mode the limit applies meanwhile.
 */
export class OutageLog {
  private down = false;
  private missed = 0;

  constructor(
    private readonly limit: string,
    private readonly failMode: FailMode,
    private readonly store: string,
    private readonly log: Logger,
  ) {}

  failed(err: unknown): void {
    this.missed++;
    if (this.down) return;
    this.down = true;
    this.log.security('ratelimit.store_unavailable', {
      limit: this.limit,
      store: this.store,
      failMode: this.failMode,
      effect: this.failMode === 'open' ? 'requests pass unchecked until the store is back' : 'requests are refused (503) until the store is back',
      error: err instanceof Error ? err.message : String(err),
    });
  }

  succeeded(): void {
    if (!this.down) return;
    this.log.security('ratelimit.store_recovered', { limit: this.limit, store: this.store, failMode: this.failMode, requestsDuringOutage: this.missed });
    this.down = false;
    this.missed = 0;
  }
}
