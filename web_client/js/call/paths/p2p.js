// The peer-to-peer media path: one direct link (peer-link.js) to each remote participant, the
// server relaying only their `signal` messages. It speaks the same interface as the relay path
// (relay.js), so the call session switches between them without knowing either's insides:
//
//   start()                      open what can be opened now (here: nothing; links come per peer)
//   addPeer(peerId, {initiator}) a remote participant is in the room
//   removePeer(peerId)           they left
//   setSecond(second|null)       start, replace or stop sending our second source
//   handle(event, payload)       a server event of this path (here: `signal`)
//   check(peerId)                what the link to that peer does now (`p2p-check`), null if none
//   state                        new | connecting | connected | disconnected | failed
//   close()
//
// and calls back onTrack({peerId, source, stream, user}), onTrackGone({peerId, source}),
// onStateChange() and onFailed(report).

import { PeerLink } from './peer-link.js';

/** @typedef {import('./peer-link.js').SecondSource} SecondSource */
/** @typedef {{peerId: string, source: 'camera'|'second', stream: MediaStream, user: object|null}} Track */

export class P2pPath {
  /**
   * @param {object} o
   * @param {string} o.selfId  our peer id (the polite side of a link is the one that sorts first)
   * @param {RTCIceServer[]} o.iceServers
   * @param {'all'|'relay'} [o.iceTransportPolicy]  'relay' = through TURN only
   * @param {(refusal: {url: string, code: number}) => void} [o.onTurnRefused]  see turn.js
   * @param {MediaStream|null} o.localStream
   * @param {SecondSource|null} o.second
   * @param {(peerId: string, msg: object) => void} o.send  a `signal` to that peer
   * @param {(track: Track) => void} o.onTrack  a remote stream to show
   * @param {(gone: {peerId: string, source: 'second'}) => void} o.onTrackGone  they stopped their second source
   * @param {() => void} o.onStateChange
   * @param {(report: {peerId: string, generation: number}) => void} o.onFailed  the link to that
   *   peer did not come up despite its ICE restarts, in that generation
   */
  constructor({
    selfId, iceServers, iceTransportPolicy = 'all', onTurnRefused = () => {}, localStream, second, send,
    onTrack, onTrackGone, onStateChange, onFailed,
  }) {
    this.kind = 'p2p';
    this.selfId = selfId;
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.onTurnRefused = onTurnRefused;
    this.localStream = localStream;
    this.second = second;
    this.send = send;
    this.onTrack = onTrack;
    this.onTrackGone = onTrackGone;
    this.onStateChange = onStateChange;
    this.onFailed = onFailed;
    this.links = new Map(); // peer id → PeerLink
    this.generations = new Map(); // peer id → the generation its next link starts at
    this.closed = false;
  }

  start() {}

  /** Every RTCPeerConnection of this path (quality telemetry reads their getStats). */
  peerConnections() {
    return [...this.links.values()].map((link) => link.pc);
  }

  has(peerId) {
    return this.links.has(peerId);
  }

  /** A direct link to `peerId`, unless there is one: the last to arrive makes the first offer. */
  addPeer(peerId, { initiator = false } = {}) {
    if (this.closed || this.links.has(peerId)) return;
    const link = new PeerLink({
      label: peerId,
      polite: this.selfId < peerId,
      initiator,
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      onTurnRefused: (refusal) => this.links.get(peerId) === link && this.onTurnRefused(refusal),
      localStream: this.localStream,
      second: this.second,
      generation: this.generations.get(peerId) ?? 0,
      send: (msg) => this.send(peerId, msg),
      onStream: (stream, source) => {
        if (this.links.get(peerId) === link) this.onTrack({ peerId, source, stream, user: null });
      },
      onStreamGone: (source) => {
        if (this.links.get(peerId) === link) this.onTrackGone({ peerId, source });
      },
      onStateChange: () => this.links.get(peerId) === link && this.onStateChange(),
      onFailed: (generation) => {
        if (this.links.get(peerId) === link) this.onFailed({ peerId, generation });
      },
    });
    this.links.set(peerId, link);
  }

  removePeer(peerId) {
    const link = this.links.get(peerId);
    if (!link) return;
    this.links.delete(peerId);
    this.generations.set(peerId, link.generation + 1);
    link.close();
  }

  setSecond(second) {
    this.second = second;
    for (const link of this.links.values()) link.setSecond(second);
  }

  /** `signal` from a peer (the session makes sure the peer has a link first). */
  handle(event, payload) {
    if (event === 'signal') this.links.get(payload.from)?.handle(payload);
  }

  check(peerId) {
    return this.links.get(peerId)?.check() ?? null;
  }

  /** Our connections, for the sender's adaptation (call/sender-adaptation.js): each carries both ways. */
  connections() {
    const pcs = [...this.links.values()].map((link) => link.pc);
    return { sending: pcs, receiving: pcs };
  }

  /** Over every link: one that is down counts before one that is up (the user is told of it). */
  get state() {
    const states = [...this.links.values()].map((link) => link.state);
    if (!states.length) return 'new';
    if (states.includes('disconnected')) return 'disconnected';
    if (states.includes('failed')) return 'failed';
    if (states.includes('connected')) return 'connected';
    return 'connecting';
  }

  /** Fresh TURN credentials: every link (and every later one) gathers with them now. */
  renewIce(iceServers) {
    this.iceServers = iceServers;
    for (const link of this.links.values()) link.renewIce(iceServers);
  }

  close() {
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}
