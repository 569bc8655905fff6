// Recording inside the call (docs/protocol.md, "Recording"): the specialist's start/stop
// buttons, everyone's consent dialog, and the indicator every participant sees while the
// consult is recorded (red dot, "Recording", elapsed time). The state shown is always the
// server's: every join ack replaces it, and a recording cut off by a server restart is said so.

import { h } from './dom.js';
import { t } from './i18n.js';
import { setBarButton } from './call/icons.js';

/**
 * `notice` "interrupted": the recording that was running was cut off by a server restart (what
 * was recorded up to then is kept); "storage_full": the server stopped it because its recording
 * storage is full (what was recorded up to then is kept).
 * @typedef {{state: 'off'|'awaiting_consent'|'recording', started_at: string|null, pending: number[], declined_by: {id: number, display_name: string}|null, notice?: 'interrupted'|'storage_full'|null}} RecordingState
 */

/** The text of each `notice` the server may send with the recording off. */
const NOTICES = { interrupted: 'recording.interrupted', storage_full: 'recording.storage_full' };

const OFF = { state: 'off', started_at: null, pending: [], declined_by: null, notice: null };

/** "m:ss" or "h:mm:ss" for a number of seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export class RecordingControls {
  /**
   * @param {object} o
   * @param {object} o.user  the signed-in user
   * @param {(event: string, payload?: object) => Promise<object>} o.request  a recording-* event
   *   with its ack (the caller adds consult_id); rejects with the server's error
   * @param {(key: string, params?: object, kind?: string) => void} o.say  the call's message line
   * @param {(err: Error) => string} o.errorText
   */
  constructor({ user, request, say, errorText }) {
    this.user = user;
    this.request = request;
    this.say = say;
    this.errorText = errorText;
    this.consult = null;
    this.recording = OFF;
    this.requestedBy = null; // {display_name} of whoever asked for consent
    this.answered = false; // we answered the current request
    this.busy = false; // a start/stop is on its way
    this.ticker = null;

    this.dot = h('span', { class: 'rec-dot', 'aria-hidden': 'true' });
    this.label = h('span', { class: 'rec-label' });
    this.elapsed = h('span', { class: 'rec-elapsed', dataset: { testid: 'recording-elapsed' } });
    this.indicator = h('p', {
      class: 'recording-indicator', role: 'status', hidden: true, dataset: { testid: 'recording-indicator' },
    }, this.dot, this.label, this.elapsed);
    this.awaiting = h('p', { class: 'recording-awaiting', role: 'status', hidden: true, dataset: { testid: 'recording-status' } });
    // A recording cut off by a server restart, said under the title until the next one starts.
    this.notice = h('p', { class: 'recording-notice', role: 'status', hidden: true, dataset: { testid: 'recording-notice' } });

    this.startButton = h('button', {
      type: 'button', hidden: true, dataset: { testid: 'record-start-button' }, onclick: () => this.start(),
    });
    this.stopButton = h('button', {
      type: 'button', class: 'recording', hidden: true, dataset: { testid: 'record-stop-button' }, onclick: () => this.stop(),
    });

    this.dialogText = h('p', { id: 'consent-text' });
    this.dialogNote = h('p', { class: 'consent-note' });
    this.dialogError = h('p', { class: 'error', role: 'alert', hidden: true });
    this.agreeButton = h('button', {
      type: 'button', class: 'primary', dataset: { testid: 'consent-agree' }, onclick: () => this.answer(true),
    });
    this.declineButton = h('button', {
      type: 'button', dataset: { testid: 'consent-decline' }, onclick: () => this.answer(false),
    });
    this.dialogTitle = h('h2', { id: 'consent-title' });
    this.dialog = h('dialog', {
      class: 'consent-dialog', 'aria-labelledby': 'consent-title', 'aria-describedby': 'consent-text',
      dataset: { testid: 'consent-dialog' },
    },
    this.dialogTitle, this.dialogText, this.dialogNote, this.dialogError,
    h('div', { class: 'card-actions' }, this.agreeButton, this.declineButton));
    // Escape must not make the question go away unanswered: the recording waits for everyone.
    this.dialog.addEventListener('cancel', (event) => event.preventDefault());
    this.render();
  }

  /** The assigned specialist of a live consult may start and stop recording. */
  mayRecord() {
    const c = this.consult;
    return c?.status === 'live' && this.user.role === 'specialist' && c.specialist?.id === this.user.id;
  }

  setConsult(consult) {
    this.consult = consult;
    this.render();
  }

  /**
   * A new recording state (join ack, `recording-state`, an ack), which replaces the one shown.
   * With `announce`, changes are also said in words: who declined, that the recording stopped.
   * `fresh` (a join ack): whatever we answered before counts no more; if the server asks us,
   * we are asked again.
   * @param {RecordingState|null|undefined} recording
   * @param {{announce?: boolean, fresh?: boolean}} [o]
   */
  update(recording, { announce = true, fresh = false } = {}) {
    const before = this.recording;
    const now = { ...OFF, ...(recording ?? {}) };
    this.recording = now;
    if (now.state === 'off' || fresh) {
      this.answered = false;
      this.requestedBy = null;
    }
    if (announce && before.state !== now.state) {
      if (now.state === 'off' && before.state === 'awaiting_consent' && now.declined_by) {
        this.say('recording.declinedBy', { name: now.declined_by.display_name }, 'warn');
      } else if (now.state === 'off' && before.state === 'recording') {
        this.say('recording.stopped', {}, 'info');
      } else if (now.state === 'recording') {
        this.say('recording.started', {}, 'info');
      }
    }
    // Joined while a request or a recording was running: we are asked too.
    if (now.state !== 'off' && now.pending?.includes(this.user.id) && !this.answered) this.openDialog();
    else if (!now.pending?.includes(this.user.id)) this.closeDialog();
    this.render();
  }

  /** `recording-consent-requested`: ask this user. */
  askConsent(requestedBy) {
    this.requestedBy = requestedBy ?? null;
    this.answered = false;
    this.openDialog();
  }

  openDialog() {
    this.dialogError.hidden = true;
    this.agreeButton.disabled = false;
    this.declineButton.disabled = false;
    this.render();
    if (this.dialog.open || !this.dialog.isConnected) return;
    this.dialog.showModal();
  }

  closeDialog() {
    if (this.dialog.open) this.dialog.close();
  }

  async answer(granted) {
    this.agreeButton.disabled = true;
    this.declineButton.disabled = true;
    try {
      const ack = await this.request('recording-consent', { granted });
      this.answered = true;
      this.closeDialog();
      this.update(ack.recording);
    } catch (err) {
      this.agreeButton.disabled = false;
      this.declineButton.disabled = false;
      this.dialogError.textContent = t('recording.answerFailed', { reason: this.errorText(err) });
      this.dialogError.hidden = false;
    }
  }

  async start() {
    await this.send('recording-start', 'recording.startFailed');
  }

  async stop() {
    await this.send('recording-stop', 'recording.stopFailed');
  }

  async send(event, failureKey) {
    this.busy = true;
    this.render();
    try {
      const ack = await this.request(event);
      this.update(ack.recording);
    } catch (err) {
      this.say(failureKey, { reason: this.errorText(err) }, 'error');
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** The call is over or left: no dialog, no ticking clock, nothing shown. */
  reset() {
    this.closeDialog();
    this.recording = OFF;
    this.consult = null;
    this.answered = false;
    this.render();
  }

  render() {
    const { state } = this.recording;
    const recording = state === 'recording';
    this.indicator.hidden = !recording;
    this.label.textContent = t('recording.on');
    this.indicator.setAttribute('aria-label', t('recording.on'));
    if (recording && !this.ticker) this.ticker = setInterval(() => this.tick(), 1000);
    if (!recording && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
    this.tick();
    const notice = state === 'off' ? NOTICES[this.recording.notice ?? ''] : undefined;
    this.notice.hidden = !notice;
    this.notice.textContent = notice ? t(notice) : '';
    const waitingFor = this.recording.pending?.length ?? 0;
    this.awaiting.hidden = state !== 'awaiting_consent';
    this.awaiting.textContent = t('recording.awaiting', { count: waitingFor });

    const may = this.mayRecord();
    this.startButton.hidden = !may || recording;
    this.startButton.disabled = this.busy || state === 'awaiting_consent';
    setBarButton(this.startButton, { iconName: 'record', label: t('bar.record'), name: t('recording.start') });
    this.stopButton.hidden = !may || !recording;
    this.stopButton.disabled = this.busy;
    setBarButton(this.stopButton, { iconName: 'stop', label: t('bar.stopRecord'), name: t('recording.stop') });

    const by = this.requestedBy?.display_name || this.consult?.specialist?.display_name || '';
    this.dialogTitle.textContent = t('recording.consentTitle');
    this.dialogText.textContent = by ? t('recording.consentAsk', { name: by }) : t('recording.consentAskAnon');
    this.dialogNote.textContent = t('recording.consentNote');
    this.agreeButton.textContent = t('recording.agree');
    this.declineButton.textContent = t('recording.decline');
  }

  tick() {
    const since = Date.parse(this.recording.started_at ?? '');
    // The server's clock decides when it started; a client clock a little behind shows 0:00.
    this.elapsed.textContent = Number.isNaN(since) ? '' : clock((Date.now() - since) / 1000);
  }
}
