import { Gauge, type Registry } from 'prom-client';
import type { CertificateInfo } from './certificates.js';

/** The TLS listener's metrics, registered on the gateway's registry. */
export interface TlsMetrics {
  /** Reports `current()` (the certificate in use now) in the expiry gauge; returns the way to stop. */
  reportCertificate(current: () => CertificateInfo): () => void;
}

/** Registers the TLS metrics on `registry` (once per registry: a second call throws). */
export function createTlsMetrics(registry: Registry): TlsMetrics {
  /** The certificates being served, each read when scraped, so a hot reload shows at the next scrape. */
  const served = new Set<() => CertificateInfo>();
  /**
   * When the served certificate expires, for an alert such as
   * `crmgw_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400`. With several served
   * (several listeners on one registry) the earliest counts: it is the one that fails first.
   */
  new Gauge({
    name: 'crmgw_tls_certificate_expiry_timestamp_seconds',
    help: 'When the certificate the HTTPS listener serves stops being valid (Unix time, seconds); updated on reload.',
    registers: [registry],
    collect() {
      const ends = [...served].map((current) => current().validTo.getTime() / 1000);
      // No certificate served, no sample: a default 0 would read as expired since 1970.
      if (ends.length > 0) this.set(Math.min(...ends));
      else this.remove({});
    },
  });
  return {
    reportCertificate(current) {
      served.add(current);
      return () => {
        served.delete(current);
      };
    },
  };
}
