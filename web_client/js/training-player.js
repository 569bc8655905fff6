// training.html: a trainee watches a training's broadcast (docs/training.md). The page is
// opened as /training.html#training=<id>[&token=<jwt>]; admission (checked against the
// training's audience, audited) answers a signed URL prefix; the camera and the shared screen
// are two HLS streams under it, played with the vendored hls.js (window.Hls) where
// MediaSource exists, natively (Safari on iPhone) where it does not.

import { api } from './api.js';
import { $, h } from './dom.js';
import { t } from './i18n.js';
import { bootPage } from './page.js';
import { playlistSegments, positionAt, segmentAt, wallAt } from './replay-clock.js';
import { request } from './socket.js';
import { askBox, followQuestions, place, questionItem } from './training-questions.js';
import { publishOnStage, receiveStage, streamInto } from './training-stage.js';

const RETRY_MS = 2000;
const trainingId = new URLSearchParams(location.hash.slice(1)).get('training')
  ?? new URLSearchParams(location.search).get('training');

const { socket, user } = await bootPage({ socket: Boolean(trainingId), anyRole: true });
const status = $('[data-testid="training-status"]');
const say = (key) => { status.textContent = t(key); };

/** Wakes the streams loop at once (the stage changed); `stageDropped`: stop showing it;
 * `selfOnStage`: this trainee is on stage (they see the lecturer over WebRTC, not themselves
 * a few seconds late). */
let wakeFollow = () => {};
let stageDropped = false;
let selfOnStage = false;

/** Each playing video → the wall-clock time (ms) of its media time 0, from the playlist's
 * `EXT-X-PROGRAM-DATE-TIME`. */
const timeline = new WeakMap();

/** Each replayed video → its replay playlist's segments (`playlistSegments`): the wall clock
 * of every position, also across discontinuities (a lecturer who reconnected: the replay keeps
 * both runs, and the time between them is not in it). */
const replayClock = new WeakMap();

/** The wall-clock time (ms) of `video` at `seconds`, or undefined before it is known. */
function wallOf(video, seconds) {
  const segments = replayClock.get(video);
  if (segments?.length) return wallAt(segments, seconds);
  const origin = timeline.get(video);
  return origin === undefined ? undefined : origin + seconds * 1000;
}

/** Where `video` shows the wall-clock time `wall` (s): in a gap between runs, where the next
 * run begins; before the first segment, 0. Undefined before it is known. */
function positionOf(video, wall) {
  const segments = replayClock.get(video);
  if (segments?.length) return positionAt(segments, wall);
  const origin = timeline.get(video);
  return origin === undefined ? undefined : Math.max(0, (wall - origin) / 1000);
}

/** Read the replay playlist at `url` into `replayClock` for `video`. */
function readReplayClock(video, url) {
  fetch(url).then((reply) => (reply.ok ? reply.text() : '')).then((text) => {
    const segments = playlistSegments(text);
    if (!segments.length) return;
    replayClock.set(video, segments);
    video.dispatchEvent(new Event('timeline'));
  }).catch(() => {});
}

/** Play one stream of the broadcast into `video` (it exists: streams.json said so); returns
 * what stops it. `show`: unhide and start it once it can play (the stage's replay is shown
 * and played only while the camera is at a moment somebody was on stage). */
