// The review player (docs/supervisor-review.md, "Sync model"): every recorded track of a
// consult played from its own file, side by side, under ONE timeline.
//
// The server lays the recording sessions end to end (GET /api/consults/{id}/review): each track
// has `start_s`/`end_s` on that timeline and each note a marker `at_s`. The player keeps its own
// clock (not any element's): at timeline time t, a track plays at t - start_s; before its start
// and after its end it is paused and dimmed. Every TICK_MS the elements are compared with the
// clock; one more than MAX_DRIFT_S away is re-seeked. After a seek, and whenever a playing
// track runs out of data, the clock holds until the tracks in play can play again (at most
// HOLD_LIMIT_MS, then it goes on without the laggard). Nothing is transcoded: the browser decodes
// each WebM/Matroska file itself.

import { api } from './api.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { clock } from './recording.js';

/** How often elements are checked against the clock. */
const TICK_MS = 100;
/** How far an element may wander from the clock before it is re-seeked. */
const MAX_DRIFT_S = 0.25;
/** Longest the clock waits for a track that cannot play (then that track is left to catch up). */
const HOLD_LIMIT_MS = 4000;
/** A note marker's size (a 24 px touch target, WCAG 2.5.8) and the gap kept between two. */
const MARKER_PX = 24;
const MARKER_GAP_PX = 2;
/** HTMLMediaElement.readyState at which an element can play on (HAVE_FUTURE_DATA). */
const CAN_PLAY = 3;

/** Where `t` falls in one track: its local time and whether it is playing there. */
function trackTime(track, t) {
  const local = t - track.start_s;
  const length = Math.max(0, track.end_s - track.start_s);
  return { local: Math.min(Math.max(local, 0), length), inside: local >= 0 && local < length };
}

