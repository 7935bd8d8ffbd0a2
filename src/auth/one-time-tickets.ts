import { createHash, randomBytes } from 'node:crypto';
import type { Kv } from '../stores/kv.js';

/**
 * Random, single-use, short-lived tickets in the shared store: the logout's clearing chain and
 * websocket tickets. Stored under a hash of the ticket (a store dump names no usable ticket),
 * redeemed with GETDEL so two instances can never both take one.
 */
export class OneTimeTickets {
  private readonly shape: RegExp;

  constructor(
    private readonly kv: Kv,
    private readonly prefix: string,
    private readonly bytes: number,
    private readonly ttlMs: number,
  ) {
    this.shape = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`);
  }

  /** A fresh ticket holding what `value` makes of it (a value may be sealed with the ticket itself). */
  async issue(value: (ticket: string) => string): Promise<string> {
    const ticket = randomBytes(this.bytes).toString('base64url');
    await this.kv.set(this.key(ticket), value(ticket), this.ttlMs);
    return ticket;
  }

  /** Whether `ticket` has the shape of one of these (checked before any store lookup). */
  wellFormed(ticket: string): boolean {
    return this.shape.test(ticket);
  }

  /** The value of a ticket, once; undefined when unknown, used or expired. */
  async take(ticket: string): Promise<string | undefined> {
    return this.kv.getdel(this.key(ticket));
  }

  private key(ticket: string): string {
    return `${this.prefix}:${createHash('sha256').update(ticket).digest('hex')}`;
  }
}
