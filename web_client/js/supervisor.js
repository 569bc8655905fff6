// Supervisor/admin: a plain list of the consults they oversee, with each finished consult's
// recordings under its row (the full review UI comes later).

import { api } from './api.js';
import { HAS_RECORDINGS, formatTime, recordLink, sortConsults, statusBadge } from './consults.js';
import { $, h, say } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { bootPage } from './page.js';
import { recordingsSection } from './recordings.js';

await bootPage({ socket: false, alsoFor: ['admin'] });

const body = $('[data-testid="consult-table"] tbody');
const errorLine = $('[data-testid="supervisor-error"]');
let consults = [];
// A push notification's deep link (`?consult=<id>`, step 2 of escalation) marks that consult.
const linked = new URLSearchParams(location.search).get('consult');

function render() {
  body.replaceChildren(...sortConsults(consults).flatMap((c) => [
    h('tr', {
      dataset: { testid: 'consult-item', consultId: c.id, status: c.status, ...(c.id === linked ? { linked: 'true' } : {}) },
      'aria-current': c.id === linked ? 'true' : undefined,
    },
      h('td', {}, formatTime(c.scheduled_at)),
      h('td', {}, c.patient.name),
      h('td', {}, t(`specialty.${c.specialty}`)),
      h('td', {}, `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`),
      h('td', {}, c.specialist?.display_name ?? '—'),
      h('td', {}, statusBadge(c.status))),
    // A finished consult's recordings, under its row and as wide as the table.
    HAS_RECORDINGS.has(c.status)
      ? h('tr', { class: 'recordings-row', dataset: { consultId: c.id } },
        h('td', { colspan: 6 }, recordLink(c), recordingsSection(c.id)))
      : null,
  ].filter(Boolean)));
  $('[data-testid="consult-list-empty"]').hidden = consults.length > 0;
}

async function refresh() {
  try {
    consults = (await api.consults()).consults;
    say(errorLine, '');
    render();
    if (linked) document.querySelector(`tr[data-linked="true"]`)?.scrollIntoView({ block: 'center' });
  } catch (err) {
    say(errorLine, errorText(err), 'error');
  }
}

$('[data-testid="refresh-button"]').addEventListener('click', refresh);
onLangChange(render);
await refresh();
