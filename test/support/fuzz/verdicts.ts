/**
 * What a proxy may answer to a fuzz case, and when an exchange is over. The
 * rules are the issue's ("malformed requests get 400 and the connection
 * closes", "never a crash, hang or silent loss") read through RFC 9112 /
 * RFC 9113 where the cases make an answer certain.
 */
import type { RawOutcome } from './exchange.js';
import { readH2Answer } from './h2-frames.js';
import { proxyFlags, readHttp1Answer, type Http1Response } from './http1-answer.js';
import type { Http1Case } from './http1-cases.js';
import { SENTINEL, type Http2Case } from './http2-cases.js';

const SENTINEL_HEX = SENTINEL.toString('hex');

/** After this response nothing may follow on the connection. */
function endsConnection(r: Http1Response): boolean {
  const connection = (r.fields.get('connection') ?? []).join(',').toLowerCase();
  if (/(^|,)\s*close\s*(,|$)/.test(connection)) return true;
  // The proxy's refusals (malformed head, head timeout, limits) close the connection (errors-to-wire: DPE, RT).
  const flags = proxyFlags(r);
  return /\b(DPE|RT)\b/.test(flags);
}

/** HTTP/1: over when the server closed, or every request got its final answer and none of them ends the connection. */
export function http1Done(c: Http1Case): (data: Buffer) => boolean {
  return (data) => {
    const answer = readHttp1Answer(data);
    if (answer.garbage !== undefined) return true;
    if (answer.responses.some(endsConnection)) return false; // wait for the close that must follow
    return answer.complete >= c.requests;
  };
}

export function http1Problems(c: Http1Case, outcome: RawOutcome, deadlineMs: number): string[] {
  const problems: string[] = [];
  const answer = readHttp1Answer(outcome.data);
  if (answer.garbage !== undefined) problems.push(`answer is not HTTP/1.1: ${answer.garbage}`);
  const rs = answer.responses;
  const statuses = rs.map((r) => `${r.status}${proxyFlags(r) === '' ? '' : ` ${proxyFlags(r)}`}`).join(', ');
  if (outcome.timedOut) {
    problems.push(`neither a complete answer nor a close within ${deadlineMs} ms (answers: [${statuses}], ${outcome.data.length} bytes)`);
  }
  if (c.maxOk !== undefined) {
    const oks = rs.filter((r) => r.status >= 200 && r.status < 300).length;
    if (oks > c.maxOk) problems.push(`request #${c.maxOk + 1} is malformed but ${oks} 2xx answers came back for ${c.maxOk} well-formed request(s) before it: it was forwarded (answers: [${statuses}])`);
  }
  rs.forEach((r, i) => {
    const flags = proxyFlags(r);
    if (flags !== '' && (r.status < 400 || r.status > 599)) problems.push(`proxy answer ${i + 1} has status ${r.status} with flags ${flags}`);
    // 505 (version) and 501 (unknown coding) are the two 5xx a malformed request may earn (RFC 9110 §15.6.2, §15.6.6).
    if (/\bDPE\b/.test(flags) && r.status >= 500 && r.status !== 501 && r.status !== 505) problems.push(`a malformed request got ${r.status}, not a 4xx`);
    if (endsConnection(r)) {
      if (i !== rs.length - 1) problems.push(`answer ${i + 1} (${r.status} ${flags}) ends the connection but ${rs.length - 1 - i} more answer(s) followed`);
      else if (!outcome.closed && !outcome.timedOut) problems.push(`answer ${i + 1} (${r.status} ${flags}) ends the connection but it stayed open`);
    }
  });
  if (outcome.timedOut && rs.length > 0 && endsConnection(rs[rs.length - 1] as Http1Response)) {
    problems.push(`the connection was not closed after ${(rs[rs.length - 1] as Http1Response).status}`);
  }
  return problems;
}

/** HTTP/2: over when the server closed or sent GOAWAY, or it read everything (sentinel PING answered) and every request stream ended. */
export function http2Done(c: Http2Case): (data: Buffer) => boolean {
  return (data) => {
    if (!c.preface) return false;
    const answer = readH2Answer(data);
    if (answer.malformed !== undefined || answer.goawayCode >= 0) return true;
    if (!c.sentinel || !answer.pingAcks.has(SENTINEL_HEX)) return false;
    return c.requestStreams.every((id) => answer.endedStreams.has(id));
  };
}

export function http2Problems(c: Http2Case, outcome: RawOutcome, deadlineMs: number): string[] {
  if (!c.preface) return []; // not HTTP/2 from the first byte: what comes back is whatever the bytes were taken for
  const problems: string[] = [];
  const answer = readH2Answer(outcome.data);
  if (outcome.data.length > 0 && answer.malformed !== undefined) problems.push(`answer is not a server's HTTP/2: ${answer.malformed}`);
  const ended = answer.goawayCode >= 0 || outcome.closed;
  if (c.connectionError && !ended) problems.push(`a connection error got neither GOAWAY nor a close within ${deadlineMs} ms`);
  if (c.survives) {
    if (answer.goawayCode > 0) problems.push(`legal frames ended the session with GOAWAY code ${answer.goawayCode}`);
    else if (!answer.pingAcks.has(SENTINEL_HEX)) problems.push(`legal frames: the PING after them was not answered within ${deadlineMs} ms${outcome.closed ? ' (connection closed)' : ''}`);
  }
  for (const id of c.malformedStreams) {
    if (answer.okStreams.has(id)) problems.push(`stream ${id} carries a malformed request but was answered 200: it was forwarded`);
  }
  if (!ended) {
    const open = c.requestStreams.filter((id) => !answer.endedStreams.has(id));
    if (open.length > 0) problems.push(`request stream(s) ${open.join(', ')} never ended within ${deadlineMs} ms`);
  }
  return problems;
}
