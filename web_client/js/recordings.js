// The recording of a finished consult, wherever a consult card shows it: ONE "play recording"
// button that opens the synced player (js/review-player.js, the supervisor's review player):
// every recorded track of the consult side by side under one timeline with the notes as
// markers. The timeline is `GET /api/consults/{id}/playback`, for whoever may play the
// consult's recordings; each track's playback link and every read of its bytes are audited by
// the server.

import { api } from './api.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';
import { clock } from './recording.js';
import { ReviewPlayer } from './review-player.js';

/**
 * One section per consult, kept across re-renders of the list it sits in, so that a list
 * update (a socket event, a language switch) neither closes the player nor stops it.
 */
const sections = new Map(); // consult id → RecordingsSection

/** The recording section of a finished consult: a button until it is opened, then the player. */
export function recordingsSection(consultId) {
  let section = sections.get(consultId);
  if (!section) {
    section = new RecordingsSection(consultId);
    sections.set(consultId, section);
  }
  return section.root;
}

/** One track's label: who, which source, how long. */
export function describeTrack(rec) {
  const text = t('recordings.item', {
    name: rec.participant?.display_name ?? '',
    source: t(`recordings.source.${rec.source}`),
    duration: clock(rec.duration_s ?? 0),
  });
  // A file recovered after a crash may lack its last second: say so where it is played.
  return rec.recovered ? `${text} · ${t('recordings.recovered')}` : text;
}

class RecordingsSection {
  constructor(consultId) {
    this.consultId = consultId;
    this.loading = false;
    this.problem = null; // {key, params, kind}
    this.player = null;
    this.button = h('button', {
      type: 'button', class: 'play-recording', dataset: { testid: 'consult-play-recording' },
      onclick: () => this.open(),
    });
    this.message = h('p', { class: 'notice', role: 'status', hidden: true, dataset: { testid: 'recordings-message' } });
    this.box = h('div', { class: 'recording-box' });
    this.root = h('section', { class: 'recordings', dataset: { testid: 'recordings', consultId } },
      this.button, this.message, this.box);
    onLangChange(() => this.render());
    this.render();
  }

  /** Load the consult's timeline, show the player and start playing (the click allows sound). */
  async open() {
    this.loading = true;
    this.problem = null;
    this.render();
    try {
      const { timeline } = await api.playbackTimeline(this.consultId);
      if (!timeline.tracks.length) {
        this.problem = { key: 'recordings.none', kind: 'info' };
      } else {
        this.player = new ReviewPlayer(timeline, describeTrack);
        this.box.replaceChildren(this.player.root);
        await this.player.load();
        this.player.play();
      }
    } catch (err) {
      this.problem = err.status === 403
        ? { key: 'recordings.forbidden', kind: 'error' }
        : { key: 'recordings.loadFailed', params: { reason: errorText(err) }, kind: 'error' };
    } finally {
      this.loading = false;
      this.render();
    }
  }

  render() {
    this.button.textContent = t('recordings.playConsult');
    this.button.hidden = this.player !== null;
    this.button.disabled = this.loading;
    const problem = this.problem;
    const text = this.loading ? t('recordings.loading') : problem ? t(problem.key, problem.params) : '';
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.dataset.kind = problem?.kind ?? 'info';
  }
}
