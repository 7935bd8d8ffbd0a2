import { DEFAULTS } from './defaults.js';

/**
 * The only module that reads `process.env`. Each environment variable the gateway honours is
 * mapped once to its place in the config; the environment wins over the YAML file.
 */
export const ENV_SETTINGS = [
  ['GATEWAY_ENV', ['env']],
  ['GATEWAY_DOMAIN', ['domain']],
  ['LISTEN_ADDRESS', ['listen', 'address']],
  ['HTTPS_PORT', ['listen', 'httpsPort']],
  ['HTTP_PORT', ['listen', 'httpPort']],
  ['ADMIN_PORT', ['listen', 'adminPort']],
  ['PUBLIC_HTTPS_PORT', ['listen', 'publicHttpsPort']],
  ['TLS_CERT_FILE', ['tls', 'certFile']],
  ['TLS_KEY_FILE', ['tls', 'keyFile']],
  ['HSTS_PRELOAD', ['tls', 'hstsPreload']],
  ['ACME_DIRECTORY_URL', ['tls', 'acme', 'directoryUrl']],
  ['ACME_EMAIL', ['tls', 'acme', 'email']],
  ['ACME_CA_FILE', ['tls', 'acme', 'caFile']],
  ['ACME_CHALLENGE', ['tls', 'acme', 'challenge']],
  ['FORCE_HTTPS', ['forceHttps']],
  ['TRUSTED_PROXIES', ['trustedProxies']],
  ['CORS_ORIGINS', ['corsOrigins']],
  ['API_SECRET_KEY', ['secrets', 'apiSecretKey']],
  ['API_SECRET_KEY_PREVIOUS', ['secrets', 'apiSecretKeyPrevious']],
  ['JWT_ISSUER', ['auth', 'issuer']],
  ['JWT_AUDIENCE', ['auth', 'audience']],
  ['JWT_MAX_TTL', ['auth', 'maxTokenTtl']],
  ['GATEWAY_ASSERTION_KEY_FILE', ['assertion', 'keyFile']],
  ['GATEWAY_ASSERTION_ISSUER', ['assertion', 'issuer']],
  ['OIDC_ISSUER', ['auth', 'oidc', 'issuer']],
  ['OIDC_CLIENT_ID', ['auth', 'oidc', 'clientId']],
  ['OIDC_CLIENT_SECRET', ['auth', 'oidc', 'clientSecret']],
  ['OIDC_CA_FILE', ['auth', 'oidc', 'caFile']],
  ['OIDC_ALLOWED_EMAIL_DOMAINS', ['auth', 'oidc', 'allowedEmailDomains']],
  ['OIDC_DEFAULT_ROLES', ['auth', 'oidc', 'defaultRoles']],
  ['WHATSAPP_APP_SECRET', ['secrets', 'whatsappAppSecret']],
  ['WHATSAPP_VERIFY_TOKEN', ['secrets', 'whatsappVerifyToken']],
  ['WHATSAPP_APP_SECRET_PREVIOUS', ['secrets', 'whatsappAppSecretPrevious']],
  ['WHATSAPP_QUEUE_KEY', ['secrets', 'whatsappQueueKey']],
  ['WHATSAPP_QUEUE_KEY_PREVIOUS', ['secrets', 'whatsappQueueKeyPrevious']],
  ['WHATSAPP_MTLS', ['whatsapp', 'mtls']],
  ['WHATSAPP_MTLS_CA_FILE', ['whatsapp', 'mtlsCaFile']],
  ['REDIS_URL', ['stores', 'redisUrl']],
  ['REDIS_PASSWORD', ['stores', 'redisPassword']],
  ['REDIS_SENTINELS', ['stores', 'redisSentinels']],
  ['REDIS_SENTINEL_NAME', ['stores', 'redisSentinelName']],
  ['GATEWAY_WORKERS', ['server', 'workers']],
  ['DATABASE_URL', ['stores', 'databaseUrl']],
  ['DATA_DIR', ['stores', 'dataDir']],
  ['LOG_LEVEL', ['log', 'level']],
  ['LOG_DIR', ['log', 'dir']],
  ['LOG_RETENTION_DAYS', ['log', 'retentionDays']],
  ['LOG_HASH_KEY', ['log', 'hashKey']],
  ['LOG_MAX_BACKLOG', ['log', 'maxBacklog']],
  ['LOG_NODE', ['log', 'node']],
  ['AUDIT_FAIL_CLOSED', ['log', 'failClosed']],
  ['ALERT_WEBHOOK_URL', ['alerts', 'webhookUrl']],
  ['BACKUP_ENABLED', ['backup', 'enabled']],
  ['BACKUP_SCHEDULE', ['backup', 'schedule']],
  ['BACKUP_RETENTION_DAYS', ['backup', 'retentionDays']],
  ['BACKUP_DIR', ['backup', 'dir']],
  ['BACKUP_KEY_FILE', ['backup', 'keyFile']],
  ['BACKUP_DATABASE_URL', ['backup', 'databaseUrl']],
  ['BACKUP_S3_BUCKET', ['backup', 's3', 'bucket']],
  ['BACKUP_S3_ENDPOINT', ['backup', 's3', 'endpoint']],
  ['BACKUP_S3_REGION', ['backup', 's3', 'region']],
  ['BACKUP_S3_PREFIX', ['backup', 's3', 'prefix']],
  ['AWS_ACCESS_KEY_ID', ['backup', 's3', 'accessKeyId']],
  ['AWS_SECRET_ACCESS_KEY', ['backup', 's3', 'secretAccessKey']],
  ['FORWARD_AUTH_HOST', ['forwardAuth', 'host']],
] as const satisfies readonly (readonly [string, readonly string[]])[];

export type Env = Readonly<Record<string, string | undefined>>;

/** Values used by `${VAR}` in the YAML file when the variable is unset: the settings' own defaults. */
export const INTERPOLATION_DEFAULTS: Env = {
  GATEWAY_DOMAIN: DEFAULTS.domain,
  CORS_ORIGINS: DEFAULTS.corsOrigins.join(','),
};

export function processEnv(): Env {
  return process.env;
}

/** Where the config file is: `GATEWAY_CONFIG`, else config/gateway.yaml. */
export function configPathFromEnv(env: Env): string {
  return env.GATEWAY_CONFIG || 'config/gateway.yaml';
}

/** The environment as a partial config object, plus which env name fed which path. */
export function envOverlay(env: Env): { overlay: Record<string, unknown>; sources: Map<string, string> } {
  const overlay: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const [name, path] of ENV_SETTINGS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let node = overlay;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1] as string] = value;
    sources.set(path.join('.'), name);
  }
  return { overlay, sources };
}
