// Exam room (desktop): book a consult, follow the institution's consults live, run the call.

// First: a call link's early start (camera, socket, join) runs before any other module's
// top-level code (i18n walking the page, the lists …) in the bundle (teleconsult/web_bundle.py).
import './call-link.js';
import { api } from './api.js';
import { ACCEPT, UploadQueue, attachmentAdded, attachmentAdder } from './attachments.js';
import { CallView } from './call/view.js';
import { ACTIVE, ConsultStore, JOINABLE, announceReminders, consultCard, specialtyOptions } from './consults.js';
import { $, h, localDateTime, say } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import {
  clearIntakeProblems, intakeForm, loadIntakeForms, localized, readIntake, renderIntakeFields,
  showIntakeProblems,
} from './intake.js';
import { NoticeBoard } from './notices.js';
import { bootPage } from './page.js';
import { firstFrameOr } from './timings.js';

/** How long a call link's page holds back its lists for the call's start (firstFrameOr). */
const CALL_FIRST_MS = 3000;

const { user, socket, consultToJoin } = await bootPage();

const workspace = $('[data-testid="workspace"]');
const form = $('[data-testid="book-form"]');
const bookMessage = $('[data-testid="book-message"]');
const list = $('[data-testid="consult-list"]');
const empty = $('[data-testid="consult-list-empty"]');
const specialtySelect = $('[data-testid="book-specialty"]');
const specialistSelect = $('[data-testid="book-specialist"]');
const intakeFields = $('[data-intake-fields]');
const intakeTitle = $('[data-testid="book-intake-title"]');
const fileInput = $('[data-testid="book-files"]');
fileInput.accept = ACCEPT;
const uploads = new UploadQueue($('[data-testid="upload-list"]'));

const store = new ConsultStore(renderList);
const notices = new NoticeBoard(() => renderList());
const call = new CallView({
  root: $('[data-call-root]'), socket, user,
  onClose: () => { workspace.hidden = false; refresh(); },
});

// A call link (`#consult=…`): the call starts before anything the booking form needs.
if (consultToJoin) join(consultToJoin);

function renderList() {
  const consults = store.sorted();
  list.replaceChildren(...consults.map((c) => consultCard(c, {
    actions: actionsFor(c),
    extra: c.status === 'requested' ? notices.section(c.id) : null,
  })));
  empty.hidden = consults.length > 0;
}

function actionsFor(c) {
  const actions = [];
  if (JOINABLE.has(c.status)) {
    actions.push(h('button', { type: 'button', class: 'primary', dataset: { testid: 'consult-join' },
      onclick: () => join(c.id) }, t('consult.join')));
  }
  if (ACTIVE.has(c.status)) actions.push(attachmentAdder(c));
  if (['requested', 'accepted', 'waiting'].includes(c.status)) {
    actions.push(h('button', { type: 'button', dataset: { testid: 'consult-cancel' },
      onclick: () => cancel(c) }, t('consult.cancel')));
  }
  return actions;
}

async function refresh() {
  try {
    const mark = store.mark();
    store.replaceAll((await api.consults()).consults, mark);
    // Who has been told of each open request so far (escalation steps).
    for (const c of store.sorted((x) => x.status === 'requested')) notices.load(c.id);
  } catch (err) {
    say(bookMessage, () => errorText(err), 'error');
  }
}

function join(consultId) {
  workspace.hidden = true;
  call.join(consultId);
}

async function cancel(c) {
  if (!confirm(t('consult.cancelConfirm', { patient: c.patient.name }))) return;
  try {
    store.upsert(await api.cancel(c.id, ''));
  } catch (err) {
    say(bookMessage, () => errorText(err), 'error');
  }
}

// ---- booking form ----

function fillSpecialties() {
  const chosen = specialtySelect.value || 'obstetrics';
  specialtySelect.replaceChildren(...specialtyOptions());
  specialtySelect.value = chosen;
}

