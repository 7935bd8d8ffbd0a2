import type { GatewayConfig } from '../config/schema.js';
import { loadClientCa, type ClientCa, type ClientCertMode } from '../tls/client-certs.js';

/** Everything the webhook needs from the config, read once at startup. */
export interface WhatsappSettings {
  readonly appSecret: string | undefined;
  readonly appSecretPrevious: string | undefined;
  readonly verifyToken: string | undefined;
  /** 32 bytes hex: AES-256-GCM key of queued payloads. */
  readonly queueKey: string | undefined;
  /** The queue key before a rotation: opens entries sealed with it until the queue drains. */
  readonly queueKeyPrevious: string | undefined;
  /** How long Meta's request waits for the CRM API before the payload is acknowledged as queued. */
  readonly ackTimeoutMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Queue length at which new payloads are refused (503, Meta retries) rather than stored. */
  readonly maxQueued: number;
  /** Acknowledge only after WAITAOF 1 0 confirms the local fsync (Redis 7.2+). */
  readonly waitAof: boolean;
  /** Meta's client certificate (WHATSAPP_MTLS) and its CA, read at startup: checked on every request; undefined: off. */
  readonly mtls: { readonly mode: ClientCertMode; readonly ca: ClientCa } | undefined;
}

export function whatsappSettings(cfg: GatewayConfig): WhatsappSettings {
  return {
    appSecret: cfg.secrets.whatsappAppSecret || undefined,
    appSecretPrevious: cfg.secrets.whatsappAppSecretPrevious || undefined,
    verifyToken: cfg.secrets.whatsappVerifyToken || undefined,
    queueKey: cfg.secrets.whatsappQueueKey || undefined,
    queueKeyPrevious: cfg.secrets.whatsappQueueKeyPrevious || undefined,
    ackTimeoutMs: cfg.whatsapp.ackTimeout,
    retryMinMs: cfg.whatsapp.retryMin,
    retryMaxMs: cfg.whatsapp.retryMax,
    maxQueued: cfg.whatsapp.maxQueued,
    waitAof: cfg.whatsapp.waitAof,
    mtls: cfg.whatsapp.mtls && cfg.whatsapp.mtlsCaFile ? { mode: cfg.whatsapp.mtls, ca: loadClientCa(cfg.whatsapp.mtlsCaFile) } : undefined,
  };
}
