// The specialist's conclusion during the call: one textarea near the call controls, kept as a
// draft on the server while it is typed (PUT /api/consults/{id}/conclusion-draft, a moment
// after the last keystroke and when the field loses focus), and filled from that draft when
// the call is opened again (a reload, another device). If the exam room ends the consult, the
// server makes the last saved draft the conclusion; if the specialist ends it, the end dialog
// sends the text itself.

import { api } from '../api.js';
import { h } from '../dom.js';
import { onLangChange, t } from '../i18n.js';

/** The server's limit (LongText); the field refuses more. */
export const MAX_CONCLUSION_CHARS = 4000;
/** How long after the last keystroke the draft is saved. */
const SAVE_AFTER_MS = 700;

export class ConclusionPanel {
  /** @param {{errorText: (err: Error) => string}} o */
  constructor({ errorText }) {
    this.errorText = errorText;
    this.consultId = null;
    this.timer = null;
    this.queue = Promise.resolve(); // one save at a time, in order
    this.savedText = ''; // what the server holds
    this.savedAt = null;
    this.state = 'idle'; // idle | pending | saving | saved | failed
    this.error = null;
    this.input = h('textarea', {
      id: 'call-conclusion', rows: 3, maxlength: MAX_CONCLUSION_CHARS,
      'aria-describedby': 'conclusion-status', dataset: { testid: 'conclusion-input' },
      oninput: () => this.schedule(),
      onblur: () => this.flush(),
    });
    this.label = h('label', { for: 'call-conclusion' });
    this.status = h('p', { class: 'conclusion-status', id: 'conclusion-status', dataset: { testid: 'conclusion-status' } });
    this.root = h('section', { class: 'conclusion-panel', hidden: true, dataset: { testid: 'conclusion-panel' } },
      this.label, this.input, this.status);
    onLangChange(() => this.render());
    this.render();
  }

  /** A call opens: the draft saved earlier, if any, comes back into the field. */
  async start(consultId) {
    this.stop();
    this.consultId = consultId;
    this.input.value = '';
    this.savedText = '';
    this.savedAt = null;
    this.state = 'idle';
    this.render();
    try {
      const draft = await api.conclusionDraft(consultId);
      if (this.consultId !== consultId) return;
      this.savedText = draft.text;
      this.savedAt = draft.saved_at;
      if (!this.input.value) {
        this.input.value = draft.text;
        if (draft.saved_at) this.state = 'saved';
      }
    } catch {
      // Not ours to write (an invited colleague) or not reachable now: the field starts empty.
    }
    this.render();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.consultId = null;
  }

  get value() {
    return this.input.value;
  }

  /** Text typed here (e.g. in the end dialog) that should be kept like typing in the field. */
  set(text) {
    if (text === this.input.value) return;
    this.input.value = text;
    this.schedule();
  }

  /** What was typed and is not on the server (trimmed); empty when nothing is missing. */
  unsaved() {
    const typed = this.input.value.trim();
    return typed && typed !== this.savedText.trim() ? typed : '';
  }

  schedule() {
    if (!this.consultId) return;
    clearTimeout(this.timer);
    this.state = 'pending';
    this.render();
    this.timer = setTimeout(() => this.flush(), SAVE_AFTER_MS);
  }

  /** Save now what the field holds, if the server does not have it yet. */
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    this.queue = this.queue.then(() => this.save());
    return this.queue;
  }

  async save() {
    const consultId = this.consultId;
    const text = this.input.value;
    if (!consultId) return;
    if (text === this.savedText) {
      if (this.state === 'pending') this.state = this.savedAt ? 'saved' : 'idle';
      this.render();
      return;
    }
    this.state = 'saving';
    this.render();
    try {
      const draft = await api.saveConclusionDraft(consultId, text);
      if (consultId !== this.consultId) return;
      this.savedText = draft.text;
      this.savedAt = draft.saved_at;
      this.error = null;
      this.state = this.input.value === draft.text ? 'saved' : 'pending';
      if (this.state === 'pending') this.schedule();
    } catch (err) {
      if (consultId !== this.consultId) return;
      this.error = err;
      this.state = 'failed';
    }
    this.render();
  }

  render() {
    this.label.textContent = t('call.conclusion');
    this.status.dataset.state = this.state;
    const time = this.savedAt
      ? new Intl.DateTimeFormat(document.documentElement.lang || undefined, { timeStyle: 'short' }).format(new Date(this.savedAt))
      : '';
    this.status.textContent = {
      idle: t('conclusion.hint'),
      pending: t('conclusion.saving'),
      saving: t('conclusion.saving'),
      saved: t('conclusion.saved', { time }),
      failed: t('conclusion.saveFailed', { reason: this.error ? this.errorText(this.error) : '' }),
    }[this.state];
  }
}
