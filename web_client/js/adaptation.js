// Sender-side bandwidth adaptation: the pure decision (no browser API, no DOM, no clock of its
// own), so that its rules can be tested on their own. call/sender-adaptation.js feeds it one
// sample a second (link_stats.js) and applies what it returns with RTCRtpSender.setParameters.
// The rules, the thresholds and what users see: docs/network.md.
//
//   decide(state, input) → {state, plan}
//
// `state` starts as initialState(now); `input` is {now, estimateBps, loss, hasSecond, chosen}
// and {videoLoss, rttMs, sentVideoBps}: congestion signs, and what a probe sent.
// `plan` says what each of our sources sends: `camera` and `second` are an encoding
// ({maxBitrate, scaleResolutionDownBy, maxFramerate}) or null (not sent), `audio` always sends.
//
// Video steps through LEVELS (0 = full) by the outbound estimate minus what the voice needs;
// the second source (ultrasound, screen) is served first and the face camera gives way first.
// Below AUDIO_ONLY_BELOW_BPS (with congestion), above AUDIO_ONLY_LOSS loss, or (at the lowest
// level) over AUDIO_ONLY_RTT_MS round trip, for AUDIO_ONLY_AFTER_MS, the page sends audio only
// (a bad stretch goes on through a report of less loss while the round trip stays over
// AUDIO_ONLY_RTT_MS: stillBad);
// except that a page with a second source, on loss above the lowest level, steps down first
// (stepDownOnLoss) and goes audio-only only if the lowest level stays as bad as long.
// It comes back with hysteresis: at once when the estimate says the link
// carries VIDEO_BACK_ABOVE_BPS with little loss for VIDEO_BACK_AFTER_MS, or by a probe: every
// PROBE_FIRST_MS … PROBE_MAX_MS it sends a little video (PROBE_VIDEO) for PROBE_MS (the browser's
// estimate only grows with traffic to measure), and stays on video if the estimate then holds;
// or, when the probe's packets went out without loss or queueing, it raises the probe to the
// lowest level's video, and stays on video if that too goes out cleanly (PROBE_LEAST_JUDGE_MS).

/** Under this outbound estimate (bit/s), sustained, the page goes audio-only. */
export const AUDIO_ONLY_BELOW_BPS = 150_000;
/** Above this loss (fraction the far end reports), sustained, the page goes audio-only. */
export const AUDIO_ONLY_LOSS = 0.2;
/**
 * At the lowest video level, a round trip over this (ms), sustained, also goes audio-only: even
 * the least video keeps the link's queue full and the voice waits behind it (ITU-T G.114 puts
 * the limit for conversation at 400 ms one way). On the relay the estimate the page sees is the
 * relay's REMB, which can sit just above AUDIO_ONLY_BELOW_BPS on a link that cannot carry the
 * lowest level (measured: ~160 kbit/s with an 810 ms round trip under the 150 kbit/s test cap).
 */
export const AUDIO_ONLY_RTT_MS = 600;
/** How long the link must stay that bad before video stops. */
export const AUDIO_ONLY_AFTER_MS = 2000;
/** Back to video once the estimate holds this much … */
export const VIDEO_BACK_ABOVE_BPS = 250_000;
/** … with at most this loss … */
export const VIDEO_BACK_LOSS = 0.05;
/** … for this long. */
export const VIDEO_BACK_AFTER_MS = 3000;
/**
 * A probe of the lowest video level stays when, with at most twice VIDEO_BACK_LOSS loss, the
 * estimate reaches this …
 */
export const PROBE_KEEP_ABOVE_BPS = 200_000;
/**
 * … or its video has gone out (at least PROBE_SENT_BPS) for a second without loss (at most
 * PROBE_CLEAN_LOSS) or queueing (round trip at most PROBE_KEEP_RTT_MS): the estimate grows only
 * slowly with what is sent (on the relay it follows the relay's REMB, slower still), so the
 * estimate alone would keep a page audio-only long after its link recovered.
 */
export const PROBE_SENT_BPS = 10_000;
export const PROBE_CLEAN_LOSS = 0.05;
export const PROBE_KEEP_RTT_MS = 150;
/** A probe sends video PROBE_MS at most; it is judged from PROBE_JUDGE_MS on … */
export const PROBE_MS = 6000;
export const PROBE_JUDGE_MS = 2000;
/**
 * … and cut for loss only from PROBE_LOSS_FROM_MS on (for queueing from its first second): the
 * first receiver reports of our video after the pause (on the relay up to ~2 s in) still count
 * packets lost before it, as its receiver learns of the gap only from the probe's first packet.
 */
