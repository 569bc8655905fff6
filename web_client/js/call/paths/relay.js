// The relay path (docs/protocol.md, "Media path: peer-to-peer or relay"): instead of one
// connection per remote participant, two connections to the server's media relay.
//
//   publish   we offer our camera, microphone and second source; the `relay-publish` ack
//             carries the server's answer. Sent again to add or remove the second source.
//   subscribe the server offers the others' tracks (`relay-offer`, with a `tracks` map naming
//             whose track and which source each m-section carries); we answer (`relay-answer`).
//
// Neither side offers on the other's connection, so there is no glare and no perfect
// negotiation here. The server's descriptions carry its candidates; ours go in our description
// when gathering is quick (it is on a LAN) and are trickled with `relay-candidate` otherwise.
//
// It speaks the same interface as the peer-to-peer path (see p2p.js). Whom we receive is the
// server's choice (each `relay-offer`), so addPeer/removePeer have nothing to do here.

import { debug } from '../../log.js';
import { startEncodings, startedSmall } from '../first-frames.js';
import { rtcConfiguration, watchTurnRefusals } from './turn.js';
import { watchConnection } from '../../timings.js';

/** Longest wait for our ICE candidates before sending a description; later ones trickle. */
const GATHER_WAIT_MS = 1500;
/** A relay connection not connected this long after opening, or failed/disconnected this long, is given up. */
const GIVE_UP_MS = 15000;

/** @typedef {import('./peer-link.js').SecondSource} SecondSource */
/** @typedef {import('./p2p.js').Track} Track */
/**
 * What the others send us, one entry per tile: a participant's camera + microphone
 * (source 'camera', key = their peer id) or their second source (key = peer id + ':second').
 * @typedef {{key: string, peerId: string, user: object, source: 'camera'|'second', stream: MediaStream}} RelayFeed
 */

/** Resolve once `pc` has gathered its candidates, or after `ms`, whichever comes first. */
function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => pc.iceGatheringState === 'complete' && done();
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** The tile a received m-section belongs to. */
const feedKey = (info) => (info.source === 'second' ? `${info.peer_id}:second` : info.peer_id);

export class RelayPath {
  /**
   * @param {object} o
   * @param {RTCIceServer[]} o.iceServers  from the join ack
   * @param {'all'|'relay'} [o.iceTransportPolicy]  from the join ack: 'relay' = through TURN only
   * @param {(refusal: {url: string, code: number}) => void} [o.onTurnRefused]  see turn.js
   * @param {MediaStream|null} o.localStream  camera + microphone (null = receive only)
   * @param {SecondSource|null} o.second  our second source, if one is being shared
   * @param {(event: string, payload: object) => Promise<object>} o.request  emit with ack (the
   *   caller adds consult_id); rejects with the server's error
   * @param {(event: string, payload: object) => void} o.notify  emit, ack only logged
   * @param {(track: Track) => void} o.onTrack  a feed to show (again: the same feed comes with every offer)
   * @param {(gone: {peerId: string, source: 'camera'|'second'}) => void} o.onTrackGone  a feed the
   *   last offer no longer carries
   * @param {() => void} o.onStateChange  a connection's state changed
   * @param {(err: Error) => void} o.onError  a publish or answer was refused
   * @param {() => void} o.onFailed  the relay connections did not come up or broke for good (once)
   */
  constructor({
    iceServers, iceTransportPolicy = 'all', onTurnRefused = () => {}, localStream, second, request, notify, onTrack, onTrackGone, onStateChange, onError, onFailed,
  }) {
    this.kind = 'relay';
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.onTurnRefused = onTurnRefused;
    this.localStream = localStream;
    this.second = second;
    this.request = request;
    this.notify = notify;
    this.onTrack = onTrack;
    this.onTrackGone = onTrackGone;
    this.onStateChange = onStateChange;
    this.onError = onError;
    this.onFailed = onFailed;
    this.closed = false;
    this.gaveUp = false;
    this.legs = {}; // 'publish' | 'subscribe' → {pc, described, ready, pending: candidates}
    this.sources = new Map(); // our publish transceiver → 'camera' | 'microphone' | 'second'
    this.secondTransceiver = null;
    this.feeds = new Map(); // key → RelayFeed
    // Publishes and answers each run one at a time, in order.
    this.publishing = Promise.resolve();
    this.answering = Promise.resolve();
    this.giveUpTimer = null;
  }

  /** Publish what we have; the subscribe connection opens with the server's first offer. */
  start() {
    this.publish();
  }

  /** Every RTCPeerConnection of this path (quality telemetry reads their getStats). */
  peerConnections() {
    return Object.values(this.legs).map((leg) => leg.pc);
  }

  addPeer() {}

  removePeer() {}

  /** `relay-offer` from the server. */
  handle(event, payload) {
    if (event === 'relay-offer') this.handleOffer(payload);
  }