let specialistsRequest = 0;
async function loadSpecialists() {
  const mine = ++specialistsRequest; // a slower answer for a previous specialty must not win
  const any = specialistSelect.options[0];
  specialistSelect.replaceChildren(any);
  try {
    const { specialists } = await api.specialists(specialtySelect.value);
    if (mine !== specialistsRequest) return;
    specialistSelect.append(...specialists.map((s) =>
      h('option', { value: String(s.id) }, `${s.display_name} · ${s.institution_name}`)));
  } catch (err) {
    if (mine === specialistsRequest) say(bookMessage, () => errorText(err), 'error');
  }
}

/** Show the chosen specialty's intake form, keeping what was typed into fields it shares. */
function renderIntake(keep = readIntake(intakeFields)) {
  const form = intakeForm(specialtySelect.value);
  renderIntakeFields(intakeFields, form, keep);
  intakeTitle.textContent = form ? localized(form.title) : t('intake.title');
}

async function loadIntake() {
  try {
    await loadIntakeForms();
    renderIntake();
    renderList(); // cards show intake answers with the forms' labels
  } catch (err) {
    say(bookMessage, () => errorText(err), 'error');
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  const age = form.age.value.trim();
  const patient = { name: form.patientName.value.trim(), sex: form.sex.value, summary: form.summary.value.trim() };
  if (age !== '') patient.age_years = Number(age);
  const booking = {
    patient,
    specialty: specialtySelect.value,
    reason: form.reason.value.trim(),
    // datetime-local is local wall time; toISOString() makes it an explicit UTC instant.
    scheduled_at: new Date(form.scheduledAt.value).toISOString(),
  };
  if (specialistSelect.value) booking.specialist_id = Number(specialistSelect.value);
  booking.intake = readIntake(intakeFields);
  clearIntakeProblems(intakeFields);
  const submit = $('[data-testid="book-submit"]');
  submit.disabled = true;
  try {
    const consult = await api.book(booking);
    const files = [...fileInput.files]; // before reset() empties the input
    store.upsert(consult);
    form.reset();
    form.scheduledAt.value = localDateTime();
    loadSpecialists(); // reset() went back to the first specialty
    renderIntake({});
    say(bookMessage, () => t('book.done', { patient: consult.patient.name }), 'ok');
    // The booking stands; its files follow one by one, each with its own result.
    if (files.length) uploads.add(consult.id, files, consult.patient.name);
  } catch (err) {
    const unplaced = err?.code === 'invalid_intake'
      ? showIntakeProblems(intakeFields, intakeForm(specialtySelect.value), err.details) : [];
    say(bookMessage, () => [errorText(err), ...unplaced].join(' '), 'error');
  } finally {
    submit.disabled = false;
  }
});
// The static page starts with the button disabled, so that a click before this module ran
// cannot submit the form natively (its fields in the address); ready now.
form.querySelector('[type="submit"]').disabled = false;

specialtySelect.addEventListener('change', () => { loadSpecialists(); renderIntake(); });
fillSpecialties();
form.scheduledAt.value = localDateTime();

// ---- live updates ----

socket.on('consult-state', ({ consult }) => consult && store.upsert(consult));
socket.on('attachment-added', attachmentAdded);
// Each escalation step of our requests: who was told, and when.
socket.on('consult-escalated', (step) => step?.consult_id && notices.add(step));
announceReminders(socket, store, bookMessage);
// After a reconnect we may have missed events; the list is cheap to reload.
socket.on('connect', refresh);
onLangChange(() => { renderList(); renderIntake(); });

// A call link: the form's lists and the consult list wait until the call shows the other side
// (or CALL_FIRST_MS), hidden behind the call anyway; their requests and rendering would only
// compete with the call's start.
if (consultToJoin) await firstFrameOr(CALL_FIRST_MS);
loadSpecialists();
loadIntake();
await refresh();
