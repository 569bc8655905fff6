// training-lecturer.html: the lecturer presents a training (docs/training.md). Opened as
// /training-lecturer.html#training=<id>[&token=<jwt>]. "Present" takes the camera and
// microphone and asks to share the screen (the slides), then publishes them in one WebRTC
// offer to the server (POST /api/trainings/{id}/broadcast, H.264 preferred: the server
// packages it for the trainees by stream copy). "End" ends the training for everybody.

import { api } from './api.js';
import { $, h } from './dom.js';
import { t } from './i18n.js';
import { bootPage } from './page.js';
import { request } from './socket.js';
import { followQuestions, place, questionItem } from './training-questions.js';
import { gathered, preferH264, receiveStage, streamInto } from './training-stage.js';

const trainingId = new URLSearchParams(location.hash.slice(1)).get('training')
  ?? new URLSearchParams(location.search).get('training');

const { socket } = await bootPage({ socket: Boolean(trainingId), anyRole: true });
const status = $('[data-testid="lecturer-status"]');
const present = $('[data-testid="present-button"]');
const end = $('[data-testid="end-training-button"]');
const say = (key) => { status.textContent = t(key); };
let pc = null;
let iceServers = [];
const captured = [];

async function startPresenting() {
  present.disabled = true;
  say('lecturer.starting');
  const camera = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true,
  });
  captured.push(camera);
  $('[data-testid="lecturer-camera"]').srcObject = camera;
  let screen = null;
  try {
    screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    captured.push(screen);
    const [track] = screen.getVideoTracks();
    if ('contentHint' in track) track.contentHint = 'detail';
    const view = $('[data-testid="lecturer-screen"]');
    view.srcObject = screen;
    view.hidden = false;
  } catch {
    say('lecturer.noScreen'); // camera only: the lecture goes on without slides
  }
  pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  const named = [
    [pc.addTransceiver(camera.getVideoTracks()[0], { direction: 'sendonly' }), 'camera'],
    [pc.addTransceiver(camera.getAudioTracks()[0], { direction: 'sendonly' }), 'microphone'],
  ];
  if (screen) named.push([pc.addTransceiver(screen.getVideoTracks()[0], { direction: 'sendonly' }), 'second']);
  for (const [transceiver, source] of named) if (source !== 'microphone') preferH264(transceiver);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const sources = Object.fromEntries(named.map(([transceiver, source]) => [transceiver.mid, source]));
  const answer = await api.broadcastTraining(trainingId, {
    description: { type: 'offer', sdp: pc.localDescription.sdp }, sources,
  });
  await pc.setRemoteDescription(answer.description);
  document.documentElement.dataset.presenting = 'yes';
  say('lecturer.live');
  end.disabled = false;
  $('[data-testid="stage"]').hidden = false;
  $('[data-testid="stage"]').dispatchEvent(new Event('presenting')); // live now: who attends
}

present.addEventListener('click', () => {
  startPresenting().catch((err) => {
    present.disabled = false;
    status.textContent = err.message ?? String(err);
    status.setAttribute('role', 'alert');
  });
});

end.addEventListener('click', async () => {
  end.disabled = true;
  try {
    await api.endTraining(trainingId);
    say('lecturer.ended');
    document.documentElement.dataset.presenting = 'ended';
  } catch (err) {
    end.disabled = false;
    status.textContent = err.message;
    return;
  }
  pc?.close();
  for (const stream of captured) for (const track of stream.getTracks()) track.stop();
});

/** Pending questions with Show / Dismiss; the shown ones below them. */
/**
 * The stage: the raised hands, each with "Bring on stage"; the trainee on stage played over
 * WebRTC (the relay offers their camera and microphone: `stage-offer`); "Take off stage".
 */
function runStage(iceServers) {
  const hands = $('[data-testid="stage-hands"]');
  const remove = $('[data-testid="stage-remove"]');
  const video = $('[data-testid="stage-trainee"]');
  const who = $('[data-testid="stage-who"]');
  const play = streamInto(video);
  let current = null;
  const receiving = receiveStage(socket, trainingId, iceServers, (track) => play(track));
  window.trainingStage = receiving; // getStats in the end-to-end tests
  const invite = (person, button) => {
    button.disabled = true;
    request(socket, 'stage-invite', { training_id: trainingId, user_id: person.id })
      .then(({ stage }) => changed(stage))
      .catch((err) => { button.disabled = false; status.textContent = err.message; });
  };
  function listHands(people) {
    hands.replaceChildren(...people.map((person) => {
      const button = h('button', { type: 'button', dataset: { testid: 'stage-invite', userId: person.id } }, t('stage.invite'));
      button.addEventListener('click', () => invite(person, button));
      return h('li', { dataset: { testid: 'stage-hand-item' } }, h('span', {}, person.display_name), ' ', button);
    }));
    document.documentElement.dataset.stageHands = String(people.length);
  }
  function changed(stage) {
    current = stage.on_stage;
    remove.disabled = !current;
    who.textContent = current ? `${t(stage.joined ? 'stage.onStage' : 'stage.invited')}: ${current.display_name}` : t('stage.nobody');
    video.hidden = !(current && stage.joined);
    document.documentElement.dataset.stage = current ? (stage.joined ? 'joined' : 'invited') : 'none';
  }
  const attendees = listAttendees(invite);
  remove.addEventListener('click', () => {
    remove.disabled = true;
    request(socket, 'stage-remove', { training_id: trainingId })
      .then(({ stage }) => changed(stage))
      .catch((err) => { remove.disabled = false; status.textContent = err.message; });
  });
  socket.on('stage-hands', (news) => { if (news.training_id === trainingId) { listHands(news.hands); attendees.refresh(); } });
  socket.on('stage-changed', (news) => { if (news.training_id === trainingId) { changed(news); attendees.refresh(); } });
  return {
    listed: (ack) => { if (ack.stage) changed(ack.stage); listHands(ack.hands ?? []); attendees.refresh(); },
  };
}

