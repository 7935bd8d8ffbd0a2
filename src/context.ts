import type { IncomingMessage } from 'node:http';
import type { ClientAddress } from './net/client-ip.js';
import type { RequestTarget } from './routing/request-target.js';
import type { CompiledRoute } from './routes.js';
import type { Reply } from './reply.js';
import type { ProtocolBearer } from './auth/ws-bearer.js';
import type { Factor } from './auth/sessions/types.js';

/** Who the request is, once authentication has run. */
export interface Principal {
  subject: string;
  roles: readonly string[];
  method: 'jwt' | 'session' | 'whatsapp';
  /** The token's `jti`, when a token authenticated the request. */
  tokenId?: string | undefined;
  /** When the credentials expire (ms since epoch): websockets are closed then. */
  expiresAt?: number | undefined;
  /** The staff session (src/auth/sessions) a session token belongs to: its `sid` claim. */
  sessionId?: string | undefined;
  /** The factors proved at sign-in (the token's `amr` claim). */
  factors?: Factor[] | undefined;
}

/** What the gateway did with a request, for the access log. */
export type Outcome = 'forwarded' | 'answered' | 'denied' | 'failed' | 'aborted';

/**
 * State shared by the steps of one request or websocket upgrade. Steps fill it in pipeline
 * order; nothing else is hung on `req`.
 */
export interface RequestContext {
  readonly id: string;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  readonly kind: 'http' | 'upgrade';
  readonly req: IncomingMessage;
  readonly secure: boolean;
  /** TLS SNI server name, normalized, when the client sent one. */
  readonly servername: string | undefined;
  address?: ClientAddress;
  target?: RequestTarget;
  /** The normalized path: routing, policy, logging and forwarding all use this one. */
  path?: string;
  route?: CompiledRoute;
  principal?: Principal;
  /** What the client is told: status, outcome, error, the headers and cookies steps add. */
  readonly reply: Reply;
  /**
   * Called when the response closes, with whether its headers were sent. When they were not
   * (the client went away first), nothing set above reached it: a session renewal rolls
   * itself back through this, and until then counts as pending.
   */
  onResponseClosed?: ((headersSent: boolean) => void)[];
  /** A websocket token offered as a `bearer.<jwt>` subprotocol: the 101 must answer the offer. */
  protocolBearer?: ProtocolBearer | undefined;
  /**
   * The request body, when a step had to read it whole (OpenAPI validation of a JSON body): the
   * forwarder then sends these bytes, never the stream again.
   */
  body?: Buffer;
  bytesIn: number;
  bytesOut: number;
  upstreamTimedOut?: boolean;
  /** Milliseconds from forwarding to the upstream's response head: the upstream's own time, not the client's. */
  upstreamMs?: number;
  /**
   * Set when this is an edge proxy's forward-auth check (src/auth/forward-auth/): target, path,
   * route and address then describe the original request the edge asked about.
   */
  forwardAuth?: { readonly edge: string; readonly method: string };
}
