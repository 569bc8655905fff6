// The call quality timeline on the review page, under the recordings: one strip per
// participant (what their page measured, `GET /api/consults/{id}/quality`), a cell per 10 s
// bucket coloured by its rating. Buckets that fall in a recording session sit on the player's
// timeline (same 0 … duration scale, a click seeks there); the rest of the call, not recorded,
// gets its own strip in wall-clock order. Each strip is an image whose label is the summary in
// words, which is also written beside it.

import { h } from './dom.js';
import { t } from './i18n.js';

const RATINGS = ['good', 'fair', 'poor', 'audio_only'];

function summaryText(buckets) {
  const seconds = buckets.reduce((sum, b) => sum + b.seconds, 0) || 1;
  const share = (rating) => Math.round((100 * buckets
    .filter((b) => b.rating === rating).reduce((sum, b) => sum + b.seconds, 0)) / seconds);
  const rates = buckets.map((b) => b.bitrate_in_kbps).sort((a, b) => a - b);
  const median = rates.length ? Math.round(rates[Math.floor((rates.length - 1) / 2)]) : 0;
  return t('quality.summary', {
    good: share('good'), fair: share('fair'), poor: share('poor'), audio: share('audio_only'),
    kbps: median, freezes: buckets.reduce((sum, b) => sum + b.freezes, 0),
  });
}

function strip(cells, label, onSeek, length) {
  const bar = h('div', {
    class: 'quality-strip', role: 'img', 'aria-label': label, dataset: { testid: 'quality-strip' },
  }, ...cells.map(({ bucket, left, width }) => h('span', {
    class: `quality-cell quality-${bucket.rating}`,
    style: `left:${left}%;width:${width}%`,
    title: t('quality.cell', {
      rating: t(`signal.${bucket.rating}`),
      in: Math.round(bucket.bitrate_in_kbps),
      loss: bucket.loss_pct,
      rtt: bucket.rtt_ms === null ? '–' : Math.round(bucket.rtt_ms),
    }),
    dataset: { rating: bucket.rating },
  })));
  if (onSeek && length) {
    bar.addEventListener('click', (event) => {
      const box = bar.getBoundingClientRect();
      onSeek(((event.clientX - box.left) / box.width) * length);
    });
  }
  return bar;
}

/**
 * @param {HTMLElement} box  emptied and filled
 * @param {{bucket_seconds: number, duration_s: number, buckets: object[]}} data
 * @param {(seconds: number) => void} [onSeek]  seek the review player
 */
export function renderQualityTimeline(box, data, onSeek) {
  box.replaceChildren();
  const pages = data.buckets.filter((b) => b.source === 'client');
  if (!pages.length) {
    box.append(h('p', { class: 'empty', dataset: { testid: 'quality-empty' } }, t('quality.none')));
    return;
  }
  const width = data.bucket_seconds;
  const people = new Map();
  for (const b of pages) {
    if (!people.has(b.participant.id)) people.set(b.participant.id, { person: b.participant, buckets: [] });
    people.get(b.participant.id).buckets.push(b);
  }
  const start = Math.min(...pages.map((b) => Date.parse(b.start)));
  const end = Math.max(...pages.map((b) => Date.parse(b.start) + width * 1000));
  const wall = Math.max((end - start) / 1000, width);
  const list = h('ul', { class: 'quality-list', dataset: { testid: 'quality-timeline' } });
  for (const { person, buckets } of people.values()) {
    const summary = summaryText(buckets);
    const recorded = buckets.filter((b) => b.at_s !== null);
    const rest = buckets.filter((b) => b.at_s === null);
    const item = h('li', { class: 'quality-person', dataset: { testid: 'quality-person' } },
      h('p', { class: 'quality-who' }, h('strong', {}, person.display_name), ' ', h('span', {}, summary)));
    if (recorded.length && data.duration_s > 0) {
      const cells = recorded.map((bucket) => ({
        bucket,
        left: (100 * bucket.at_s) / data.duration_s,
        width: Math.max((100 * width) / data.duration_s, 0.5),
      }));
      item.append(strip(cells, t('quality.recordedStrip', { who: person.display_name, summary }), onSeek, data.duration_s));
    }
    if (rest.length) {
      const cells = rest.map((bucket) => ({
        bucket,
        left: (100 * (Date.parse(bucket.start) - start)) / 1000 / wall,
        width: Math.max((100 * width) / wall, 0.5),
      }));
      if (recorded.length) item.append(h('p', { class: 'quality-note' }, t('quality.unrecorded')));
      item.append(strip(cells, t('quality.wallStrip', { who: person.display_name, summary }), null, 0));
    }
    list.append(item);
  }
  const legend = h('p', { class: 'quality-legend' }, ...RATINGS.map((rating) =>
    h('span', { class: 'quality-key' }, h('span', { class: `quality-swatch quality-${rating}`, 'aria-hidden': 'true' }),
      t(`signal.${rating}`))));
  box.append(list, legend);
}
