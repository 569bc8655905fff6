// A consult's review for supervisors and admins (`/review.html?consult=<id>`): the record
// (patient, intake, participants, times, conclusion), the recordings side by side under one
// timeline with the notes as markers (js/review-player.js), the review comments, and the audit
// trail of who did and viewed what. Opening the page is itself audited (`consult.reviewed`).

import { api } from './api.js';
import { detailRow, formatTime, patientLine, statusBadge } from './consults.js';
import { $, h, labelledCell, say } from './dom.js';
import { errorText } from './errors.js';
import { has, lang, onLangChange, t } from './i18n.js';
import { intakeSection, loadIntakeForms } from './intake.js';
import { noteItem } from './notes.js';
import { bootPage } from './page.js';
import { clock } from './recording.js';
import { renderQualityTimeline } from './quality_timeline.js';
import { describeTrack } from './recordings.js';
import { ReviewPlayer } from './review-player.js';

/** A cell of the table below, labelled with its column's name for the narrow-screen cards. */
const cell = (key, ...children) => labelledCell(t(key), ...children);

/** Longest comment the server takes (rooms.review.MAX_COMMENT_CHARS). */
const MAX_COMMENT_CHARS = 2000;

function consultIdFromAddress() {
  const id = new URLSearchParams(location.search).get('consult');
  return id && /^[0-9a-f]{32}$/.test(id) ? id : null;
}

const consultId = consultIdFromAddress();
await bootPage({ socket: false, anyRole: true });

const errorLine = $('[data-testid="review-error"]');
const layout = $('[data-testid="review"]');
const state = { review: null, comments: [], audit: [], player: null, quality: null };

function renderRecord() {
  const c = state.review.consult;
  document.title = `${c.patient.name} · ${t('review.pageTitle')}`;
  const people = [c.requesting_doctor.display_name, c.specialist?.display_name].filter(Boolean);
  $('[data-testid="review-record-body"]').replaceChildren(
    h('p', {}, statusBadge(c.status), ' ', t(`specialty.${c.specialty}`), ' · ', c.id),
    h('dl', { class: 'review-facts' },
      detailRow('consult.patient', patientLine(c.patient, { withName: true })),
      detailRow('consult.summary', c.patient.summary),
      detailRow('consult.reason', c.reason),
      detailRow('consult.requester', `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`),
      detailRow('consult.specialist', c.specialist?.display_name ?? t('consult.anySpecialist')),
      detailRow('record.participants', people.join('、')),
      detailRow('consult.scheduledAt', formatTime(c.scheduled_at)),
      detailRow('record.startedAt', formatTime(c.started_at)),
      detailRow('record.endedAt', formatTime(c.ended_at))),
    intakeSection(c, { level: 2 }) ?? null,
    h('h2', { class: 'intake-heading' }, t('record.conclusion')),
    h('p', { class: 'conclusion-text', dataset: { testid: 'review-conclusion' } },
      c.closing_note || t('record.noConclusion')));
  const print = $('[data-testid="review-print-link"]');
  print.href = `/consult-record.html#consult=${c.id}`;
}

function renderNotes() {
  const list = $('[data-testid="review-notes"]');
  const markers = state.review.timeline.markers;
  list.replaceChildren(...markers.map((m) => {
    const item = noteItem(m.note, { withDate: true });
    if (m.at_s !== null && m.at_s !== undefined && state.player) {
      item.append(h('button', {
        type: 'button', class: 'link', dataset: { testid: 'note-seek', noteId: m.note.id },
        onclick: () => state.player.seek(m.at_s),
      }, t('review.seekTo', { time: clock(m.at_s) })));
    }
    return item;
  }));
  if (!markers.length) list.replaceChildren(h('li', { class: 'empty' }, t('notes.none')));
}

function renderPlayer() {
  const box = $('[data-testid="review-player-box"]');
  const { timeline } = state.review;
  if (!timeline.tracks.length) {
    box.replaceChildren(h('p', { class: 'empty', dataset: { testid: 'review-no-recordings' } }, t('recordings.none')));
    return;
  }
  state.player = new ReviewPlayer(timeline, describeTrack);
  box.replaceChildren(state.player.root);
  if (timeline.sessions.length > 1) {
    box.append(h('p', { class: 'notice' }, t('review.sessions', { n: timeline.sessions.length })));
  }
}

function commentItem(c) {
  const pin = c.timeline_s === null || c.timeline_s === undefined
    ? null
    : h('button', {
      type: 'button', class: 'link', dataset: { testid: 'comment-seek' },
      onclick: () => state.player?.seek(c.timeline_s),
    }, t('review.seekTo', { time: clock(c.timeline_s) }));
  return h('li', { class: 'note-item', dataset: { testid: 'comment-item', commentId: c.id } },
    h('p', { class: 'note-meta' },
      h('span', { class: 'note-author' }, c.author.display_name),
      h('time', { datetime: c.at }, formatTime(c.at)), pin),
    h('p', { class: 'note-text', dataset: { testid: 'comment-text-shown' } }, c.text));
}

function renderComments() {
  $('[data-testid="comment-list"]').replaceChildren(...state.comments.map(commentItem));
  $('[data-testid="comment-list-empty"]').hidden = state.comments.length > 0;
  renderPinLabel();
}

function renderPinLabel() {
  const pinLabel = $('[data-testid="comment-pin-label"]');
  pinLabel.textContent = t('review.commentPin', { time: clock(state.player?.now() ?? 0) });
  $('[data-testid="comment-pin"]').disabled = !state.player;
}

