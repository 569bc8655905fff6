// The glue between adaptation.js (the decision) and the browser: once a second it samples the
// connections that carry our media (link_stats.js), asks decide() what to send, and sets each
// sender's encoding with RTCRtpSender.setParameters (maxBitrate, scaleResolutionDownBy,
// maxFramerate, active, priority/networkPriority). On the direct path a page adapts to its
// thinnest link; on the relay, to its publish connection (whose estimate follows the relay's
// REMB). docs/network.md has the rules.

import { decide, initialState, planFor } from '../adaptation.js';
import { stillStarting } from './first-frames.js';
import { LinkSampler, worstOf } from '../link_stats.js';
import { debug } from '../log.js';

/** How often the links are sampled and the decision taken. */
const SAMPLE_EVERY_MS = 1000;
/** Encodings are set again this often even when the plan did not change (a renegotiation may reset them). */
const REAPPLY_EVERY_MS = 5000;
/** The audio encoding while the page is audio-only because of the link: voice over a thin link. */
const THIN_AUDIO_BPS = 24_000;
/**
 * A browser call of a look (getStats, setParameters) that has not answered in this long is left
 * for this look: one that never answers must not stop the adaptation for the rest of the call
 * (a clean-clone CI run saw a phone's samples stop right after its move to the relay, its video
 * left at full size under a cap for 10 s).
 */
const ANSWER_WITHIN_MS = 3000;

/** `promise`'s value, or `otherwise` (with a warning naming `what`) after ANSWER_WITHIN_MS. */
async function answered(promise, what, otherwise) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => {
      console.warn(`adaptation: ${what} did not answer within ${ANSWER_WITHIN_MS} ms`);
      resolve(otherwise);
    }, ANSWER_WITHIN_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * @typedef {object} Connections
 * @property {RTCPeerConnection[]} sending  the connections our media goes out on
 * @property {RTCPeerConnection[]} receiving  the connections the others' media comes in on
 */

export class SenderAdaptation {
  /**
   * @param {object} o
   * @param {import('./local-media.js').LocalMedia} o.media  tells our camera from our second source
   * @param {() => Connections} o.connections
   * @param {(mode: {audioOnly: boolean, reason: 'link'|'chosen'|null}) => void} o.onModeChange
   */
  constructor({ media, connections, onModeChange }) {
    this.media = media;
    this.connections = connections;
    this.onModeChange = onModeChange;
    this.samplers = new WeakMap(); // pc → LinkSampler
    this.applied = new WeakMap(); // sender → {key, at}
    this.chosen = false;
    this.timer = null;
    this.state = initialState(performance.now());
    this.plan = planFor(this.state, false, false);
    this.last = null; // the latest sample over the sending connections
    this.received = { audioIn: { samples: 0, concealed: 0 }, videoIn: { frames: 0 } };
    this.busy = false;
  }

  start() {
    if (this.timer) return;
    this.state = initialState(performance.now());
    this.timer = setInterval(() => this.tick(), SAMPLE_EVERY_MS);
  }

