// Specialist (phone first): incoming requests arrive live, accept/decline, join, run the call.

// First: a call link's early start (camera, socket, join) runs before any other module's
// top-level code (i18n walking the page, the lists …) in the bundle (teleconsult/web_bundle.py).
import './call-link.js';
import { api } from './api.js';
import { attachmentAdded } from './attachments.js';
import { CallView } from './call/view.js';
import { ConsultStore, JOINABLE, announceReminders, consultCard } from './consults.js';
import { $, h, say } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { loadIntakeForms } from './intake.js';
import { InvitePanel } from './invitations.js';
import { bootPage } from './page.js';
import { pushControl } from './push.js';
import { firstFrameOr } from './timings.js';

/** How long a call link's page holds back its lists for the call's start (firstFrameOr). */
const CALL_FIRST_MS = 3000;

const { user, socket, consultToJoin } = await bootPage();

const workspace = $('[data-testid="workspace"]');
const message = $('[data-testid="specialist-message"]');
const incomingList = $('[data-testid="incoming-list"]');
const myList = $('[data-testid="my-list"]');
const invitedList = $('[data-testid="invited-list"]');
const invitePanels = new Map(); // consult id → InvitePanel, kept across re-renders
const declining = new Set(); // consult ids whose decline form is open
// A notification's deep link: /specialist.html?consult=<id> opens that request, ready to accept.
const linked = new URLSearchParams(location.search).get('consult');
const deepLinked = linked && /^[0-9a-f]{32}$/.test(linked) ? linked : null;
$('[data-push-slot]').replaceChildren(pushControl());

const store = new ConsultStore(render);
const call = new CallView({
  root: $('[data-call-root]'), socket, user,
  onClose: () => { workspace.hidden = false; refresh(); },
  onRemoved: () => say(message, () => t('call.removed'), 'warn'),
});
// A call link (`#consult=…`): the call starts before the lists are loaded.
if (consultToJoin) join(consultToJoin);

// Requests still open to me: assigned to me, or unassigned in my specialty (the server only
// sends those). Once someone else accepts one it is theirs and drops off this page.
const isIncoming = (c) => c.status === 'requested' && (!c.specialist || c.specialist.id === user.id);
const isMine = (c) => c.status !== 'requested' && c.specialist?.id === user.id;
// Consults a colleague invited me into (a multi-disciplinary consult): I join, or decline.
const isInvited = (c) => c.specialist?.id !== user.id && (c.invited ?? []).some((p) => p.id === user.id);

function render() {
  const incoming = store.sorted(isIncoming);
  const mine = store.sorted(isMine);
  incomingList.replaceChildren(...incoming.map((c) => markLinked(consultCard(c, { show: 'requester', actions: requestActions(c) }), c)));
  myList.replaceChildren(...mine.map((c) => consultCard(c, { show: 'requester', actions: myActions(c), extra: invitePanel(c) })));
  const invited = store.sorted(isInvited);
  invitedList.replaceChildren(...invited.map((c) => markLinked(consultCard(c, { show: 'requester', actions: invitedActions(c),
    extra: h('p', { class: 'invited-by' }, t('invite.invitedBy', { name: c.specialist?.display_name ?? '' })) }), c)));
  $('[data-testid="incoming-empty"]').hidden = incoming.length > 0;
  $('[data-testid="my-empty"]').hidden = mine.length > 0;
  $('[data-testid="invited-empty"]').hidden = invited.length > 0;
  $('[data-testid="invited-count"]').textContent = invited.length ? `(${invited.length})` : '';
  $('[data-testid="incoming-count"]').textContent = incoming.length ? `(${incoming.length})` : '';
  document.title = (incoming.length ? `(${incoming.length}) ` : '') + t('specialist.pageTitle');
}

function markLinked(card, c) {
  if (c.id === deepLinked) {
    card.dataset.linked = 'true';
    card.setAttribute('aria-current', 'true');
  }
  return card;
}

/** Bring the deep-linked request into view (loading it if the list does not have it). */
async function openLinked() {
  if (!deepLinked) return;
  if (!store.get(deepLinked)) {
    try {
      store.upsert(await api.consult(deepLinked));
    } catch (err) {
      say(message, () => errorText(err), 'error');
      return;
    }
  }
  document.querySelector(`[data-consult-id="${deepLinked}"]`)?.scrollIntoView({ block: 'center' });
}

function requestActions(c) {
  if (declining.has(c.id)) return [declineForm(c)];
  return [
    h('button', { type: 'button', class: 'primary', dataset: { testid: 'consult-accept' },
      onclick: (e) => act(e.currentTarget, () => api.accept(c.id)) }, t('consult.accept')),
    h('button', { type: 'button', dataset: { testid: 'consult-decline' },
      onclick: () => { declining.add(c.id); render(); } }, t('consult.decline')),
  ];
}

