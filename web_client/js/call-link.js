// Opening a call link (`/exam-room.html#consult=…&token=…`): camera and microphone, the socket
// and the `join` start at once, while the page's other modules are still loading; the call
// session takes them over when the page is ready (CallSession.join → takeCallStart). Each call
// page imports this module first, so that in its bundle (teleconsult/web_bundle.py) it runs right
// after its few imports, before any other module's top-level code.
// Without a consult to join or without a token it does nothing (page.js sends the user to sign
// in). Room events that arrive before the session takes over are held for it, in order.

import { openCamera } from './call/local-media.js';
import { startPage } from './page-start.js';
import { request, whenConnected } from './socket.js';
import { mark } from './timings.js';

/**
 * The call link's start, until the session takes it.
 * @typedef {{consultId: string, socket: object, media: Promise<MediaStream>|null,
 *   join: Promise<object>, events: Array<[string, unknown[]]>, release: () => void}} CallStart
 */
/** @type {CallStart|null} */
let pending = null;

function startCall() {
  const { consultToJoin, socket } = startPage();
  if (!consultToJoin || !socket) return;
  mark('link_start');
  /** @type {Array<[string, unknown[]]>} */
  const events = [];
  const hold = (event, ...args) => events.push([event, args]);
  const media = openCamera();
  media?.catch(() => {}); // the session reports it (LocalMedia.start)
  const join = whenConnected(socket).then(() => {
    socket.onAny(hold);
    return request(socket, 'join', { consult_id: consultToJoin });
  });
  join.catch(() => {}); // the session handles a refusal as it would its own join's
  pending = { consultId: consultToJoin, socket, media, join, events, release: () => socket.offAny(hold) };
}

/**
 * The call link's camera request, join and held events, if they were started for this consult
 * on this socket and nobody has taken them yet; from now on the caller's handlers get events.
 * @returns {CallStart|null}
 */
export function takeCallStart(consultId, socket) {
  const start = pending;
  if (!start || start.consultId !== consultId || start.socket !== socket) return null;
  pending = null;
  start.release();
  return start;
}

startCall();
