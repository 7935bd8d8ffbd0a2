import type { AlertType } from '../audit/alerts/rules.js';

/**
 * Every security event the gateway writes, with the fields its emitters set and one line on
 * what it means. Alerts, the overview and the offline report recognise events by name, so a
 * renamed event must fail to compile rather than silently switch a rule off (issue 17, part 2):
 * `Logger.security` accepts only these names and, for each, only these fields.
 * docs/security-events.md is generated from this table (scripts/security-events-doc.mjs) and
 * test/unit/log/events.test.ts checks the two against each other and against the emitters.
 *
 * The writer adds `time` and `event` to every line; a cluster worker adds `worker` and a CLI
 * process `actor` (ENVELOPE_FIELDS), which no entry repeats unless its emitter sets it too.
 */
export interface SecurityEventSpec {
  readonly fields: readonly string[];
  readonly summary: string;
}

/** Fields every alert carries (the audit logger's `raise`, src/audit/writer/); each alert adds its own. */
const ALERT = ['alert', 'subject', 'message'] as const;
/** The fields of a refusal's `request.denied` (src/log/access.ts, `deniedEvent`). */
const DENIED = ['requestId', 'code', 'detail', 'status', 'clientIp', 'route', 'method', 'host', 'path', 'query', 'user', 'kind', 'listener'] as const;
/** The fields of a block (src/containment/model.ts, `blockFields`). */
const BLOCK = ['kind', 'target', 'reason', 'until', 'createdAt', 'by', 'source', 'rule'] as const;

