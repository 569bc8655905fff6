// "Recordings" of a finished consult, wherever one is shown (consult cards, the supervisor's
// list): one line per recorded track (who, which source, how long) and a Play button that asks
// for a short-lived playback link and plays it. Side-by-side synchronized review comes later.

import { api } from './api.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { clock } from './recording.js';

/**
 * One section per consult, kept across re-renders of the list it sits in, so that a list
 * update (a socket event, a language switch) neither closes it nor stops what is playing.
 */
const sections = new Map(); // consult id → RecordingsSection

/** The (lazily loaded) recordings section of a finished consult. */
export function recordingsSection(consultId) {
  let section = sections.get(consultId);
  if (!section) {
    section = new RecordingsSection(consultId);
    sections.set(consultId, section);
  }
  return section.root;
}

/** A recording's own problem (refused, failed), in the current language. */
function showProblem(player) {
  const { problem, error } = player;
  error.textContent = problem ? t(problem.key, problem.params) : '';
  error.hidden = !problem;
}

class RecordingsSection {
  constructor(consultId) {
    this.consultId = consultId;
    this.recordings = null; // null = not loaded yet
    this.loading = false;
    this.problem = null; // {key, params, kind}
    this.players = new Map(); // recording id → {box, error, problem: {key, params}|null}
    this.summary = h('summary', { dataset: { testid: 'recordings-toggle' } });
    this.message = h('p', { class: 'notice', role: 'status', hidden: true, dataset: { testid: 'recordings-message' } });
    this.list = h('ul', { class: 'recording-list', dataset: { testid: 'recording-list' } });
    this.reload = h('button', {
      type: 'button', class: 'link', dataset: { testid: 'recordings-reload' }, onclick: () => this.load(),
    });
    this.root = h('details', { class: 'recordings', dataset: { testid: 'recordings', consultId } },
      this.summary, this.message, this.list, this.reload);
    this.root.addEventListener('toggle', () => {
      if (this.root.open && this.recordings === null && !this.loading) this.load();
    });
    onLangChange(() => this.render());
    this.render();
  }

  async load() {
    this.loading = true;
    this.problem = null;
    this.render();
    try {
      this.recordings = (await api.recordings(this.consultId)).recordings ?? [];
    } catch (err) {
      this.problem = err.status === 403
        ? { key: 'recordings.forbidden', kind: 'error' }
        : { key: 'recordings.loadFailed', params: { reason: errorText(err) }, kind: 'error' };
    } finally {
      this.loading = false;
      this.render();
    }
  }

  async play(rec, button) {
    const player = this.players.get(rec.id);
    button.disabled = true;
    player.problem = null;
    showProblem(player);
    try {
      const { url } = await api.playback(rec.id);
      const media = h(rec.kind === 'audio' ? 'audio' : 'video', {
        controls: true, preload: 'metadata', playsinline: true,
        dataset: { testid: 'recording-player', kind: rec.kind },
        'aria-label': this.describe(rec),
      });
      media.src = url;
      player.box.replaceChildren(media);
      media.play().catch(() => {}); // autoplay may be refused; the controls are there
    } catch (err) {
      player.problem = err.status === 403
        ? { key: 'recordings.forbidden' }
        : { key: 'recordings.playFailed', params: { reason: errorText(err) } };
      showProblem(player);
    } finally {
      button.disabled = false;
    }
  }

  describe(rec) {
    return t('recordings.item', {
      name: rec.participant?.display_name ?? '',
      source: t(`recordings.source.${rec.source}`),
      duration: clock(rec.duration_s ?? 0),
    });
  }

  render() {
    this.summary.textContent = t('recordings.heading');
    this.reload.textContent = t('recordings.reload');
    this.reload.hidden = this.recordings === null && !this.problem;
    const problem = this.problem;
    let text = '';
    if (this.loading) text = t('recordings.loading');
    else if (problem) text = t(problem.key, problem.params);
    else if (this.recordings?.length === 0) text = t('recordings.none');
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.dataset.kind = problem?.kind ?? 'info';
    if (!this.recordings) {
      this.list.replaceChildren();
      return;
    }
    // Rows are rebuilt (new language, new list), players kept: a playing video plays on.
    this.list.replaceChildren(...this.recordings.map((rec) => {
      let player = this.players.get(rec.id);
      if (!player) {
        player = {
          box: h('div', { class: 'recording-player' }),
          error: h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: 'recording-error' } }),
          problem: null,
        };
        this.players.set(rec.id, player);
      }
      showProblem(player);
      const play = h('button', {
        type: 'button', dataset: { testid: 'recording-play' }, onclick: (e) => this.play(rec, e.currentTarget),
      }, t('recordings.play'));
      const flags = rec.recovered ? h('span', { class: 'badge', title: t('recordings.recoveredHint') }, t('recordings.recovered')) : null;
      return h('li', {
        class: 'recording-item',
        dataset: { testid: 'recording-item', recordingId: rec.id, kind: rec.kind, source: rec.source },
      },
      h('div', { class: 'recording-line' }, h('span', {}, this.describe(rec)), flags, play),
      player.error, player.box);
    }));
  }
}
