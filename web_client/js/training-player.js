// training.html: a trainee watches a training's broadcast (docs/training.md). The page is
// opened as /training.html#training=<id>[&token=<jwt>]; admission (checked against the
// training's audience, audited) answers a signed URL prefix; the camera and the shared screen
// are two HLS streams under it, played with the vendored hls.js (window.Hls) where
// MediaSource exists, natively (Safari on iPhone) where it does not.

import { api } from './api.js';
import { $ } from './dom.js';
import { t } from './i18n.js';
import { bootPage } from './page.js';

const RETRY_MS = 2000;
const trainingId = new URLSearchParams(location.hash.slice(1)).get('training')
  ?? new URLSearchParams(location.search).get('training');

await bootPage({ socket: false, anyRole: true });
const status = $('[data-testid="training-status"]');
const say = (key) => { status.textContent = t(key); };

/** Play one stream of the broadcast into `video`, retrying until the lecturer has begun it. */
function play(video, url, { optional = false } = {}) {
  const Hls = window.Hls;
  const started = () => { video.hidden = false; video.play().catch(() => {}); };
  if (Hls?.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30 });
    hls.on(Hls.Events.MANIFEST_PARSED, started);
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      hls.destroy();
      if (!optional) say('training.waiting');
      setTimeout(() => play(video, url, { optional }), RETRY_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.addEventListener('loadedmetadata', started, { once: true });
    video.addEventListener('error', () => setTimeout(() => { video.src = url; }, RETRY_MS), { once: true });
    video.src = url;
  } else {
    say('training.unsupported');
  }
}

if (!trainingId) {
  say('training.missing');
} else {
  try {
    const admission = await api.admitToTraining(trainingId);
    $('[data-testid="training-title"]').textContent = admission.training.title;
    document.documentElement.dataset.trainingStatus = admission.training.status;
    say(admission.playlist === 'vod.m3u8' ? 'training.replay' : 'training.live');
    play($('[data-testid="training-camera"]'), `${admission.viewer_url}camera/${admission.playlist}`);
    play($('[data-testid="training-screen"]'), `${admission.viewer_url}screen/${admission.playlist}`,
      { optional: true });
  } catch (err) {
    status.textContent = err.code === 'forbidden' ? t('training.notForYou') : err.message;
    status.setAttribute('role', 'alert');
  }
}