function play(video, url, { show = true } = {}) {
  const Hls = window.Hls;
  let stopped = false;
  let current = null;
  const stop = () => {
    stopped = true;
    current?.destroy();
    video.removeAttribute('src');
    video.load();
    video.hidden = true;
  };
  const started = () => { if (!stopped && show) { video.hidden = false; video.play().catch(() => {}); } };
  if (Hls?.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    current = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, started);
    hls.on(Hls.Events.LEVEL_LOADED, (_event, { details }) => {
      // Where the broadcast's wall clock meets the media timeline (the replay's markers).
      const first = details.fragments[0];
      if (first?.programDateTime) timeline.set(video, first.programDateTime - first.start * 1000);
      video.dispatchEvent(new Event('timeline'));
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      hls.destroy();
      setTimeout(() => { if (!stopped) current = { destroy: play(video, url, { show }) }; }, RETRY_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.addEventListener('loadedmetadata', () => {
      const start = video.getStartDate?.()?.getTime();
      if (start) timeline.set(video, start);
      video.dispatchEvent(new Event('timeline'));
      started();
    }, { once: true });
    video.src = url;
  } else {
    say('training.unsupported');
  }
  return stop;
}

/**
 * The replay of the stage (docs/training.md, "The stage in the replay"): one VOD playlist of
 * every appearance (each after a discontinuity), played in `video` on the lecturer's timeline:
 * while the camera is at a moment somebody was on stage, the stage shows and plays there
 * (the camera's wall clock → that appearance's segment); between appearances it is hidden.
 * The camera leads (its controls, the markers); the stage is moved to it when more than a
 * second apart. Returns what stops it.
 */
function replayStage(video, url) {
  const camera = $('[data-testid="training-camera"]');
  const stop = play(video, url, { show: false });
  const off = () => {
    if (!video.hidden) video.pause();
    video.hidden = true;
    document.documentElement.dataset.stageView = 'off';
  };
  const sync = () => {
    const segments = replayClock.get(video) ?? [];
    const wall = wallOf(camera, camera.currentTime);
    if (wall === undefined || !segments.length) return;
    const segment = segmentAt(segments, wall);
    if (!segment) { off(); return; }
    const position = segment.position + (wall - segment.at) / 1000;
    video.hidden = false;
    document.documentElement.dataset.stageView = 'on';
    if (Math.abs(video.currentTime - position) > 1) video.currentTime = position;
    if (camera.paused) video.pause();
    else if (video.paused) video.play().catch(() => {});
  };
  video.addEventListener('timeline', () => {
    const segments = replayClock.get(video) ?? [];
    document.documentElement.dataset.stageAppearances = String(new Set(segments.map((s) => s.run)).size);
    sync();
  });
  readReplayClock(video, url);
  for (const event of ['timeupdate', 'seeked', 'play', 'pause', 'timeline']) camera.addEventListener(event, sync);
  off();
  return stop;
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
  const stage = $('[data-testid="training-stage"]');
  let stopStage = null;
  for (;;) {
    let streams = {};
    try {
      const reply = await fetch(`${admission.viewer_url}streams.json`);
      if (reply.ok) streams = (await reply.json()).streams;
    } catch {
      // the network is back in a moment: try again
    }
    // The replay: whoever was on stage, shown beside the camera at the moments they were.
    const replay = admission.playlist === 'vod.m3u8';
    if (replay && streams.stage === 'replay' && !stopStage) {
      stopStage = replayStage(stage, `${admission.viewer_url}stage/vod.m3u8`);
    }
    // The trainee on stage: shown beside the camera while they are there (live), no longer.
    const hideStage = stageDropped || selfOnStage;
    if (replay) {
      // the replay's stage follows the camera (replayStage)
    } else if (streams.stage === 'live' && !stopStage && !hideStage) {
      stopStage = play(stage, `${admission.viewer_url}stage/live.m3u8`);
      document.documentElement.dataset.stageView = 'on';
    } else if ((streams.stage !== 'live' || hideStage) && stopStage) {
      stopStage();
      stopStage = null;
      document.documentElement.dataset.stageView = 'off';
    }
    stageDropped = false;
    for (const [stream, state] of Object.entries(streams)) {
      if (playing.has(stream) || !videos[stream]) continue;
      playing.add(stream);
      const url = `${admission.viewer_url}${stream}/${state === 'replay' ? 'vod.m3u8' : 'live.m3u8'}`;
      play(videos[stream], url);
      if (state === 'replay') readReplayClock(videos[stream], url);
      if (stream === 'camera' && state === 'live') keepAttending(videos.camera);
    }
    if (!playing.has('camera')) say('training.waiting');
    else say(admission.playlist === 'vod.m3u8' ? 'training.replay' : 'training.live');
    if (admission.playlist === 'vod.m3u8' && playing.size) return;
    await new Promise((resolve) => { wakeFollow = resolve; setTimeout(resolve, RETRY_MS); });
  }
}

/**
 * The questions the moderators have shown, live; while the training is live, a box to ask.
 * Returns the list of shown questions as it grows (the replay's markers read it).
 */
function showQuestions(training, stage) {
  const section = $('[data-testid="questions"]');
  const list = $('[data-testid="shown-questions"]');
  const shown = new Map();
  const add = (question) => {
    shown.set(question.id, question);
    place(list, questionItem(question));
    document.documentElement.dataset.shownQuestions = String(shown.size);
    section.dispatchEvent(new Event('questions'));
  };
  section.hidden = training.status === 'ended'; // the replay shows them as markers instead
  if (training.status === 'live') section.append(askBox(socket, trainingId));
  followQuestions(socket, trainingId, {
    listed: (ack) => { stage?.listed(ack); for (const q of ack.questions) if (q.status === 'shown') add(q); },
    'question-shown': add,
    failed: (err) => { section.hidden = err.code === 'forbidden'; },
  });
  return shown;
}

/**
 * The trainee's side of the stage: raise a hand; when the lecturer brings them on stage, ask
 * their consent, then publish camera and microphone and hear and see the lecturer over
 * WebRTC (low delay, not HLS); leave whenever they like.
 */
async function joinStage(training) {
  const section = $('[data-testid="stage-controls"]');
  const hand = $('[data-testid="stage-hand"]');
  const consent = $('[data-testid="stage-consent"]');
  const accept = $('[data-testid="stage-accept"]');
  const decline = $('[data-testid="stage-decline"]');
  const leave = $('[data-testid="stage-leave"]');
  const note = $('[data-testid="stage-note"]');
  const lecturer = $('[data-testid="stage-lecturer"]');
  const { ice_servers: iceServers } = await api.trainingIceServers(trainingId);
  const playLecturer = streamInto(lecturer);
  const receiving = receiveStage(socket, trainingId, iceServers, (track, source) => {
    if (source === 'camera' || source === 'microphone') playLecturer(track);
  });
  window.trainingStage = receiving; // getStats in the end-to-end tests
  let raised = false;
  let media = null;
  let publishing = null;
  const off = () => {
    selfOnStage = false;
    publishing?.close();
    publishing = null;
    receiving.close();
    for (const track of media?.getTracks() ?? []) track.stop();
    media = null;
    lecturer.hidden = true;
    consent.hidden = true;
    leave.hidden = true;
    hand.hidden = false;
    document.documentElement.dataset.onStage = 'no';
  };
  const mine = (stage) => stage.on_stage?.id === user.id;
  function changed(stage) {
    if (!stage.joined || !stage.on_stage) { stageDropped = true; wakeFollow(); }
    else wakeFollow();
    if (mine(stage)) {
      selfOnStage = true;
      raised = false;
      hand.textContent = t('stage.raise');
      if (!publishing && !media) {
        consent.hidden = false; // the lecturer invites: the trainee decides
        hand.hidden = true;
        document.documentElement.dataset.onStage = 'invited';
      }
    } else if (publishing || media || !consent.hidden) {
      off();
      note.textContent = t('stage.ended');
    }
  }
  hand.addEventListener('click', async () => {
    hand.disabled = true;
    try {
      await request(socket, 'stage-hand', { training_id: trainingId, raised: !raised });
      raised = !raised;
      hand.textContent = t(raised ? 'stage.lower' : 'stage.raise');
      hand.setAttribute('aria-pressed', String(raised));
      document.documentElement.dataset.handRaised = raised ? 'yes' : 'no';
    } catch (err) {
      note.textContent = err.message;
    } finally {
      hand.disabled = false;
    }
  });
  accept.addEventListener('click', async () => {
    accept.disabled = true;
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 360 } }, audio: true });
      publishing = await publishOnStage(socket, trainingId, iceServers, media);
      consent.hidden = true;
      leave.hidden = false;
      note.textContent = t('stage.youAreOn');
      document.documentElement.dataset.onStage = 'yes';
    } catch (err) {
      off();
      note.textContent = err.message;
    } finally {
      accept.disabled = false;
    }
  });
  const leaveStage = async () => {
    try {
      await request(socket, 'stage-leave', { training_id: trainingId });
    } catch (err) {
      note.textContent = err.message;
    }
    off();
  };
  decline.addEventListener('click', leaveStage);
  leave.addEventListener('click', leaveStage);
  socket.on('stage-changed', (news) => { if (news.training_id === trainingId) changed(news); });
  section.hidden = training.status !== 'live';
  // enabled once the connection follows the training (`training-watch` answered)
  const ready = () => { for (const button of [hand, accept, decline, leave]) button.disabled = false; };
  return { listed: (ack) => { if (ack.stage) changed(ack.stage); ready(); } };
}

