// training.html: a trainee watches a training's broadcast (docs/training.md). The page is
// opened as /training.html#training=<id>[&token=<jwt>]; admission (checked against the
// training's audience, audited) answers a signed URL prefix; the camera and the shared screen
// are two HLS streams under it, played with the vendored hls.js (window.Hls) where
// MediaSource exists, natively (Safari on iPhone) where it does not.

import { api } from './api.js';
import { $, h } from './dom.js';
import { t } from './i18n.js';
import { bootPage } from './page.js';
import { askBox, followQuestions, place, questionItem } from './training-questions.js';

const RETRY_MS = 2000;
const trainingId = new URLSearchParams(location.hash.slice(1)).get('training')
  ?? new URLSearchParams(location.search).get('training');

const { socket } = await bootPage({ socket: Boolean(trainingId), anyRole: true });
const status = $('[data-testid="training-status"]');
const say = (key) => { status.textContent = t(key); };

/** Play one stream of the broadcast into `video` (it exists: streams.json said so). */
function play(video, url) {
  const Hls = window.Hls;
  const started = () => { video.hidden = false; video.play().catch(() => {}); };
  if (Hls?.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    hls.on(Hls.Events.MANIFEST_PARSED, started);
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      hls.destroy();
      setTimeout(() => play(video, url), RETRY_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.addEventListener('loadedmetadata', started, { once: true });
    video.src = url;
  } else {
    say('training.unsupported');
  }
}

/**
 * Attendance: while the live broadcast plays, beat every `next_beat_s` (the server aggregates
 * the beats; a reload just beats again). Stops when the training is over.
 */
function keepAttending(video) {
  const beat = async () => {
    if (video.paused || video.readyState < 2) return setTimeout(beat, RETRY_MS);
    try {
      const { live, next_beat_s: next } = await api.trainingHeartbeat(trainingId);
      if (!live) return undefined; // over: nothing more to count
      document.documentElement.dataset.attending = 'yes';
      return setTimeout(beat, next * 1000);
    } catch {
      return setTimeout(beat, RETRY_MS * 5);
    }
  };
  beat();
}

/**
 * Start each stream once the server says it can be played (`streams.json` under the signed
 * URL: no database, cacheable): the camera as soon as the lecturer begins, the screen when it
 * is shared. Nothing is asked for that is not there yet.
 */
async function follow(admission) {
  const playing = new Set();
  const videos = { camera: $('[data-testid="training-camera"]'), screen: $('[data-testid="training-screen"]') };
  for (;;) {
    let streams = {};
    try {
      const reply = await fetch(`${admission.viewer_url}streams.json`);
      if (reply.ok) streams = (await reply.json()).streams;
    } catch {
      // the network is back in a moment: try again
    }
    for (const [stream, state] of Object.entries(streams)) {
      if (playing.has(stream) || !videos[stream]) continue;
      playing.add(stream);
      play(videos[stream], `${admission.viewer_url}${stream}/${state === 'replay' ? 'vod.m3u8' : 'live.m3u8'}`);
      if (stream === 'camera' && state === 'live') keepAttending(videos.camera);
    }
    if (!playing.has('camera')) say('training.waiting');
    else say(admission.playlist === 'vod.m3u8' ? 'training.replay' : 'training.live');
    if (playing.size === Object.keys(videos).length || admission.playlist === 'vod.m3u8' && playing.size) return;
    await new Promise((resolve) => { setTimeout(resolve, RETRY_MS); });
  }
}

/**
 * The questions the moderators have shown, live; while the training is live, a box to ask.
 * Returns the list of shown questions as it grows (the replay's markers read it).
 */
function showQuestions(training) {
  const section = $('[data-testid="questions"]');
  const list = $('[data-testid="shown-questions"]');
  const shown = new Map();
  const add = (question) => {
    shown.set(question.id, question);
    place(list, questionItem(question));
    document.documentElement.dataset.shownQuestions = String(shown.size);
  };
  section.hidden = false;
  if (training.status === 'live') section.append(askBox(socket, trainingId));
  followQuestions(socket, trainingId, {
    listed: (ack) => { for (const q of ack.questions) if (q.status === 'shown') add(q); },
    'question-shown': add,
    failed: (err) => { section.hidden = err.code === 'forbidden'; },
  });
  return shown;
}

/** Without a training in the link: the trainings open to the user, each a link to watch. */
async function listTrainings() {
  const { trainings } = await api.trainings();
  $('.training-stage').hidden = true;
  say(trainings.length ? 'training.choose' : 'training.none');
  const list = h('ul', { dataset: { testid: 'training-list' } }, trainings.map((t) => h('li', {},
    h('a', { href: `/training.html?training=${encodeURIComponent(t.id)}` }, t.title),
    ` · ${t.lecturers.map((l) => l.display_name).join(', ')} · ${new Date(t.starts_at).toLocaleString()}`)));
  status.after(list);
}

if (!trainingId) {
  socket?.disconnect();
  await listTrainings();
} else {
  try {
    const admission = await api.admitToTraining(trainingId);
    $('[data-testid="training-title"]').textContent = admission.training.title;
    document.documentElement.dataset.trainingStatus = admission.training.status;
    showQuestions(admission.training);
    await follow(admission);
  } catch (err) {
    status.textContent = err.code === 'forbidden' ? t('training.notForYou') : err.message;
    status.setAttribute('role', 'alert');
  }
}
