// One RTCPeerConnection to one remote participant, negotiated with the "perfect negotiation"
// pattern (https://developer.mozilla.org/docs/Web/API/WebRTC_API/Perfect_negotiation): either
// side may renegotiate at any time; on an offer collision the polite side yields (the browser
// rolls back its own offer implicitly) and the impolite side ignores the other's offer.

/** How long ICE may stay "disconnected" before we stop waiting for it to heal and restart. */
const DISCONNECTED_GRACE_MS = 3000;

export class PeerLink {
  /**
   * @param {object} o
   * @param {boolean} o.polite    true when our peer id sorts before theirs
   * @param {RTCIceServer[]} o.iceServers  from the join ack ([] on loopback)
   * @param {MediaStream|null} o.localStream  null = receive only (no camera/mic)
   * @param {(msg: object) => void} o.send  sends {description}|{candidate}|{end_of_candidates}
   * @param {(stream: MediaStream) => void} o.onStream  first remote track arrived
   * @param {() => void} o.onStateChange  connection state changed
   */
  constructor({ polite, iceServers, localStream, send, onStream, onStateChange }) {
    this.polite = polite;
    this.send = send;
    this.onStateChange = onStateChange;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    this.closed = false;
    this.disconnectedTimer = null;
    // Signals are handled one at a time, in arrival order: an answer must not overtake the
    // offer it answers, and candidates need the remote description they belong to.
    this.queue = Promise.resolve();
    this.remoteStream = new MediaStream();

    const pc = (this.pc = new RTCPeerConnection({ iceServers }));
    if (localStream) {
      for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
    } else {
      // Without camera/mic we still want to see and hear the other side.
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }

    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
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
      if (candidate === null) this.send({ end_of_candidates: true });
      // An empty candidate string is the legacy per-m-line end marker; the null above covers it.
      else if (candidate.candidate) this.send({ candidate: candidate.toJSON() });
    };

    pc.ontrack = ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      onStream(this.remoteStream);
    };

    pc.oniceconnectionstatechange = () => this.watchConnectivity(pc.iceConnectionState);
    pc.onconnectionstatechange = () => this.watchConnectivity(pc.connectionState);
  }

  /** "new" | "connecting" | "connected" | "disconnected" | "failed" | "closed" */
  get state() {
    return this.pc.connectionState;
  }

  sendDescription() {
    const { type, sdp } = this.pc.localDescription;
    this.send({ description: { type, sdp } });
  }

  /** ICE restart when the path failed, or has been "disconnected" for longer than a blip. */
  watchConnectivity(state) {
    if (this.closed) return;
    clearTimeout(this.disconnectedTimer);
    if (state === 'failed') {
      this.pc.restartIce();
    } else if (state === 'disconnected') {
      this.disconnectedTimer = setTimeout(() => {
        const { iceConnectionState, connectionState } = this.pc;
        if (!this.closed && (iceConnectionState === 'disconnected' || connectionState === 'disconnected')) {
          this.pc.restartIce();
        }
      }, DISCONNECTED_GRACE_MS);
    }
    this.onStateChange();
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
    clearTimeout(this.disconnectedTimer);
    this.pc.close();
    for (const track of this.remoteStream.getTracks()) track.stop();
  }
}
