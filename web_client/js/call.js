// The call view shared by the exam room and specialist pages: local preview, one <video> per
// remote participant, mic/camera/hang-up controls, a status line and plain-language messages.
// It owns the consult room membership: join, rejoin after a socket reconnect, leave, end.

import { api } from './api.js';
import { errorText } from './errors.js';
import { h } from './dom.js';
import { onLangChange, t } from './i18n.js';
import { debug } from './log.js';
import { PeerLink } from './peer.js';
import { notify, request, whenConnected } from './socket.js';

const FINISHED = new Set(['ended', 'declined', 'cancelled', 'expired']);
/** Tries of `join` when the server answers `conflict` (a simultaneous join won the race). */
const JOIN_ATTEMPTS = 4;

/** What getUserMedia's error means for the user (they can still join to see and hear). */
function mediaErrorKey(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'call.media.denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'call.media.missing';
    case 'NotReadableError':
      return 'call.media.busy';
    default:
      return 'call.media.failed';
  }
}

export class CallView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.root   empty container the view renders into
   * @param {import('./socket.js').Socket} o.socket
   * @param {object} o.user        the signed-in user (from /api/me)
   * @param {() => void} o.onClose called when the user goes back to the list
   */
  constructor({ root, socket, user, onClose }) {
    this.socket = socket;
    this.user = user;
    this.onClose = onClose;
    this.consultId = null;
    this.consult = null;
    this.peerId = null;
    this.iceServers = [];
    this.localStream = null;
    this.peers = new Map(); // peer_id → {link, user, tile, video}
    this.active = false; // in a consult room (or trying to be)
    this.rejoinPending = false;
    this.attempts = 0;
    this.early = []; // [event, payload] that arrived while our join ack was on its way
    this.message = null; // {key, params, kind} so it can be re-rendered in another language
    this.build(root);
    this.listen();
    onLangChange(() => this.render());
  }

  build(root) {
    // Buttons whose label never changes carry data-i18n; mic/camera are relabelled in render().
    const button = (testid, key, onclick, extra = {}, translate = true) =>
      h('button', { type: 'button', dataset: { testid, i18n: translate ? key : undefined }, onclick, ...extra }, t(key));
    this.title = h('h2', { class: 'call-title', id: 'call-title', dataset: { testid: 'call-title' } });
    this.statusLine = h('p', { class: 'call-status', role: 'status', dataset: { testid: 'call-status' } });
    this.messageLine = h('p', {
      class: 'call-message', 'aria-live': 'assertive', hidden: true, dataset: { testid: 'call-message' },
    });
    this.remotes = h('div', { class: 'remotes', dataset: { testid: 'remote-videos' } });
    this.localVideo = h('video', {
      class: 'local-video', autoplay: true, playsinline: true, muted: true,
      dataset: { testid: 'local-video' }, 'aria-label': t('call.localVideo'),
    });
    this.localVideo.muted = true; // the attribute alone does not mute a MediaStream in every browser
    // The label says what a press will do ("Mute" / "Unmute"); data-off drives the styling.
    this.micButton = button('mute-button', 'call.mute', () => this.toggle('audio'), {}, false);
    this.cameraButton = button('camera-button', 'call.cameraOff', () => this.toggle('video'), {}, false);
    this.soundButton = button('enable-sound-button', 'call.enableSound', () => this.enableSound(), { hidden: true });
    this.leaveButton = button('leave-button', 'call.leave', () => this.leave());
    this.hangupButton = button('hangup-button', 'call.hangUp', () => this.hangUp(), { class: 'danger' });
    this.conclusion = h('textarea', {
      rows: 3, maxlength: 4000, dataset: { testid: 'conclusion-input' }, id: 'call-conclusion',
    });
    this.conclusionBox = h('details', { class: 'conclusion', hidden: this.user.role !== 'specialist' },
      h('summary', { dataset: { i18n: 'call.conclusion', testid: 'conclusion-toggle' } }, t('call.conclusion')),
      h('label', { for: 'call-conclusion', class: 'visually-hidden', dataset: { i18n: 'call.conclusion' } }, t('call.conclusion')),
      this.conclusion);
    this.endedText = h('p', { dataset: { testid: 'call-ended-text' } });
    this.endedNote = h('p', { class: 'closing-note', hidden: true });
    this.ended = h('div', { class: 'call-ended', hidden: true, role: 'alert', dataset: { testid: 'call-ended' } },
      this.endedText, this.endedNote,
      button('call-back-button', 'call.back', () => this.close()));
    this.controls = h('div', { class: 'controls' },
      this.micButton, this.cameraButton, this.soundButton, this.leaveButton, this.hangupButton);

    this.view = h('section', { class: 'call', hidden: true, 'aria-labelledby': 'call-title', dataset: { testid: 'call-view' } },
      h('header', { class: 'call-header' }, this.title, this.statusLine),
      this.stage = h('div', { class: 'stage' }, this.remotes, this.localVideo),
      this.messageLine, this.controls, this.conclusionBox, this.ended);
    root.replaceChildren(this.view);
  }

  listen() {
    const mine = (payload) => this.active && payload?.consult_id === this.consultId;
    const s = this.socket;
    // Until our join ack arrives we do not know our own peer id, hence neither who is polite
    // nor whether an event is about us: room events that come first wait in `early`.
    const held = (kind, p) => {
      if (this.peerId) return false;
      debug(`${kind} before join ack, held`);
      this.early.push([kind, p]);
      return true;
    };
    s.on('peer-joined', (p) => mine(p) && !held('peer-joined', p) && this.peerJoined(p));
    s.on('peer-left', (p) => mine(p) && !held('peer-left', p) && this.peerLeft(p));
    s.on('signal', (p) => mine(p) && !held('signal', p) && this.route(p));
    s.on('consult-state', ({ consult }) => {
      if (!this.active || consult?.id !== this.consultId) return;
      this.consult = consult;
      if (FINISHED.has(consult.status)) this.finish(consult);
      else this.render();
    });
    s.on('disconnect', () => {
      if (!this.active) return;
      this.rejoinPending = true;
      this.render();
    });
    s.on('connect', () => {
      // The server forgot our old peer id with the old connection; the others were told we
      // left. Start over: new peer id, fresh peer connections with whoever is there now.
      if (this.active && this.rejoinPending) this.enterRoom();
    });
  }

  /** Open the call view and join `consultId` (camera/mic first, then the room). */
  async join(consultId) {
    this.consultId = consultId;
    this.consult = null;
    this.active = true;
    this.message = null;
    this.view.hidden = false;
    this.ended.hidden = true;
    this.controls.hidden = false;
    this.stage.hidden = false;
    this.hangupButton.disabled = false;
    this.conclusionBox.hidden = this.user.role !== 'specialist';
    this.render();
    await this.startLocalMedia();
    await this.enterRoom();
  }

  async startLocalMedia() {
    if (this.localStream) return;
    if (!navigator.mediaDevices?.getUserMedia) {
      // Browsers only offer camera/mic on https:// or localhost pages.
      this.say('call.media.insecure', {}, 'warn');
    } else {
      try {
        this.localStream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true },
          video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' },
        });
      } catch (err) {
        console.warn('getUserMedia failed', err);
        this.say(mediaErrorKey(err), {}, 'warn');
      }
    }
    this.localVideo.srcObject = this.localStream;
    this.localVideo.hidden = !this.localStream;
    for (const [button, tracks] of [
      [this.micButton, this.localStream?.getAudioTracks()],
      [this.cameraButton, this.localStream?.getVideoTracks()],
    ]) {
      button.disabled = !tracks?.length;
      button.dataset.off = 'false'; // a fresh stream starts with everything on
    }
  }

  async enterRoom() {
    // A reconnect can start a new attempt while an older one still awaits its ack; only the
    // newest attempt may touch state.
    const attempt = ++this.attempts;
    const current = () => this.active && attempt === this.attempts;
    this.rejoinPending = false;
    this.closePeers();
    this.peerId = null;
    this.early = [];
    this.render();
    await whenConnected(this.socket);
    if (!current()) return;
    let ack;
    try {
      ack = await this.requestJoin(current);
    } catch (err) {
      if (!current()) return;
      if (!this.socket.connected) {
        this.rejoinPending = true; // lost the socket mid-join; the 'connect' handler retries
        this.render();
        return;
      }
      this.say('call.joinFailed', { reason: errorText(err) }, 'error');
      this.stop();
      this.showEnded(null);
      return;
    }
    if (!current()) {
      // The user stepped out while the join was on its way: do not stay behind in the room.
      if (!this.active) notify(this.socket, 'leave', { consult_id: ack.consult?.id ?? this.consultId });
      return;
    }
    this.peerId = ack.peer_id;
    this.iceServers = ack.ice_servers ?? [];
    this.consult = ack.consult ?? this.consult;
    if (this.consult && FINISHED.has(this.consult.status)) return this.finish(this.consult);
    debug('joined as', this.peerId, 'with', (ack.peers ?? []).map((p) => p.peer_id));
    for (const peer of ack.peers ?? []) {
      // They were here first: we arrived, so we make the first offer to each of them.
      if (peer.peer_id !== this.peerId) this.addPeer(peer, { initiator: true });
    }
    const early = this.early;
    this.early = [];
    for (const [kind, payload] of early) {
      if (kind === 'peer-joined') this.peerJoined(payload);
      else if (kind === 'peer-left') this.peerLeft(payload);
      else this.route(payload);
    }
    this.render();
  }

  peerJoined({ peer }) {
    if (peer.peer_id === this.peerId) return;
    const known = this.peers.get(peer.peer_id);
    if (known) this.nameTile(known, peer.user); // met already: in our join ack, or by its offer
    else this.addPeer(peer);
    this.say('call.peer.joined', { name: peer.user?.display_name ?? '' });
  }

  peerLeft({ peer_id: peerId, reason }) {
    const peer = this.peers.get(peerId);
    this.removePeer(peerId);
    const name = peer?.user?.display_name ?? '';
    this.say(reason === 'disconnected' ? 'call.peer.lost' : 'call.peer.left', { name }, 'warn');
  }

  /**
   * Send `join`, retrying a few times on `conflict`: when both sides join at the same moment
   * the server may refuse one of them because the other's join moved the consult first.
   */
  async requestJoin(current) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request(this.socket, 'join', { consult_id: this.consultId });
      } catch (err) {
        if (err.code !== 'conflict' || attempt >= JOIN_ATTEMPTS || !current()) throw err;
        debug('join conflict, retrying', attempt);
        await new Promise((resolve) => setTimeout(resolve, 150 * attempt + Math.random() * 150));
      }
    }
  }

  /** Hand a signal to its peer's link; an offer may come before (or without) peer-joined. */
  route(signal) {
    const peer = this.peers.get(signal.from) ?? this.addPeer({ peer_id: signal.from, user: null });
    peer.link.handle(signal);
  }

  /** Meet a remote participant: a tile with its <video>, and a peer connection to it. */
  addPeer(peer, { initiator = false } = {}) {
    this.removePeer(peer.peer_id);
    const video = h('video', {
      autoplay: true, playsinline: true, dataset: { testid: 'remote-video', peerId: peer.peer_id },
    });
    const caption = h('figcaption');
    const tile = h('figure', { class: 'remote-tile', dataset: { peerId: peer.peer_id } }, video, caption);
    this.remotes.append(tile);
    const entry = { tile, video, caption };
    this.nameTile(entry, peer.user);
    entry.link = new PeerLink({
      label: peer.peer_id,
      polite: this.peerId < peer.peer_id,
      initiator,
      iceServers: this.iceServers,
      localStream: this.localStream,
      send: (msg) => this.signal(peer.peer_id, msg),
      onStream: (stream) => this.showRemote(video, stream),
      onStateChange: () => this.render(),
    });
    this.peers.set(peer.peer_id, entry);
    this.render();
    return entry;
  }

  nameTile(entry, user) {
    entry.user = user;
    entry.caption.textContent = user?.display_name ?? '';
    entry.video.setAttribute('aria-label', t('call.remoteVideo', { name: user?.display_name ?? '' }));
  }

  removePeer(peerId) {
    const entry = this.peers.get(peerId);
    if (!entry) return;
    this.peers.delete(peerId);
    entry.link.close();
    entry.tile.remove();
    this.render();
  }

  closePeers() {
    for (const peerId of [...this.peers.keys()]) this.removePeer(peerId);
  }

  signal(to, msg) {
    // While the socket is down, drop signals instead of letting socket.io buffer them: after
    // the reconnect we rejoin under a new peer id and renegotiate from scratch anyway.
    if (!this.socket.connected || !this.peerId) return;
    notify(this.socket, 'signal', { consult_id: this.consultId, to, ...msg });
  }

  showRemote(video, stream) {
    if (video.srcObject === stream) return;
    video.srcObject = stream;
    video.play().catch((err) => {
      // Autoplay with sound needs a user gesture (e.g. after opening a link); play muted and
      // offer a button to turn the sound on.
      if (err?.name !== 'NotAllowedError') return;
      video.muted = true;
      video.play().catch(() => {});
      this.soundButton.hidden = false;
    });
  }

  enableSound() {
    for (const { video } of this.peers.values()) {
      video.muted = false;
      video.play().catch(() => {});
    }
    this.soundButton.hidden = true;
  }

  toggle(kind) {
    const tracks = kind === 'audio' ? this.localStream?.getAudioTracks() : this.localStream?.getVideoTracks();
    if (!tracks?.length) return;
    const turnOff = tracks[0].enabled;
    // Disabling (not stopping) the track keeps the connection as it is: the others get
    // silence / black frames, and turning it back on needs no renegotiation.
    for (const track of tracks) track.enabled = !turnOff;
    (kind === 'audio' ? this.micButton : this.cameraButton).dataset.off = String(turnOff);
    this.render();
  }

  async hangUp() {
    this.hangupButton.disabled = true;
    try {
      const consult = await api.end(this.consultId, this.conclusion.value.trim());
      this.finish(consult);
    } catch (err) {
      this.hangupButton.disabled = false;
      this.say('call.hangUpFailed', { reason: errorText(err) }, 'error');
    }
  }

  /** Leave the room without ending the consult (e.g. waiting too long for the other side). */
  leave() {
    if (this.active && this.peerId) notify(this.socket, 'leave', { consult_id: this.consultId });
    this.stop();
    this.close();
  }

  /** The consult is over (ended, cancelled …): hang up here and say so. */
  finish(consult) {
    if (!this.active) return;
    this.consult = consult;
    this.message = null; // the ended banner says it all; "X joined" would only confuse
    // No 'leave': the server empties the room of an ended or cancelled consult by itself.
    this.stop();
    this.showEnded(consult);
  }

  showEnded(consult) {
    this.active = false;
    this.controls.hidden = true;
    this.stage.hidden = true;
    this.conclusionBox.hidden = true;
    this.ended.hidden = false;
    this.endedNote.textContent = consult?.closing_note ?? '';
    this.endedNote.hidden = !consult?.closing_note;
    this.render();
  }

  stop() {
    this.active = false;
    this.closePeers();
    this.peerId = null;
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.localStream = null;
    this.localVideo.srcObject = null;
  }

  close() {
    this.view.hidden = true;
    this.consultId = null;
    this.onClose?.();
  }

  say(key, params = {}, kind = 'info') {
    this.message = { key, params, kind };
    this.render();
  }

  /** The one-word state tests and styles key on, and the sentence the user reads. */
  callState() {
    const status = this.consult?.status;
    if (!this.active) return FINISHED.has(status) ? status : 'closed';
    if (!this.socket.connected || this.rejoinPending) return 'reconnecting';
    if (!this.peerId) return 'joining';
    const states = [...this.peers.values()].map((p) => p.link.state);
    if (!states.length) return 'waiting';
    if (states.some((s) => s === 'disconnected' || s === 'failed')) return 'reconnecting';
    if (states.some((s) => s === 'connected')) return 'connected';
    return 'connecting';
  }

  render() {
    const state = this.callState();
    this.view.dataset.callState = state;
    const c = this.consult;
    this.title.textContent = c
      ? t('call.title', { patient: c.patient?.name ?? '', specialty: t(`specialty.${c.specialty}`) })
      : t('call.titleLoading');
    this.statusLine.textContent = t(`call.state.${state}`);
    if (this.message) {
      this.messageLine.textContent = t(this.message.key, this.message.params);
      this.messageLine.dataset.kind = this.message.kind;
    }
    this.messageLine.hidden = !this.message;
    const finished = !this.active && FINISHED.has(c?.status);
    this.endedText.textContent = finished ? t(`call.finished.${c.status}`) : '';
    this.endedText.hidden = !finished;
    const micOff = this.micButton.dataset.off === 'true';
    const camOff = this.cameraButton.dataset.off === 'true';
    this.micButton.textContent = t(micOff ? 'call.unmute' : 'call.mute');
    this.cameraButton.textContent = t(camOff ? 'call.cameraOn' : 'call.cameraOff');
    this.localVideo.setAttribute('aria-label', t('call.localVideo'));
    for (const entry of this.peers.values()) this.nameTile(entry, entry.user);
  }
}
