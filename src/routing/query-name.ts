/**
 * A query parameter's name as an application reads it (`+` is a space, percent-escapes
 * decoded); a malformed escape leaves the name as it came. The audit log's redaction and the
 * websocket ticket both match names this way, so `ws%5Ftoken` is `ws_token` to both.
 */
export function decodeQueryName(name: string): string {
  if (!name.includes('%') && !name.includes('+')) return name;
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}
