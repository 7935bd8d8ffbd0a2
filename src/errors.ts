/**
 * The one registry of errors the gateway answers with. Codes are stable: clients, logs and
 * docs rely on them. Never reuse or rename a code; add a new one.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request could not be parsed.' },
  BAD_REQUEST_TARGET: { status: 400, message: 'The request target is malformed or not allowed.' },
  PATH_REJECTED: { status: 400, message: 'The request path is ambiguous or unsafe.' },
  HOST_INVALID: { status: 400, message: 'The Host header is missing, repeated or malformed.' },
  HEADER_INVALID: { status: 400, message: 'A request header is repeated or malformed.' },
  AUTH_REQUIRED: { status: 401, message: 'Authentication is required.' },
  AUTH_UNAVAILABLE: { status: 401, message: 'This route requires an authentication method that is not enabled.' },
  AUTH_INVALID: { status: 401, message: 'The credentials are not valid.' },
  AUTH_EXPIRED: { status: 401, message: 'The credentials have expired.' },
  AUTH_REVOKED: { status: 401, message: 'The credentials have been revoked.' },
  AUTH_AMBIGUOUS: { status: 401, message: 'Credentials were sent in more than one place.' },
  AUTH_FAILED: { status: 401, message: 'Wrong user name or password.' },
  AUTH_DISABLED: { status: 401, message: 'This account is disabled.' },
  WS_TICKET_INVALID: { status: 401, message: 'The websocket ticket is unknown, used or expired.' },
  OIDC_UNAVAILABLE: { status: 503, message: 'Sign-in with the identity provider is not available right now; retry shortly.' },
  OIDC_STATE_INVALID: { status: 400, message: 'This sign-in is unknown, already used or expired; start it again.' },
  OIDC_ISSUER_MISMATCH: { status: 400, message: 'The sign-in answer did not come from the configured identity provider.' },
  OIDC_PROVIDER_REFUSED: { status: 401, message: 'The identity provider did not sign you in.' },
  OIDC_TOKEN_INVALID: { status: 401, message: 'The identity provider\'s token could not be verified.' },
  OIDC_TOKEN_EXPIRED: { status: 401, message: 'The identity provider\'s token has expired.' },
  OIDC_EMAIL_UNVERIFIED: { status: 403, message: 'Your email address is not verified at the identity provider.' },
  OIDC_NOT_ALLOWED: { status: 403, message: 'Your account at the identity provider may not sign in here.' },
  OIDC_PROVIDER_ERROR: { status: 502, message: 'The identity provider sent an invalid answer.' },
  MFA_INVALID: { status: 401, message: 'The second-factor code is not valid.' },
  MFA_REPLAYED: { status: 401, message: 'This code has already been used; wait for the next one.' },
  MFA_EXPIRED: { status: 401, message: 'This sign-in step expired or is unknown; sign in again.' },
  PASSKEY_INVALID: { status: 401, message: 'The passkey could not be verified.' },
  MFA_REQUIRED: { status: 403, message: 'This route requires a second factor.' },
  FORWARD_AUTH_UNTRUSTED: { status: 403, message: 'Forward-auth checks are answered for the configured edge proxies only.' },
  FORWARD_AUTH_BAD_REQUEST: { status: 400, message: 'The forward-auth check does not say which request it is about.' },
  AUTH_SSO_CODE_INVALID: { status: 400, message: 'This sign-in link is invalid, already used or expired; open the page again.' },
  AUTH_SSO_STATE_INVALID: { status: 400, message: 'This sign-in did not start in this browser; open the page again.' },
  AUTH_SESSION_NOT_FOUND: { status: 404, message: 'This session is unknown or has already ended.' },
  ASSERTION_UNAVAILABLE: { status: 503, message: 'Your identity cannot be passed on to the service right now; retry shortly.' },
  IP_DENIED: { status: 403, message: 'Access from this address is not allowed.' },
  ROLE_FORBIDDEN: { status: 403, message: 'Your roles do not allow this route.' },
  CSRF_REJECTED: { status: 403, message: 'The request did not come from this site.' },
  CORS_ORIGIN_DENIED: { status: 403, message: 'This origin is not allowed.' },
  CLIENT_BLOCKED: { status: 403, message: 'Access from this address is blocked.' },
  ACCOUNT_BLOCKED: { status: 403, message: 'This account is blocked.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No route matches this host and path.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time.' },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than this route allows.' },
  URI_TOO_LONG: { status: 414, message: 'The request target is too long.' },
  MISDIRECTED_REQUEST: { status: 421, message: 'The Host header does not match the TLS server name.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  AUTH_LOCKED: { status: 429, message: 'Too many failed logins; try again later.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  UPGRADE_NOT_ALLOWED: { status: 400, message: 'This upgrade is not allowed on this route.' },
  SITE_CLEAR_INVALID: { status: 400, message: 'This sign-out link is invalid or has expired.' },
  INTERNAL: { status: 500, message: 'The gateway failed to handle this request.' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'The upstream service is unavailable.' },
  UPSTREAM_BAD_RESPONSE: { status: 502, message: 'The upstream service sent an invalid response.' },
  SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down; retry shortly.' },
  AUDIT_UNAVAILABLE: { status: 503, message: 'Requests cannot be recorded right now; retry shortly.' },
  RATE_LIMIT_UNAVAILABLE: { status: 503, message: 'Request limits cannot be checked right now; retry shortly.' },
  AUTH_STORE_UNAVAILABLE: { status: 503, message: 'Credentials cannot be checked right now; retry shortly.' },
  ROUTE_MAINTENANCE: { status: 503, message: 'This service is closed for maintenance; retry later.' },
  BODY_BUFFERS_FULL: { status: 503, message: 'The gateway is reading too many request bodies right now; retry shortly.' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream service did not answer in time.' },
  WEBHOOK_PAYLOAD_INVALID: { status: 400, message: 'The webhook payload is not a valid WhatsApp notification.' },
  WEBHOOK_STALE: { status: 400, message: 'The webhook events are too old to be accepted.' },
  WEBHOOK_SIGNATURE_INVALID: { status: 401, message: 'The webhook signature is missing or does not match.' },
  WEBHOOK_VERIFY_FAILED: { status: 403, message: 'The webhook verification request was refused.' },
  WEBHOOK_UNAVAILABLE: { status: 503, message: 'The webhook cannot store payloads right now; retry later.' },
  WEBHOOK_CLIENT_CERT_REQUIRED: { status: 403, message: 'This webhook requires a client certificate.' },
  WEBHOOK_CLIENT_CERT_INVALID: { status: 403, message: 'The client certificate is not accepted for this webhook.' },
  ACME_CHALLENGE_UNKNOWN: { status: 404, message: 'No pending ACME challenge has this token.' },
  ACME_CHALLENGE_UNAVAILABLE: { status: 503, message: 'ACME challenges cannot be looked up right now; retry shortly.' },
  API_PATH_UNKNOWN: { status: 404, message: 'This path is not part of the API.' },
  API_METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed on this path of the API.' },
  API_PARAMETER_INVALID: { status: 400, message: 'A path, query or header parameter does not match the API description.' },
  API_CONTENT_TYPE_UNSUPPORTED: { status: 415, message: 'The API does not take a body of this content type here.' },
  API_BODY_MALFORMED: { status: 400, message: 'The request body is not well-formed JSON.' },
  API_BODY_INVALID: { status: 400, message: 'The request body does not match the API description.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** The challenge of a 401 raised without one: the gateway's realm. */
