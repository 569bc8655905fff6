// Consult cards and the client-side list of consults, shared by every page that lists them.

import { attachmentsSection } from './attachments.js';
import { h, say } from './dom.js';
import { lang, t } from './i18n.js';
import { intakeSection } from './intake.js';
import { recordingsSection } from './recordings.js';

const SPECIALTIES = [
  'obstetrics', 'paediatrics', 'child_growth', 'reproductive_medicine', 'ultrasound',
  'ophthalmology', 'imaging', 'cardiology', 'neurology', 'general_medicine',
];

/** One <option> per specialty, labelled in the page's language (and relabelled on a switch). */
export const specialtyOptions = () => SPECIALTIES.map((s) =>
  h('option', { value: s, dataset: { i18n: `specialty.${s}` } }, t(`specialty.${s}`)));

export const JOINABLE = new Set(['accepted', 'waiting', 'live']);
/** Consults not finished yet. */
export const ACTIVE = new Set(['requested', 'accepted', 'waiting', 'live']);
/** Consults whose recordings, if any, can be reviewed: those that took place and are over. */
export const HAS_RECORDINGS = new Set(['ended']);

/** Whether `consult` is an older view of the consult we hold (`version` goes up with every
 * saved change): an ack that arrives after a newer `consult-state` must not win. */
export function olderThan(consult, held) {
  return Boolean(held && consult && held.id === consult.id && (consult.version ?? 0) < (held.version ?? 0));
}

export function formatTime(iso) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(lang(), { dateStyle: 'medium', timeStyle: 'short' })
    .format(new Date(iso));
}

/** "female · 32 years"; with `withName`, the patient's name first. */
export function patientLine(p, { withName = false } = {}) {
  const parts = withName ? [p.name, t(`sex.${p.sex}`)] : [t(`sex.${p.sex}`)];
  if (p.age_years !== null && p.age_years !== undefined) parts.push(t('patient.age', { age: p.age_years }));
  return parts.join(' · ');
}

/** A <dt>/<dd> pair for a definition list, or nothing when there is no value. */
export const detailRow = (key, value) =>
  value === null || value === undefined || value === '' ? [] : [h('dt', {}, t(key)), h('dd', {}, value)];

export function statusBadge(status) {
  return h('span', { class: 'badge', dataset: { status, testid: 'consult-status' } }, t(`status.${status}`));
}

/**
 * One consult as a list item. `actions` are buttons (or other nodes) the page adds;
 * `show` picks the counterpart to name: 'specialist' (exam room) or 'requester' (specialist).
 * A finished consult (`ended`) also gets its recordings section; `extra` is a node the page
 * adds under the details (e.g. the escalation steps).
 */
export function consultCard(c, { actions = [], show = 'specialist', extra = null } = {}) {
  const who = show === 'requester'
    ? detailRow('consult.requester', `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`)
    : detailRow('consult.specialist', c.specialist?.display_name ?? t('consult.anySpecialist'));
  return h('li', { class: 'consult-card', dataset: { testid: 'consult-item', consultId: c.id, status: c.status } },
    h('div', { class: 'card-head' },
      h('h3', { class: 'patient-name' }, c.patient.name),
      statusBadge(c.status)),
    h('dl', {},
      detailRow('consult.patient', patientLine(c.patient)),
      detailRow('consult.specialty', t(`specialty.${c.specialty}`)),
      detailRow('consult.reason', c.reason),
      detailRow('consult.summary', c.patient.summary),
      detailRow('consult.scheduledAt', formatTime(c.scheduled_at)),
      who,
      detailRow('consult.invited', (c.invited ?? []).map((p) => p.display_name).join('、')),
      // Ended: the specialist's conclusion (its one name everywhere) and who ended it;
      // declined or cancelled: the reason given.
      c.status === 'ended'
        ? detailRow('consult.conclusion', c.closing_note || t('record.noConclusion'))
        : detailRow('consult.closingReason', c.closing_note),
      detailRow('consult.endedBy', c.status === 'ended' ? c.ended_by?.display_name : null)),
    intakeSection(c),
    attachmentsSection(c.id),
    extra,
    actions.length ? h('div', { class: 'card-actions' }, actions) : null,
    HAS_RECORDINGS.has(c.status) ? recordLink(c) : null,
    HAS_RECORDINGS.has(c.status) ? recordingsSection(c.id) : null);
}

