// What a connection's getStats() says about our sending side: the outbound estimate
// (`availableOutgoingBitrate` of the selected candidate pair: Chromium's bandwidth estimate,
// which follows the receiver's feedback — transport-wide congestion control from a browser, REMB
// from the relay), the loss the far end reports (`remote-inbound-rtp` fractionLost), what we
// send per kind (bit/s), and why the encoder holds back (`qualityLimitationReason`). Also the
// audio we receive (samples, concealed samples), for tests and the benchmark.
//
// A LinkSampler keeps the previous report of one RTCPeerConnection, so that each sample gives
// rates over the time since the last one. No DOM, no decisions: adaptation.js decides.

/**
 * One sample of one connection.
 * @typedef {object} LinkSample
 * @property {number} at  ms (performance.now()) when it was taken
 * @property {number|null} estimateBps  the outbound estimate, null when the browser gives none
 * @property {number|null} loss  the highest fraction (0…1) of our packets the far end lost in its
 *   last report, over the outbound streams that sent since the previous sample and whose report
 *   is fresh (REPORT_FRESH_MS); null without one
 * @property {number|null} videoLoss  the same over outbound video streams only: what a probe's
 *   own packets met (an audio report covers the last ~5 s, most of it from before the probe)
 * @property {number|null} rttMs  round trip: the highest of the fresh receiver reports', else the
 *   selected candidate pair's
 * @property {{audio: number, video: number}} sentBps  what we sent since the previous sample
 * @property {string|null} limitation  qualityLimitationReason of an outbound video ('bandwidth',
 *   'cpu', 'other', 'none'), the worst one
 * @property {{samples: number, concealed: number}} audioIn  received audio, cumulative
 * @property {{frames: number}} videoIn  decoded video frames, cumulative, over every inbound video
 */

/**
 * A receiver report older than this (ms) no longer says anything about the link: its loss and
 * round trip do not count. Chromium keeps a stream's last report until the next one arrives
 * (about 1 s apart for video, 5 s for audio, and none for a stream that stopped), so without
 * this a loss seen under a cap would still show seconds after the link recovered.
 */
export const REPORT_FRESH_MS = 2500;

/** Read one getStats() report into a LinkSample (`previous`: the last one, for rates). */
export function readReport(report, previous, at) {
  let estimateBps = null;
  let rttMs = null;
  let loss = null;
  let videoLoss = null;
  let limitation = null;
  const bytes = { audio: 0, video: 0 };
  const audioIn = { samples: 0, concealed: 0 };
  const videoIn = { frames: 0 };
  const rank = { none: 0, other: 1, cpu: 2, bandwidth: 3 };
  const transports = [];
  const pairs = new Map();
  // The report's own time (the local stats carry the moment of getStats(); a
  // remote-inbound-rtp carries the moment its receiver report arrived).
  let now = 0;
  report.forEach((s) => {
    if (s.type !== 'remote-inbound-rtp' && typeof s.timestamp === 'number') now = Math.max(now, s.timestamp);
    if (s.type === 'transport') transports.push(s);
    else if (s.type === 'candidate-pair') pairs.set(s.id, s);
  });
  // The selected pair of each transport (or, without one, any nominated pair that succeeded).
  let selected = transports.map((t) => pairs.get(t.selectedCandidatePairId)).filter(Boolean);
  if (!selected.length) selected = [...pairs.values()].filter((p) => p.nominated && p.state === 'succeeded');
  for (const pair of selected) {
    if (typeof pair.availableOutgoingBitrate === 'number') {
      estimateBps = Math.min(estimateBps ?? Infinity, pair.availableOutgoingBitrate);
    }
    if (typeof pair.currentRoundTripTime === 'number') rttMs = pair.currentRoundTripTime * 1000;
  }
  // The round trip of fresh receiver reports, when there are some: they come every second with
  // the video, while the candidate pair's is measured every few seconds only.
  let reportRttMs = null;
  // Packets sent per outbound stream: a receiver report about a stream we no longer send (a
  // camera turned off) keeps its last fractionLost for good, and must not count.
  const packetsSent = {};
  report.forEach((s) => {
    if (s.type === 'outbound-rtp') packetsSent[s.id] = s.packetsSent ?? 0;
  });
  const sending = (id) => !previous || (packetsSent[id] ?? 0) > (previous.packetsSent[id] ?? 0);
  const fresh = (s) => typeof s.timestamp !== 'number' || !now || now - s.timestamp <= REPORT_FRESH_MS;
  report.forEach((s) => {
    if (s.type === 'outbound-rtp' && (s.kind === 'audio' || s.kind === 'video')) {
      bytes[s.kind] += s.bytesSent ?? 0;
      const reason = s.qualityLimitationReason;
      if (s.kind === 'video' && reason && (limitation === null || rank[reason] > rank[limitation])) limitation = reason;
    } else if (s.type === 'remote-inbound-rtp' && sending(s.localId) && fresh(s)) {
      if (typeof s.fractionLost === 'number') {
        loss = Math.max(loss ?? 0, s.fractionLost);
        if (s.kind === 'video') videoLoss = Math.max(videoLoss ?? 0, s.fractionLost);
      }
      if (typeof s.roundTripTime === 'number') reportRttMs = Math.max(reportRttMs ?? 0, s.roundTripTime * 1000);
    } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      audioIn.samples += s.totalSamplesReceived ?? 0;
      audioIn.concealed += s.concealedSamples ?? 0;
    } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
      videoIn.frames += s.framesDecoded ?? 0;
    }
  });
  if (reportRttMs !== null) rttMs = reportRttMs;
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const rate = (kind) => (seconds > 0 ? Math.max(0, ((bytes[kind] - previous.bytes[kind]) * 8) / seconds) : 0);
  return {
    at, estimateBps, loss, videoLoss, rttMs, limitation, audioIn, videoIn,
    sentBps: { audio: rate('audio'), video: rate('video') },
    bytes,
    packetsSent,
  };
}

export class LinkSampler {
  /** @param {RTCPeerConnection} pc */
  constructor(pc) {
    this.pc = pc;
    this.previous = null;
  }

  /** @returns {Promise<LinkSample|null>} null once the connection is closed */
  async sample() {
    if (this.pc.connectionState === 'closed') return null;
    const report = await this.pc.getStats();
    const sample = readReport(report, this.previous, performance.now());
    this.previous = sample;
    return sample;
  }
}

/**
 * The worst of several connections' samples (a page on the direct path has one per remote
 * participant and adapts to the thinnest): the lowest estimate, the highest loss.
 * @param {LinkSample[]} samples
 * @returns {LinkSample|null}
 */
export function worstOf(samples) {
  if (!samples.length) return null;
  const min = (values) => (values.length ? Math.min(...values) : null);
  const max = (values) => (values.length ? Math.max(...values) : null);
  const known = (key) => samples.map((s) => s[key]).filter((v) => typeof v === 'number');
  return {
    ...samples[0],
    estimateBps: min(known('estimateBps')),
    loss: max(known('loss')),
    videoLoss: max(known('videoLoss')),
    rttMs: max(known('rttMs')),
    sentBps: {
      audio: Math.min(...samples.map((s) => s.sentBps.audio)),
      video: Math.min(...samples.map((s) => s.sentBps.video)),
    },
  };
}
