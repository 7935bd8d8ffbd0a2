/**
 * Control and format characters that a terminal or a reader acts on instead of showing: C0 and
 * C1 controls (newline, ESC and CSI start ANSI sequences), DEL, bidi overrides, zero-width
 * characters, line and paragraph separators.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/**
 * A string safe to print for a person: every such character as a visible `\u{…}` escape.
 * Log lines are JSON, so the files themselves are safe; but values a client chose (a login
 * name, a path) are decoded when read back, and printed raw they could fake an extra result
 * line in `audit search`, recolour or erase the terminal, or reverse a name on screen.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => `\\u{${(ch.codePointAt(0) as number).toString(16)}}`);
}
