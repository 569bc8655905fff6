// "End the consult?": what ending does to everyone, asked before it happens. The assigned
// specialist writes the conclusion here (or ends without one on purpose); anyone else who may
// end the consult (the exam room) is told the specialist's draft becomes the conclusion.

import { h } from '../dom.js';
import { onLangChange, t } from '../i18n.js';
import { MAX_CONCLUSION_CHARS } from './conclusion.js';

export class EndDialog {
  /**
   * @param {object} o
   * @param {(choice: {conclusion: string, skip: boolean}) => Promise<void>} o.onEnd  ends the
   *   consult; a rejection (the server's error) is shown in the dialog
   * @param {(text: string) => void} o.onType  the conclusion as typed here
   * @param {(err: Error) => string} o.errorText
   */
  constructor({ onEnd, onType, errorText }) {
    this.onEnd = onEnd;
    this.errorText = errorText;
    this.asSpecialist = false;
    this.recording = false;
    this.busy = false;
    this.problem = null; // {key} or {error}
    this.title = h('h2', { id: 'end-title' });
    this.everyone = h('p', { id: 'end-text', dataset: { testid: 'end-everyone' } });
    this.recordingLine = h('p', { dataset: { testid: 'end-recording' } });
    this.roomLine = h('p', { dataset: { testid: 'end-room-conclusion' } });
    this.stepOut = h('p', { class: 'consent-note' });
    this.label = h('label', { for: 'end-conclusion' });
    this.input = h('textarea', {
      id: 'end-conclusion', rows: 4, maxlength: MAX_CONCLUSION_CHARS, dataset: { testid: 'end-conclusion' },
      oninput: () => { onType(this.input.value); this.problem = null; this.render(); },
    });
    this.conclusionBox = h('div', { class: 'stack' }, this.label, this.input);
    this.error = h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: 'end-error' } });
    this.confirmButton = h('button', {
      type: 'button', class: 'danger', dataset: { testid: 'end-confirm' }, onclick: () => this.end(false),
    });
    this.skipButton = h('button', { type: 'button', dataset: { testid: 'end-skip' }, onclick: () => this.end(true) });
    this.cancelButton = h('button', {
      type: 'button', class: 'primary', dataset: { testid: 'end-cancel' }, onclick: () => this.dialog.close(),
    });
    this.dialog = h('dialog', {
      class: 'consent-dialog end-dialog', 'aria-labelledby': 'end-title', 'aria-describedby': 'end-text',
      dataset: { testid: 'end-dialog' },
    }, this.title, this.everyone, this.recordingLine, this.roomLine, this.conclusionBox, this.error,
    h('div', { class: 'card-actions' }, this.cancelButton, this.skipButton, this.confirmButton), this.stepOut);
    onLangChange(() => this.render());
  }

  /** Ask; `conclusion`: the specialist's text so far. */
  open({ asSpecialist, conclusion = '', recording = false }) {
    this.asSpecialist = asSpecialist;
    this.recording = recording;
    this.problem = null;
    this.busy = false;
    this.input.value = conclusion;
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    (asSpecialist ? this.input : this.cancelButton).focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  async end(skip) {
    const conclusion = this.asSpecialist && !skip ? this.input.value.trim() : '';
    if (this.asSpecialist && !skip && !conclusion) {
      this.problem = { key: 'end.conclusionMissing' };
      this.render();
      this.input.focus();
      return;
    }
    this.busy = true;
    this.problem = null;
    this.render();
    try {
      await this.onEnd({ conclusion, skip: this.asSpecialist && skip });
      this.close();
    } catch (err) {
      this.problem = { error: err };
    } finally {
      this.busy = false;
      this.render();
    }
  }

  render() {
    const specialist = this.asSpecialist;
    this.title.textContent = t('end.title');
    this.everyone.textContent = t('end.everyone');
    this.recordingLine.textContent = t('end.recording');
    this.recordingLine.hidden = !this.recording;
    this.roomLine.textContent = t('end.roomConclusion');
    this.roomLine.hidden = specialist;
    this.conclusionBox.hidden = !specialist;
    this.label.textContent = t('call.conclusion');
    this.stepOut.textContent = t('end.stepOutInstead');
    this.confirmButton.textContent = t(specialist ? 'end.confirmWithConclusion' : 'end.confirm');
    this.skipButton.textContent = t('end.skip');
    this.skipButton.hidden = !specialist;
    this.cancelButton.textContent = t('end.cancel');
    for (const b of [this.confirmButton, this.skipButton]) b.disabled = this.busy;
    const p = this.problem;
    this.error.hidden = !p;
    this.error.textContent = !p ? '' : p.key ? t(p.key) : t('call.hangUpFailed', { reason: this.errorText(p.error) });
  }
}
