// One RTCPeerConnection to one remote participant, negotiated with the "perfect negotiation"
// pattern (https://developer.mozilla.org/docs/Web/API/WebRTC_API/Perfect_negotiation): either
// side may renegotiate at any time; on an offer collision the polite side yields (the browser
// rolls back its own offer implicitly) and the impolite side ignores the other's offer.
//
// Collisions are survivable but not free: after the polite side rolls back an offer whose ICE
// gathering had started, Chromium (seen in 156) may never emit candidates for its answer and
// the call hangs in "connecting". So the first offer has one author — the participant who
// arrived last (the "initiator") — and the other side attaches its media when that offer comes.
// A watchdog restarts ICE on any link that does not connect in time, whatever the cause; when
// the second restart in a row does not connect either, the direct path is reported as failed
// (the p2p path then asks the server to move the consult to its relay), naming the link's
// generation: how many ICE restarts it has made, so the server can tell a stale report from a
// link that is still failing (docs/protocol.md, `p2p-failed` and `p2p-check`).
//
// A second video source (ultrasound capture, shared screen) rides its own transceiver with its
// own MediaStream; the receiving side tells it from the camera by its m-section: the camera and
// microphone always come first, so the stream that arrives on the lowest m-section is the camera.

import { debug } from '../../log.js';
import { startSmall } from '../first-frames.js';
import { rtcConfiguration, watchTurnRefusals } from './turn.js';
import { watchConnection } from '../../timings.js';

/** How long ICE may stay "disconnected" before we stop waiting for it to heal and restart. */
const DISCONNECTED_GRACE_MS = 3000;
/** A link that has not connected this long after (re)starting gets an ICE restart. */
const CONNECT_TIMEOUT_MS = 5000;
/** The polite side restarts this much later, so both sides rarely offer at once. */
const POLITE_DELAY_MS = 1500;
/** A non-initiator that hears no offer this long makes the first offer itself. */
const OFFER_WAIT_MS = 2000;
/**
 * ICE restarts in a row that may fail before the direct path is given up (≈ 15 s with
 * CONNECT_TIMEOUT_MS: 5 s to connect, then 5 s after each of two restarts).
 */
const RESTARTS_BEFORE_GIVING_UP = 2;

/** @typedef {{track: MediaStreamTrack, stream: MediaStream}} SecondSource */