export const SECURITY_EVENTS = {
  'acme.account_key_created': { fields: ['file'], summary: 'A new ACME account key was generated and saved.' },
  'acme.certificate_issued': { fields: ['hosts', 'order', 'fence', 'validFrom', 'validTo', 'fingerprint256', 'tookMs'], summary: 'An ACME order completed and the new certificate is served.' },
  'acme.challenge_answered': { fields: ['type', 'host', 'clientIp', 'requestId'], summary: 'An ACME validation request (http-01 or tls-alpn-01) was answered.' },
  'acme.challenge_unknown': { fields: ['type', 'host', 'clientIp'], summary: 'A tls-alpn-01 handshake arrived for a host with no pending challenge.' },
  'acme.order_discarded': { fields: ['reason', 'fence', 'order'], summary: 'An issued certificate was not used because another instance took over the order lock.' },
  'acme.order_failed': { fields: ['error', 'failures', 'retryInMs', 'hosts', 'servedFingerprint256', 'servedValidTo'], summary: 'An ACME order failed; it is retried after a back-off.' },
  'acme.order_placed': { fields: ['order', 'hosts', 'challenge'], summary: 'An ACME certificate order was placed.' },

  'admin.access_reviewed': { fields: ['days', 'users', 'clients', 'liveTokens', 'flagged'], summary: 'The CLI access review (`access report`) was run.' },
  'admin.client_added': { fields: ['client', 'roles'], summary: 'The CLI added an API client.' },
  'admin.client_disabled': { fields: ['client'], summary: 'The CLI disabled an API client.' },
  'admin.client_enabled': { fields: ['client'], summary: 'The CLI enabled an API client again.' },
  'admin.clients_listed': { fields: [], summary: 'The CLI listed the API clients.' },
  'admin.migrated': { fields: ['applied'], summary: 'The CLI applied database migrations.' },
  'admin.overview_denied': { fields: ['requestId', 'reason', 'user', 'clientIp', 'path'], summary: 'A request for the security overview or its sign-in was refused.' },
  'admin.overview_viewed': { fields: ['requestId', 'user', 'clientIp', 'path', 'range', 'via'], summary: 'An admin viewed the security overview.' },
  'admin.token_issued': { fields: ['client', 'roles', 'tokenId', 'expiresAt'], summary: 'The CLI issued an access token for an API client.' },
  'admin.token_revoked': { fields: ['tokenId'], summary: 'The CLI revoked an access token.' },
  'admin.user_added': { fields: ['user', 'roles'], summary: 'The CLI added a user.' },
  'admin.user_disabled': { fields: ['user'], summary: 'The CLI disabled a user; their open sessions end.' },
  'admin.user_enabled': { fields: ['user'], summary: 'The CLI enabled a user again.' },
  'admin.user_password_set': { fields: ['user', 'sessionsEnded'], summary: "The CLI set a user's password; their open sessions end." },
  'admin.user_roles_set': { fields: ['user', 'roles'], summary: "The CLI replaced a user's roles." },
  'admin.user_shown': { fields: ['user'], summary: "The CLI showed a user's account." },
  'admin.users_listed': { fields: ['count'], summary: 'The CLI listed the users.' },

  'alert.account_locked': { fields: [...ALERT, 'user', 'clientIp', 'lockedForMs'], summary: 'Alert: an account or address was locked after repeated failed sign-ins.' },
  'alert.acme_failed': { fields: [...ALERT, 'error', 'failures', 'retryInMs', 'hosts'], summary: 'Alert: ACME certificate orders keep failing.' },
  'alert.event_loop_lag': { fields: [...ALERT, 'lagP99Ms', 'lagMaxMs', 'thresholdMs'], summary: 'Alert: event-loop lag is over its threshold.' },
  'alert.events_db_unavailable': { fields: [...ALERT, 'error'], summary: 'Alert: security events or chain heads cannot be written to PostgreSQL.' },
  'alert.failed_logins_ip': { fields: [...ALERT, 'clientIp', 'count', 'windowMs'], summary: 'Alert: many failed authentications from one address (IPv6: one /64).' },
  'alert.failed_logins_user': { fields: [...ALERT, 'user', 'clientIp', 'count', 'windowMs'], summary: 'Alert: many failed sign-ins for one user.' },
  'alert.log_backlog_full': { fields: [...ALERT, 'logStream', 'backlogBytes'], summary: 'Alert: a log backlog is full and lines are being dropped.' },
  'alert.log_recovered': { fields: [...ALERT, 'logStream', 'downMs', 'heldLines', 'error'], summary: 'Alert: a log stream that could not be written is written again.' },
  'alert.log_unwritable': { fields: [...ALERT, 'logStream', 'dir', 'error'], summary: 'Alert: a log stream cannot be written; lines are held in memory.' },
  'alert.memory_high': { fields: [...ALERT, 'rssBytes', 'thresholdBytes', 'heapRatio', 'threshold'], summary: 'Alert: resident memory or heap use is over its threshold.' },
  'alert.new_ip_for_user': { fields: [...ALERT, 'user', 'clientIp', 'knownAddresses'], summary: 'Alert: a user was seen from an address never seen for them.' },
  'alert.suspicious_rate_limited': { fields: [...ALERT, 'clientIp', 'count', 'windowMs'], summary: 'Alert: a burst of rate-limited requests from one address.' },
  'alert.suspicious_rejected_paths': { fields: [...ALERT, 'clientIp', 'count', 'windowMs'], summary: 'Alert: a burst of rejected paths from one address.' },
  'alert.upstream_down': { fields: [...ALERT, 'route', 'count', 'lastCode', 'windowMs'], summary: "Alert: a route's upstream keeps failing." },

  'assertion.key_created': { fields: ['file', 'kid'], summary: 'A new identity-assertion signing key was generated.' },
  'assertion.keys_loaded': { fields: ['file', 'signingKid', 'publishedKids'], summary: 'The identity-assertion keys were loaded (at start or on reload).' },

  'audit.chain_gap': { fields: ['stream', 'message'], summary: 'The log files end before the recorded chain head: lines were lost while the gateway was stopped.' },
  'audit.lines_dropped': { fields: ['level', 'stream', 'count', 'firstTime', 'lastTime'], summary: 'A log stream (access, security or app) records, in itself, how many lines it dropped while its backlog was full.' },
  'audit.log_removed': { fields: ['stream', 'file', 'reason', 'retentionDays'], summary: 'A log file past the retention period was deleted.' },

  'auth.account_change_unannounced': { fields: ['subject', 'error', 'effect'], summary: 'An account change could not be announced to the other gateways over Redis.' },
  'auth.factors_reset': { fields: ['user', 'totp', 'recoveryCodes', 'passkeys', 'sessionsEnded', 'registrySessionsEnded'], summary: "The CLI removed a user's second factors; their sessions end." },
  'auth.forward_auth_renewal': { fields: ['requestId', 'route', 'clientIp'], summary: 'A forward-auth check sent the browser to renew its session on the gateway.' },
  'auth.forward_auth_untrusted': { fields: ['requestId', 'peerIp', 'forwardedHost', 'forwardedUri'], summary: 'A forward-auth check came from a peer that is not a configured edge.' },
  'auth.lockout': { fields: ['requestId', 'subject', 'user', 'clientIp', 'failures', 'lockedForMs', 'surface'], summary: 'An account or address was locked after repeated failed sign-ins.' },
  'auth.login_failed': { fields: ['requestId', 'user', 'clientIp', 'addressGroup', 'reason', 'userFailures', 'ipFailures', 'surface'], summary: 'A sign-in (or client-credentials request) failed.' },
  'auth.login_locked': { fields: ['requestId', 'user', 'clientIp', 'addressGroup', 'detail', 'surface'], summary: 'A sign-in was refused because the account or address is locked.' },
  'auth.login_succeeded': { fields: ['requestId', 'user', 'roles', 'clientIp', 'method', 'factors', 'sessionId', 'tokenId', 'surface'], summary: 'A user signed in.' },
  'auth.logout': { fields: ['requestId', 'user', 'family', 'sessionId', 'clientIp', 'surface'], summary: 'A user signed out.' },
  'auth.mfa_challenged': { fields: ['requestId', 'user', 'factors', 'enrol', 'clientIp'], summary: 'A sign-in was asked for its second factor (or to enrol one).' },
  'auth.mfa_enrolled': { fields: ['requestId', 'user', 'factor', 'recoveryCodes', 'via', 'clientIp'], summary: 'A user enrolled a TOTP second factor.' },
  'auth.mfa_failed': { fields: ['requestId', 'user', 'reason', 'code', 'detail', 'clientIp', 'surface'], summary: 'A second-factor check failed.' },
  'auth.mfa_succeeded': { fields: ['requestId', 'user', 'factor', 'clientIp', 'surface'], summary: 'A second-factor check succeeded.' },
  'auth.oidc_refused': { fields: ['requestId', 'issuer', 'code', 'detail', 'clientIp'], summary: 'An OpenID Connect sign-in was refused.' },
  'auth.oidc_started': { fields: ['requestId', 'issuer', 'clientIp'], summary: 'A browser was sent to the OpenID Provider to sign in.' },
  'auth.oidc_unavailable': { fields: ['requestId', 'issuer', 'detail', 'clientIp'], summary: 'The OpenID Provider could not be reached.' },
  'auth.oidc_verified': { fields: ['requestId', 'issuer', 'user', 'email', 'groups', 'roles', 'clientIp'], summary: "The OpenID Provider's answer was verified." },
  'auth.passkey_registered': { fields: ['requestId', 'user', 'credentialId', 'recoveryCodes', 'via', 'clientIp'], summary: 'A user registered a passkey.' },
  'auth.recovery_code_used': { fields: ['requestId', 'user', 'remaining', 'clientIp', 'surface'], summary: 'A recovery code was used as a second factor.' },
  'auth.revocations_unverified': { fields: ['error', 'effect'], summary: 'The revocation subscription was lost; tokens are checked against the revocations known so far.' },
  'auth.session_family_revoked': { fields: ['family', 'accessTokenId', 'alsoRevoked'], summary: "A refresh token was reused: its session family's tokens were revoked." },
  'auth.session_rejected': { fields: ['requestId', 'code', 'detail', 'route', 'clientIp'], summary: 'A session cookie was refused.' },
  'auth.session_renewal_lost': { fields: ['requestId', 'user', 'family'], summary: "A session renewal's answer never reached the browser." },
  'auth.session_renewal_reissued': { fields: ['requestId', 'user', 'family', 'tokenId'], summary: 'A refresh token whose successor never reached the browser was renewed again.' },
  'auth.session_renewed': { fields: ['requestId', 'user', 'family', 'tokenId'], summary: 'A session was renewed with a rotated refresh token.' },
  'auth.session_replaced': { fields: ['requestId', 'user', 'family', 'previousUser', 'previousSessionId', 'clientIp'], summary: 'A sign-in replaced the session the browser already had.' },
  'auth.session_revoke_refused': { fields: ['requestId', 'user', 'sessionId', 'owner', 'clientIp', 'surface'], summary: 'A request to end a session was refused (unknown session or not the owner).' },
  'auth.session_revoked': { fields: ['sessionId', 'user', 'actor', 'reason', 'hosts', 'requestId', 'clientIp'], summary: 'A staff session was ended.' },
  'auth.site_data_cleared': { fields: ['requestId', 'host', 'user', 'family', 'clientIp'], summary: "A sign-out cleared one host's cookies and site data." },
  'auth.sso_code_issued': { fields: ['requestId', 'user', 'sessionId', 'host', 'for', 'clientIp'], summary: 'A single sign-on hand-off code was issued for another host.' },
  'auth.sso_refused': { fields: ['requestId', 'code', 'reason', 'host', 'clientIp', 'user', 'sessionId'], summary: 'A single sign-on hand-off was refused.' },
  'auth.sso_signed_in': { fields: ['requestId', 'user', 'sessionId', 'host', 'family', 'tokenId', 'factors', 'clientIp'], summary: 'A host began a session through a single sign-on hand-off.' },
  'auth.token_issued': { fields: ['requestId', 'client', 'roles', 'tokenId', 'expiresAt', 'via'], summary: 'POST /auth/token issued an access token to an API client.' },
  'auth.ws_ticket_issued': { fields: ['requestId', 'user', 'tokenId', 'host'], summary: 'A websocket ticket was issued.' },

  'backup.completed': { fields: ['file', 'database', 'bytes', 'plaintextBytes', 'tables', 'durationMs'], summary: 'A database backup was written.' },
  'backup.deleted': { fields: ['name', 'createdAt', 'verified', 'reason'], summary: 'A backup past its retention was deleted.' },
  'backup.failed': { fields: ['code', 'error', 'dir'], summary: 'A database backup failed.' },
  'backup.key_permissions': { fields: ['keyFile', 'warning'], summary: 'The backup key file has unsafe permissions.' },
  'backup.partial_removed': { fields: ['file'], summary: 'A partial backup left by an interrupted run was removed.' },
  'backup.remote_copied': { fields: ['file', 'bucket', 'key', 'endpoint'], summary: 'A backup was copied to remote storage.' },
  'backup.remote_failed': { fields: ['file', 'code', 'error'], summary: 'A backup could not be copied to remote storage.' },
  'backup.restore_failed': { fields: ['file', 'target', 'code', 'error'], summary: 'A backup restore failed.' },
  'backup.restored': { fields: ['file', 'target', 'tables', 'rows', 'force', 'durationMs'], summary: 'A backup was restored.' },
  'backup.retention_failed': { fields: ['error'], summary: 'Old backups could not be pruned.' },
  'backup.verified': { fields: ['file', 'tocEntries', 'durationMs'], summary: 'A backup was verified readable.' },
  'backup.verify_failed': { fields: ['file', 'code', 'error'], summary: 'A backup failed verification.' },

  'containment.auto_failed': { fields: ['rule', 'kind', 'target', 'error'], summary: 'Automatic containment could not store a block.' },
  'containment.auto_skipped': { fields: ['rule', 'alert', 'kind', 'target', 'why'], summary: 'Automatic containment did not block a target the configuration spares.' },
  'containment.auto_suppressed': { fields: ['rule', 'maxPerMinute', 'message'], summary: 'An automatic containment rule reached its blocks-per-minute limit.' },
  'containment.blocked': { fields: [...BLOCK, 'actor', 'alert'], summary: 'An address, network or user was blocked (by the CLI or automatically).' },
  'containment.blocks_unknown': { fields: ['waitedMs', 'effect'], summary: 'The blocks could not be read at startup; none is enforced yet.' },
  'containment.unblocked': { fields: ['kind', 'target', 'by', 'existed', 'reason'], summary: 'The CLI removed a block.' },

  'openapi.reload_failed': { fields: ['reason', 'route', 'source', 'error'], summary: "A route's OpenAPI spec could not be reloaded; the previous one stays." },
  'openapi.reloaded': { fields: ['reason', 'route', 'source', 'version', 'operations'], summary: "A route's OpenAPI spec was (re)loaded." },
  'openapi.violation': { fields: ['requestId', 'route', 'method', 'code', 'pointer', 'detail', 'clientIp'], summary: "A request was refused for not matching its route's OpenAPI spec." },

  'ratelimit.rejected': { fields: ['requestId', 'limit', 'bucket', 'clientIp', 'subject', 'max', 'windowMs', 'hits', 'suppressedSinceLast'], summary: 'Requests were refused by a rate limit (sampled: one event per bucket per window).' },
  'ratelimit.store_recovered': { fields: ['limit', 'store', 'failMode', 'requestsDuringOutage'], summary: "A rate limit's store answers again." },
  'ratelimit.store_unavailable': { fields: ['limit', 'store', 'failMode', 'effect', 'error'], summary: "A rate limit's store cannot be reached; requests pass or are refused per its fail mode." },

  'request.denied': { fields: DENIED, summary: 'The gateway refused a request itself (any 4xx but rate limiting).' },

  'store.postgres_connected': { fields: ['url', 'downMs', 'error'], summary: 'PostgreSQL was reached (at start or after an outage).' },
  'store.postgres_error': { fields: ['url', 'error'], summary: 'An idle PostgreSQL connection failed.' },
  'store.postgres_lost': { fields: ['url', 'error'], summary: 'PostgreSQL stopped answering.' },
  'store.redis_connected': { fields: ['url'], summary: 'Redis was reached (at start or after an outage).' },
  'store.redis_lost': { fields: ['url', 'error', 'sinceStartup'], summary: 'Redis stopped answering (or never answered since startup).' },

  'tls.certificate_generated': { fields: ['certFile'], summary: 'A self-signed development certificate was generated.' },
  'tls.certificate_reload_failed': { fields: ['reason', 'error', 'keptFingerprint256'], summary: 'The certificate files could not be reloaded; the current certificate stays.' },
  'tls.certificate_reloaded': { fields: ['reason', 'subject', 'validTo', 'fingerprint256'], summary: 'The certificate was reloaded from its files.' },
  'tls.connection_failed': { fields: ['error', 'clientIp'], summary: 'A TLS connection failed after its handshake (a TLS-layer error) and was closed.' },
  'tls.handshake_failed': { fields: ['error', 'clientIp'], summary: 'A TLS handshake failed.' },
  'tls.ticket_keys_rotated': { fields: ['workers'], summary: "The cluster's TLS session-ticket keys were rotated." },

  'webhook.client_cert_absent': { fields: ['route', 'requestId', 'clientIp', 'servername', 'mode'], summary: 'A webhook request came without the client certificate its route asks for.' },
  'webhook.client_cert_rejected': { fields: ['route', 'requestId', 'clientIp', 'servername', 'mode', 'reason', 'subject', 'issuer', 'fingerprint256', 'validTo'], summary: "A webhook request's client certificate was refused." },
  'webhook.whatsapp': { fields: ['outcome', 'route', 'requestId', 'clientIp', 'code', 'reason', 'entry', 'status', 'queuedMs', 'fields', 'messages', 'statuses', 'phoneHashes', 'signedWith'], summary: 'A WhatsApp webhook notification was handled (see `outcome`).' },
  'websocket.closed': { fields: ['requestId', 'closeCode', 'reason', 'user', 'tokenId', 'route', 'clientIp'], summary: 'The gateway closed a websocket (revocation, expiry, disabled account, shutdown).' },
} as const satisfies Record<string, SecurityEventSpec>;

