/** `admin`: the security overview on the admin listener (`/security`) and its sign-in. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { duration, list } from './fields.js';

export const adminSchema = z
  .strictObject({
    /** Time zone the overview shows times in (IANA name); unset: the process's own (TZ), else UTC. */
    timeZone: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'not a time zone name (e.g. Europe/Madrid, America/Bogota, UTC)')
      .optional(),
    /** Lifetime of a browser sign-in to the overview (absolute, not renewed by use). */
    sessionTtl: duration.prefault(DEFAULTS.adminSessionTtl).pipe(z.number().min(60_000, 'at least 1m').max(12 * 3_600_000, 'at most 12h')),
    /**
     * Host names the overview answers to besides loopback (127.0.0.1, [::1], localhost): any
     * other Host is refused, so a DNS-rebinding page cannot reach it with the admin's cookie.
     */
    hosts: list.prefault([]),
  })
  .prefault({});