export class ReviewPlayer {
  /**
   * `timeline`: {duration_s, tracks: [{recording, start_s, end_s}], markers: [{note, at_s}]}.
   * `describe(recording)`: the label of one track (who, which source).
   */
  constructor(timeline, describe) {
    this.timeline = timeline;
    this.describe = describe;
    this.duration = timeline.duration_s;
    this.base = 0; // timeline seconds at `anchor`
    this.anchor = performance.now();
    this.playing = false;
    this.holdSince = null; // performance.now() when the clock started holding
    this.laggards = new Set(); // tracks left to catch up after a hold ran out
    this.tracks = timeline.tracks.map((track) => this.trackView(track));
    this.build();
    onLangChange(() => this.relabel());
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** The timeline time now. */
  now() {
    if (!this.playing || this.holdSince !== null) return this.base;
    return Math.min(this.duration, this.base + (performance.now() - this.anchor) / 1000);
  }

  trackView(track) {
    const rec = track.recording;
    const video = rec.kind === 'video';
    const el = h(video ? 'video' : 'audio', {
      preload: 'auto', playsinline: true,
      dataset: {
        testid: video ? 'review-video' : 'review-audio', recordingId: rec.id,
        startS: String(track.start_s), endS: String(track.end_s),
      },
    });
    if (video) el.muted = true; // the sound of a participant is their own audio track
    const label = h('span', { class: 'review-track-label' });
    const status = h('span', { class: 'review-track-status', dataset: { testid: 'review-track-status' } });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const box = h(video ? 'figure' : 'div', {
      class: video ? 'review-tile' : 'review-audio-line', dataset: { testid: 'review-track', kind: rec.kind },
    }, el, h(video ? 'figcaption' : 'span', {}, label, ' ', status), error);
    const view = { track, el, label, status, error, box, ready: false };
    el.addEventListener('error', () => {
      view.failed = true;
      error.textContent = t('review.trackFailed');
      error.hidden = false;
    });
    return view;
  }

  build() {
    this.playButton = h('button', {
      type: 'button', class: 'primary', dataset: { testid: 'review-play' }, onclick: () => this.toggle(),
    });
    this.scrubber = h('input', {
      type: 'range', min: '0', max: String(this.duration || 0), step: '0.01', value: '0',
      dataset: { testid: 'review-scrubber' },
    });
    this.scrubber.addEventListener('input', () => this.seek(Number(this.scrubber.value)));
    this.readout = h('span', { class: 'review-time', dataset: { testid: 'review-time' }, 'aria-live': 'off' });
    this.markerLayer = h('div', { class: 'review-markers', dataset: { testid: 'review-markers' } });
    // Markers too close to fit side by side at the scrubber's width go on lanes above each
    // other (a phone's timeline is narrow): laid out again whenever the width changes.
    new ResizeObserver(() => this.layoutMarkers()).observe(this.markerLayer);
    for (const marker of this.timeline.markers) {
      if (marker.at_s === null || marker.at_s === undefined) continue;
      const left = this.duration > 0 ? (marker.at_s / this.duration) * 100 : 0;
      this.markerLayer.append(h('button', {
        type: 'button', class: 'review-marker', style: `left: ${left}%`,
        dataset: { testid: 'review-marker', noteId: marker.note.id, atS: String(marker.at_s) },
        onclick: () => this.seek(marker.at_s),
      }));
    }
    const videos = this.tracks.filter((v) => v.track.recording.kind === 'video');
    const audios = this.tracks.filter((v) => v.track.recording.kind !== 'video');
    this.root = h('div', { class: 'review-player', dataset: { testid: 'review-player' } },
      h('div', { class: 'review-grid', dataset: { testid: 'review-grid' } }, videos.map((v) => v.box)),
      h('div', { class: 'review-audio' }, audios.map((v) => v.box)),
      h('div', { class: 'review-controls' },
        this.playButton,
        h('div', { class: 'review-scrub' }, this.markerLayer, this.scrubber),
        this.readout));
    this.relabel();
  }

  /** Give each marker a lane: the first one where it does not overlap the marker before it. */
  layoutMarkers() {
    const width = this.markerLayer.clientWidth;
    if (!width || !this.duration) return;
    const markers = [...this.markerLayer.children]
      .sort((a, b) => Number(a.dataset.atS) - Number(b.dataset.atS));
    const laneEnds = []; // per lane: the right edge (px) of its last marker
    for (const marker of markers) {
      const size = marker.offsetWidth || MARKER_PX;
      const left = (Number(marker.dataset.atS) / this.duration) * width - size / 2;
      let lane = laneEnds.findIndex((end) => left >= end + MARKER_GAP_PX);
      if (lane < 0) lane = laneEnds.push(0) - 1;
      laneEnds[lane] = left + size;
      marker.style.top = `${lane * (MARKER_PX + MARKER_GAP_PX)}px`;
      marker.dataset.lane = String(lane);
    }
    const lanes = Math.max(1, laneEnds.length);
    this.markerLayer.style.height = `${lanes * (MARKER_PX + MARKER_GAP_PX)}px`;
  }

  relabel() {
    this.playButton.textContent = this.playing ? t('review.pause') : t('review.play');
    this.scrubber.setAttribute('aria-label', t('review.scrubber'));
    for (const marker of this.markerLayer.children) {
      const found = this.timeline.markers.find((m) => m.note.id === marker.dataset.noteId);
      const text = t('review.markerLabel', { time: clock(Number(marker.dataset.atS)), text: found?.note.text ?? '' });
      marker.setAttribute('aria-label', text);
      marker.title = text;
    }
    for (const view of this.tracks) {
      view.label.textContent = this.describe(view.track.recording);
      view.el.setAttribute('aria-label', view.label.textContent);
    }
    this.render();
  }

  /** Ask the server for each track's playback link (audited there) and load the elements. */
  async load() {
    await Promise.all(this.tracks.map(async (view) => {
      try {
        const { url } = await api.playback(view.track.recording.id);
        view.el.src = url;
      } catch (err) {
        view.failed = true;
        view.error.textContent = err.status === 403
          ? t('recordings.forbidden')
          : t('recordings.playFailed', { reason: errorText(err) });
        view.error.hidden = false;
      }
    }));
    this.seek(0);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  play() {
    if (this.now() >= this.duration) this.base = 0;
    this.playing = true;
    this.anchor = performance.now();
    this.holdSince = null;
    this.sync(true);
    this.relabel();
  }

  pause() {
    this.base = this.now();
    this.playing = false;
    this.holdSince = null;
    for (const view of this.tracks) view.el.pause();
    this.sync(true);
    this.relabel();
  }

  /** Jump every track to timeline time `t`; the clock holds until they are ready there. */
  seek(t) {
    this.base = Math.min(Math.max(0, t), this.duration);
    this.anchor = performance.now();
    this.laggards.clear();
    this.sync(true);
    if (this.playing) this.hold();
    this.render();
  }

  hold() {
    if (this.holdSince !== null) return;
    this.base = this.now();
    this.holdSince = performance.now();
    for (const view of this.tracks) view.el.pause();
  }

  release() {
    this.holdSince = null;
    this.anchor = performance.now();
  }

  /** Put every element where the clock says; `force` re-seeks even within the drift margin. */
  sync(force = false) {
    const now = this.now();
    for (const view of this.tracks) {
      const { el, track } = view;
      if (!el.src || view.failed) continue;
      const { local, inside } = trackTime(track, now);
      view.box.dataset.state = inside ? 'active' : now < track.start_s ? 'before' : 'after';
      const drift = el.currentTime - local;
      if (force || Math.abs(drift) > MAX_DRIFT_S) {
        if (el.readyState >= 1) el.currentTime = local;
      }
      const shouldPlay = inside && this.playing && this.holdSince === null;
      if (shouldPlay && el.paused) el.play().catch(() => {});
      else if (!shouldPlay && !el.paused) el.pause();
    }
  }

  tick() {
    if (!this.root.isConnected) {
      clearInterval(this.timer);
      for (const view of this.tracks) view.el.pause();
      return;
    }
    if (this.playing) {
      const now = this.now();
      const waiting = this.tracks.filter((view) => !view.failed && view.el.src
        && !this.laggards.has(view) && trackTime(view.track, now).inside
        && (view.el.readyState < CAN_PLAY || view.el.seeking));
      if (waiting.length && this.holdSince === null) this.hold();
      else if (!waiting.length && this.holdSince !== null) this.release();
      else if (waiting.length && performance.now() - this.holdSince > HOLD_LIMIT_MS) {
        for (const view of waiting) this.laggards.add(view);
        this.release();
      }
      if (now >= this.duration) {
        this.base = this.duration;
        this.playing = false;
        this.relabel();
      }
    }
    this.sync();
    this.render();
  }

  render() {
    const now = this.now();
    if (document.activeElement !== this.scrubber) this.scrubber.value = String(now);
    this.readout.textContent = `${clock(now)} / ${clock(this.duration)}`;
    this.root.dataset.position = now.toFixed(2);
    this.root.dataset.playing = String(this.playing);
    this.root.dataset.holding = String(this.holdSince !== null);
    for (const view of this.tracks) {
      const state = view.box.dataset.state;
      view.status.textContent = state === 'before'
        ? t('review.startsAt', { time: clock(view.track.start_s) })
        : state === 'after' ? t('review.ended') : '';
    }
  }
}
