// Quality telemetry from the page: every REPORT_INTERVAL_MS the call's RTCPeerConnections
// (direct links or the two relay legs) are read with getStats(), the counters turned into
// rates over the interval, and one compact summary is sent as `quality-report` (docs/network.md,
// "Quality telemetry"; docs/protocol.md). The server folds it into 10 s buckets and answers
// with a rating (good | fair | poor | audio_only), which the signal indicator shows.
//
// Every figure is clamped to the bounds the server's schema accepts, so a real measurement is
// never refused; nothing here decides anything about the call itself.

import { debug } from './log.js';

/** How often a summary is sent: 12 a minute, under the server's 30 a minute per connection. */
export const REPORT_INTERVAL_MS = 5000;

const clamp = (value, high) => Math.min(Math.max(Number.isFinite(value) ? value : 0, 0), high);
const round = (value, digits = 1) => Number(value.toFixed(digits));

/**
 * The totals of one getStats() pass over every connection, keyed so that the next pass can be
 * subtracted (a counter that went backwards — a new connection — counts from zero).
 * @param {RTCStatsReport[]} reports
 */
export function totals(reports) {
  const t = {
    bytesIn: 0, bytesOut: 0, packetsIn: 0, lostIn: 0, framesDecoded: 0, framesDropped: 0,
    freezes: 0, freezeS: 0, samples: 0, concealed: 0, jitterS: [], rttS: [],
  };
  for (const report of reports) {
    for (const s of report.values()) {
      if (s.type === 'inbound-rtp') {
        t.bytesIn += s.bytesReceived ?? 0;
        t.packetsIn += s.packetsReceived ?? 0;
        t.lostIn += Math.max(s.packetsLost ?? 0, 0);
        if (typeof s.jitter === 'number') t.jitterS.push(s.jitter);
        if (s.kind === 'video') {
          t.framesDecoded += s.framesDecoded ?? 0;
          t.framesDropped += s.framesDropped ?? 0;
          t.freezes += s.freezeCount ?? 0;
          t.freezeS += s.totalFreezesDuration ?? 0;
        } else if (s.kind === 'audio') {
          t.samples += s.totalSamplesReceived ?? 0;
          t.concealed += s.concealedSamples ?? 0;
        }
      } else if (s.type === 'outbound-rtp') {
        t.bytesOut += s.bytesSent ?? 0;
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        if (typeof s.currentRoundTripTime === 'number') t.rttS.push(s.currentRoundTripTime);
      }
    }
  }
  return t;
}

/**
 * One `quality-report` payload (without consult_id) from two passes `seconds` apart.
 * @param {ReturnType<typeof totals>} before
 * @param {ReturnType<typeof totals>} now
 */
export function summary(before, now, seconds, { path, audioOnly }) {
  const delta = (key) => Math.max(now[key] - (before?.[key] ?? 0), 0);
  const packets = delta('packetsIn');
  const lost = delta('lostIn');
  const samples = delta('samples');
  const max = (values) => (values.length ? Math.max(...values) : null);
  const rtt = max(now.rttS);
  const jitter = max(now.jitterS);
  return {
    path,
    interval_s: round(clamp(seconds, 30), 2),
    bitrate_in_kbps: round(clamp((delta('bytesIn') * 8) / 1000 / seconds, 100000)),
    bitrate_out_kbps: round(clamp((delta('bytesOut') * 8) / 1000 / seconds, 100000)),
    loss_pct: round(clamp(packets + lost ? (100 * lost) / (packets + lost) : 0, 100), 2),
    rtt_ms: rtt === null ? null : round(clamp(rtt * 1000, 60000)),
    jitter_ms: jitter === null ? null : round(clamp(jitter * 1000, 60000)),
    frames_decoded: Math.round(clamp(delta('framesDecoded'), 100000)),
    frames_dropped: Math.round(clamp(delta('framesDropped'), 100000)),
    freezes: Math.round(clamp(delta('freezes'), 1000)),
    freeze_ms: round(clamp(delta('freezeS') * 1000, 300000)),
    audio_concealed_pct: round(clamp(samples ? (100 * delta('concealed')) / samples : 0, 100), 2),
    audio_only: Boolean(audioOnly),
  };
}

export class QualityReporter {
  /**
   * @param {object} o
   * @param {() => {consultId: string, path: 'p2p'|'relay', connections: RTCPeerConnection[],
   *   audioOnly: boolean}|null} o.current  what to measure now; null while not in a call
   * @param {(payload: object) => Promise<object>} o.send  `quality-report` with its ack
   * @param {(rating: string|null, payload: object|null) => void} o.onRating
   */
  constructor({ current, send, onRating, intervalMs = REPORT_INTERVAL_MS }) {
    this.current = current;
    this.send = send;
    this.onRating = onRating;
    this.before = null; // {consultId, connections, totals, at}
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  async tick() {
    const now = this.current();
    if (!now || !now.connections.length) {
      this.before = null;
      this.onRating(null, null);
      return;
    }
    let reports;
    try {
      reports = await Promise.all(now.connections.map((pc) => pc.getStats()));
    } catch (err) {
      debug('quality: getStats failed', err);
      return;
    }
    const at = performance.now();
    const measured = totals(reports);
    const before = this.before;
    const same = before && before.consultId === now.consultId
      && before.connections.length === now.connections.length
      && before.connections.every((pc, i) => pc === now.connections[i]);
    this.before = { consultId: now.consultId, connections: now.connections, totals: measured, at };
    if (!same) return; // a new call or path: this pass is the baseline
    const seconds = (at - before.at) / 1000;
    if (seconds < 0.5) return;
    const payload = summary(before.totals, measured, seconds, now);
    try {
      const ack = await this.send({ consult_id: now.consultId, ...payload });
      this.onRating(ack.rating ?? null, payload);
    } catch (err) {
      debug('quality: report refused', err?.code ?? err);
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}
