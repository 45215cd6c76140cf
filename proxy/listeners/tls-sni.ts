/**
 * Reads the server name (SNI) from a TLS ClientHello without terminating TLS:
 * the proxy passes TLS through and only records where it was going.
 * RFC 8446 §4.1.2 (ClientHello) and RFC 6066 §3 (server_name extension).
 */

/** Bytes needed before the whole first TLS record is in `buf`; 0 when it is complete. */
export function tlsRecordBytesMissing(buf: Buffer): number {
  if (buf.length < 5) return 5 - buf.length;
  const recordLength = buf.readUInt16BE(3);
  return Math.max(0, 5 + recordLength - buf.length);
}

/**
 * The SNI host name in the first record of `buf`, '' when absent or not
 * parseable (a ClientHello split over several records keeps its SNI unseen;
 * the connection still passes through).
 */
export function readSni(buf: Buffer): string {
  if (buf.length < 5 || buf[0] !== 0x16) return '';
  const end = Math.min(buf.length, 5 + buf.readUInt16BE(3));
  let p = 5;
  if (p + 4 > end || buf[p] !== 0x01) return ''; // handshake type client_hello
  p += 4; // type + 24-bit length
  p += 2 + 32; // legacy_version + random
  if (p + 1 > end) return '';
  p += 1 + (buf[p] as number); // session id
  if (p + 2 > end) return '';
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (p + 1 > end) return '';
  p += 1 + (buf[p] as number); // compression methods
  if (p + 2 > end) return '';
  const extensionsEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extensionsEnd) {
    const type = buf.readUInt16BE(p);
    const length = buf.readUInt16BE(p + 2);
    p += 4;
    if (p + length > extensionsEnd) return '';
    if (type === 0) {
      // server_name_list: u16 length, then entries of (u8 type, u16 length, name)
      let q = p + 2;
      const listEnd = p + length;
      while (q + 3 <= listEnd) {
        const nameType = buf[q] as number;
        const nameLength = buf.readUInt16BE(q + 1);
        q += 3;
        if (q + nameLength > listEnd) return '';
        if (nameType === 0) return buf.toString('latin1', q, q + nameLength).toLowerCase();
        q += nameLength;
      }
      return '';
    }
    p += length;
  }
  return '';
}
