// The call view shared by the exam room and specialist pages: local preview, a tile per remote
// participant (plus one per second source), mic/camera/second-source/recording/hang-up
// controls, a status line and plain-language messages. It owns the consult room membership
// (join, rejoin after a socket reconnect, leave, end) and the media path:
//
//   p2p    one direct link per remote participant (peer.js), as long as the consult is on it;
//   relay  two connections to the server's relay (relay.js), from the moment the join ack or a
//          `media-path` event says so. The same camera/microphone stream and the same tiles
//          carry on; the users do nothing. A direct link that does not come up despite its ICE
//          restarts is reported with `p2p-failed`, and the server decides.

import { api } from './api.js';
import { recordLink } from './consults.js';
import { errorText } from './errors.js';
import { h } from './dom.js';
import { onLangChange, t } from './i18n.js';
import { InvitePanel } from './invitations.js';
import { debug } from './log.js';
import { NotesPanel } from './notes.js';
import { PeerLink } from './peer.js';
import { RecordingControls } from './recording.js';
import { RelayLink } from './relay.js';
import { openSecond, secondOptions } from './second-source.js';
import { notify, request, whenConnected } from './socket.js';

const FINISHED = new Set(['ended', 'declined', 'cancelled', 'expired']);
/** Tries of `join` when the server answers `conflict` (a simultaneous join won the race). */
const JOIN_ATTEMPTS = 4;
/** After the server keeps the direct path despite a `p2p-failed`, wait this long to say it again. */
const P2P_REPORT_INTERVAL_MS = 30000;

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

/** A remote tile's key: a participant's camera + microphone, or their second source. */
const tileKey = (peerId, source) => (source === 'second' ? `${peerId}:second` : peerId);