const ATTENDEES_PAGE = 20;
const ATTENDEES_REFRESH_MS = 10_000;

/**
 * Everybody attending now (not only the raised hands), searched by name and paged
 * (`stage-attendees`: the server holds who follows the training), each with "Bring on
 * stage": the trainee is asked for consent on their page all the same. Refreshed as the
 * stage changes, as the search is typed, and every 10 s while the lecturer presents.
 */
function listAttendees(invite) {
  const box = $('[data-testid="stage-attendees-box"]');
  const search = $('[data-testid="attendee-search"]');
  const list = $('[data-testid="stage-attendees"]');
  const count = $('[data-testid="attendee-count"]');
  const previous = $('[data-testid="attendees-previous"]');
  const next = $('[data-testid="attendees-next"]');
  let offset = 0;
  let asked = 0;
  let typing = null;
  const show = ({ attendees, total }) => {
    list.replaceChildren(...attendees.map((person) => {
      const button = h('button', { type: 'button', dataset: { testid: 'attendee-invite', userId: person.id } }, t('stage.invite'));
      button.disabled = person.on_stage;
      button.addEventListener('click', () => invite(person, button));
      const notes = [person.institution.name];
      if (person.hand_raised) notes.push(t('stage.handRaised'));
      if (person.on_stage) notes.push(t('stage.onStage'));
      return h('li', { dataset: { testid: 'stage-attendee', userId: person.id } },
        h('span', {}, person.display_name), ` · ${notes.join(' · ')} `, button);
    }));
    count.textContent = total
      ? t('stage.attendeeCount', { from: offset + 1, to: offset + attendees.length, total })
      : t('stage.noAttendees');
    previous.disabled = offset === 0;
    next.disabled = offset + attendees.length >= total;
    document.documentElement.dataset.stageAttendees = String(total);
  };
  const refresh = async () => {
    const mine = ++asked;
    try {
      const answer = await request(socket, 'stage-attendees', {
        training_id: trainingId, query: search.value.trim().slice(0, 100), offset, limit: ATTENDEES_PAGE,
      });
      if (mine !== asked) return; // a later question is under way
      if (!answer.attendees.length && offset > 0) { offset = Math.max(0, offset - ATTENDEES_PAGE); refresh(); return; }
      box.hidden = false;
      show(answer);
    } catch (err) {
      // not live yet, or not a lecturer (an assistant moderating): no list to pick from
      if (mine === asked) box.hidden = err.code === 'forbidden' || err.code === 'training_not_live';
    }
  };
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; refresh(); }, 250);
  });
  previous.addEventListener('click', () => { offset = Math.max(0, offset - ATTENDEES_PAGE); refresh(); });
  next.addEventListener('click', () => { offset += ATTENDEES_PAGE; refresh(); });
  $('[data-testid="stage"]').addEventListener('presenting', refresh);
  setInterval(() => { if (!$('[data-testid="stage"]').hidden && !document.hidden) refresh(); }, ATTENDEES_REFRESH_MS);
  return { refresh };
}

function moderateQuestions(stage) {
  const pending = $('[data-testid="pending-questions"]');
  const shown = $('[data-testid="shown-questions"]');
  const decide = (question, verdict, button) => {
    button.disabled = true;
    request(socket, 'question-moderate', { training_id: trainingId, question_id: question.id, verdict })
      .then(({ question: moderated }) => arrive(moderated))
      .catch((err) => { button.disabled = false; status.textContent = err.message; });
  };
  function arrive(question) {
    pending.querySelector(`[data-question-id="${question.id}"]`)?.remove();
    if (question.status === 'shown') place(shown, questionItem(question));
    if (question.status !== 'pending') return;
    const show = h('button', { type: 'button', dataset: { testid: 'question-show' } }, t('questions.show'));
    const dismiss = h('button', { type: 'button', class: 'secondary', dataset: { testid: 'question-dismiss' } }, t('questions.dismiss'));
    show.addEventListener('click', () => decide(question, 'show', show));
    dismiss.addEventListener('click', () => decide(question, 'dismiss', dismiss));
    place(pending, questionItem(question, h('div', { class: 'actions' }, show, dismiss)));
  }
  followQuestions(socket, trainingId, {
    listed: (ack) => {
      stage.listed(ack);
      $('[data-testid="questions"]').hidden = !ack.moderator;
      for (const q of ack.questions) arrive(q);
    },
    'question-asked': arrive,
    'question-shown': arrive,
    'question-dismissed': arrive,
  });
}

if (!trainingId) {
  say('training.missing');
  present.disabled = true;
} else {
  try {
    const training = await api.training(trainingId);
    $('[data-testid="training-title"]').textContent = training.title;
    say(training.status === 'ended' ? 'lecturer.ended' : 'lecturer.ready');
    ({ ice_servers: iceServers } = await api.trainingIceServers(trainingId));
    moderateQuestions(runStage(iceServers));
    // Enabled only now that its handler and the ICE servers are in place: a click while the
    // page was still loading would otherwise be lost (the button starts disabled in the HTML).
    present.disabled = training.status === 'ended' || training.status === 'cancelled';
  } catch (err) {
    status.textContent = err.message;
    present.disabled = true;
  }
}