export const PROBE_LOSS_FROM_MS = 3000;
/**
 * A probe whose little video went out cleanly is raised to the lowest level's video (what the
 * page would send back on video) and judged again from this long after the raise: a little
 * video that fits proves nothing of the lowest level (measured under the relay's test cap: both
 * pages came back on a 15 kbit/s probe, their video filled the queue in 2 s, the voice lost a
 * third of its frames, and they went audio-only again — every 12 s).
 */
export const PROBE_LEAST_JUDGE_MS = 2000;
/** The first probe comes this long after going audio-only; each failed one doubles the wait … */
export const PROBE_FIRST_MS = 6000;
/** … up to this. */
export const PROBE_MAX_MS = 8000;
/** What the voice and the packets' overhead take before video gets anything (bit/s). */
export const AUDIO_RESERVE_BPS = 60_000;
/** The estimate must stay under a level's need this long before video steps down … */
export const STEP_DOWN_AFTER_MS = 2000;
/** … and over the next level's need by STEP_UP_MARGIN this long before it steps up. */
export const STEP_UP_AFTER_MS = 6000;
export const STEP_UP_MARGIN = 1.3;
/** The first seconds of a call: the browser's estimate is still ramping up; no step down. */
export const WARM_UP_MS = 3000;

const enc = (maxBitrate, scaleResolutionDownBy, maxFramerate) => ({ maxBitrate, scaleResolutionDownBy, maxFramerate });

/**
 * The video levels, best first: `need` is the video budget (estimate − AUDIO_RESERVE_BPS) a level
 * wants. With a second source it takes most of the budget and the camera goes first (null: off).
 */
export const LEVELS = [
  {
    need: 900_000,
    alone: { camera: enc(1_200_000, 1, 30) },
    withSecond: { second: enc(1_200_000, 1, 15), camera: enc(400_000, 2, 20) },
  },
  {
    need: 450_000,
    alone: { camera: enc(500_000, 2, 25) },
    withSecond: { second: enc(500_000, 1, 15), camera: enc(120_000, 4, 10) },
  },
  {
    need: 200_000,
    alone: { camera: enc(250_000, 2, 15) },
    withSecond: { second: enc(300_000, 1, 15), camera: null },
  },
  {
    need: 0,
    alone: { camera: enc(120_000, 4, 10) },
    withSecond: { second: enc(150_000, 2, 12), camera: null },
  },
];
const LOWEST = LEVELS.length - 1;

/**
 * What an audio-only page sends while it probes the link: little, so that a probe on a link
 * still too thin costs the voice little, but enough to measure (PROBE_SENT_BPS).
 */
export const PROBE_VIDEO = { alone: { camera: enc(60_000, 8, 8) }, withSecond: { second: enc(60_000, 4, 8), camera: null } };

/**
 * @typedef {object} AdaptState
 * @property {number} startedAt
 * @property {number} level  index into LEVELS
 * @property {boolean} audioOnly  the link made us go audio-only (not the participant's choice)
 * @property {number|null} badSince  since when the link is below the audio-only thresholds
 * @property {number|null} goodSince  (audio-only) since when it is good enough for video again
 * @property {number|null} lowSince  since when the budget is under the level's need
 * @property {number|null} highSince  since when the budget is over the next level's need
 * @property {{since: number, until: number, cleanSince: number|null, leastSince: number|null}|null}
 *   probe  a probe running since then, until then; clean (its video goes out without loss or
 *   queueing) since then; raised to the lowest level's video since then (null: PROBE_VIDEO)
 * @property {number} nextProbeAt
 * @property {number} probeWaitMs
 */

/** @returns {AdaptState} */
export function initialState(now) {
  return {
    startedAt: now,
    level: 0,
    audioOnly: false,
    badSince: null,
    goodSince: null,
    lowSince: null,
    highSince: null,
    probe: null,
    nextProbeAt: 0,
    probeWaitMs: PROBE_FIRST_MS,
  };
}

/** The highest level (lowest index) whose need fits `budget`. */
export function levelFor(budget) {
  const i = LEVELS.findIndex((level) => budget >= level.need);
  return i === -1 ? LOWEST : i;
}

/**
 * Whether a sample is below the audio-only thresholds. A low estimate counts only with signs of
 * congestion (loss over PROBE_CLEAN_LOSS, or queueing: a round trip over PROBE_KEEP_RTT_MS): the
 * estimate lags behind a link that recovered, most of all on the relay (its REMB). At the lowest
 * video level (`level`), a round trip over AUDIO_ONLY_RTT_MS counts whatever the estimate says.
 */
