/** `alerts`: what raises an alert (src/audit/alerts.ts) and where alerts go. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { bool, duration, httpUrl, size } from './fields.js';

const count = z.number().int().positive();

export const alertsSchema = z
  .strictObject({
    /** JSON POST of every alert (with retries); unset: alerts go to the logs only. */
    webhookUrl: httpUrl.optional(),
    /** The same alert (type and subject) is not raised again within this time. */
    cooldown: duration.prefault(DEFAULTS.alertCooldown),
    failedLogins: z
      .strictObject({
        window: duration.prefault(DEFAULTS.alertFailedLoginWindow),
        perUser: count.default(DEFAULTS.alertFailedLoginsPerUser),
        perIp: count.default(DEFAULTS.alertFailedLoginsPerIp),
      })
      .prefault({}),
    newIp: bool.default(true),
    suspicious: z
      .strictObject({
        window: duration.prefault(DEFAULTS.alertSuspiciousWindow),
        rateLimited: count.default(DEFAULTS.alertRateLimitedPerIp),
        rejectedPaths: count.default(DEFAULTS.alertRejectedPathsPerIp),
      })
      .prefault({}),
    upstreamDown: z
      .strictObject({ window: duration.prefault(DEFAULTS.alertUpstreamWindow), errors: count.default(DEFAULTS.alertUpstreamErrors) })
      .prefault({}),
    resources: z
      .strictObject({
        interval: duration.prefault(DEFAULTS.alertResourceInterval),
        eventLoopLag: duration.prefault(DEFAULTS.alertEventLoopLag),
        maxRss: size.prefault(DEFAULTS.alertMaxRss),
        maxHeapRatio: z.number().gt(0).max(1).default(DEFAULTS.alertMaxHeapRatio),
      })
      .prefault({}),
  })
  .prefault({});