  /** No direct link to anyone on this path (`p2p-check` answers "gone"). */
  check() {
    return null;
  }

  /** Our connections, for the sender's adaptation (call/sender-adaptation.js): publish sends, subscribe receives. */
  connections() {
    const { publish, subscribe } = this.legs;
    return { sending: publish ? [publish.pc] : [], receiving: subscribe ? [subscribe.pc] : [] };
  }

  /** "new" | "connecting" | "connected" | "disconnected" | "failed" over both connections. */
  get state() {
    const states = Object.values(this.legs).map((leg) => leg.pc.connectionState);
    if (!states.length) return 'new';
    if (states.includes('failed')) return 'failed';
    if (states.includes('disconnected')) return 'disconnected';
    if (states.every((s) => s === 'connected')) return 'connected';
    return 'connecting';
  }

  leg(name) {
    if (this.legs[name]) return this.legs[name];
    const pc = new RTCPeerConnection(rtcConfiguration(this.iceServers, this.iceTransportPolicy));
    watchConnection(pc);
    watchTurnRefusals(pc, (refusal) => !this.closed && this.onTurnRefused(refusal));
    const leg = (this.legs[name] = { pc, described: false, ready: false, pending: [] });
    pc.onicecandidate = ({ candidate }) => {
      // Candidates gathered before we read the local description are in it already.
      if (this.closed || !candidate?.candidate || !leg.described) return;
      const c = candidate.toJSON();
      const out = { candidate: c.candidate };
      if (c.sdpMid !== null && c.sdpMid !== undefined) out.sdpMid = c.sdpMid;
      if (c.sdpMLineIndex !== null && c.sdpMLineIndex !== undefined) out.sdpMLineIndex = c.sdpMLineIndex;
      // Until the server holds our description it could not place the candidate: hold it.
      if (leg.ready) this.notify('relay-candidate', { leg: name, candidate: out });
      else leg.pending.push(out);
    };
    pc.onconnectionstatechange = () => this.watch(name);
    this.armGiveUp(); // a new connection has GIVE_UP_MS to come up
    return leg;
  }

  /** The server holds our description for `name`: send the candidates that waited for it. */
  ready(name) {
    const leg = this.legs[name];
    leg.ready = true;
    for (const candidate of leg.pending.splice(0)) this.notify('relay-candidate', { leg: name, candidate });
  }

  /** Our local description, with whatever candidates gathered within GATHER_WAIT_MS. */
  async describe(name) {
    const leg = this.legs[name];
    await gathered(leg.pc, GATHER_WAIT_MS);
    leg.described = true;
    const { type, sdp } = leg.pc.localDescription;
    return { type, sdp };
  }

  watch(name) {
    if (this.closed) return;
    const state = this.state;
    debug('relay', name, this.legs[name].pc.connectionState, '→', state);
    if (state === 'connected') {
      clearTimeout(this.giveUpTimer);
      this.giveUpTimer = null;
    } else if (state === 'failed' || state === 'disconnected') {
      this.armGiveUp();
    }
    this.onStateChange();
  }

  armGiveUp() {
    if (this.giveUpTimer) return;
    this.giveUpTimer = setTimeout(() => {
      this.giveUpTimer = null;
      if (this.closed || this.gaveUp || this.state === 'connected') return;
      this.gaveUp = true;
      debug('relay given up in state', this.state);
      this.onFailed();
    }, GIVE_UP_MS);
  }

  // ---- publish: our tracks to the server -------------------------------------------------------

  /** Offer our tracks (again), e.g. after the second source started or stopped. */
  publish() {
    this.publishing = this.publishing
      .then(() => this.sendPublish())
      .catch((err) => {
        if (!this.closed) this.onError(err);
      });
    return this.publishing;
  }

  /** Start, replace or stop (null) our second source, then publish the change. */
  setSecond(second) {
    this.second = second;
    return this.publish();
  }

