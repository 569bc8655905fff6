// What a signed-in page starts before anything else: the link's fragment taken (the token and
// the consult to join, js/session.js), the socket.io connection opened and `GET /api/me` sent.
// Once per page, by whichever asks first: on the call pages the early module (call-link.js),
// while the page's other modules still load; elsewhere bootPage (page.js). Nothing here waits
// for anything; page.js decides what a refused token or a wrong page means.

import { api } from './api.js';
import { getToken, takeLinkFragment } from './session.js';
import { connectSocket } from './socket.js';
import { mark } from './timings.js';

/** @type {{consultToJoin: string|null, token: string|null, socket: object|null, me: Promise<object>|null}|null} */
let started = null;

/**
 * The page's start, begun on the first call (later calls return the same): `socket` false for
 * pages without live events. `me` is the pending `GET /api/me` (null without a token).
 */
export function startPage({ socket: wantSocket = true } = {}) {
  if (started) return started;
  const consultToJoin = takeLinkFragment();
  const token = getToken();
  const socket = token && wantSocket ? connectSocket(token) : null;
  socket?.once('connect', () => mark('socket_connected'));
  const me = token ? api.me() : null;
  // Whoever awaits it (bootPage) reports a failure; until then it is not an unhandled one.
  me?.then(() => mark('token'), () => {});
  started = { consultToJoin, token, socket, me };
  return started;
}
