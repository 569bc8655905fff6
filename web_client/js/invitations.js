// Multi-disciplinary consults (docs/multidisciplinary.md): the assigned specialist invites a
// colleague of any specialty into a consult that is accepted, waiting or live, and may withdraw
// the invitation. The panel shows itself only to the consult's assigned specialist; the same
// panel serves the consult card on the specialist page and the call view.

import { api } from './api.js';
import { JOINABLE } from './consults.js';
import { h } from './dom.js';
import { onLangChange, t } from './i18n.js';

let colleagues = null; // Promise of the active specialists, fetched once per page

function loadColleagues() {
  colleagues ??= api.allSpecialists().then((r) => r.specialists, (err) => {
    colleagues = null; // try again next time
    throw err;
  });
  return colleagues;
}

let panels = 0;

export class InvitePanel {
  /**
   * @param {object} o
   * @param {object} o.user                 the signed-in user
   * @param {(consult) => void} o.onChange  gets the consult the server answered with
   * @param {(key, params, kind) => void} o.say  shows a message (an i18n key) to the user
   * @param {(err) => string} o.errorText
   * @param {number} [o.level]  its heading's level: 4 under a consult card's, 3 in the call view
   */
  constructor({ user, onChange, say, errorText, level = 4 }) {
    this.user = user;
    this.onChange = onChange;
    this.say = say;
    this.errorText = errorText;
    this.consult = null;
    this.specialists = [];
    const id = `invite-select-${++panels}`;
    this.select = h('select', { id, dataset: { testid: 'invite-select' } });
    this.sendButton = h('button', { type: 'button', class: 'primary', dataset: { testid: 'invite-send' },
      onclick: () => this.invite() });
    this.list = h('ul', { class: 'invited-list', dataset: { testid: 'invitee-list' } });
    this.heading = h(`h${level}`, { class: 'invite-heading' });
    this.label = h('label', { for: id });
    this.root = h('section', { class: 'invite-panel stack', hidden: true, dataset: { testid: 'invite-panel' } },
      this.heading, this.list,
      h('div', { class: 'invite-row' }, this.label, this.select, this.sendButton));
    onLangChange(() => this.render());
  }

  /** Show the panel for `consult` (hidden unless the user is its assigned specialist and it is open). */
  setConsult(consult) {
    this.consult = consult;
    const mine = consult && this.user.role === 'specialist' && consult.specialist?.id === this.user.id;
    this.root.hidden = !(mine && JOINABLE.has(consult.status));
    if (!this.root.hidden && !this.specialists.length) {
      loadColleagues().then((list) => { this.specialists = list; this.render(); },
        (err) => this.say('invite.failed', { reason: this.errorText(err) }, 'error'));
    }
    this.render();
  }

  render() {
    if (!this.consult) return;
    const invited = this.consult.invited ?? [];
    this.heading.textContent = t('invite.heading');
    this.label.textContent = t('invite.choose');
    this.sendButton.textContent = t('invite.send');
    this.list.replaceChildren(...(invited.length ? invited.map((p) => h('li', { dataset: { testid: 'invited-person' } },
      h('span', {}, p.display_name), ' ',
      h('button', { type: 'button', class: 'link', dataset: { testid: 'invite-withdraw' },
        'aria-label': t('invite.withdrawLabel', { name: p.display_name }),
        onclick: (e) => this.withdraw(e.currentTarget, p) }, t('invite.withdraw'))))
      : [h('li', { class: 'empty' }, t('invite.none'))]));
    // Colleagues who may still be invited: not me, not already invited. The choice survives
    // re-rendering (a live update while the user is picking).
    const chosen = this.select.value;
    const taken = new Set([this.user.id, ...invited.map((p) => p.id)]);
    const choices = this.specialists.filter((s) => !taken.has(s.id));
    this.select.replaceChildren(h('option', { value: '' }, t('invite.placeholder')),
      ...choices.map((s) => h('option', { value: String(s.id) },
        `${s.display_name} · ${s.specialty ? t(`specialty.${s.specialty}`) : ''}`)));
    if (choices.some((s) => String(s.id) === chosen)) this.select.value = chosen;
    this.sendButton.disabled = !choices.length;
  }

  async invite() {
    const id = Number(this.select.value);
    if (!id) {
      this.select.focus();
      return;
    }
    const name = this.specialists.find((s) => s.id === id)?.display_name ?? '';
    this.sendButton.disabled = true;
    try {
      const consult = await api.invite(this.consult.id, id);
      this.select.value = '';
      this.onChange(consult);
      this.say('invite.sent', { name }, 'ok');
    } catch (err) {
      this.say('invite.failed', { reason: this.errorText(err) }, 'error');
    } finally {
      this.sendButton.disabled = false;
    }
  }

  async withdraw(button, person) {
    button.disabled = true;
    try {
      this.onChange(await api.removeInvitation(this.consult.id, person.id));
    } catch (err) {
      button.disabled = false;
      this.say('invite.failed', { reason: this.errorText(err) }, 'error');
    }
  }
}
