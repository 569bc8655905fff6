// The call view shared by the exam room and specialist pages: local preview, a tile per remote
// participant (plus one per second source), the call bar pinned to the bottom of the screen
// (mic, camera, second source, recording, patient details, step out and, set apart, end), a
// status line and plain-language messages; the assigned specialist's conclusion right under the
// video, kept as a draft on the server (conclusion.js); ending asks first (end-dialog.js). It renders what the call session
// (session.js) holds and hands the user's presses to it; joining, rejoining and the media path
// are the session's business.
//
// For styles and tests, <section data-testid="call-view"> carries data-call-state (the word the
// status line says: joining, waiting, connecting, connected, reconnecting, replaced, failed,
// closed, or the status of a finished consult), data-session-state (the session's state) and
// data-media-path (p2p | relay).

import { recordLink } from '../consults.js';
import { h } from '../dom.js';
import { errorText } from '../errors.js';
import { onLangChange, t } from '../i18n.js';
import { InvitePanel } from '../invitations.js';
import { NotesPanel } from '../notes.js';
import { QualityReporter } from '../quality_report.js';
import { RecordingControls } from '../recording.js';
import { secondOptions } from '../second-source.js';
import { SignalIndicator } from '../signal_indicator.js';
import { request } from '../socket.js';
import { ConclusionPanel } from './conclusion.js';
import { EndDialog } from './end-dialog.js';
import { setBarButton } from './icons.js';
import { PatientPanel } from './patient-panel.js';
import { CallSession, FINISHED } from './session.js';

/** A remote tile's key: a participant's camera + microphone, or their second source. */
const tileKey = (peerId, source) => (source === 'second' ? `${peerId}:second` : peerId);

/** Session states in which the call is on screen with its stage and controls. */
const LIVE = new Set(['joining', 'in_call', 'rejoining']);