function declineForm(c) {
  const id = `decline-reason-${c.id}`;
  const reason = h('textarea', { id, rows: 2, maxlength: 4000, dataset: { testid: 'decline-reason' } });
  return h('form', { class: 'stack decline-form', onsubmit: (e) => {
    e.preventDefault();
    act(e.submitter, () => api.decline(c.id, reason.value.trim())).then(() => declining.delete(c.id));
  } },
  h('label', { for: id }, t('consult.declineReason')),
  reason,
  h('div', { class: 'card-actions' },
    h('button', { type: 'submit', class: 'danger', dataset: { testid: 'decline-confirm' } }, t('consult.declineConfirm')),
    h('button', { type: 'button', onclick: () => { declining.delete(c.id); render(); } }, t('common.back'))));
}

function invitePanel(c) {
  if (!JOINABLE.has(c.status)) return null;
  let panel = invitePanels.get(c.id);
  if (!panel) {
    panel = new InvitePanel({ user, onChange: (consult) => store.upsert(consult),
      say: (key, params, kind) => say(message, () => t(key, params), kind), errorText });
    invitePanels.set(c.id, panel);
  }
  panel.setConsult(c);
  return panel.root;
}

function invitedActions(c) {
  // A finished consult's invitation is part of its record: nothing left to decline.
  if (!JOINABLE.has(c.status)) return myActions(c);
  return [
    ...myActions(c),
    h('button', { type: 'button', dataset: { testid: 'invitation-decline' },
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          await api.removeInvitation(c.id, user.id);
          store.remove(c.id);
          say(message, () => t('specialist.invitationDeclined'), 'ok');
        } catch (err) {
          say(message, () => errorText(err), 'error');
          refresh();
        }
      } }, t('invite.decline')),
  ];
}

function myActions(c) {
  if (!JOINABLE.has(c.status)) return [];
  return [h('button', { type: 'button', class: 'primary', dataset: { testid: 'consult-join' },
    onclick: () => join(c.id) }, t('consult.join'))];
}

/** Run a consult action from a button; the answer (the updated consult) replaces the card. */
async function act(button, action) {
  if (button) button.disabled = true;
  try {
    store.upsert(await action());
    say(message, '');
  } catch (err) {
    if (button) button.disabled = false;
    say(message, () => errorText(err), 'error');
    // Most likely the request moved on without us hearing (taken by a colleague, cancelled):
    // reload so the card shows where it stands now.
    refresh();
  }
}

function join(consultId) {
  workspace.hidden = true;
  call.join(consultId);
}

async function refresh() {
  try {
    const mark = store.mark();
    store.replaceAll((await api.consults()).consults, mark);
  } catch (err) {
    say(message, () => errorText(err), 'error');
  }
}

socket.on('consult-requested', ({ consult }) => {
  if (!consult) return;
  store.upsert(consult);
  say(message, () => t('specialist.newRequest', { patient: consult.patient.name, specialty: t(`specialty.${consult.specialty}`) }), 'ok');
});
socket.on('consult-state', ({ consult }) => consult && store.upsert(consult));
// A colleague invited me into their consult: it shows under "invited to", ready to join.
socket.on('consult-invited', ({ consult }) => {
  if (!consult) return;
  store.upsert(consult);
  say(message, () => t('specialist.invitedYou', {
    inviter: consult.specialist?.display_name ?? '', patient: consult.patient.name,
    specialty: t(`specialty.${consult.specialty}`),
  }), 'ok');
});
// My invitation ended (withdrawn, or declined from another of my devices): no longer mine to see.
socket.on('invitation-closed', ({ consult_id: id, reason }) => {
  if (!store.get(id)) return;
  store.remove(id);
  if (reason === 'withdrawn') say(message, () => t('specialist.invitationWithdrawn'), 'ok');
});
socket.on('attachment-added', attachmentAdded); // files the exam room adds after booking
announceReminders(socket, store, message);
// An open request of my specialty left the queue (a colleague took it, or it was declined,
// cancelled or expired); unless it became mine, it is no longer mine to see.
socket.on('request-closed', ({ consult_id: id }) => {
  if (store.get(id)?.specialist?.id !== user.id) store.remove(id);
});
socket.on('connect', refresh); // events missed while disconnected
onLangChange(render);
// Cards show the intake with its form's labels and units once the forms are here.
// A call link: the lists wait until the call shows the other side (or CALL_FIRST_MS), hidden
// behind the call anyway; their requests and rendering would only compete with its start.
if (consultToJoin) await firstFrameOr(CALL_FIRST_MS);
loadIntakeForms().then(render, (err) => say(message, () => errorText(err), 'error'));

await refresh();
await openLinked();