const FALLBACK_CHALLENGE = 'Bearer realm="crm-gateway"';
/**
 * Meta's webhook signature has no HTTP auth scheme; naming its header as the scheme tells an
 * operator what is missing without pretending a bearer token would do.
 */
const FALLBACK_CHALLENGES: Partial<Record<ErrorCode, string>> = { WEBHOOK_SIGNATURE_INVALID: 'X-Hub-Signature-256 realm="whatsapp"' };

/**
 * A refusal or failure with a stable code. `detail` is for the security log only and is
 * never sent to the client.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Where in the request the refusal points (a JSON pointer such as `/body/email`): told to the
   * client, since it names a place the client chose and never a value it sent.
   */
  readonly pointer: string | undefined;

  constructor(code: ErrorCode, detail?: string, headers: Record<string, string> = {}, pointer?: string) {
    super(`${code}${detail ? `: ${detail}` : ''}`);
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.detail = detail;
    this.pointer = pointer;
    // RFC 9110 §15.5.2: a 401 MUST carry WWW-Authenticate. The auth steps set the route's own
    // (src/auth/challenge.ts); this backstop covers any 401 raised without one.
    this.headers = this.status === 401 && headers['www-authenticate'] === undefined ? { ...headers, 'www-authenticate': FALLBACK_CHALLENGES[code] ?? FALLBACK_CHALLENGE } : headers;
  }

  get publicMessage(): string {
    return ERRORS[this.code].message;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
