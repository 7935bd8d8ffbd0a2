/** Names the logger itself sets on each stream's lines; a caller's field of that name is renamed `_name`. */
export const ACCESS_OWN = new Set(['time']);
export const SECURITY_OWN = new Set(['time', 'event']);
export const APP_OWN = new Set(['time', 'level', 'message']);

/** Fields with the logger's own names renamed, so no caller value can pose as a line's time or event. */
export function ownFields(fields: Record<string, unknown>, own: ReadonlySet<string>): Record<string, unknown> {
  if (!Object.keys(fields).some((k) => own.has(k))) return fields;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[own.has(k) ? `_${k}` : k] = v;
  return out;
}