/** What an audit entry was about, in words: the track it touched, the range read, the note. */
function auditDetail(entry) {
  const d = entry.detail ?? {};
  const tracks = new Map(state.review.timeline.tracks.map((tr) => [tr.recording.id, tr.recording]));
  const parts = [];
  if (d.recording) parts.push(tracks.has(d.recording) ? describeTrack(tracks.get(d.recording)) : d.recording);
  if (Array.isArray(d.range)) parts.push(t('review.auditRange', { first: d.range[0], last: d.range[1] }));
  if (Array.isArray(d.recordings)) parts.push(t('review.auditTracks', { n: d.recordings.length }));
  // Codes in words: a consult's status, or a media path (direct, relay) and why it moved.
  const path = entry.action === 'consult.media_path';
  const word = (v) => {
    const key = path ? `call.path.${v}` : `status.${v}`;
    return has(key) ? t(key) : v;
  };
  if (d.from && d.to) parts.push(`${word(d.from)} → ${word(d.to)}`);
  if (d.timeline_s !== undefined && d.timeline_s !== null) parts.push(clock(d.timeline_s));
  if (d.reason && path && has(`audit.relayReason.${d.reason}`)) parts.push(t(`audit.relayReason.${d.reason}`));
  else if (d.reason) parts.push(d.reason); // a person's own words (declined, cancelled)
  return parts.join(' · ');
}

/** Audit times to the second: who viewed what, in which order. */
function auditTime(iso) {
  return new Intl.DateTimeFormat(lang(), { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(iso));
}

/** Runs of byte reads of one track by one person become one row ("×12"). */
function auditRows(entries) {
  const rows = [];
  for (const e of entries) {
    const last = rows[rows.length - 1];
    if (last && e.action === 'recording.accessed' && last.entry.action === e.action
      && last.entry.actor_id === e.actor_id && last.entry.detail?.recording === e.detail?.recording) {
      last.count += 1;
      last.until = e.at;
      continue;
    }
    rows.push({ entry: e, count: 1, until: e.at });
  }
  return rows;
}

function renderAudit() {
  const body = $('[data-testid="audit-table"] tbody');
  body.replaceChildren(...auditRows(state.audit).map(({ entry, count, until }) => {
    const action = has(`audit.${entry.action}`) ? t(`audit.${entry.action}`) : entry.action;
    const detail = auditDetail(entry);
    return h('tr', { dataset: { testid: 'audit-row', action: entry.action, actor: entry.actor?.display_name ?? '' } },
      cell('review.auditWhen', auditTime(entry.at), count > 1 && until !== entry.at ? ` – ${auditTime(until)}` : ''),
      cell('review.auditWho', entry.actor?.display_name ?? t('review.auditSystem')),
      cell('review.auditWhat', action, count > 1 ? ` ×${count}` : ''),
      cell('review.auditDetail', detail));
  }));
}

async function loadAudit() {
  const line = $('[data-testid="audit-error"]');
  try {
    state.audit = (await api.audit(consultId)).entries ?? [];
    say(line, '');
    renderAudit();
  } catch (err) {
    say(line, err.status === 403 ? t('error.forbidden') : errorText(err), 'error');
  }
}

async function loadComments() {
  state.comments = (await api.comments(consultId)).comments ?? [];
  renderComments();
}

async function submitComment(event) {
  event.preventDefault();
  const box = $('[data-testid="comment-text"]');
  const line = $('[data-testid="comment-error"]');
  const text = box.value.trim();
  if (!text) return say(line, t('review.commentEmpty'), 'error');
  if (text.length > MAX_COMMENT_CHARS) return say(line, t('review.commentTooLong', { max: MAX_COMMENT_CHARS }), 'error');
  const pinned = $('[data-testid="comment-pin"]').checked && state.player;
  const button = $('[data-testid="comment-submit"]');
  button.disabled = true;
  try {
    const added = await api.addComment(consultId, text, pinned ? Number(state.player.now().toFixed(3)) : null);
    state.comments.push(added);
    box.value = '';
    say(line, '');
    renderComments();
    await loadAudit();
  } catch (err) {
    say(line, errorText(err), 'error');
  } finally {
    button.disabled = false;
  }
}

function renderQuality() {
  if (!state.quality) return;
  renderQualityTimeline($('[data-testid="review-quality"]'), state.quality, (s) => state.player?.seek(s));
}

async function loadQuality() {
  try {
    state.quality = await api.quality(consultId);
    renderQuality();
  } catch (err) {
    say($('[data-testid="review-quality"]'), errorText(err), 'error');
  }
}

function renderAll() {
  if (!state.review) return;
  renderQuality();
  renderRecord();
  renderNotes();
  renderComments();
  renderAudit();
}

async function open() {
  if (!consultId) return say(errorLine, t('record.missing'), 'error');
  try {
    state.review = await api.review(consultId);
  } catch (err) {
    return say(errorLine, err.status === 403 ? t('review.forbidden') : t('record.loadFailed', { reason: errorText(err) }), 'error');
  }
  await loadIntakeForms().catch(() => {}); // without them the answers show under raw names
  layout.hidden = false;
  renderPlayer();
  renderAll();
  $('[data-testid="comment-form"]').addEventListener('submit', submitComment);
  $('[data-testid="comment-submit"]').disabled = false; // disabled until this handler is attached
  $('[data-testid="audit-refresh"]').addEventListener('click', loadAudit);
  // The pin label follows the player's clock.
  setInterval(renderPinLabel, 500);
  await Promise.all([
    state.player?.load(),
    loadQuality(),
    loadComments().catch((err) => say($('[data-testid="comment-error"]'), errorText(err), 'error')),
  ]);
  await loadAudit();
}

onLangChange(renderAll);
await open();
