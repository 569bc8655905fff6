// The printable record of one consult (`/consult-record.html#consult=<id>`): patient, intake,
// reason, participants, times, the notes taken during the call (with the time and the recording
// offset), the conclusion, the attachments (name, type, size, SHA-256) and the recordings with
// their duration and SHA-256. Any signed-in
// user may open it; the server decides what they may see (the consult, its notes, its
// recordings), and a refusal is said in words.

import { api } from './api.js';
import { sizeText } from './attachments.js';
import { detailRow, formatTime, patientLine } from './consults.js';
import { $, h, say } from './dom.js';
import { errorText } from './errors.js';
import { lang, onLangChange, t } from './i18n.js';
import { intakeSection, loadIntakeForms } from './intake.js';
import { noteItem } from './notes.js';
import { bootPage } from './page.js';
import { HOME } from './session.js';
import { clock } from './recording.js';

/** The consult id in the fragment, read before bootPage wipes the fragment. */
function consultIdFromLink() {
  const id = new URLSearchParams(location.hash.slice(1)).get('consult');
  return id && /^[0-9a-f]{32}$/.test(id) ? id : null;
}

const linked = consultIdFromLink();
const { user } = await bootPage({ socket: false, anyRole: true });
// Back to the page the user works on (the record opens in place, in the same tab).
$('[data-testid="record-back"]').href = HOME[user.role] ?? '/';
const sheet = $('[data-testid="consult-record"]');
const errorLine = $('[data-testid="record-error"]');
// Keep the address reloadable and printable (the fragment holds no token).
if (linked) history.replaceState(history.state, '', `${location.pathname}#consult=${linked}`);

const data = {
  consult: null, notes: [], recordings: null, recordingsProblem: null, notesProblem: null,
  attachments: [], attachmentsProblem: null,
};

function section(key, testid, ...body) {
  return h('section', { dataset: { testid } }, h('h2', {}, t(key)), ...body);
}

function participants(c) {
  const people = new Map();
  const add = (person, role) => {
    if (person?.id !== undefined && !people.has(person.id)) people.set(person.id, { person, role });
  };
  add(c.requesting_doctor, t('record.requestingDoctor'));
  if (c.specialist) add(c.specialist, t('consult.specialist'));
  for (const p of c.invited ?? []) add(p, t('record.invitedSpecialist'));
  for (const n of data.notes) add(n.author, t('record.tookNotes'));
  for (const r of data.recordings ?? []) add(r.participant, t('record.recorded'));
  return h('ul', { class: 'record-people', dataset: { testid: 'record-participants' } },
    [...people.values()].map(({ person, role }) => h('li', {}, `${person.display_name} · ${role}`)));
}

function megabytes(bytes) {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: 2 }).format((bytes ?? 0) / 1e6);
}

/** A table that may be wider than the screen: it scrolls sideways and, so that a keyboard can
 * scroll it too, takes the focus (a named group). */
function scrollingTable(key, table) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'group', 'aria-label': t(key) }, table);
}

function recordingsBody() {
  if (data.recordingsProblem) return h('p', { class: 'empty' }, data.recordingsProblem());
  if (!data.recordings?.length) return h('p', { class: 'empty' }, t('recordings.none'));
  const th = (key) => h('th', { scope: 'col' }, t(key));
  return scrollingTable('record.recordings', h('table', { dataset: { testid: 'record-recordings' } },
    h('thead', {}, h('tr', {}, th('record.participant'), th('record.source'), th('record.starts'),
      th('record.duration'), th('record.size'), th('record.sha256'))),
    h('tbody', {}, data.recordings.map((r) => h('tr', { dataset: { testid: 'record-recording', recordingId: r.id } },
      h('td', {}, r.participant?.display_name ?? ''),
      h('td', {}, `${t(`recordings.source.${r.source}`)} (${r.codec})`),
      h('td', {}, clock(r.started_offset_s ?? 0)),
      h('td', {}, clock(r.duration_s ?? 0)),
      h('td', {}, t('record.megabytes', { n: megabytes(r.bytes) })),
      h('td', { class: 'hash' }, r.sha256))))));
}

function attachmentsBody() {
  if (data.attachmentsProblem) return h('p', { class: 'empty' }, data.attachmentsProblem());
  if (!data.attachments.length) return h('p', { class: 'empty' }, t('record.noAttachments'));
  const th = (key) => h('th', { scope: 'col' }, t(key));
  return scrollingTable('record.attachments', h('table', { dataset: { testid: 'record-attachments' } },
    h('thead', {}, h('tr', {}, th('record.fileName'), th('record.fileType'), th('record.size'),
      th('record.uploadedBy'), th('record.uploadedAt'), th('record.sha256'))),
    h('tbody', {}, data.attachments.map((a) => h('tr', { dataset: { testid: 'record-attachment', attachmentId: a.id } },
      h('td', { class: 'file-name' }, a.file_name),
      h('td', {}, a.media_type),
      h('td', {}, sizeText(a.bytes)),
      h('td', {}, a.uploaded_by?.display_name ?? ''),
      h('td', {}, formatTime(a.uploaded_at)),
      h('td', { class: 'hash' }, a.sha256))))));
}