const clock = (seconds) => {
  const whole = Math.floor(seconds);
  const mm = String(Math.floor(whole / 60) % 60).padStart(2, '0');
  const ss = String(whole % 60).padStart(2, '0');
  return whole >= 3600 ? `${Math.floor(whole / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
};

/**
 * The replay: each shown question as a marker at the moment it was asked in the broadcast
 * (its `asked_at` against the playlist's `EXT-X-PROGRAM-DATE-TIME`), on a bar under the
 * pictures and as a list of buttons; choosing one seeks both streams there.
 */
function replayMarkers(shown) {
  const videos = [$('[data-testid="training-camera"]'), $('[data-testid="training-screen"]')];
  const [camera] = videos;
  const bar = h('div', { class: 'marker-bar', 'aria-hidden': 'true' });
  const list = h('ol', { class: 'question-markers', dataset: { testid: 'replay-markers' } });
  const section = h('section', { class: 'training-questions', 'aria-labelledby': 'markers-heading' },
    h('h2', { id: 'markers-heading' }, t('questions.markers')), bar, list);
  $('.training-stage').after(section);
  const seek = (askedMs) => {
    for (const video of videos) {
      const position = video.hidden ? undefined : positionOf(video, askedMs);
      if (position !== undefined) video.currentTime = position;
    }
    camera.play().catch(() => {});
  };
  const render = () => {
    if (wallOf(camera, 0) === undefined) return;
    const duration = Number.isFinite(camera.duration) ? camera.duration : 0;
    bar.replaceChildren();
    list.replaceChildren();
    const questions = [...shown.values()].sort((a, b) => Date.parse(a.asked_at) - Date.parse(b.asked_at));
    for (const question of questions) {
      const askedMs = Date.parse(question.asked_at);
      const offset = positionOf(camera, askedMs);
      if (duration) {
        const tick = h('span', { class: 'marker-tick', title: question.text });
        tick.style.left = `${Math.min(100, (offset / duration) * 100)}%`;
        tick.addEventListener('click', () => seek(askedMs));
        bar.append(tick);
      }
      list.append(h('li', {}, h('button', {
        type: 'button', class: 'secondary', dataset: { testid: 'replay-marker', offset: offset.toFixed(1) }, onclick: () => seek(askedMs),
      }, `${clock(offset)} · ${question.text}`)));
    }
    document.documentElement.dataset.replayMarkers = String(questions.length);
  };
  for (const event of ['timeline', 'durationchange']) camera.addEventListener(event, render);
  $('[data-testid="questions"]').addEventListener('questions', render);
  render();
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
    const stage = admission.training.status === 'live' ? await joinStage(admission.training) : null;
    const shown = showQuestions(admission.training, stage);
    if (admission.training.status === 'ended') replayMarkers(shown);
    await follow(admission);
  } catch (err) {
    status.textContent = err.code === 'forbidden' ? t('training.notForYou') : err.message;
    status.setAttribute('role', 'alert');
  }
}
