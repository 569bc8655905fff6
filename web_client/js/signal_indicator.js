// The small signal indicator on both call pages: four bars and a word (good, fair, poor,
// audio only), from the rating the server gives each `quality-report` (quality_report.js). Not
// a live region: it changes every few seconds and would drown the call's own messages; the
// word is visible text, the bars are decoration. The figures behind it are in its title.

import { h } from './dom.js';
import { onLangChange, t } from './i18n.js';

const BARS = { good: 4, fair: 3, poor: 1, audio_only: 2 };

export class SignalIndicator {
  constructor() {
    this.rating = null;
    this.payload = null;
    this.bars = [1, 2, 3, 4].map((n) => h('span', { class: `signal-bar signal-bar-${n}` }));
    this.word = h('span', { class: 'signal-word' });
    this.element = h('span', {
      class: 'signal-indicator', hidden: true, dataset: { testid: 'signal-indicator' },
    }, h('span', { class: 'signal-bars', 'aria-hidden': 'true' }, ...this.bars), this.word);
    onLangChange(() => this.render());
  }

  /** @param {string|null} rating  null hides it (not in a call) */
  update(rating, payload) {
    this.rating = rating;
    this.payload = payload;
    this.render();
  }

  render() {
    const rating = this.rating;
    this.element.hidden = !rating;
    if (!rating) return;
    this.element.dataset.rating = rating;
    const lit = BARS[rating] ?? 0;
    this.bars.forEach((bar, i) => bar.classList.toggle('lit', i < lit));
    this.word.textContent = t('signal.label', { rating: t(`signal.${rating}`) });
    const p = this.payload;
    this.element.title = p
      ? t('signal.detail', {
        in: Math.round(p.bitrate_in_kbps),
        out: Math.round(p.bitrate_out_kbps),
        loss: p.loss_pct,
        rtt: p.rtt_ms === null ? '–' : Math.round(p.rtt_ms),
      })
      : '';
  }
}
