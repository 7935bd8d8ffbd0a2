import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { EventFields } from '../log/events.js';
import type { Logger } from '../log/logger.js';
import type { BodyBuffers } from '../proxy/body-buffers.js';
import { buildUpstreamHeaders } from '../proxy/request-headers.js';
import { stripPrefix } from '../routing/router.js';
import { withTimeout } from '../stores/redis.js';
import type { IdentifierHasher } from '../audit/redact/identifiers.js';
import type { Redis } from 'ioredis';
import { answerChallenge } from './handshake.js';
import { verifySignature, type MatchedSecret } from './signature.js';
import { readNotification, refuseStale, REPLAY_WINDOW_MS, type NotificationFacts } from './payload.js';
import { encodeDelivery, type Delivery } from './envelope.js';
import { Sealer } from '../stores/sealed.js';
import { WebhookStore } from './store.js';
import { DeliveryWorker } from './worker.js';
import type { WebhookMetrics, WebhookOutcome } from './metrics.js';
import type { WhatsappSettings } from './settings.js';

/** Dedup outlives the replay window by a day, so a clock ahead of ours cannot open a gap. */
const SEEN_TTL_MS = REPLAY_WINDOW_MS + 24 * 3_600_000;
/** A Redis that has not answered by then counts as down: 503, and Meta retries. */
const STORE_TIMEOUT_MS = 2_000;
/** Seconds Meta is asked to wait before retrying when nothing could be stored. */
const RETRY_AFTER_SECONDS = '30';
/** Phone-number hashes written per log line; a batch can name many more. */
const MAX_LOGGED_PHONES = 20;
/** The gateway's verification result, in a header clients cannot send (hygiene strips x-gateway-*). */
export const VERIFIED_HEADER = 'x-gateway-webhook-verified';

export interface WebhookRoute {
  /** A TerminalHandler reading the payload through the gateway's `bodies` (budget and deadline). */
  readonly handle: (ctx: RequestContext, res: ServerResponse, fail: (err: GatewayError) => void, bodies: BodyBuffers) => void;
  start(): void;
  stop(): Promise<void>;
}

/** What a webhook route is built from (the WhatsappWebhooks service's). */
export interface WebhookDeps {
  readonly log: Logger;
  readonly redis?: Redis | undefined;
  readonly identifiers: IdentifierHasher;
  readonly metrics: WebhookMetrics;
}

/**
 * The `auth: whatsapp` route: Meta's handshake on GET; on POST the raw body is read (bounded),
 * its signature checked before any parsing, old or repeated events refused, then the exact
 * bytes are stored (sealed) and delivered in order. Meta gets 200 only for a payload that is
 * delivered or stored; otherwise an error it retries.
 */