/** The name of a registered security event. */
export type SecurityEvent = keyof typeof SECURITY_EVENTS;

/** The fields declared for `E`. */
export type FieldName<E extends SecurityEvent> = (typeof SECURITY_EVENTS)[E]['fields'][number];

/** Fields a wrapping logger adds to any event: a cluster worker's id, the CLI's operating-system user. */
const WRAPPER_FIELDS = ['worker', 'actor'] as const;
type WrapperField = (typeof WRAPPER_FIELDS)[number];

/** Fields on every line: `time` and `event` from the writer, then WRAPPER_FIELDS where they apply. */
export const ENVELOPE_FIELDS = ['time', 'event', ...WRAPPER_FIELDS] as const;

/**
 * The fields `E` may carry. Keyed by every field name of the registry, so a wrapper generic in
 * the event can still read `fields.outcome`; a name no event declares is an excess property
 * and one declared only for other events is typed `never`: both fail to compile.
 */
export type EventFields<E extends SecurityEvent> = {
  [K in Exclude<FieldName<SecurityEvent>, WrapperField>]?: K extends FieldName<E> ? unknown : never;
} & { [K in WrapperField]?: unknown };

/** The event each alert type is written as (the audit logger's `raise`). */
type AlertEvent = `alert.${AlertType}`;

// Compile-time: each alert type has its registry entry, and no entry names an alert type that
// does not exist (a type renamed in src/audit/alerts/rules.ts fails here).
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ALERTS_REGISTERED: Exact<AlertEvent, Extract<SecurityEvent, `alert.${string}`>> = true;
void ALERTS_REGISTERED;
