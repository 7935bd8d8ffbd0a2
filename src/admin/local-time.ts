/**
 * Times on the overview in the reviewer's time zone (`admin.timeZone`, else the process's own,
 * which Node takes from TZ, else UTC), formatted on the server with Intl: the page has no script.
 */
export interface LocalTime {
  readonly zone: string;
  /** `2026-12-06 11:00` */
  dateTime(iso: string): string;
  /** `11:00` for hourly buckets, `06 Dec 18:00` for 6-hour ones, `06 Dec` for days. */
  bucket(iso: string, bucketMinutes: number): string;
  /** The zone's short name at that instant (`CET`, `GMT-5`). */
  zoneName(iso: string): string;
}

export function defaultTimeZone(configured: string | undefined): string {
  return configured ?? (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
}

export function localTime(zone: string): LocalTime {
  const full = new Intl.DateTimeFormat('en-GB', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const day = new Intl.DateTimeFormat('en-GB', { timeZone: zone, day: '2-digit', month: 'short' });
  const hour = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const name = new Intl.DateTimeFormat('en-GB', { timeZone: zone, timeZoneName: 'short' });
  const parts = (f: Intl.DateTimeFormat, iso: string): Record<string, string> => Object.fromEntries(f.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return {
    zone,
    dateTime(iso) {
      const p = parts(full, iso);
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
    },
    bucket(iso, bucketMinutes) {
      if (bucketMinutes < 360) return hour.format(new Date(iso));
      if (bucketMinutes < 1440) return `${day.format(new Date(iso))} ${hour.format(new Date(iso))}`;
      return day.format(new Date(iso));
    },
    zoneName(iso) {
      return parts(name, iso).timeZoneName ?? zone;
    },
  };
}