export class PeerLink {
  /**
   * @param {object} o
   * @param {string} o.label   names the remote peer in debug traces
   * @param {boolean} o.polite    true when our peer id sorts before theirs
   * @param {boolean} o.initiator true when we joined after them: we make the first offer
   * @param {RTCIceServer[]} o.iceServers  from the join ack ([] on loopback)
   * @param {'all'|'relay'} [o.iceTransportPolicy]  from the join ack: 'relay' = through TURN only
   * @param {(refusal: {url: string, code: number}) => void} [o.onTurnRefused]  a TURN server
   *   refused the credentials (turn.js)
   * @param {MediaStream|null} o.localStream  null = receive only (no camera/mic)
   * @param {SecondSource|null} [o.second]  our second video source, if one is being shared
   * @param {(msg: object) => void} o.send  sends {description}|{candidate}|{end_of_candidates}
   * @param {(stream: MediaStream, source: 'camera'|'second') => void} o.onStream  a remote track arrived
   * @param {(source: 'second') => void} [o.onStreamGone]  the remote stopped its second source
   * @param {() => void} o.onStateChange  connection state changed
   * @param {(generation: number) => void} [o.onFailed]  the direct path did not come up despite
   *   ICE restarts (said again after each further restart that fails), with the generation that failed
   * @param {number} [o.generation]  the first generation of this link: 0, or one more than that of
   *   the link to the same peer it replaces, so that a peer's generations only ever go up
   */
  constructor({
    label, polite, initiator, iceServers, iceTransportPolicy = 'all', onTurnRefused = () => {}, localStream, second = null, send, onStream,
    onStreamGone = () => {}, onStateChange, onFailed = () => {}, generation = 0,
  }) {
    this.label = label;
    this.polite = polite;
    this.localStream = localStream;
    this.second = second;
    this.send = send;
    this.onStreamGone = onStreamGone;
    this.onStateChange = onStateChange;
    this.onFailed = onFailed;
    this.secondTransceiver = null; // ours, once the second source has been on this link
    this.restarts = 0; // ICE restarts since the link was last connected
    this.generation = generation; // ICE restarts made on this link, ever (never reset)
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.mediaAttached = false;
    this.closed = false;
    this.timers = {};
    // Signals are handled one at a time, in arrival order: an answer must not overtake the
    // offer it answers, and candidates need the remote description they belong to.
    this.queue = Promise.resolve();
    this.remoteStream = new MediaStream(); // their camera + microphone
    this.remoteSecond = null; // their second source: {stream, from} (from = their MediaStream)
    this.mainStreamId = null; // id of their MediaStream that carries the camera
    this.mainMid = Infinity; // the lowest m-section that brought it

    const pc = (this.pc = new RTCPeerConnection(rtcConfiguration(iceServers, iceTransportPolicy)));
    watchConnection(pc);
    watchTurnRefusals(pc, (refusal) => !this.closed && onTurnRefused(refusal));

    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        debug('negotiationneeded', label, pc.signalingState);
        await pc.setLocalDescription();
        this.sendDescription();
      } catch (err) {
        console.error('negotiation failed', err);
      } finally {
        this.makingOffer = false;
      }
    };

    pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      debug('candidate out', label, candidate?.candidate || 'end');
      if (candidate === null) this.send({ end_of_candidates: true });
      // An empty candidate string is the legacy per-m-line end marker; the null above covers it.
      else if (candidate.candidate) this.send({ candidate: candidate.toJSON() });
    };

    pc.ontrack = ({ track, streams, transceiver }) => {
      if (this.isSecond(streams[0], transceiver)) {
        this.showSecond(track, streams[0], onStream);
        return;
      }
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      onStream(this.remoteStream, 'camera');
    };

    pc.oniceconnectionstatechange = () => this.watchConnectivity();
    pc.onconnectionstatechange = () => this.watchConnectivity();

    if (initiator) this.attachMedia();
    else this.later('offerWait', OFFER_WAIT_MS, () => this.attachMedia());
    this.later('connect', CONNECT_TIMEOUT_MS, () => this.restartIce('not connected in time'));
  }

  /**
   * Whether a remote track belongs to their second source: it came in a MediaStream other than
   * the one on the lowest m-section (camera and microphone are always attached first).
   */
  isSecond(stream, transceiver) {
    if (!stream) return false; // a sender that names no stream: treat as the camera
    const mid = Number.parseInt(transceiver?.mid ?? '', 10);
    const order = Number.isNaN(mid) ? Infinity : mid;
    if (this.mainStreamId === null || order < this.mainMid) {
      this.mainStreamId = stream.id;
      this.mainMid = order;
    }
    return stream.id !== this.mainStreamId;
  }

  /** Their second source arrived (again): one stream of its own, gone when they stop it. */
  showSecond(track, from, onStream) {
    if (this.remoteSecond?.from !== from) {
      const stream = new MediaStream();
      this.remoteSecond = { stream, from };
      // The sender stopping its second source removes the track from its stream here.
      from.addEventListener('removetrack', () => {
        if (this.remoteSecond?.from !== from || from.getTracks().length) return;
        this.remoteSecond = null;
        this.onStreamGone('second');
      });
    }
    const { stream } = this.remoteSecond;
    for (const old of stream.getTracks()) if (old !== track) stream.removeTrack(old);
    if (!stream.getTracks().includes(track)) stream.addTrack(track);
    onStream(stream, 'second');
  }

  /** "new" | "connecting" | "connected" | "disconnected" | "failed" | "closed" */
  get state() {
    return this.pc.connectionState;
  }

  /** What this link is doing now, for the server's `p2p-check`. */
  check() {
    const ice = this.pc.iceConnectionState;
    const up = !this.closed && (ice === 'connected' || ice === 'completed');
    return { state: up ? 'connected' : 'failed', generation: this.generation };
  }

  later(name, ms, fn) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(() => !this.closed && fn(), ms);
  }

  /**
   * Put our camera/mic on the connection, once. On the answering side this runs between
   * setRemoteDescription(offer) and the answer, so the tracks ride the offered transceivers.
   * The camera's first frames go out scaled down to what the start bitrate carries (first-frames.js).
   * Kinds we cannot send are still received (recvonly), e.g. after camera access was denied.
   */
  attachMedia() {
    if (this.mediaAttached || this.closed) return;
    this.mediaAttached = true;
    clearTimeout(this.timers.offerWait);
    const stream = this.localStream;
    for (const track of stream?.getTracks() ?? []) startSmall(this.pc.addTrack(track, stream));
    for (const kind of ['audio', 'video']) {
      const present = this.pc.getTransceivers().some((t) => t.receiver.track.kind === kind);
      if (!present) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    if (this.second) this.setSecond(this.second);
  }

  /**
   * Start, replace or stop (null) sending our second source. It always gets a transceiver of
   * its own (never one of the camera's), kept for the next share: stopping makes it inactive.
   * @param {SecondSource|null} second
   */
  setSecond(second) {
    this.second = second;
    if (!this.mediaAttached || this.closed) return; // attachMedia() adds it with the camera
    const transceiver = this.secondTransceiver;
    if (!transceiver) {
      if (!second) return;
      this.secondTransceiver = this.pc.addTransceiver(second.track, {
        direction: 'sendonly', streams: [second.stream],
      });
      return;
    }
    transceiver.sender.replaceTrack(second?.track ?? null).catch((err) => console.warn('replaceTrack', err));
    if (second) transceiver.sender.setStreams(second.stream);
    transceiver.direction = second ? 'sendonly' : 'inactive'; // renegotiates
  }

  sendDescription() {
    const { type, sdp } = this.pc.localDescription;
    debug('description out', this.label, type);
    this.send({ description: { type, sdp } });
  }

  /**
   * ICE restart when the path failed, has been "disconnected" for longer than a blip, or never
   * came up. The polite side waits a little longer: if the other side restarts first, its offer
   * already renews ICE here and the state has moved on by the time we look again.
   */
  watchConnectivity() {
    if (this.closed) return;
    const { iceConnectionState: ice, connectionState: conn } = this.pc;
    debug('connectivity', this.label, ice, conn);
    if (ice === 'failed' || conn === 'failed') {
      this.restartIce('failed');
    } else if (ice === 'disconnected' || conn === 'disconnected') {
      this.later('connect', DISCONNECTED_GRACE_MS, () => this.restartIce('disconnected too long'));
    } else if (conn === 'connected') {
      clearTimeout(this.timers.connect);
      this.restarts = 0;
    }
    this.onStateChange();
  }

  /** Report that the direct path does not work (the ICE restarts carry on regardless). */
  giveUp() {
    if (this.closed) return;
    debug('p2p failing', this.label, 'after', this.restarts, 'restarts, generation', this.generation);
    this.onFailed(this.generation);
  }

  restartIce(why) {
    this.later('restart', this.polite ? POLITE_DELAY_MS : 0, () => {
      if (this.pc.connectionState === 'connected') return;
      this.restarts += 1;
      this.generation += 1;
      debug('ICE restart', this.label, why, this.restarts, 'generation', this.generation);
      this.attachMedia(); // an ICE restart needs an offer; make sure it carries our media
      this.pc.restartIce();
      this.later('connect', CONNECT_TIMEOUT_MS, () => {
        if (this.restarts >= RESTARTS_BEFORE_GIVING_UP) this.giveUp();
        this.restartIce('restart did not connect');
      });
    });
  }

  /**
   * Fresh TURN credentials (the session's `ice-servers`, before those of the join expire): from
   * now on this connection gathers with them, and an ICE restart makes it gather now, so the
   * link moves onto allocations that will be refreshed without a refusal. The old candidate
   * pair carries the media until the new one is selected: nothing stops.
   * @param {RTCIceServer[]} iceServers
   */
  renewIce(iceServers) {
    if (this.closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.warn('setConfiguration refused the fresh ICE servers', err);
      return;
    }
    if (!this.mediaAttached) return; // no offer yet: the first one gathers with them anyway
    this.generation += 1;
    debug('ICE restart', this.label, 'fresh TURN credentials', 'generation', this.generation);
    this.pc.restartIce();
  }

  /** Handle a `signal` from this peer: {description} | {candidate} | {end_of_candidates}. */
  handle(signal) {
    this.queue = this.queue
      .then(() => this.apply(signal))
      .catch((err) => console.error('signal failed', err));
    return this.queue;
  }

  async apply({ description, candidate, end_of_candidates: endOfCandidates }) {
    if (this.closed) return;
    const pc = this.pc;
    debug('signal in', this.label, description?.type ?? (candidate ? 'candidate' : 'end'),
      pc.signalingState, { makingOffer: this.makingOffer, polite: this.polite });
    if (description) {
      if (description.type === 'rollback') return; // rollbacks are local; never needed from afar
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === 'stable' || this.settingRemoteAnswer);
      const offerCollision = description.type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === 'answer';
      try {
        await pc.setRemoteDescription(description); // polite + collision: implicit rollback
      } finally {
        this.settingRemoteAnswer = false;
      }
      if (description.type === 'offer') {
        this.attachMedia();
        await pc.setLocalDescription();
        this.sendDescription();
      }
    } else if (candidate || endOfCandidates) {
      try {
        await pc.addIceCandidate(candidate ?? undefined); // undefined = end of candidates
      } catch (err) {
        // Candidates for an offer we ignored are expected to fail; anything else is real.
        if (!this.ignoreOffer) throw err;
      }
    }
  }

  close() {
    this.closed = true;
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    this.pc.close();
  }
}
