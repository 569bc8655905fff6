// One RTCPeerConnection to one remote participant, negotiated with the "perfect negotiation"
// pattern (https://developer.mozilla.org/docs/Web/API/WebRTC_API/Perfect_negotiation): either
// side may renegotiate at any time; on an offer collision the polite side yields (the browser
// rolls back its own offer implicitly) and the impolite side ignores the other's offer.
//
// Collisions are survivable but not free: after the polite side rolls back an offer whose ICE
// gathering had started, Chromium (seen in 156) may never emit candidates for its answer and
// the call hangs in "connecting". So the first offer has one author — the participant who
// arrived last (the "initiator") — and the other side attaches its media when that offer comes.
// A watchdog restarts ICE on any link that does not connect in time, whatever the cause.

import { debug } from './log.js';

/** How long ICE may stay "disconnected" before we stop waiting for it to heal and restart. */
const DISCONNECTED_GRACE_MS = 3000;
/** A link that has not connected this long after (re)starting gets an ICE restart. */
const CONNECT_TIMEOUT_MS = 5000;
/** The polite side restarts this much later, so both sides rarely offer at once. */
const POLITE_DELAY_MS = 1500;
/** A non-initiator that hears no offer this long makes the first offer itself. */
const OFFER_WAIT_MS = 2000;

export class PeerLink {
  /**
   * @param {object} o
   * @param {string} o.label   names the remote peer in debug traces
   * @param {boolean} o.polite    true when our peer id sorts before theirs
   * @param {boolean} o.initiator true when we joined after them: we make the first offer
   * @param {RTCIceServer[]} o.iceServers  from the join ack ([] on loopback)
   * @param {MediaStream|null} o.localStream  null = receive only (no camera/mic)
   * @param {(msg: object) => void} o.send  sends {description}|{candidate}|{end_of_candidates}
   * @param {(stream: MediaStream) => void} o.onStream  a remote track arrived
   * @param {() => void} o.onStateChange  connection state changed
   */
  constructor({ label, polite, initiator, iceServers, localStream, send, onStream, onStateChange }) {
    this.label = label;
    this.polite = polite;
    this.localStream = localStream;
    this.send = send;
    this.onStateChange = onStateChange;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.mediaAttached = false;
    this.closed = false;
    this.timers = {};
    // Signals are handled one at a time, in arrival order: an answer must not overtake the
    // offer it answers, and candidates need the remote description they belong to.
    this.queue = Promise.resolve();
    this.remoteStream = new MediaStream();

    const pc = (this.pc = new RTCPeerConnection({ iceServers }));

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

    pc.ontrack = ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      onStream(this.remoteStream);
    };

    pc.oniceconnectionstatechange = () => this.watchConnectivity();
    pc.onconnectionstatechange = () => this.watchConnectivity();

    if (initiator) this.attachMedia();
    else this.later('offerWait', OFFER_WAIT_MS, () => this.attachMedia());
    this.later('connect', CONNECT_TIMEOUT_MS, () => this.restartIce('not connected in time'));
  }

  /** "new" | "connecting" | "connected" | "disconnected" | "failed" | "closed" */
  get state() {
    return this.pc.connectionState;
  }

  later(name, ms, fn) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(() => !this.closed && fn(), ms);
  }

  /**
   * Put our camera/mic on the connection, once. On the answering side this runs between
   * setRemoteDescription(offer) and the answer, so the tracks ride the offered transceivers.
   * Kinds we cannot send are still received (recvonly), e.g. after camera access was denied.
   */
  attachMedia() {
    if (this.mediaAttached || this.closed) return;
    this.mediaAttached = true;
    clearTimeout(this.timers.offerWait);
    const stream = this.localStream;
    for (const track of stream?.getTracks() ?? []) this.pc.addTrack(track, stream);
    for (const kind of ['audio', 'video']) {
      const present = this.pc.getTransceivers().some((t) => t.receiver.track.kind === kind);
      if (!present) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
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
    }
    this.onStateChange();
  }

  restartIce(why) {
    this.later('restart', this.polite ? POLITE_DELAY_MS : 0, () => {
      if (this.pc.connectionState === 'connected') return;
      debug('ICE restart', this.label, why);
      this.attachMedia(); // an ICE restart needs an offer; make sure it carries our media
      this.pc.restartIce();
      this.later('connect', CONNECT_TIMEOUT_MS, () => this.restartIce('restart did not connect'));
    });
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