/**
 * A link to the printable record of a finished consult; an empty, hidden placeholder for any
 * other consult. It opens in place, in this tab and its session (the token is per tab); the
 * record page leads back. Opened in a new tab all the same (middle click), the sign-in there
 * returns to the record (session.js `goToLogin`).
 */
export function recordLink(c) {
  if (!HAS_RECORDINGS.has(c?.status)) return h('a', { hidden: true });
  return h('a', {
    class: 'record-link', href: `/consult-record.html#consult=${encodeURIComponent(c.id)}`,
    dataset: { testid: 'consult-record-link', i18n: 'record.open' },
  }, t('record.open'));
}

/** Active consults first (soonest first), finished ones after (most recent first). */
export function sortConsults(list) {
  const time = (c) => Date.parse(c.scheduled_at);
  return [...list].sort((a, b) => {
    const aa = ACTIVE.has(a.status), ba = ACTIVE.has(b.status);
    if (aa !== ba) return aa ? -1 : 1;
    return aa ? time(a) - time(b) : time(b) - time(a);
  });
}

/** The consults a page knows about, kept current from REST answers and socket events. */
export class ConsultStore {
  constructor(onChange) {
    this.byId = new Map();
    this.onChange = onChange;
    this.events = 0; // upserts so far: a reload keeps what arrived while it was on its way
    this.upsertedAt = new Map(); // consult id → this.events at its last upsert
    this.loads = 0; // lists asked for so far (mark())
    this.applied = 0; // the newest list applied: an older one answering later is not applied
  }

  /**
   * Where the live events stand now, and which list this is; pass it to replaceAll() with
   * the list loaded after.
   */
  mark() {
    return { events: this.events, load: ++this.loads };
  }

  /**
   * The list as the server sent it. A consult that an event brought after the mark (a
   * `consult-invited` while the list was on its way) and that the list does not have, or has
   * in an older version, stays as the event left it. A list asked for before one already
   * applied is dropped: two reloads can answer out of order (the socket's reconnect and the
   * page's own load), and the older answer would take away what the newer one had.
   */
  replaceAll(list, mark = { events: Infinity, load: Infinity }) {
    if (mark.load < this.applied) return;
    this.applied = mark.load;
    const fresh = new Map(list.map((c) => [c.id, c]));
    for (const [id, at] of this.upsertedAt) {
      const held = this.byId.get(id);
      if (at > mark.events && held && (!fresh.has(id) || olderThan(fresh.get(id), held))) fresh.set(id, held);
      if (at <= mark.events) this.upsertedAt.delete(id); // the list has what the event said
    }
    this.byId = fresh;
    this.onChange();
  }

  upsert(consult) {
    if (olderThan(consult, this.byId.get(consult.id))) return;
    this.byId.set(consult.id, consult);
    this.upsertedAt.set(consult.id, ++this.events);
    this.onChange();
  }

  remove(id) {
    if (this.byId.delete(id)) this.onChange();
  }

  get(id) {
    return this.byId.get(id);
  }

  sorted(filter = () => true) {
    return sortConsults([...this.byId.values()].filter(filter));
  }
}

/** `consult-reminder` events: a consult the page shows starts soon; say so in `region`. */
export function announceReminders(socket, store, region) {
  socket.on('consult-reminder', ({ consult_id: id }) => {
    const c = store.get(id);
    if (c) say(region, () => t('reminder.soon', { patient: c.patient.name, time: formatTime(c.scheduled_at) }), 'ok');
  });
}