  /** The call is over: the next one starts afresh (a choice of audio-only was for this call). */
  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.chosen = false;
    this.state = initialState(performance.now());
    this.plan = planFor(this.state, false, false);
  }

  get audioOnly() {
    return this.plan.mode === 'audio-only';
  }

  /** The participant chose audio-only (or video again) with the call bar's button. */
  choose(audioOnly) {
    const before = this.modeKey();
    this.chosen = audioOnly;
    this.plan = planFor(this.state, Boolean(this.media.second), this.chosen);
    this.applyAll(true);
    this.announce(before);
  }

  modeKey() {
    return `${this.plan.mode}:${this.plan.reason}`;
  }

  announce(before) {
    if (this.modeKey() === before) return;
    debug('adaptation:', before, '→', this.modeKey(), 'level', this.plan.level);
    this.onModeChange({ audioOnly: this.audioOnly, reason: this.plan.reason });
  }

  sampler(pc) {
    let s = this.samplers.get(pc);
    if (!s) this.samplers.set(pc, s = new LinkSampler(pc));
    return s;
  }

  async tick() {
    if (this.busy) return; // getStats on a loaded machine may take longer than a second
    this.busy = true;
    try {
      const { sending, receiving } = this.connections();
      const live = (pcs) => pcs.filter((pc) => pc.connectionState !== 'closed');
      const sample = (pc) => answered(this.sampler(pc).sample(), 'getStats', null);
      const sent = (await Promise.all(live(sending).map(sample))).filter(Boolean);
      const got = (await Promise.all(live(receiving).map((pc) => (sending.includes(pc)
        ? this.sampler(pc).previous : sample(pc))))).filter(Boolean);
      this.received = {
        audioIn: {
          samples: got.reduce((n, s) => n + s.audioIn.samples, 0),
          concealed: got.reduce((n, s) => n + s.audioIn.concealed, 0),
        },
        videoIn: { frames: got.reduce((n, s) => n + s.videoIn.frames, 0) },
      };
      const worst = worstOf(sent);
      this.last = worst;
      if (!this.timer) return;
      const before = this.modeKey();
      const input = {
        now: performance.now(),
        estimateBps: worst?.estimateBps ?? null,
        loss: worst?.loss ?? null,
        videoLoss: worst?.videoLoss ?? null,
        rttMs: worst?.rttMs ?? null,
        sentVideoBps: worst?.sentBps.video ?? 0,
        hasSecond: Boolean(this.media.second),
        chosen: this.chosen,
      };
      ({ state: this.state, plan: this.plan } = decide(this.state, input));
      await this.applyAll(false);
      this.announce(before);
    } catch (err) {
      console.warn('adaptation', err);
    } finally {
      this.busy = false;
    }
  }

  /** Set every sender of every sending connection to the plan (only those that differ, unless `force`). */
  async applyAll(force) {
    const { sending } = this.connections();
    const jobs = [];
    for (const pc of sending) {
      if (pc.connectionState === 'closed') continue;
      for (const sender of pc.getSenders()) if (sender.track) jobs.push(this.apply(sender, force));
    }
    await Promise.all(jobs);
  }

  /** What `sender` should send now: its encoding's fields. */
  wanted(sender) {
    const track = sender.track;
    const plan = this.plan;
    if (track.kind === 'audio') {
      const thin = plan.mode === 'audio-only' && plan.reason === 'link';
      return { active: true, maxBitrate: thin ? THIN_AUDIO_BPS : undefined, priority: 'high', networkPriority: 'high' };
    }
    const second = track === this.media.second?.track;
    const e = second ? plan.second : plan.camera;
    const priority = second ? 'high' : 'low';
    if (!e) return { active: false, priority, networkPriority: priority };
    return { active: true, ...e, priority, networkPriority: priority };
  }

  async apply(sender, force) {
    const want = this.wanted(sender);
    const key = JSON.stringify(want);
    const now = performance.now();
    const done = this.applied.get(sender);
    if (!force && done?.key === key && now - done.at < REAPPLY_EVERY_MS) return;
    // The camera's first frame still to go out at the start size (first-frames.js): keep it.
    // (No answer: still starting, as far as this look knows.)
    const starting = sender.track?.kind === 'video'
      && (await answered(stillStarting(sender), 'the first frame\'s getStats', true));
    const params = sender.getParameters();
    if (!params.encodings?.length) return; // not negotiated yet: next tick
    const [encoding] = params.encodings;
    encoding.active = want.active;
    for (const field of ['maxBitrate', 'scaleResolutionDownBy', 'maxFramerate']) {
      if (field === 'scaleResolutionDownBy' && starting) continue;
      if (want[field] === undefined) delete encoding[field];
      else encoding[field] = want[field];
    }
    encoding.priority = want.priority;
    encoding.networkPriority = want.networkPriority;
    try {
      const set = await answered(sender.setParameters(params).then(() => true), `setParameters (${sender.track?.kind})`, false);
      // Not marked applied when still starting or unanswered: again at the next look.
      if (!starting && set) this.applied.set(sender, { key, at: now });
    } catch (err) {
      // A renegotiation in between invalidates the parameters we read: the next tick tries again.
      debug('setParameters', sender.track?.kind, err?.name, err?.message);
    }
  }

  /** What the page's adaptation and links say now (the call view's data attributes, tests, bench/network.py). */
  snapshot() {
    const last = this.last;
    return {
      mode: this.plan.mode,
      reason: this.plan.reason,
      level: this.plan.level,
      probing: this.plan.probing,
      estimateBps: last?.estimateBps ?? null,
      loss: last?.loss ?? null,
      rttMs: last?.rttMs ?? null,
      limitation: last?.limitation ?? null,
      sentBps: last?.sentBps ?? { audio: 0, video: 0 },
      sampledMsAgo: last ? Math.round(performance.now() - last.at) : null, // a stalled look shows here
      audioIn: this.received.audioIn,
      videoIn: this.received.videoIn,
    };
  }
}
