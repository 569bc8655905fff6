// Supervisor/admin: find consults of their institution subtree with filters (institution,
// specialty, scheduled dates, statuses, recorded or not; docs/supervisor-review.md) and open
// one for review (review.html). Dates are calendar days in this browser's time zone: the day
// range [from, to] is sent as the instants [from 00:00, day after `to` 00:00) with their offset.

import { api } from './api.js';
import { formatTime, specialtyOptions, statusBadge } from './consults.js';
import { $, h, labelledCell, say } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { bootPage } from './page.js';
import { mountStatistics } from './statistics.js';

/** A cell of the table below, labelled with its column's name for the narrow-screen cards. */
const cell = (key, ...children) => labelledCell(t(key), ...children);

const STATUSES = ['requested', 'accepted', 'waiting', 'live', 'ended', 'declined', 'cancelled', 'expired'];
/** Consults per page (the server's most is rooms.review.MAX_PAGE = 200). */
const PAGE = 50;

await bootPage({ socket: false, alsoFor: ['admin'] });

const body = $('[data-testid="consult-table"] tbody');
const errorLine = $('[data-testid="supervisor-error"]');
const form = $('[data-testid="filter-form"]');
const more = $('[data-testid="filter-more"]');
let consults = [];
let nextOffset = null;
let institutions = [];
// A push notification's deep link (`?consult=<id>`, step 2 of escalation) marks that consult.
const linked = new URLSearchParams(location.search).get('consult');

/** "2026-11-23" in this browser's zone → that local midnight as ISO 8601 with its offset. */
export function localMidnight(day, plusDays = 0) {
  const [y, m, d] = day.split('-').map(Number);
  const at = new Date(y, m - 1, d + plusDays);
  const offset = -at.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  const date = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
  return `${date}T00:00:00${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

function filterParams(offset = 0) {
  const params = new URLSearchParams();
  const value = (testid) => $(`[data-testid="${testid}"]`).value;
  if (value('filter-institution')) params.set('institution', value('filter-institution'));
  if (value('filter-specialty')) params.append('specialty', value('filter-specialty'));
  if (value('filter-from')) params.set('from', localMidnight(value('filter-from')));
  if (value('filter-to')) params.set('to', localMidnight(value('filter-to'), 1));
  if (value('filter-recorded')) params.set('recorded', value('filter-recorded'));
  for (const box of form.querySelectorAll('[data-testid="filter-status"]:checked')) params.append('status', box.value);
  params.set('limit', String(PAGE));
  if (offset) params.set('offset', String(offset));
  return params;
}

function buildForm() {
  const institution = $('[data-testid="filter-institution"]');
  const keepInstitution = institution.value;
  institution.replaceChildren(h('option', { value: '' }, t('filter.anyInstitution')),
    ...institutions.map((i) => h('option', { value: String(i.id) }, i.name)));
  institution.value = keepInstitution;
  const specialty = $('[data-testid="filter-specialty"]');
  const keepSpecialty = specialty.value;
  specialty.replaceChildren(h('option', { value: '' }, t('filter.anySpecialty')),
    ...specialtyOptions());
  specialty.value = keepSpecialty;
  const statuses = $('[data-testid="filter-statuses"]');
  const checked = new Set([...statuses.querySelectorAll('input:checked')].map((b) => b.value));
  statuses.replaceChildren(h('legend', {}, t('filter.status')), ...STATUSES.map((s) =>
    h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: s, checked: checked.has(s), dataset: { testid: 'filter-status' } }),
      ' ', t(`status.${s}`))));
}

function openReview(c) {
  location.assign(`/review.html?consult=${encodeURIComponent(c.id)}`);
}

function render() {
  body.replaceChildren(...consults.map((c) =>
    h('tr', {
      class: 'clickable',
      dataset: { testid: 'consult-item', consultId: c.id, status: c.status, ...(c.id === linked ? { linked: 'true' } : {}) },
      'aria-current': c.id === linked ? 'true' : undefined,
      onclick: (e) => { if (!e.target.closest('button, a')) openReview(c); },
    },
    cell('consult.scheduledAt', formatTime(c.scheduled_at)),
    cell('consult.patient', c.patient.name),
    cell('consult.specialty', t(`specialty.${c.specialty}`)),
    cell('consult.requester', `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`),
    cell('consult.specialist', c.specialist?.display_name ?? '—'),
    cell('consult.status', statusBadge(c.status)),
    cell('supervisor.review', h('a', {
      href: `/review.html?consult=${encodeURIComponent(c.id)}`, dataset: { testid: 'open-review' },
    }, t('supervisor.openReview'))))));
  $('[data-testid="consult-list-empty"]').hidden = consults.length > 0;
  more.hidden = nextOffset === null;
}

async function search({ append = false } = {}) {
  try {
    const params = filterParams(append ? nextOffset : 0);
    const page = await api.searchConsults(params);
    consults = append ? [...consults, ...page.consults] : page.consults;
    nextOffset = page.next_offset ?? null;
    say(errorLine, '');
    render();
    // Which search the table shows (the query string), for scripts and tests to wait on.
    body.closest('table').dataset.query = String(params);
    if (linked) document.querySelector(`tr[data-linked="true"]`)?.scrollIntoView({ block: 'center' });
  } catch (err) {
    say(errorLine, errorText(err), 'error');
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const from = $('[data-testid="filter-from"]').value;
  const to = $('[data-testid="filter-to"]').value;
  if (from && to && to < from) {
    say(errorLine, t('filter.badRange'), 'error');
    return;
  }
  search();
});
// The static page starts with the button disabled, so that a click before this module ran
// cannot submit the form natively (its fields in the address); ready now.
form.querySelector('[type="submit"]').disabled = false;
form.addEventListener('reset', () => setTimeout(() => search(), 0));
more.addEventListener('click', () => search({ append: true }));
$('[data-testid="refresh-button"]').addEventListener('click', () => search());
onLangChange(() => { buildForm(); render(); });

try {
  institutions = (await api.institutions()).institutions ?? [];
} catch (err) {
  say(errorLine, errorText(err), 'error');
}
buildForm();
await search();
// The statistics section (charts, table, CSV) under the consult list: js/statistics.js.
mountStatistics($('#statistics'));
