import { z } from 'zod';
import { GatewayError } from '../errors.js';

/** Meta retries for up to 7 days; an event older than this is a replay, not a retry. */
export const REPLAY_WINDOW_MS = 7 * 24 * 3_600_000;

/** Ids longer than Meta's (about 60 characters) are not Meta's. */
const MAX_ID_CHARS = 256;
/** More events than any batch Meta sends; bounds the dedup work one request can cause. */
const MAX_EVENTS = 5_000;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Unix seconds, as Meta writes them (a string of digits) or as a number. */
const seconds = z.union([z.string().regex(/^\d{1,12}$/).transform(Number), z.number().int().nonnegative()]);
const id = z.string().min(1).max(MAX_ID_CHARS);

const message = z.looseObject({ id, from: z.string().optional(), timestamp: seconds.optional() });
const status = z.looseObject({ id, status: z.string().min(1).max(64), recipient_id: z.string().optional(), timestamp: seconds.optional() });
const value = z.looseObject({
  metadata: z.looseObject({ display_phone_number: z.string().optional() }).optional(),
  contacts: z.array(z.looseObject({ wa_id: z.string().optional() })).optional(),
  messages: z.array(message).optional(),
  statuses: z.array(status).optional(),
});
const notification = z.looseObject({
  object: z.literal('whatsapp_business_account'),
  entry: z
    .array(z.looseObject({ time: seconds.optional(), changes: z.array(z.looseObject({ field: z.string().max(128), value })) }))
    .min(1),
});

/** What the gateway needs to know of a notification; never its message content. */
export interface NotificationFacts {
  /** Dedup keys: `message:<id>` and `status:<id>:<status>`; empty when the payload has neither. */
  readonly eventKeys: readonly string[];
  /** Event times in ms since the epoch. */
  readonly timestamps: readonly number[];
  /** Phone numbers (customers' and the business's), to be hashed before any log sees them. */
  readonly phoneNumbers: readonly string[];
  readonly fields: readonly string[];
  readonly messages: number;
  readonly statuses: number;
}

/**
 * Parses a body whose signature has already been checked. Throws WEBHOOK_PAYLOAD_INVALID for
 * invalid UTF-8, non-JSON, or JSON that is not a WhatsApp Business notification.
 */
export function readNotification(body: Buffer): NotificationFacts {
  let doc: unknown;
  try {
    doc = JSON.parse(fatalUtf8.decode(body));
  } catch {
    throw new GatewayError('WEBHOOK_PAYLOAD_INVALID', 'body is not UTF-8 JSON');
  }
  const parsed = notification.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GatewayError('WEBHOOK_PAYLOAD_INVALID', `not a WhatsApp notification: ${issue ? `${issue.path.join('.')} ${issue.message}` : 'shape'}`);
  }
  const eventKeys = new Set<string>();
  const timestamps: number[] = [];
  const phones = new Set<string>();
  const fields = new Set<string>();
  let messages = 0;
  let statuses = 0;
  for (const entry of parsed.data.entry) {
    if (entry.time !== undefined) timestamps.push(entry.time * 1000);
    for (const change of entry.changes) {
      fields.add(change.field);
      const v = change.value;
      if (v.metadata?.display_phone_number) phones.add(v.metadata.display_phone_number);
      for (const c of v.contacts ?? []) if (c.wa_id) phones.add(c.wa_id);
      for (const m of v.messages ?? []) {
        messages++;
        eventKeys.add(`message:${m.id}`);
        if (m.from) phones.add(m.from);
        if (m.timestamp !== undefined) timestamps.push(m.timestamp * 1000);
      }
      for (const s of v.statuses ?? []) {
        statuses++;
        eventKeys.add(`status:${s.id}:${s.status}`);
        if (s.recipient_id) phones.add(s.recipient_id);
        if (s.timestamp !== undefined) timestamps.push(s.timestamp * 1000);
      }
    }
  }
  if (eventKeys.size > MAX_EVENTS) throw new GatewayError('WEBHOOK_PAYLOAD_INVALID', `${eventKeys.size} events in one payload (limit ${MAX_EVENTS})`);
  return { eventKeys: [...eventKeys], timestamps, phoneNumbers: [...phones], fields: [...fields], messages, statuses };
}

/**
 * Refuses a payload whose event times are all outside the replay window: the signature has no
 * timestamp, so without this an old captured payload stays valid forever once its dedup
 * entries expire. A payload with no event time at all (e.g. an account update) is let through;
 * only dedup guards those.
 */
export function refuseStale(facts: NotificationFacts, now: number, windowMs = REPLAY_WINDOW_MS): void {
  if (facts.timestamps.length === 0) return;
  const newest = facts.timestamps.reduce((a, b) => (b > a ? b : a), 0);
  if (now - newest > windowMs) {
    throw new GatewayError('WEBHOOK_STALE', `newest event ${new Date(newest).toISOString()} is older than ${Math.round(windowMs / 3_600_000)} h`);
  }
}
