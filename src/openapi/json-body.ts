import { GatewayError } from '../errors.js';

/**
 * How deep a JSON body may nest. CRM records nest a few levels; V8's JSON.parse copes with far
 * more, but what comes after (schema validation, the application's own parser) recurses.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(detail: string): GatewayError {
  return new GatewayError('API_BODY_MALFORMED', detail, {}, '/body');
}

/**
 * The body as JSON, or API_BODY_MALFORMED: not UTF-8, not JSON, or nested deeper than
 * MAX_JSON_DEPTH. The depth is read by one linear scan of the bytes before anything parses
 * them, so a body of 10,000 opening brackets costs a scan, not a recursion.
 */
export function parseJsonBody(body: Buffer): unknown {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) throw malformed(`JSON nested deeper than ${MAX_JSON_DEPTH} levels (byte ${i})`);
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw malformed('body is not UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8's message names a position, never more than a token of the body: kept off the detail anyway.
    throw malformed(`body is not JSON (${err instanceof SyntaxError ? 'syntax error' : 'parse failed'})`);
  }
}
