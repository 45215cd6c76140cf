import { describe, expect, it } from 'vitest';
import { listeningPorts } from './proc-net-tcp.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1337        0 12346 1 0000000000000000 100 0 0 10 0
   2: 0A4D010A:1F90 0A4D010B:C350 01 00000000:00000000 00:00000000 00000000     0        0 12347 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:3A99 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22 1 0 100 0 0 10 0
`;

describe('listening ports from /proc/net/tcp', () => {
  it('lists LISTEN sockets only, IPv4 and IPv6', () => {
    expect([...listeningPorts(TCP)].sort((x, y) => x - y)).toEqual([8080, 15000]);
    expect([...listeningPorts(TCP6)]).toEqual([15001]);
  });

  it('reads nothing from an empty or malformed file', () => {
    expect(listeningPorts('').size).toBe(0);
    expect(listeningPorts('header\ngarbage line\n   0: nocolon 0 0A\n').size).toBe(0);
  });
});