export function createWebhookRoute(route: RouteConfig, s: WhatsappSettings, deps: WebhookDeps, agent: http.Agent): WebhookRoute {
  const log = deps.log;
  const target = new URL(route.upstream);
  const aad = `crm-gateway/whatsapp-queue/v1/${route.name}`;
  const sealer = s.queueKey ? new Sealer(s.queueKey, s.queueKeyPrevious ? [s.queueKeyPrevious] : []) : undefined;
  // whatsapp.waitAof: accepts go through a connection of their own (see WebhookStore).
  const durable = deps.redis && s.waitAof ? deps.redis.duplicate() : undefined;
  // Its failures show in the commands sent on it (a 503 to Meta); the shared client logs the outage.
  durable?.on('error', () => undefined);
  const store = deps.redis ? new WebhookStore(deps.redis, route.name, durable) : undefined;
  const worker =
    store && sealer
      ? new DeliveryWorker(store, sealer, log, { routeName: route.name, target, agent, timeoutMs: route.timeout, retryMinMs: s.retryMinMs, retryMaxMs: s.retryMaxMs, aad, metrics: deps.metrics })
      : undefined;
  const notStorable = !store ? 'REDIS_URL is not set' : !sealer ? 'WHATSAPP_QUEUE_KEY is not set' : undefined;
  let unwatch: (() => void) | undefined;

  function record(ctx: RequestContext, outcome: WebhookOutcome | 'subscribed', fields: EventFields<'webhook.whatsapp'> = {}): void {
    if (outcome !== 'subscribed') deps.metrics.countOutcome(route.name, outcome);
    log.security('webhook.whatsapp', { outcome, route: route.name, requestId: ctx.id, clientIp: ctx.address?.client.address, ...fields });
  }

  function reject(ctx: RequestContext, fail: (err: GatewayError) => void, err: GatewayError): void {
    record(ctx, 'rejected', { code: err.code, reason: err.detail });
    fail(err);
  }

  function describe(facts: NotificationFacts, matched: MatchedSecret): EventFields<'webhook.whatsapp'> {
    return {
      fields: facts.fields,
      messages: facts.messages,
      statuses: facts.statuses,
      phoneHashes: facts.phoneNumbers.slice(0, MAX_LOGGED_PHONES).map((p) => deps.identifiers.hash(p)),
      ...(matched === 'previous' ? { signedWith: 'previous app secret' } : {}),
    };
  }

  function answer(ctx: RequestContext, res: ServerResponse, status: 'forwarded' | 'queued' | 'duplicate'): void {
    ctx.reply.answer(res, 200, { body: { contentType: 'application/json; charset=utf-8', body: JSON.stringify({ status }) }, outcome: status === 'forwarded' ? 'forwarded' : 'answered' });
  }

  function handshake(ctx: RequestContext, res: ServerResponse, fail: (err: GatewayError) => void): void {
    if (!s.verifyToken) return reject(ctx, fail, new GatewayError('AUTH_UNAVAILABLE', 'WHATSAPP_VERIFY_TOKEN is not set'));
    let challenge: string;
    try {
      challenge = answerChallenge(ctx.target?.query ?? '', s.verifyToken);
    } catch (err) {
      return reject(ctx, fail, err as GatewayError);
    }
    record(ctx, 'subscribed');
    ctx.reply.answer(res, 200, { body: { contentType: 'text/plain; charset=utf-8', body: challenge } });
  }

  /** What the CRM API receives with the body: the hygiene of every proxied request, plus ours. */
  function upstreamRequest(ctx: RequestContext): { path: string; headers: OutgoingHttpHeaders } {
    const headers: OutgoingHttpHeaders = { ...buildUpstreamHeaders(ctx, route, false) };
    for (const framing of ['content-length', 'transfer-encoding', 'expect']) delete headers[framing];
    headers.host = route.preserveHost ? ctx.req.headers.host : target.host;
    headers[VERIFIED_HEADER] = 'sha256';
    const path = route.stripPrefix && route.path ? stripPrefix(ctx.path ?? '/', route.path) : (ctx.path ?? '/');
    return { path: ctx.target?.query ? `${path}?${ctx.target.query}` : path, headers };
  }

  async function notification(ctx: RequestContext, res: ServerResponse, fail: (err: GatewayError) => void, bodies: BodyBuffers): Promise<void> {
    if (!s.appSecret) return reject(ctx, fail, new GatewayError('AUTH_UNAVAILABLE', 'WHATSAPP_APP_SECRET is not set'));
    let body: Buffer;
    try {
      body = await bodies.read(ctx, route.maxBody);
    } catch (err) {
      if (!isGatewayError(err)) {
        ctx.reply.aborted();
        return;
      }
      reject(ctx, fail, err);
      ctx.req.resume(); // discard the rest; the refusal closes the connection
      return;
    }
    ctx.bytesIn = body.length;

    let facts: NotificationFacts;
    let matched: MatchedSecret;
    try {
      matched = verifySignature(ctx.req.headers['x-hub-signature-256'], body, { current: s.appSecret, previous: s.appSecretPrevious });
      facts = readNotification(body);
      refuseStale(facts, Date.now());
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      return reject(ctx, fail, err);
    }
    const about = describe(facts, matched);
    if (!store || !sealer || !worker) return reject(ctx, fail, unavailable(notStorable ?? 'no store'));

    const { path, headers } = upstreamRequest(ctx);
    const delivery: Delivery = { path, headers, body, requestId: ctx.id, receivedAt: Date.now() };
    const keys = facts.eventKeys.length > 0 ? facts.eventKeys : [`body:${createHash('sha256').update(body).digest('hex')}`];
    let accepted;
    try {
      accepted = await withTimeout(
        store.accept(keys, sealer.seal(encodeDelivery(delivery), aad), { seenTtlMs: SEEN_TTL_MS, maxQueued: s.maxQueued, token: worker.token, leaseMs: worker.lease }),
        STORE_TIMEOUT_MS,
      );
    } catch (err) {
      return reject(ctx, fail, unavailable(`store: ${(err as Error).message}`));
    }
    if (accepted.kind === 'full') return reject(ctx, fail, unavailable(`queue holds ${s.maxQueued} payloads`));
    if (s.waitAof) {
      // Not acknowledged until it is on Redis's disk. If this fails, Meta retries; the retry is a
      // duplicate of the stored payload (delivered once all the same), acknowledged only once
      // this check passes again (WAITAOF covers every earlier write of this process's connection,
      // so the original's too when this process stored it).
      try {
        await withTimeout(store.confirmDurable(STORE_TIMEOUT_MS), STORE_TIMEOUT_MS + 500);
      } catch (err) {
        return reject(ctx, fail, unavailable(`${accepted.kind === 'queued' ? `stored as ${accepted.id}` : 'a duplicate'} but not confirmed on disk: ${(err as Error).message}`));
      }
    }
    if (accepted.kind === 'duplicate') {
      record(ctx, 'duplicate', about);
      return answer(ctx, res, 'duplicate');
    }

    // Stored: from here on the payload is safe, whatever happens to this request.
    worker.nudge();
    const forwarded = accepted.leaseIsOurs && !worker.backingOff && (await worker.awaitDelivery(accepted.id, delivery, s.ackTimeoutMs));
    record(ctx, forwarded ? 'forwarded' : 'queued', { entry: accepted.id, ...about });
    answer(ctx, res, forwarded ? 'forwarded' : 'queued');
  }

  const handle: WebhookRoute['handle'] = (ctx, res, fail, bodies) => {
    const method = ctx.req.method;
    const work =
      method === 'POST'
        ? notification(ctx, res, fail, bodies)
        : method === 'GET'
          ? Promise.resolve(handshake(ctx, res, fail))
          : Promise.resolve(reject(ctx, fail, new GatewayError('METHOD_NOT_ALLOWED', `${method} on the WhatsApp webhook`, { allow: 'GET, POST' })));
    work.catch((err: unknown) => {
      log.app('error', 'unexpected error in the WhatsApp webhook', { route: route.name, requestId: ctx.id, error: err instanceof Error ? err.stack : String(err) });
      fail(new GatewayError('INTERNAL', err instanceof Error ? err.message : String(err)));
    });
  };

  return {
    handle,
    start() {
      if (!worker || !store) return;
      worker.start();
      unwatch ??= deps.metrics.watchQueue({ route: route.name, depth: () => store.depth(), oldestAgeMs: () => store.oldestAgeMs() });
    },
    async stop() {
      unwatch?.();
      unwatch = undefined;
      await worker?.stop();
      durable?.disconnect();
    },
  };
}

function unavailable(detail: string): GatewayError {
  return new GatewayError('WEBHOOK_UNAVAILABLE', detail, { 'retry-after': RETRY_AFTER_SECONDS });
}
