import { Gauge } from 'prom-client';
import { metrics } from '../metrics/registry.js';
import type { CertificateInfo } from './certificates.js';

/** The certificates being served, each read when scraped, so a hot reload shows at the next scrape. */
const served = new Set<() => CertificateInfo>();

/**
 * When the served certificate expires, for an alert such as
 * `crmgw_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400`. With several served
 * (tests start gateways side by side) the earliest counts: it is the one that fails first.
 */
export const certificateExpiry = new Gauge({
  name: 'crmgw_tls_certificate_expiry_timestamp_seconds',
  help: 'When the certificate the HTTPS listener serves stops being valid (Unix time, seconds); updated on reload.',
  registers: [metrics],
  collect() {
    const ends = [...served].map((current) => current().validTo.getTime() / 1000);
    // No certificate served, no sample: a default 0 would read as expired since 1970.
    if (ends.length > 0) this.set(Math.min(...ends));
    else this.remove({});
  },
});

/** Reports `current()` (the certificate in use now) in the expiry gauge; returns the way to stop. */
export function reportCertificate(current: () => CertificateInfo): () => void {
  served.add(current);
  return () => {
    served.delete(current);
  };
}
