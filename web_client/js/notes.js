// Notes during the call (docs/protocol.md, "Notes"): a text box and the list of everyone's notes,
// each with its author, the time and — when a recording was running — where it falls on the
// recording ("录像 1:05"). Notes are sent with `note-add` and arrive live as `note-added`; they
// cannot be edited (a correction is a new note).

import { h } from './dom.js';
import { lang, t } from './i18n.js';
import { clock } from './recording.js';

/** Longest note the server takes (rooms.notes.MAX_NOTE_CHARS). */
export const MAX_NOTE_CHARS = 2000;

/** The wall-clock time of a note, in the reader's language and time zone. */
export function noteTime(iso) {
  return new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .format(new Date(iso));
}

/** "录像 1:05" for a note taken 65 s into the recording; '' when none was running. */
export function noteOffset(note) {
  const s = note?.recording_offset_s;
  return s === null || s === undefined ? '' : t('notes.offset', { time: clock(s) });
}

/** One note as a list item (the call's panel and the printable record share it). */
export function noteItem(note, { withDate = false } = {}) {
  const when = withDate
    ? new Intl.DateTimeFormat(lang(), { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(note.at))
    : noteTime(note.at);
  const offset = noteOffset(note);
  return h('li', { class: 'note-item', dataset: { testid: 'note-item', noteId: note.id } },
    h('p', { class: 'note-meta' },
      h('span', { class: 'note-author', dataset: { testid: 'note-author' } }, note.author?.display_name ?? ''),
      h('time', { datetime: note.at }, when),
      offset ? h('span', { class: 'note-offset', dataset: { testid: 'note-offset' } }, offset) : null),
    h('p', { class: 'note-text', dataset: { testid: 'note-text' } }, note.text));
}

export class NotesPanel {
  /**
   * @param {object} o
   * @param {(event: string, payload?: object) => Promise<object>} o.request  `note-add` with its
   *   ack (the caller adds consult_id); rejects with the server's error
   * @param {(err: Error) => string} o.errorText
   */
  constructor({ request, errorText }) {
    this.request = request;
    this.errorText = errorText;
    this.notes = new Map(); // id → note, in the order they arrived
    this.open = false; // may add notes (in the room, consult not over)
    this.busy = false;
    this.problem = null; // {reason}

    this.heading = h('h3', { id: 'notes-heading' });
    // Focusable: when the notes outgrow the panel it scrolls, and a keyboard must scroll it too.
    this.list = h('ol', {
      class: 'note-list', 'aria-live': 'polite', tabindex: '0', 'aria-labelledby': 'notes-heading',
      dataset: { testid: 'note-list' },
    });
    this.empty = h('p', { class: 'empty', dataset: { testid: 'notes-empty' } });
    this.input = h('textarea', {
      id: 'note-input', rows: 2, maxlength: MAX_NOTE_CHARS, dataset: { testid: 'note-input' },
      'aria-describedby': 'note-hint',
    });
    // What a note is, under the box; the shortcut only where there is a keyboard (css/app.css).
    this.hintText = h('span');
    this.keyHint = h('span', { class: 'key-hint', dataset: { testid: 'note-key-hint' } });
    this.hint = h('small', { id: 'note-hint', class: 'hint' }, this.hintText, ' ', this.keyHint);
    this.inputLabel = h('label', { for: 'note-input', class: 'visually-hidden' });
    this.addButton = h('button', { type: 'submit', class: 'primary', dataset: { testid: 'note-add' } });
    this.error = h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: 'note-error' } });
    this.form = h('form', { class: 'note-form', onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.inputLabel, this.input, this.hint, this.error, this.addButton);
    // Ctrl/⌘+Enter adds the note without leaving the keyboard.
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.send();
      }
    });
    this.root = h('section', { class: 'notes-panel', 'aria-labelledby': 'notes-heading', dataset: { testid: 'notes-panel' } },
      this.heading, this.list, this.empty, this.form);
    this.render();
  }

  /** The notes so far (from the join ack), replacing what was shown. */
  setNotes(notes) {
    this.notes = new Map((notes ?? []).map((n) => [n.id, n]));
    this.render();
  }

  /** A note from `note-added` or our own ack; each is shown once. */
  add(note) {
    if (!note?.id || this.notes.has(note.id)) return;
    this.notes.set(note.id, note);
    this.render();
    this.list.lastElementChild?.scrollIntoView?.({ block: 'nearest' });
  }

  /** Whether notes may be added now (in the room of a consult that is not over). */
  setOpen(open) {
    this.open = open;
    this.render();
  }

  reset() {
    this.notes = new Map();
    this.problem = null;
    this.input.value = '';
    this.render();
  }

  async send() {
    const text = this.input.value.trim();
    if (!text || this.busy || !this.open) return;
    this.busy = true;
    this.problem = null;
    this.render();
    try {
      const ack = await this.request('note-add', { text });
      this.add(ack.note);
      // Only what was sent is cleared: the user may have typed on meanwhile.
      if (this.input.value.trim() === text) this.input.value = '';
    } catch (err) {
      this.problem = { reason: this.errorText(err) }; // the text stays for another try
    } finally {
      this.busy = false;
      this.render();
    }
  }

  render() {
    this.heading.textContent = t('notes.heading');
    this.list.replaceChildren(...[...this.notes.values()].map((n) => noteItem(n)));
    this.empty.textContent = t('notes.none');
    this.empty.hidden = this.notes.size > 0;
    this.form.hidden = !this.open;
    this.inputLabel.textContent = t('notes.label');
    this.input.placeholder = t('notes.placeholder');
    this.hintText.textContent = t('notes.hint');
    this.keyHint.textContent = t('notes.keyHint');
    this.addButton.textContent = t('notes.add');
    this.addButton.disabled = this.busy;
    this.error.textContent = this.problem ? t('notes.addFailed', this.problem) : '';
    this.error.hidden = !this.problem;
  }
}
