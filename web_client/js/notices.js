// Who was told about a consult request, step by step (escalation) — on the booking doctor's
// card: loaded from GET /api/consults/{id}/notices and kept current by `consult-escalated`.

import { api } from './api.js';
import { formatTime } from './consults.js';
import { h } from './dom.js';
import { t } from './i18n.js';

export class NoticeBoard {
  constructor(onChange) {
    this.byConsult = new Map();
    this.onChange = onChange;
  }

  async load(consultId) {
    try {
      const { notices } = await api.notices(consultId);
      this.byConsult.set(consultId, notices);
      this.onChange();
    } catch {
      // Not fatal: the steps still arrive live.
    }
  }

  /** A `consult-escalated` event: add its step unless already known. */
  add({ consult_id: id, kind, step, at, recipients, fallback }) {
    const list = this.byConsult.get(id) ?? [];
    if (!list.some((n) => n.kind === kind)) list.push({ kind, step, at, recipients, fallback });
    this.byConsult.set(id, list);
    this.onChange();
  }

  /** The steps as a list for the consult's card, or null when there are none. */
  section(consultId) {
    const notices = (this.byConsult.get(consultId) ?? []).filter((n) => n.step !== null);
    if (!notices.length) return null;
    return h('div', { class: 'notice-steps' },
      h('h4', {}, t('notices.heading')),
      h('ol', { dataset: { testid: 'notice-steps' } }, notices.map((n) =>
        h('li', { dataset: { testid: 'notice-step', step: String(n.step) } },
          t(`notices.step${n.step}`), ' · ',
          n.recipients.length
            ? t('notices.told', { names: n.recipients.map((r) => r.display_name).join('、') })
            : t('notices.nobody'),
          n.fallback ? ` (${t('notices.fallback')})` : '',
          ' · ', formatTime(n.at)))));
  }
}
