// The socket.io connection (signaling + live notifications). One per page.

import { io } from '../vendor/socket.io/socket.io.esm.min.js';

/** How long to wait for an ack before treating a request as failed. */
const ACK_TIMEOUT_MS = 10000;

export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export function connectSocket(token) {
  // Same origin, default path /socket.io/. The token travels in the handshake's auth payload
  // (not the URL), so it stays out of proxy access logs; it is re-sent on every reconnect.
  // WebSocket first: long-polling's handshake and upgrade cost round trips before the first
  // event; polling remains the fallback where a proxy refuses WebSockets.
  // The first reconnect comes after 150–450 ms (300 ms ± 50 %), then doubles up to 5 s: when a
  // signaling process dies, its pages are back through the load balancer well within the 5 s of
  // a failover (docs/deployment.md), and hundreds of them do not come back in one instant.
  return io({
    auth: { token }, reconnectionDelay: 300, reconnectionDelayMax: 5000, transports: ['websocket', 'polling'], tryAllTransports: true,
  });
}

/** Emit `event` and resolve with the ack if it is {ok: true}, else throw SignalingError. */
export async function request(socket, event, payload) {
  let ack;
  try {
    ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  } catch {
    throw new SignalingError('timeout', `no answer to ${event}`);
  }
  if (!ack?.ok) {
    throw new SignalingError(ack?.error?.code ?? 'bad_ack', ack?.error?.message ?? '');
  }
  return ack;
}

/** Emit without waiting; a refusal is only logged (used for the stream of signal messages). */
export function notify(socket, event, payload) {
  socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
    if (err) console.warn(`${event}: no ack`);
    else if (!ack?.ok) console.warn(`${event} refused`, ack?.error);
  });
}

/** Resolve once the socket is connected (immediately if it already is). */
export function whenConnected(socket) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve) => socket.once('connect', resolve));
}
