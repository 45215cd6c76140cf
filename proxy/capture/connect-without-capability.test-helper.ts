// Run by transparent-connect.test.ts as an unprivileged user (setpriv, no capabilities) when the
// test itself runs as root: prints what connectFrom reports without CAP_NET_ADMIN, as JSON.
import { isTracemeshError } from '../../src/lib/errors.js';
import { connectFrom } from './transparent-connect.js';

const socket = connectFrom('127.0.0.2', '127.0.0.1', 9);
socket.once('connect', () => {
  process.stdout.write(JSON.stringify({ connected: true }));
  socket.destroy();
});
socket.once('error', (err) => {
  process.stdout.write(JSON.stringify({ connected: false, code: isTracemeshError(err) ? err.code : '', message: err.message }));
});