  async sendPublish() {
    if (this.closed) return;
    // Nothing to send (camera and microphone refused, no second source): no publish connection
    // at all, only the subscribe one, or it would sit unconnected and be given up.
    if (!this.legs.publish && !this.localStream?.getTracks().length && !this.second) {
      debug('relay: nothing to publish');
      return;
    }
    const { pc } = this.leg('publish');
    if (!this.sources.size) {
      const stream = this.localStream;
      for (const track of stream?.getTracks() ?? []) {
        // The camera's first frames at a size the start bitrate carries (first-frames.js).
        const sendEncodings = startEncodings(track);
        const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], ...(sendEncodings && { sendEncodings }) });
        if (sendEncodings) startedSmall(t.sender);
        this.sources.set(t, track.kind === 'audio' ? 'microphone' : 'camera');
      }
    }
    this.syncSecond(pc);
    const sending = pc.getTransceivers().filter((t) => this.sources.has(t) && t.direction === 'sendonly');
    if (!sending.length) {
      debug('relay: nothing to publish');
      return;
    }
    await pc.setLocalDescription(await pc.createOffer());
    const description = await this.describe('publish');
    if (this.closed) return;
    const sources = {};
    for (const t of sending) sources[t.mid] = this.sources.get(t);
    debug('relay-publish', sources);
    let ack;
    try {
      ack = await this.request('relay-publish', { description, sources });
    } catch (err) {
      if (!this.closed && pc.signalingState === 'have-local-offer') {
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      }
      throw err;
    }
    if (this.closed) return;
    await pc.setRemoteDescription(ack.description);
    this.ready('publish');
  }

  /**
   * Put our second source on a transceiver of its own. Stopping makes it inactive; each new
   * share gets a fresh m-section (never re-activates the old one): the relay forwards and
   * records every share as a track of its own, and nothing depends on a server following an
   * m-section from inactive back to sending.
   */
  syncSecond(pc) {
    const second = this.second;
    let t = this.secondTransceiver;
    if (t && second && t.direction === 'inactive') {
      this.sources.delete(t); // stays in the SDP, inactive and unnamed
      t = this.secondTransceiver = null;
    }
    if (!t) {
      if (!second) return;
      this.secondTransceiver = pc.addTransceiver(second.track, { direction: 'sendonly', streams: [second.stream] });
      this.sources.set(this.secondTransceiver, 'second');
      return;
    }
    t.sender.replaceTrack(second?.track ?? null).catch((err) => console.warn('replaceTrack', err));
    if (second) t.sender.setStreams(second.stream);
    t.direction = second ? 'sendonly' : 'inactive';
  }

  // ---- subscribe: the others' tracks from the server -------------------------------------------

  /** The server's `relay-offer`: answer it, then show each m-section on its participant's tile. */
  handleOffer({ description, tracks }) {
    this.answering = this.answering
      .then(() => this.answer(description, tracks ?? {}))
      .catch((err) => {
        if (!this.closed) this.onError(err);
      });
    return this.answering;
  }

  async answer(description, tracks) {
    if (this.closed) return;
    const { pc } = this.leg('subscribe');
    await pc.setRemoteDescription(description);
    this.showFeeds(pc, tracks);
    await pc.setLocalDescription(await pc.createAnswer());
    const answer = await this.describe('subscribe');
    if (this.closed) return;
    await this.request('relay-answer', { description: answer });
    this.ready('subscribe');
  }

  /** Group the received tracks by participant and source; one MediaStream per tile. */
  showFeeds(pc, tracks) {
    const wanted = new Map(); // key → {info, tracks}
    for (const t of pc.getTransceivers()) {
      const info = t.mid !== null ? tracks[t.mid] : undefined;
      if (!info || !info.peer_id) continue; // not in `tracks`: an inactive m-section
      const key = feedKey(info);
      if (!wanted.has(key)) wanted.set(key, { info, tracks: [] });
      wanted.get(key).tracks.push(t.receiver.track);
    }
    const gone = [...this.feeds.values()].filter((feed) => !wanted.has(feed.key));
    for (const feed of gone) this.feeds.delete(feed.key);
    for (const [key, { info, tracks: wantedTracks }] of wanted) {
      const known = this.feeds.get(key);
      const same = known && known.stream.getTracks().length === wantedTracks.length
        && wantedTracks.every((track) => known.stream.getTracks().includes(track));
      // A new MediaStream when the tracks change, so the <video> picks them up for certain.
      const stream = same ? known.stream : new MediaStream(wantedTracks);
      this.feeds.set(key, {
        key, peerId: info.peer_id, user: info.user ?? null,
        source: info.source === 'second' ? 'second' : 'camera', stream,
      });
    }
    debug('relay feeds', [...this.feeds.keys()]);
    for (const { peerId, source } of gone) this.onTrackGone({ peerId, source });
    for (const { peerId, source, stream, user } of this.feeds.values()) this.onTrack({ peerId, source, stream, user });
  }

  /**
   * Fresh TURN credentials: connections opened from now on use them, and so does any gathering
   * of the open ones. No ICE restart here: the relay's aiortc (1.16) does not restart ICE (its
   * RTCIceTransport ignores new remote ICE credentials), so an open relay connection keeps the
   * TURN allocation it has; when that is refused, the relay breaks and the page rejoins.
   */
  renewIce(iceServers) {
    this.iceServers = iceServers;
    for (const { pc } of Object.values(this.legs)) {
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
      } catch (err) {
        console.warn('setConfiguration refused the fresh ICE servers', err);
      }
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.giveUpTimer);
    for (const { pc } of Object.values(this.legs)) pc.close();
    this.feeds.clear();
  }
}