export class CallView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.root   empty container the view renders into
   * @param {import('./socket.js').Socket} o.socket
   * @param {object} o.user        the signed-in user (from /api/me)
   * @param {() => void} o.onClose called when the user goes back to the list
   * @param {(() => void)|null} o.onRemoved called when the server took us out of the room
   *   (our invitation was withdrawn), after onClose
   */
  constructor({ root, socket, user, onClose, onRemoved = null }) {
    this.onRemoved = onRemoved;
    this.socket = socket;
    this.user = user;
    this.onClose = onClose;
    this.consultId = null;
    this.consult = null;
    this.peerId = null;
    this.iceServers = [];
    this.localStream = null;
    this.second = null; // our second source {track, stream} while it is shared
    this.people = new Map(); // peer_id → user|null: everyone else in the room
    // peer_ids that left: a relay offer already on its way may still list their tracks, and must
    // not bring their tile back (peer ids are never reused).
    this.departed = new Set();
    this.links = new Map(); // peer_id → PeerLink, on the peer-to-peer path
    this.relay = null; // RelayLink, on the relay path
    this.path = 'p2p';
    this.tiles = new Map(); // tile key → {key, peerId, source, tile, video, caption}
    this.lastP2pReport = 0; // when we last sent `p2p-failed` (ms since the epoch)
    this.active = false; // in a consult room (or trying to be)
    this.rejoinPending = false;
    this.attempts = 0;
    this.early = []; // [event, payload] that arrived while our join ack was on its way
    this.message = null; // {key, params, kind} so it can be re-rendered in another language
    this.recording = new RecordingControls({
      user,
      request: (event, payload = {}) => request(this.socket, event, { consult_id: this.consultId, ...payload }),
      say: (key, params, kind) => this.say(key, params, kind),
      errorText,
    });
    this.notes = new NotesPanel({
      request: (event, payload = {}) => request(this.socket, event, { consult_id: this.consultId, ...payload }),
      errorText,
    });
    // The assigned specialist invites colleagues from inside the call (multi-disciplinary).
    this.invite = new InvitePanel({
      user,
      onChange: (consult) => { this.consult = consult; this.invite.setConsult(consult); this.render(); },
      say: (key, params, kind) => this.say(key, params, kind),
      errorText,
    });
    this.build(root);
    this.listen();
    onLangChange(() => this.render());
  }

  build(root) {
    // Buttons whose label never changes carry data-i18n; mic/camera are relabelled in render().
    const button = (testid, key, onclick, extra = {}, translate = true) =>
      h('button', { type: 'button', dataset: { testid, i18n: translate ? key : undefined }, onclick, ...extra }, t(key));
    this.title = h('h2', { class: 'call-title', id: 'call-title', dataset: { testid: 'call-title' } });
    this.pathBadge = h('span', { class: 'path-badge', hidden: true, dataset: { testid: 'media-path' } });
    this.statusText = h('span');
    this.statusLine = h('p', { class: 'call-status', role: 'status', dataset: { testid: 'call-status' } },
      this.statusText, ' ', this.pathBadge);
    this.messageLine = h('p', {
      class: 'call-message', 'aria-live': 'assertive', hidden: true, dataset: { testid: 'call-message' },
    });
    this.remotes = h('div', { class: 'remotes', dataset: { testid: 'remote-videos' } });
    this.localVideo = h('video', {
      class: 'local-video', autoplay: true, playsinline: true, muted: true,
      dataset: { testid: 'local-video' }, 'aria-label': t('call.localVideo'),
    });
    this.localVideo.muted = true; // the attribute alone does not mute a MediaStream in every browser
    this.secondVideo = h('video', {
      class: 'local-second', autoplay: true, playsinline: true, muted: true, hidden: true,
      dataset: { testid: 'local-second-video' },
    });
    this.secondVideo.muted = true;
    // The label says what a press will do ("Mute" / "Unmute"); data-off drives the styling.
    this.micButton = button('mute-button', 'call.mute', () => this.toggle('audio'), {}, false);
    this.cameraButton = button('camera-button', 'call.cameraOff', () => this.toggle('video'), {}, false);
    this.secondButton = button('second-button', 'second.share', () => this.toggleSecond(), {}, false);
    this.soundButton = button('enable-sound-button', 'call.enableSound', () => this.enableSound(), { hidden: true });
    this.leaveButton = button('leave-button', 'call.leave', () => this.leave());
    this.hangupButton = button('hangup-button', 'call.hangUp', () => this.hangUp(), { class: 'danger' });
    this.secondHeading = h('p', { class: 'picker-heading' });
    this.secondChoices = h('div', { class: 'card-actions' });
    this.secondPicker = h('div', { class: 'second-picker', hidden: true, dataset: { testid: 'second-picker' } },
      this.secondHeading, this.secondChoices);
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
      this.recordLink = recordLink(null),
      button('call-back-button', 'call.back', () => this.close()));
    const rec = this.recording;
    this.controls = h('div', { class: 'controls' },
      this.micButton, this.cameraButton, this.secondButton, rec.startButton, rec.stopButton,
      this.soundButton, this.leaveButton, this.hangupButton);

    this.view = h('section', { class: 'call', hidden: true, 'aria-labelledby': 'call-title', dataset: { testid: 'call-view' } },
      h('header', { class: 'call-header' }, this.title, rec.indicator, this.statusLine, rec.awaiting),
      this.stage = h('div', { class: 'stage' }, this.remotes, this.localVideo, this.secondVideo),
      this.messageLine, this.controls, this.secondPicker, this.invite.root, this.notes.root, this.conclusionBox, this.ended, rec.dialog);
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
    for (const kind of Object.keys(this.roomEvents())) {
      s.on(kind, (p) => mine(p) && !held(kind, p) && this.roomEvents()[kind](p));
    }
    s.on('consult-state', ({ consult }) => {
      if (!this.active || consult?.id !== this.consultId) return;
      this.consult = consult;
      this.recording.setConsult(consult);
      this.invite.setConsult(consult);
      if (FINISHED.has(consult.status)) return this.finish(consult);
      if (this.peerId && consult.media_mode === 'relay') this.usePath('relay');
      this.render();
    });
    // Our invitation into this consult was withdrawn (or declined elsewhere): the server took
    // us out of the room; go back to the list and say why.
    s.on('removed-from-consult', (p) => {
      if (!mine(p)) return;
      this.stop();
      this.close();
      this.onRemoved?.();
    });
    s.on('disconnect', () => {
      if (!this.active) return;
      this.rejoinPending = true;
      this.render();
    });
    s.on('connect', () => {
      // The server forgot our old peer id with the old connection; the others were told we
      // left. Start over: new peer id, fresh connections with whoever is there now.
      if (this.active && this.rejoinPending) this.enterRoom();
    });
  }

  /** Events about the consult room, by name; they wait for our join ack (see listen()). */
  roomEvents() {
    return {
      'peer-joined': (p) => this.peerJoined(p),
      'peer-left': (p) => this.peerLeft(p),
      signal: (p) => this.route(p),
      'media-path': (p) => this.usePath(p.path),
      'relay-offer': (p) => this.relayOffer(p),
      'recording-consent-requested': (p) => this.recording.askConsent(p.requested_by),
      'recording-state': (p) => this.recording.update(p.recording),
      'note-added': (p) => this.notes.add(p.note),
    };
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
    this.notes.reset();
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
    // Connections go; tiles stay until the join ack says who is still here.
    this.closeConnections();
    this.peerId = null;
    this.path = 'p2p';
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
    this.recording.setConsult(this.consult);
    this.invite.setConsult(this.consult);
    if (this.consult && FINISHED.has(this.consult.status)) return this.finish(this.consult);
    this.recording.update(ack.recording, { announce: false });
    this.notes.setNotes(ack.notes ?? []);
    this.notes.setOpen(true);
    const relay = ack.media_path === 'relay' || this.consult?.media_mode === 'relay';
    this.path = relay ? 'relay' : 'p2p';
    debug('joined as', this.peerId, 'on', this.path, 'with', (ack.peers ?? []).map((p) => p.peer_id));
    const here = new Set((ack.peers ?? []).map((p) => p.peer_id));
    for (const peerId of [...this.people.keys()]) if (!here.has(peerId)) this.forget(peerId);
    for (const peer of ack.peers ?? []) {
      // They were here first: we arrived, so we make the first offer to each of them.
      if (peer.peer_id !== this.peerId) this.meet(peer, { initiator: true });
    }
    if (relay) this.openRelay();
    const early = this.early;
    this.early = [];
    const handlers = this.roomEvents();
    for (const [kind, payload] of early) handlers[kind](payload);
    this.render();
  }

  peerJoined({ peer }) {
    if (peer.peer_id === this.peerId) return;
    this.meet(peer); // met already (in our join ack, or by its offer): only named here
    this.say('call.peer.joined', { name: peer.user?.display_name ?? '' });
  }

  peerLeft({ peer_id: peerId, reason }) {
    const user = this.people.get(peerId);
    this.departed.add(peerId);
    this.forget(peerId);
    const name = user?.display_name ?? '';
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

  // ---- participants and their tiles -------------------------------------------------------------

  /** A remote participant is in the room: their tile, and a direct link on the p2p path. */
  meet(peer, { initiator = false } = {}) {
    const known = this.people.has(peer.peer_id);
    const user = peer.user ?? this.people.get(peer.peer_id) ?? null;
    this.people.set(peer.peer_id, user);
    this.tile(peer.peer_id, 'camera');
    if (this.path === 'p2p' && (!known || !this.links.has(peer.peer_id))) this.addLink(peer.peer_id, initiator);
    this.render();
  }

  /** They left: their link and every tile of theirs go. */
  forget(peerId) {
    this.people.delete(peerId);
    this.links.get(peerId)?.close();
    this.links.delete(peerId);
    for (const source of ['camera', 'second']) this.removeTile(tileKey(peerId, source));
    this.render();
  }

  /** The tile for a participant's camera or second source, made on first use. */
  tile(peerId, source) {
    const key = tileKey(peerId, source);
    let entry = this.tiles.get(key);
    if (entry) return entry;
    const video = h('video', {
      autoplay: true, playsinline: true, dataset: { testid: 'remote-video', peerId, source },
    });
    if (source === 'second') video.muted = true; // pictures only; the sound is on the camera tile
    const caption = h('figcaption');
    const tile = h('figure', { class: 'remote-tile', dataset: { peerId, source } }, video, caption);
    // A person's second source sits right after their camera.
    const after = source === 'second' ? this.tiles.get(peerId)?.tile : null;
    if (after) after.after(tile);
    else this.remotes.append(tile);
    entry = { key, peerId, source, tile, video, caption };
    this.tiles.set(key, entry);
    this.nameTile(entry);
    return entry;
  }

  nameTile(entry) {
    const name = this.people.get(entry.peerId)?.display_name ?? '';
    const second = entry.source === 'second';
    entry.caption.textContent = second ? t('second.caption', { name }) : name;
    entry.video.setAttribute('aria-label', t(second ? 'second.remoteVideo' : 'call.remoteVideo', { name }));
  }

  removeTile(key) {
    const entry = this.tiles.get(key);
    if (!entry) return;
    this.tiles.delete(key);
    entry.video.srcObject = null;
    entry.tile.remove();
  }

  removeAllTiles() {
    for (const key of [...this.tiles.keys()]) this.removeTile(key);
    this.people.clear();
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
    for (const { video, source } of this.tiles.values()) {
      if (source === 'second') continue;
      video.muted = false;
      video.play().catch(() => {});
    }
    this.soundButton.hidden = true;
  }

  // ---- peer-to-peer path ----------------------------------------------------------------------

  /** Hand a signal to its peer's link; an offer may come before (or without) peer-joined. */
  route(signal) {
    if (this.path !== 'p2p') return; // a late signal from the direct path we left
    if (!this.links.has(signal.from)) this.meet({ peer_id: signal.from, user: null });
    this.links.get(signal.from)?.handle(signal);
  }

  addLink(peerId, initiator) {
    this.links.get(peerId)?.close();
    const link = new PeerLink({
      label: peerId,
      polite: this.peerId < peerId,
      initiator,
      iceServers: this.iceServers,
      localStream: this.localStream,
      second: this.second,
      send: (msg) => this.signal(peerId, msg),
      onStream: (stream, source) => {
        if (this.links.get(peerId) === link) this.showRemote(this.tile(peerId, source).video, stream);
      },
      onStreamGone: (source) => {
        if (this.links.get(peerId) === link) this.removeTile(tileKey(peerId, source));
      },
      onStateChange: () => this.render(),
      onFailed: () => this.reportP2pFailed(),
    });
    this.links.set(peerId, link);
    return link;
  }

  signal(to, msg) {
    // While the socket is down, drop signals instead of letting socket.io buffer them: after
    // the reconnect we rejoin under a new peer id and renegotiate from scratch anyway.
    if (!this.socket.connected || !this.peerId) return;
    notify(this.socket, 'signal', { consult_id: this.consultId, to, ...msg });
  }

  /** A direct link does not come up: ask the server to carry the media (it may say no). */
  async reportP2pFailed() {
    if (this.path !== 'p2p' || !this.peerId || !this.socket.connected) return;
    if (Date.now() - this.lastP2pReport < P2P_REPORT_INTERVAL_MS) return;
    this.lastP2pReport = Date.now();
    debug('reporting p2p-failed');
    try {
      const ack = await request(this.socket, 'p2p-failed', { consult_id: this.consultId });
      if (ack.media_path === 'relay') this.usePath('relay');
    } catch (err) {
      console.warn('p2p-failed refused', err.code, err.message); // the links keep trying
    }
  }

  // ---- relay path -----------------------------------------------------------------------------

  /** Follow the server onto the relay (never back: a consult on the relay stays there). */
  usePath(path) {
    if (path !== 'relay' || !this.active || !this.peerId) return;
    if (this.path === 'relay' && this.relay) return;
    debug('media path → relay');
    this.path = 'relay';
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.openRelay();
    this.render();
  }

  openRelay() {
    if (this.relay) return;
    const consultId = this.consultId;
    const relay = new RelayLink({
      iceServers: this.iceServers,
      localStream: this.localStream,
      second: this.second,
      request: (event, payload) => request(this.socket, event, { consult_id: consultId, ...payload }),
      notify: (event, payload) => {
        if (this.socket.connected) notify(this.socket, event, { consult_id: consultId, ...payload });
      },
      onFeeds: (feeds) => this.relay === relay && this.showFeeds(feeds),
      onStateChange: () => this.render(),
      onError: (err) => {
        if (this.relay !== relay) return;
        console.warn('relay refused', err.code, err.message);
        this.say('call.relay.failed', { reason: errorText(err) }, 'error');
      },
      onFailed: () => this.relay === relay && this.rejoin(),
    });
    this.relay = relay;
    relay.publish();
  }

  relayOffer(payload) {
    if (!this.relay) this.usePath('relay');
    this.relay?.handleOffer(payload);
  }

  /** What the relay sends us: each feed on its participant's tile; second sources come and go. */
  showFeeds(feeds) {
    const seconds = new Set();
    for (const feed of feeds) {
      if (this.departed.has(feed.peerId)) continue;
      if (!this.people.has(feed.peerId) || feed.user) this.people.set(feed.peerId, feed.user ?? null);
      const entry = this.tile(feed.peerId, feed.source);
      this.nameTile(entry);
      this.showRemote(entry.video, feed.stream);
      if (feed.source === 'second') seconds.add(entry.key);
    }
    for (const entry of [...this.tiles.values()]) {
      if (entry.source === 'second' && !seconds.has(entry.key)) this.removeTile(entry.key);
    }
    this.render();
  }

  /** The relay connections broke for good: leave and join again, which rebuilds them. */
  async rejoin() {
    if (!this.active) return;
    debug('relay failed; rejoining');
    this.say('call.relay.rejoining', {}, 'warn');
    this.closeConnections();
    if (this.peerId && this.socket.connected) {
      // Wait for the leave to be taken before joining again: the server handles events concurrently.
      await request(this.socket, 'leave', { consult_id: this.consultId }).catch(() => {});
    }
    if (this.active) this.enterRoom();
  }

  closeConnections() {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.relay?.close();
    this.relay = null;
  }

  // ---- second source --------------------------------------------------------------------------

  toggleSecond() {
    if (this.second) this.stopSecond();
    else if (!this.secondPicker.hidden) this.secondPicker.hidden = true;
    else this.pickSecond();
  }

  /** Offer the sources there are: other cameras (a capture card is one) and the screen. */
  async pickSecond() {
    const main = this.localStream?.getVideoTracks()[0]?.getSettings().deviceId;
    const options = await secondOptions(main);
    if (!options.length) {
      this.say('second.none', {}, 'warn');
      return;
    }
    let cameras = 0;
    const label = (o) => (o.kind === 'screen' ? t('second.screen') : o.label || t('second.device', { n: ++cameras }));
    this.secondChoices.replaceChildren(
      ...options.map((o) => h('button', {
        type: 'button', dataset: { testid: 'second-option', kind: o.kind }, onclick: () => this.startSecond(o),
      }, label(o))),
      h('button', { type: 'button', dataset: { testid: 'second-cancel' }, onclick: () => { this.secondPicker.hidden = true; } },
        t('second.cancel')));
    this.secondPicker.hidden = false;
  }

  async startSecond(option) {
    this.secondPicker.hidden = true;
    let second;
    try {
      second = await openSecond(option);
    } catch (err) {
      console.warn('second source failed', err);
      if (err?.name !== 'NotAllowedError' || option.kind !== 'screen') {
        this.say('second.failed', { reason: t(mediaErrorKey(err)) }, 'warn');
      }
      return; // closing the screen picker is no error
    }
    if (!this.active) {
      second.track.stop();
      return;
    }
    this.stopSecond({ quiet: true });
    this.second = second;
    // "Stop sharing" in the browser's own bar ends the track: stop it here too.
    second.track.addEventListener('ended', () => this.second === second && this.stopSecond());
    this.secondVideo.srcObject = second.stream;
    this.secondVideo.hidden = false;
    for (const link of this.links.values()) link.setSecond(second);
    this.relay?.setSecond(second);
    this.render();
  }

  stopSecond({ quiet = false } = {}) {
    const second = this.second;
    if (!second) return;
    this.second = null;
    second.track.stop();
    this.secondVideo.srcObject = null;
    this.secondVideo.hidden = true;
    if (!quiet) {
      for (const link of this.links.values()) link.setSecond(null);
      this.relay?.setSecond(null);
    }
    this.render();
  }

  // ---- controls -------------------------------------------------------------------------------

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
    this.secondPicker.hidden = true;
    this.conclusionBox.hidden = true;
    this.notes.setOpen(false); // the notes stay on screen to read, no more can be added
    this.ended.hidden = false;
    this.endedNote.textContent = consult?.closing_note ?? '';
    this.endedNote.hidden = !consult?.closing_note;
    this.recordLink.replaceWith(this.recordLink = recordLink(consult));
    this.render();
  }

  stop() {
    this.active = false;
    this.closeConnections();
    this.removeAllTiles();
    this.path = 'p2p';
    this.peerId = null;
    this.stopSecond({ quiet: true });
    this.recording.reset();
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
    if (!this.people.size) return 'waiting';
    const states = this.path === 'relay'
      ? [this.relay?.state ?? 'new']
      : [...this.links.values()].map((link) => link.state);
    if (!states.length) return 'connecting';
    if (states.some((s) => s === 'disconnected' || s === 'failed')) return 'reconnecting';
    if (states.some((s) => s === 'connected')) return 'connected';
    return 'connecting';
  }

  render() {
    const state = this.callState();
    this.view.dataset.callState = state;
    this.view.dataset.mediaPath = this.path;
    const c = this.consult;
    this.title.textContent = c
      ? t('call.title', { patient: c.patient?.name ?? '', specialty: t(`specialty.${c.specialty}`) })
      : t('call.titleLoading');
    this.statusText.textContent = t(`call.state.${state}`);
    this.pathBadge.hidden = !this.active || !this.peerId;
    this.pathBadge.textContent = t(`call.path.${this.path}`);
    this.pathBadge.dataset.path = this.path;
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
    this.secondButton.textContent = t(this.second ? 'second.stop' : 'second.share');
    this.secondButton.dataset.active = this.second ? 'true' : 'false';
    this.secondHeading.textContent = t('second.choose');
    this.localVideo.setAttribute('aria-label', t('call.localVideo'));
    this.secondVideo.setAttribute('aria-label', t('second.localVideo'));
    for (const entry of this.tiles.values()) this.nameTile(entry);
    // An invited specialist takes part but does not end the consult (the permission table):
    // no hang-up (ending) and no conclusion; they leave instead.
    const invitee = this.user.role === 'specialist' && c?.specialist && c.specialist.id !== this.user.id;
    this.hangupButton.hidden = Boolean(invitee);
    if (invitee) this.conclusionBox.hidden = true;
    this.recording.render();
    this.notes.render();
  }
}