export function isBad({ estimateBps, loss, rttMs }, level = 0) {
  return isThin({ estimateBps, loss, rttMs })
    || (typeof loss === 'number' && loss > AUDIO_ONLY_LOSS)
    || (level === LOWEST && typeof rttMs === 'number' && rttMs > AUDIO_ONLY_RTT_MS);
}

/**
 * A bad stretch that began goes on while the round trip stays over AUDIO_ONLY_RTT_MS, though one
 * receiver report's loss dips under AUDIO_ONLY_LOSS: a full queue drops packets in bursts, and a
 * report between two bursts (measured under the relay's test cap: 25 %, 13 %, 83 %, 33 % with a
 * 700 ms round trip) does not mean the link recovered.
 */
function stillBad(s, { rttMs }) {
  return s.badSince !== null && typeof rttMs === 'number' && rttMs > AUDIO_ONLY_RTT_MS;
}

/** What the estimate leaves video once the voice has its share, or null without an estimate. */
const budgetOf = (estimateBps) => (typeof estimateBps === 'number' ? estimateBps - AUDIO_RESERVE_BPS : null);

/** Packets queue: a round trip over PROBE_KEEP_RTT_MS. */
const queueing = (rttMs) => typeof rttMs === 'number' && rttMs > PROBE_KEEP_RTT_MS;

/** An estimate under AUDIO_ONLY_BELOW_BPS with signs of congestion: too thin for any video. */
function isThin({ estimateBps, loss, rttMs }) {
  return typeof estimateBps === 'number' && estimateBps < AUDIO_ONLY_BELOW_BPS && congested({ loss, rttMs });
}

/** Whether a sample says the link carries video again without probing. */
function isGoodForVideo({ estimateBps, loss }) {
  return typeof estimateBps === 'number' && estimateBps >= VIDEO_BACK_ABOVE_BPS
    && (loss ?? 0) <= VIDEO_BACK_LOSS;
}

/** Signs of a full link: loss over PROBE_CLEAN_LOSS, or a round trip over PROBE_KEEP_RTT_MS. */
function congested({ loss, rttMs }) {
  return (loss ?? 0) > PROBE_CLEAN_LOSS || queueing(rttMs);
}

/** `since` if the condition still holds, now if it just started, null if it does not hold. */
const holding = (condition, since, now) => (condition ? since ?? now : null);

/**
 * One step of the adaptation.
 * @param {AdaptState} state
 * @param {{now: number, estimateBps: number|null, loss: number|null, hasSecond: boolean, chosen: boolean,
 *   videoLoss?: number|null, rttMs?: number|null, sentVideoBps?: number}} input
 */
export function decide(state, input) {
  const { now, hasSecond, chosen } = input;
  const s = { ...state };
  const bad = isBad(input, s.level);
  if (!s.audioOnly) {
    s.badSince = holding(bad || stillBad(s, input), s.badSince, now);
    const longBad = s.badSince !== null && now - s.badSince >= AUDIO_ONLY_AFTER_MS && now - s.startedAt >= WARM_UP_MS;
    if (longBad && input.hasSecond && s.level !== LOWEST && !isThin(input)) {
      stepDownOnLoss(s, input);
    } else if (longBad) {
      s.audioOnly = true;
      s.level = LOWEST;
      s.goodSince = null;
      s.probe = null;
      s.probeWaitMs = PROBE_FIRST_MS;
      s.nextProbeAt = now + s.probeWaitMs;
    }
  } else {
    s.goodSince = holding(isGoodForVideo(input), s.goodSince, now);
    const probing = s.probe ? now - s.probe.since : 0;
    // A probe is judged by what its own packets met: the loss reported for our video, when there
    // is a report of it (an audio report covers the last ~5 s, mostly from before the probe).
    const loss = (s.probe && typeof input.videoLoss === 'number' ? input.videoLoss : input.loss) ?? 0;
    const estimated = typeof input.estimateBps === 'number' && input.estimateBps >= PROBE_KEEP_ABOVE_BPS
      && loss <= VIDEO_BACK_LOSS * 2;
    const clean = (input.sentVideoBps ?? 0) >= PROBE_SENT_BPS
      && loss <= PROBE_CLEAN_LOSS && typeof input.rttMs === 'number' && !queueing(input.rttMs);
    if (s.probe) s.probe = { ...s.probe, cleanSince: holding(clean, s.probe.cleanSince, now) };
    const cleanLong = Boolean(s.probe) && s.probe.cleanSince !== null && now - s.probe.cleanSince >= 1000;
    if (s.probe && probing >= PROBE_JUDGE_MS) {
      if (estimated) return backToVideo(s, now, input);
      const raised = s.probe.leastSince !== null;
      if (cleanLong && raised && now - s.probe.leastSince >= PROBE_LEAST_JUDGE_MS) return backToVideo(s, now, input);
      if (cleanLong && !raised) s.probe = raise(s.probe, now);
    }
    // A probe ends (and the next one waits twice as long) when its time is up, or, giving the
    // voice its room back at once, when its packets queue up (from its first second) or meet
    // loss (from PROBE_LOSS_FROM_MS), or when the link is as bad as before and its packets do
    // not go out cleanly.
    const lossCounts = probing >= PROBE_LOSS_FROM_MS;
    if (s.probe && (now >= s.probe.until
      || (probing >= 1000 && congested({ loss: lossCounts ? loss : 0, rttMs: input.rttMs }))
      || (lossCounts && bad && !clean))) {
      s.probe = null;
      s.probeWaitMs = Math.min(s.probeWaitMs * 2, PROBE_MAX_MS);
      s.nextProbeAt = now + s.probeWaitMs;
    }
    if (s.goodSince !== null && now - s.goodSince >= VIDEO_BACK_AFTER_MS) return backToVideo(s, now, input);
    if (!s.probe && !chosen && now >= s.nextProbeAt) s.probe = { since: now, until: now + PROBE_MS, cleanSince: null, leastSince: null };
  }
  if (!s.audioOnly) stepLevel(s, input);
  return { state: s, plan: planFor(s, hasSecond, chosen) };
}