export class CallView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.root   empty container the view renders into
   * @param {import('../socket.js').Socket} o.socket
   * @param {object} o.user        the signed-in user (from /api/me)
   * @param {() => void} o.onClose called when the user goes back to the list
   * @param {(() => void)|null} o.onRemoved called when the server took us out of the room
   *   (our invitation was withdrawn), after onClose
   */
  constructor({ root, socket, user, onClose, onRemoved = null }) {
    this.user = user;
    this.onClose = onClose;
    this.onRemoved = onRemoved;
    this.tiles = new Map(); // tile key → {key, peerId, source, tile, video, caption}
    this.hangingUp = false;
    this.notesOpen = false;
    this.recordLinkFor = ''; // which finished consult the record link is for
    const inConsult = (event, payload = {}) =>
      request(socket, event, { consult_id: this.session.consultId, ...payload });
    const say = (key, params, kind) => this.session.say(key, params, kind);
    this.recording = new RecordingControls({ user, request: inConsult, say, errorText });
    this.notes = new NotesPanel({ request: inConsult, errorText });
    this.conclusion = new ConclusionPanel({ errorText });
    this.patient = new PatientPanel();
    this.endDialog = new EndDialog({
      onEnd: ({ conclusion, skip }) => this.hangUp(conclusion, skip),
      onType: (text) => this.conclusion.set(text),
      errorText,
    });
    // The assigned specialist invites colleagues from inside the call (multi-disciplinary).
    this.invite = new InvitePanel({
      user,
      onChange: (consult) => this.session.setConsult(consult),
      say,
      errorText,
      level: 3,
    });
    this.session = new CallSession({
      socket,
      on: {
        change: () => this.render(),
        consult: (consult) => {
          this.recording.setConsult(consult);
          this.invite.setConsult(consult);
          this.patient.setConsult(consult);
          // The assigned specialist's draft comes back once we know it is ours to write.
          if (consult && this.conclusionFor !== consult.id && this.isAssignedSpecialist() && !FINISHED.has(consult.status)) {
            this.conclusionFor = consult.id;
            this.conclusion.start(consult.id);
          }
        },
        recording: (recording, o) => this.recording.update(recording, o),
        consentAsked: (by) => this.recording.askConsent(by),
        notes: (notes) => this.notes.setNotes(notes),
        noteAdded: (note) => this.notes.add(note),
        stopped: () => {
          this.recording.reset();
          this.endDialog.close();
          this.patient.close();
        },
        closed: ({ removed }) => {
          this.view.hidden = true;
          this.onClose?.();
          if (removed) this.onRemoved?.();
        },
      },
    });
    this.signal = new SignalIndicator();
    this.build(root);
    // A diagnostic for tests and bench/network.py: what the adaptation and the links say now.
    window.teleconsultLink = () => this.session.adaptation.snapshot();
    onLangChange(() => this.render());
    // Quality telemetry while in a call; the indicator shows the server's rating of each report.
    this.quality = new QualityReporter({
      current: () => {
        const s = this.session;
        if (s.state !== 'in_call' || !s.consultId || !s.path?.peerConnections) return null;
        return {
          consultId: s.consultId,
          path: s.pathKind,
          connections: s.path.peerConnections(),
          audioOnly: s.adaptation.audioOnly === true, // sending audio only (link or chosen)
        };
      },
      send: (payload) => request(socket, 'quality-report', payload),
      onRating: (rating, payload) => this.signal.update(rating, payload),
    });
  }

  build(root) {
    // Buttons whose label never changes carry data-i18n; mic/camera are relabelled in render().
    const button = (testid, key, onclick, extra = {}, translate = true) =>
      h('button', { type: 'button', dataset: { testid, i18n: translate ? key : undefined }, onclick, ...extra }, t(key));
    const session = this.session;
    this.title = h('h2', { class: 'call-title', id: 'call-title', dataset: { testid: 'call-title' } });
    this.pathBadge = h('span', { class: 'path-badge', hidden: true, dataset: { testid: 'media-path' } });
    this.statusText = h('span');
    this.statusLine = h('p', { class: 'call-status', role: 'status', dataset: { testid: 'call-status' } },
      this.statusText, ' ', this.pathBadge);
    // Our sending side is audio-only (the link, or our choice): said under the status line.
    this.modeLine = h('p', { class: 'media-mode', hidden: true, dataset: { testid: 'media-mode' } });
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
    const bar = (testid, onclick, extra = {}) => h('button', { type: 'button', dataset: { testid }, onclick, ...extra });
    this.micButton = bar('mute-button', () => session.toggle('audio'));
    this.cameraButton = bar('camera-button', () => session.toggle('video'));
    // Audio only by hand (docs/network.md); pressed while chosen.
    this.audioOnlyButton = bar('audio-only-button', () => session.chooseAudioOnly(!session.adaptation.chosen));
    this.secondButton = bar('second-button', () => this.toggleSecond());
    this.soundButton = bar('enable-sound-button', () => this.enableSound(), { hidden: true });
    this.patientButton = bar('patient-button', () => this.patient.open());
    this.leaveButton = bar('leave-button', () => session.leave(), { class: 'leave' });
    this.hangupButton = bar('hangup-button', () => this.askToEnd(), { class: 'danger' });
    this.secondHeading = h('p', { class: 'picker-heading' });
    this.secondChoices = h('div', { class: 'card-actions' });
    this.secondPicker = h('div', { class: 'second-picker', hidden: true, dataset: { testid: 'second-picker' } },
      this.secondHeading, this.secondChoices);
    this.endedText = h('p', { dataset: { testid: 'call-ended-text' } });
    this.endedBy = h('p', { class: 'ended-by', hidden: true, dataset: { testid: 'call-ended-by' } });
    this.endedConclusionLabel = h('dt');
    this.endedNote = h('dd', { class: 'closing-note', dataset: { testid: 'call-ended-conclusion' } });
    this.endedConclusion = h('dl', { class: 'ended-conclusion', hidden: true }, this.endedConclusionLabel, this.endedNote);
    // Typed by this specialist after the last save, when the exam room ended the consult.
    this.endedUnsaved = h('p', { class: 'notice', hidden: true, dataset: { testid: 'call-ended-unsaved', kind: 'warn' } });
    this.ended = h('div', { class: 'call-ended', hidden: true, role: 'alert', dataset: { testid: 'call-ended' } },
      this.endedText, this.endedBy, this.endedConclusion, this.endedUnsaved,
      h('div', { class: 'ended-actions' },
        this.recordLink = recordLink(null),
        button('call-back-button', 'call.back', () => session.close())));
    // Another device or tab of the same person took this call over.
    this.replaced = h('div', { class: 'call-ended call-replaced', hidden: true, role: 'alert', dataset: { testid: 'call-replaced' } },
      h('p', { dataset: { i18n: 'call.replaced', testid: 'call-replaced-text' } }, t('call.replaced')),
      h('div', { class: 'card-actions' },
        button('take-over-button', 'call.takeOver', () => session.join(session.consultId), { class: 'primary' }),
        button('replaced-back-button', 'call.back', () => session.close())));
    const rec = this.recording;
    // Pinned to the bottom of the screen while in the call; End sits apart from the rest.
    this.controls = h('div', { class: 'controls call-bar', role: 'group', dataset: { testid: 'call-bar' } },
      h('div', { class: 'bar-main' },
        this.micButton, this.cameraButton, this.audioOnlyButton, this.secondButton, rec.startButton, rec.stopButton,
        this.soundButton, this.patientButton, this.leaveButton),
      h('div', { class: 'bar-end' }, this.hangupButton));

    this.view = h('section', { class: 'call', hidden: true, 'aria-labelledby': 'call-title', dataset: { testid: 'call-view' } },
      h('header', { class: 'call-header' }, this.title, rec.indicator, this.statusLine, this.modeLine, this.signal.element, rec.awaiting, rec.notice),
      this.stage = h('div', { class: 'stage' }, this.remotes, this.localVideo, this.secondVideo),
      this.messageLine, this.ended, this.replaced, this.secondPicker, this.conclusion.root,
      this.invite.root, this.notes.root, this.controls, rec.dialog, this.endDialog.dialog, this.patient.dialog);
    root.replaceChildren(this.view);
  }

  /** Open the call view and join `consultId`. */
  join(consultId) {
    this.view.hidden = false;
    this.hangingUp = false;
    this.notes.reset();
    this.conclusion.stop();
    this.conclusionFor = null;
    this.session.join(consultId);
  }

  // ---- what the user does that stays in the view ----------------------------------------------

  toggleSecond() {
    if (this.session.media.second) this.session.stopSecond();
    else if (!this.secondPicker.hidden) this.secondPicker.hidden = true;
    else this.pickSecond();
  }

  /** Offer the sources there are: other cameras (a capture card is one) and the screen. */
  async pickSecond() {
    const main = this.session.media.stream?.getVideoTracks()[0]?.getSettings().deviceId;
    const options = await secondOptions(main);
    if (!options.length) {
      this.session.say('second.none', {}, 'warn');
      return;
    }
    let cameras = 0;
    const label = (o) => (o.kind === 'screen' ? t('second.screen') : o.label || t('second.device', { n: ++cameras }));
    this.secondChoices.replaceChildren(
      ...options.map((o) => h('button', {
        type: 'button', dataset: { testid: 'second-option', kind: o.kind },
        onclick: () => { this.secondPicker.hidden = true; this.session.startSecond(o); },
      }, label(o))),
      h('button', { type: 'button', dataset: { testid: 'second-cancel' }, onclick: () => { this.secondPicker.hidden = true; } },
        t('second.cancel')));
    this.secondPicker.hidden = false;
  }

  /** Whether we are the consult's assigned specialist (who writes the conclusion). */
  isAssignedSpecialist() {
    const c = this.session.consult;
    return this.user.role === 'specialist' && c?.specialist?.id === this.user.id;
  }

  /** End asks first, and says what ending does to everyone. */
  askToEnd() {
    this.endDialog.open({
      asSpecialist: this.isAssignedSpecialist(),
      conclusion: this.conclusion.value,
      recording: this.recording.recording?.state === 'recording',
    });
  }

  /** End the consult (from the end dialog, which shows a refusal); the ended card follows. */
  async hangUp(conclusion, skip) {
    this.hangingUp = true;
    this.render();
    try {
      if (this.isAssignedSpecialist()) this.conclusion.stop(); // the end carries the text
      await this.session.hangUp(conclusion, skip);
    } finally {
      this.hangingUp = false;
      this.render();
    }
  }

  enableSound() {
    for (const { video, source } of this.tiles.values()) {
      if (source === 'second') continue;
      video.muted = false;
      video.play().catch(() => {});
    }
    this.soundButton.hidden = true;
  }

  // ---- remote tiles -----------------------------------------------------------------------------

  /** One tile per participant's camera, one more per second source, in the session's order. */
  renderTiles() {
    const wanted = new Set();
    for (const [peerId, person] of this.session.people) {
      for (const source of ['camera', 'second']) {
        const stream = person.streams.get(source);
        if (source === 'second' && !stream) continue;
        const entry = this.tile(peerId, source);
        wanted.add(entry.key);
        this.nameTile(entry, person.user);
        this.markAudioOnly(entry, person.audioOnly ?? null);
        if (stream) this.showRemote(entry.video, stream);
      }
    }
    for (const key of [...this.tiles.keys()]) if (!wanted.has(key)) this.removeTile(key);
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
    // They send audio only (their link, or their choice): their picture stands still.
    const audioOnly = h('span', { class: 'audio-only-badge', hidden: true, dataset: { testid: 'peer-audio-only' } });
    const tile = h('figure', { class: 'remote-tile', dataset: { peerId, source } }, video, caption, audioOnly);
    // A person's second source sits right after their camera. Existing tiles never move: a
    // playing <video> taken out of the page may pause.
    const after = source === 'second' ? this.tiles.get(peerId)?.tile : null;
    if (after) after.after(tile);
    else this.remotes.append(tile);
    entry = { key, peerId, source, tile, video, caption, audioOnly };
    this.tiles.set(key, entry);
    return entry;
  }

  nameTile(entry, user) {
    const name = user?.display_name ?? '';
    const second = entry.source === 'second';
    entry.caption.textContent = second ? t('second.caption', { name }) : name;
    entry.video.setAttribute('aria-label', t(second ? 'second.remoteVideo' : 'call.remoteVideo', { name }));
  }

  markAudioOnly(entry, audioOnly) {
    const shown = Boolean(audioOnly) && entry.source === 'camera';
    entry.audioOnly.hidden = !shown;
    entry.audioOnly.textContent = shown ? t(audioOnly.reason === 'chosen' ? 'network.badge.chosen' : 'network.badge.link') : '';
    entry.tile.dataset.audioOnly = String(shown);
  }

  removeTile(key) {
    const entry = this.tiles.get(key);
    if (!entry) return;
    this.tiles.delete(key);
    entry.video.srcObject = null;
    entry.tile.remove();
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

  // ---- rendering --------------------------------------------------------------------------------

  /** The one-word state tests and styles key on, and the sentence the user reads. */
  callState() {
    const s = this.session;
    switch (s.state) {
      case 'idle': return 'closed';
      case 'ended': return FINISHED.has(s.consult?.status) ? s.consult.status : 'closed';
      case 'replaced': return 'replaced';
      case 'failed': return 'failed';
      case 'rejoining': return 'reconnecting';
      case 'joining': return s.retry || !s.socket.connected ? 'reconnecting' : 'joining';
      default: break;
    }
    if (!s.socket.connected) return 'reconnecting';
    if (!s.people.size) return 'waiting';
    switch (s.path?.state ?? 'new') {
      case 'connected': return 'connected';
      case 'disconnected':
      case 'failed': return 'reconnecting';
      default: return 'connecting';
    }
  }

  messageText(message) {
    const params = { ...message.params };
    if (params.reasonKey) params.reason = t(params.reasonKey);
    if (message.error) params.reason = errorText(message.error);
    return t(message.key, params);
  }

  render() {
    const s = this.session;
    const state = this.callState();
    const live = LIVE.has(s.state);
    this.view.dataset.callState = state;
    this.view.dataset.sessionState = s.state;
    this.view.dataset.mediaPath = s.pathKind;
    const c = s.consult;
    this.title.textContent = c
      ? t('call.title', { patient: c.patient?.name ?? '', specialty: t(`specialty.${c.specialty}`) })
      : t('call.titleLoading');
    this.statusText.textContent = t(`call.state.${state}`);
    this.pathBadge.hidden = !live || !s.selfId;
    this.pathBadge.textContent = t(`call.path.${s.pathKind}`);
    this.pathBadge.dataset.path = s.pathKind;
    if (s.message) {
      this.messageLine.textContent = this.messageText(s.message);
      this.messageLine.dataset.kind = s.message.kind;
    }
    this.messageLine.hidden = !s.message;

    this.stage.hidden = !live;
    this.controls.hidden = !live;
    if (!live) this.secondPicker.hidden = true;
    this.renderTiles();
    const { stream, second } = s.media;
    if (this.localVideo.srcObject !== stream) this.localVideo.srcObject = stream;
    this.localVideo.hidden = !stream;
    if (this.secondVideo.srcObject !== (second?.stream ?? null)) this.secondVideo.srcObject = second?.stream ?? null;
    this.secondVideo.hidden = !second;
    for (const [button, kind, on, off] of [
      [this.micButton, 'audio', 'mute', 'unmute'],
      [this.cameraButton, 'video', 'cameraOff', 'cameraOn'],
    ]) {
      const isOff = s.media.isOff(kind);
      button.disabled = !s.media.has(kind);
      button.dataset.off = String(isOff);
      const key = isOff ? off : on;
      setBarButton(button, {
        iconName: kind === 'audio' ? (isOff ? 'micOff' : 'mic') : (isOff ? 'cameraOff' : 'camera'),
        label: t(`bar.${key}`), name: t(`call.${key}`),
      });
    }
    const adapt = s.adaptation;
    this.view.dataset.mediaMode = adapt.plan.mode;
    this.view.dataset.mediaModeReason = adapt.plan.reason ?? '';
    this.modeLine.hidden = !live || !adapt.audioOnly;
    this.modeLine.textContent = adapt.audioOnly ? t(adapt.plan.reason === 'chosen' ? 'network.mode.chosen' : 'network.mode.link') : '';
    this.audioOnlyButton.setAttribute('aria-pressed', String(adapt.chosen));
    this.audioOnlyButton.dataset.active = String(adapt.chosen);
    setBarButton(this.audioOnlyButton, {
      iconName: 'audioOnly',
      label: t(adapt.chosen ? 'bar.videoBack' : 'bar.audioOnly'),
      name: t(adapt.chosen ? 'network.chooseVideo' : 'network.chooseAudioOnly'),
    });
    setBarButton(this.secondButton, {
      iconName: 'share', label: t(second ? 'bar.stopShare' : 'bar.share'), name: t(second ? 'second.stop' : 'second.share'),
    });
    this.secondButton.dataset.active = second ? 'true' : 'false';
    setBarButton(this.soundButton, { iconName: 'sound', label: t('bar.sound'), name: t('call.enableSound') });
    setBarButton(this.patientButton, { iconName: 'patient', label: t('bar.patient'), name: t('patient.heading') });
    setBarButton(this.leaveButton, { iconName: 'leave', label: t('bar.leave'), name: t('call.leave') });
    setBarButton(this.hangupButton, { iconName: 'end', label: t('bar.end'), name: t('call.hangUp') });
    this.controls.setAttribute('aria-label', t('bar.label'));
    this.secondHeading.textContent = t('second.choose');
    this.localVideo.setAttribute('aria-label', t('call.localVideo'));
    this.secondVideo.setAttribute('aria-label', t('second.localVideo'));

    // An invited specialist takes part but does not end the consult (the permission table):
    // no hang-up (ending) and no conclusion; they leave instead.
    const invitee = this.user.role === 'specialist' && c?.specialist && c.specialist.id !== this.user.id;
    this.hangupButton.hidden = Boolean(invitee);
    this.hangupButton.disabled = this.hangingUp;
    this.patientButton.disabled = !c;
    this.conclusion.root.hidden = !live || !this.isAssignedSpecialist();

    const over = s.state === 'ended' || s.state === 'failed';
    const finished = over && FINISHED.has(c?.status);
    this.ended.hidden = !over;
    this.endedText.textContent = finished ? t(`call.finished.${c.status}`) : '';
    this.endedText.hidden = !finished;
    const endedBy = finished && c.status === 'ended' ? c.ended_by?.display_name : '';
    this.endedBy.textContent = endedBy ? t('call.endedBy', { name: endedBy }) : '';
    this.endedBy.hidden = !endedBy;
    // Ended: the conclusion, under its one name; declined or cancelled: the reason given.
    const isEnded = finished && c.status === 'ended';
    this.endedConclusionLabel.textContent = t(isEnded ? 'consult.conclusion' : 'consult.closingReason');
    this.endedNote.textContent = finished ? c.closing_note || t('record.noConclusion') : '';
    this.endedConclusion.hidden = !finished || (!isEnded && !c.closing_note);
    const endedByOther = c?.ended_by && c.ended_by.id !== this.user.id;
    const unsaved = isEnded && endedByOther && this.isAssignedSpecialist() ? this.conclusion.unsaved() : '';
    this.endedUnsaved.textContent = unsaved && unsaved !== c.closing_note ? t('call.conclusionUnsaved', { text: unsaved }) : '';
    this.endedUnsaved.hidden = !this.endedUnsaved.textContent;
    if (over) this.conclusion.stop();
    const linkFor = finished ? `${c.id}:${c.status}` : '';
    if (linkFor !== this.recordLinkFor) {
      this.recordLinkFor = linkFor;
      this.recordLink.replaceWith(this.recordLink = recordLink(finished ? c : null));
    }
    this.replaced.hidden = s.state !== 'replaced';

    // Notes may be added while in the room; the list stays on screen to read afterwards.
    const notesOpen = s.state === 'in_call' || s.state === 'rejoining';
    if (notesOpen !== this.notesOpen) this.notes.setOpen(this.notesOpen = notesOpen);
    this.recording.render();
    this.notes.render();
  }
}
