// What the pages need to know about TURN (docs/deployment.md, "TURN"): the RTCConfiguration the
// join ack asks for, and when the TURN server refuses the credentials the join ack carried.
//
// The server mints TURN credentials that expire (`TURN_TTL_SECONDS`, coturn's REST scheme). A
// page renews them before they expire (the session's `ice-servers`, each path's renewIce), but
// one that did not (renewal off, asleep) keeps those of its last join for every connection it
// opens later (an ICE restart, the move to the relay): they can be out of date by then. The TURN
// server answers such an allocation with 401 Unauthorized after the usual challenge; Chromium
// reports it as an `icecandidateerror` with errorCode 401 and the TURN URL.

/**
 * The configuration of every RTCPeerConnection of a call.
 * @param {RTCIceServer[]} iceServers  from the join ack
 * @param {'all'|'relay'} iceTransportPolicy  from the join ack (ICE_TRANSPORT_POLICY)
 * @returns {RTCConfiguration}
 */
export function rtcConfiguration(iceServers, iceTransportPolicy) {
  return { iceServers, iceTransportPolicy: iceTransportPolicy === 'relay' ? 'relay' : 'all' };
}

/** STUN's 401 Unauthorized: the TURN server refused our username/credential. */
export const TURN_UNAUTHORIZED = 401;

/**
 * Call `onRefused({url, code, text})` whenever a TURN server refuses this connection's credentials.
 * @param {RTCPeerConnection} pc
 * @param {(refusal: {url: string, code: number, text: string}) => void} onRefused
 */
export function watchTurnRefusals(pc, onRefused) {
  pc.addEventListener('icecandidateerror', (event) => {
    const url = event.url ?? '';
    if (event.errorCode === TURN_UNAUTHORIZED && /^turns?:/.test(url)) {
      onRefused({ url, code: event.errorCode, text: event.errorText ?? '' });
    }
  });
}