function render() {
  const c = data.consult;
  if (!c) return;
  document.title = `${c.patient.name} · ${t('record.pageTitle')}`;
  const notes = data.notesProblem
    ? h('p', { class: 'empty' }, data.notesProblem())
    : data.notes.length
      ? h('ol', { class: 'note-list', dataset: { testid: 'note-list' } }, data.notes.map((n) => noteItem(n, { withDate: true })))
      : h('p', { class: 'empty' }, t('notes.none'));
  sheet.replaceChildren(
    h('header', {},
      h('h1', { id: 'record-heading' }, t('record.heading')),
      h('p', {}, `${t(`specialty.${c.specialty}`)} · ${t(`status.${c.status}`)} · ${c.id}`)),
    section('record.patient', 'record-patient', h('dl', {},
      detailRow('consult.patient', patientLine(c.patient, { withName: true })),
      detailRow('consult.summary', c.patient.summary))),
    section('record.consult', 'record-consult', h('dl', {},
      detailRow('consult.specialty', t(`specialty.${c.specialty}`)),
      detailRow('consult.reason', c.reason),
      detailRow('consult.requester', `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`),
      detailRow('consult.specialist', c.specialist?.display_name ?? t('consult.anySpecialist')))),
    section('record.intake', 'record-intake', intakeSection(c, { level: 3 }) ?? h('p', { class: 'empty' }, t('record.noIntake'))),
    section('record.attachments', 'record-attachments-section', attachmentsBody()),
    section('record.participants', 'record-participants-section', participants(c)),
    section('record.times', 'record-times', h('dl', {},
      detailRow('consult.scheduledAt', formatTime(c.scheduled_at)),
      detailRow('record.requestedAt', formatTime(c.requested_at)),
      detailRow('record.acceptedAt', formatTime(c.accepted_at)),
      detailRow('record.startedAt', formatTime(c.started_at)),
      detailRow('record.endedAt', formatTime(c.ended_at)),
      detailRow('consult.endedBy', c.status === 'ended' ? c.ended_by?.display_name : null))),
    section('notes.heading', 'record-notes', notes),
    section('record.conclusion', 'record-conclusion', c.status === 'ended' && c.closing_note
      ? h('p', { class: 'conclusion-text', dataset: { testid: 'record-conclusion-text' } }, c.closing_note)
      : h('p', { class: 'empty' }, c.status === 'ended' ? t('record.noConclusion') : c.closing_note || t('record.noConclusion'))),
    section('recordings.heading', 'record-recordings-section', recordingsBody()),
    h('p', { class: 'printed' }, t('record.printedAt', { time: formatTime(new Date().toISOString()) })));
  sheet.hidden = false;
}

/** What a refused or failed part of the record says instead of its content. */
function problem(err, forbiddenKey, failedKey) {
  if (err.status === 403) return () => t(forbiddenKey);
  return () => t(failedKey, { reason: errorText(err) });
}

async function load(consultId) {
  try {
    data.consult = await api.consult(consultId);
  } catch (err) {
    say(errorLine, t('record.loadFailed', { reason: errorText(err) }), 'error');
    return;
  }
  // Without the intake forms the answers still show, under their raw names.
  const [notes, recordings, attachments] = await Promise.allSettled([
    api.notes(consultId), api.recordings(consultId), api.attachments(consultId), loadIntakeForms(),
  ]);
  if (attachments.status === 'fulfilled') data.attachments = attachments.value.attachments ?? [];
  else data.attachmentsProblem = problem(attachments.reason, 'attachments.forbidden', 'record.partFailed');
  if (notes.status === 'fulfilled') data.notes = notes.value.notes ?? [];
  else data.notesProblem = problem(notes.reason, 'error.forbidden', 'record.partFailed');
  if (recordings.status === 'fulfilled') data.recordings = recordings.value.recordings ?? [];
  else data.recordingsProblem = problem(recordings.reason, 'recordings.forbidden', 'recordings.loadFailed');
  render();
}

$('[data-testid="record-print"]').addEventListener('click', () => window.print());
onLangChange(render);
if (linked) await load(linked);
else say(errorLine, t('record.missing'), 'error');
