// Admin: the on-duty roster — the coming week's shifts, add one, remove one (each asked
// first, in words: who, when, primary or backup). Messages follow a language switch. The supervisor
// page (consult records) is a link away.

import { api } from './api.js';
import { formatTime, specialtyOptions } from './consults.js';
import { $, h, localDateTime, say } from './dom.js';
import { errorText } from './errors.js';
import { has, onLangChange, t } from './i18n.js';
import { bootPage } from './page.js';

await bootPage({ socket: false });

const form = $('[data-testid="shift-form"]');
const message = $('[data-testid="roster-message"]');
const body = $('[data-testid="shift-table"] tbody');
const specialtySelect = $('[data-testid="shift-specialty"]');
const specialistSelect = $('[data-testid="shift-specialist"]');
const WEEK_MS = 7 * 24 * 3600 * 1000;
let shifts = [];

function render() {
  body.replaceChildren(...shifts.map((s) =>
    h('tr', { dataset: { testid: 'shift-item', shiftId: s.id, specialty: s.specialty } },
      h('td', {}, t(`specialty.${s.specialty}`)),
      h('td', {}, s.specialist.display_name),
      h('td', {}, formatTime(s.start)),
      h('td', {}, formatTime(s.end)),
      h('td', {}, t(s.tier === 0 ? 'admin.tier0' : 'admin.tier1')),
      h('td', {}, h('button', { type: 'button', class: 'danger', dataset: { testid: 'shift-remove' },
        'aria-label': t('admin.removeLabel', { name: s.specialist.display_name }),
        onclick: () => remove(s) }, t('admin.remove'))))));
  $('[data-testid="shift-list-empty"]').hidden = shifts.length > 0;
}

/** A refused shift says which rule it broke (`details[0].reason`), in the user's language. */
function refusal(err) {
  const reason = err?.details?.[0]?.reason;
  return reason && has(`roster.reason.${reason}`) ? t(`roster.reason.${reason}`) : errorText(err);
}

async function refresh() {
  const now = Date.now();
  try {
    shifts = (await api.shifts(new Date(now - 24 * 3600 * 1000).toISOString(),
      new Date(now + WEEK_MS).toISOString())).shifts;
    render();
  } catch (err) {
    say(message, () => errorText(err), 'error');
  }
}

/** A shift in words, for the confirmations: who, which specialty, when, primary or backup. */
function shiftText({ name, specialty, start, end, tier }) {
  return t('admin.shiftText', {
    name, specialty: t(`specialty.${specialty}`), start: formatTime(start), end: formatTime(end),
    tier: t(tier === 0 ? 'admin.tier0' : 'admin.tier1'),
  });
}

async function remove(s) {
  const shift = { name: s.specialist.display_name, specialty: s.specialty, start: s.start, end: s.end, tier: s.tier };
  if (!confirm(t('admin.removeConfirm', { shift: shiftText(shift) }))) return;
  try {
    await api.removeShift(s.id);
    say(message, () => t('admin.removed'), 'ok');
  } catch (err) {
    say(message, () => errorText(err), 'error');
  }
  refresh();
}

let specialistsRequest = 0;
async function loadSpecialists() {
  const mine = ++specialistsRequest; // a slower answer for a previous specialty must not win
  specialistSelect.replaceChildren();
  try {
    const { specialists } = await api.specialists(specialtySelect.value);
    if (mine !== specialistsRequest) return;
    specialistSelect.append(...specialists.map((s) =>
      h('option', { value: String(s.id) }, `${s.display_name} · ${s.institution_name}`)));
  } catch (err) {
    say(message, () => errorText(err), 'error');
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!form.start.value || !form.end.value || !specialistSelect.value) {
    say(message, () => t('admin.incomplete'), 'error');
    return;
  }
  const shift = {
    specialist_id: Number(specialistSelect.value),
    specialty: specialtySelect.value,
    start: new Date(form.start.value).toISOString(),
    end: new Date(form.end.value).toISOString(),
    tier: Number(form.tier.value),
  };
  const name = specialistSelect.selectedOptions[0]?.textContent ?? '';
  if (!confirm(t('admin.addConfirm', { shift: shiftText({ ...shift, name }) }))) return;
  const submit = $('[data-testid="shift-submit"]');
  submit.disabled = true;
  try {
    await api.addShift(shift);
    say(message, () => t('admin.added'), 'ok');
    refresh();
  } catch (err) {
    say(message, () => refusal(err), 'error');
  } finally {
    submit.disabled = false;
  }
});
// The static page starts with the button disabled, so that a click before this module ran
// cannot submit the form natively (its fields in the address); ready now.
form.querySelector('[type="submit"]').disabled = false;

specialtySelect.replaceChildren(...specialtyOptions());
specialtySelect.addEventListener('change', loadSpecialists);
form.start.value = localDateTime();
form.end.value = localDateTime(Date.now() + 8 * 3600 * 1000);
$('[data-testid="roster-refresh"]').addEventListener('click', refresh);
onLangChange(render);
await loadSpecialists();
await refresh();
