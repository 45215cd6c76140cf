/** Byte classes of RFC 9110 / 9112 as lookup tables, shared by the head and chunked parsers. */

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;
export const SEMICOLON = 59;
export const COMMA = 44;

/** tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA. 1 for a token character. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** A field value byte that is not allowed: CTLs except HTAB, and DEL. obs-text (0x80–0xFF) is allowed. */
export function isBadValueChar(c: number): boolean {
  return (c < 0x20 && c !== HTAB) || c === 0x7f;
}

/** Hex digit value, -1 when not a hex digit. */
export function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** The empty line that ends a head. */
export const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Two bare LFs: a head terminated the lenient way, which this proxy rejects. */
export const BARE_LF_END = Buffer.from('\n\n', 'latin1');
export const CRLF = Buffer.from('\r\n', 'latin1');