/**
 * The probe's little video went out cleanly: send the lowest level's instead, judged afresh, and
 * let the probe last until that judgement has had its look (one sample after PROBE_LEAST_JUDGE_MS).
 */
function raise(probe, now) {
  const judged = now + PROBE_LEAST_JUDGE_MS + 1000;
  return { ...probe, leastSince: now, cleanSince: null, until: Math.max(probe.until, judged) };
}

function backToVideo(s, now, input) {
  s.audioOnly = false;
  s.probe = null;
  s.badSince = null;
  s.goodSince = null;
  s.lowSince = null;
  s.highSince = null;
  const budget = budgetOf(input.estimateBps);
  s.level = budget !== null ? Math.max(levelFor(budget), 1) : LOWEST;
  return { state: s, plan: planFor(s, input.hasSecond, input.chosen) };
}

/**
 * A page with a second source meets loss (over AUDIO_ONLY_LOSS, sustained) with an estimate that
 * still carries video: a cap under what it sends (a sudden cap loses a third of the packets for
 * seconds, with the queue full) steps down to the level the estimate fits, at least one; loss
 * without queueing (a lossy link) to the least video. Audio-only only if it stays bad at the
 * lowest level: the ultrasound must not stop for a cap it fits under.
 */
function stepDownOnLoss(s, { estimateBps, rttMs }) {
  const budget = budgetOf(estimateBps);
  s.level = queueing(rttMs) && budget !== null ? Math.max(s.level + 1, levelFor(budget)) : LOWEST;
  s.badSince = null;
  s.lowSince = null;
  s.highSince = null;
}

/** Step down (possibly several levels) when the budget stays short, up one level when it stays ample. */
function stepLevel(s, { now, estimateBps }) {
  const budget = budgetOf(estimateBps);
  if (budget === null) return;
  const fits = levelFor(budget);
  s.lowSince = holding(fits > s.level && now - s.startedAt >= WARM_UP_MS, s.lowSince, now);
  if (s.lowSince !== null && now - s.lowSince >= STEP_DOWN_AFTER_MS) {
    s.level = fits;
    s.lowSince = null;
    s.highSince = null;
    return;
  }
  const up = s.level > 0 && budget >= LEVELS[s.level - 1].need * STEP_UP_MARGIN;
  s.highSince = holding(up, s.highSince, now);
  if (s.highSince !== null && now - s.highSince >= STEP_UP_AFTER_MS) {
    s.level -= 1;
    s.highSince = null;
  }
}

/**
 * What each source sends in this state.
 * @returns {{mode: 'video'|'audio-only', reason: 'link'|'chosen'|null, level: number, probing: boolean,
 *   camera: object|null, second: object|null}}
 */
export function planFor(s, hasSecond, chosen) {
  const silent = chosen || (s.audioOnly && !s.probe);
  const mode = chosen || s.audioOnly ? 'audio-only' : 'video';
  const reason = chosen ? 'chosen' : s.audioOnly ? 'link' : null;
  const level = s.audioOnly && s.probe && s.probe.leastSince === null ? PROBE_VIDEO : LEVELS[s.level];
  const video = hasSecond ? level.withSecond : level.alone;
  return {
    mode,
    reason,
    level: s.level,
    probing: Boolean(s.probe) && !chosen,
    camera: silent ? null : video.camera ?? null,
    second: silent || !hasSecond ? null : video.second ?? null,
  };
}
