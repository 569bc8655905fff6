// Trainees' questions during a training (docs/training.md, "Questions"): both the player and
// the lecturer's page follow the training over socket.io (`training-watch`, sent again after
// every reconnect); the audience asks (`question-ask`), the moderators show or dismiss
// (`question-moderate`), and a shown question reaches every viewer live (`question-shown`).

import { h } from './dom.js';
import { t } from './i18n.js';
import { request } from './socket.js';

/** Follow the training's questions; `on.listed(ack)` after each (re)watch, then the news. */
export function followQuestions(socket, trainingId, on) {
  const watch = () => request(socket, 'training-watch', { training_id: trainingId })
    .then(on.listed, (err) => on.failed?.(err));
  socket.on('connect', watch);
  if (socket.connected) watch();
  for (const event of ['question-asked', 'question-shown', 'question-dismissed']) {
    socket.on(event, (news) => { if (news.training_id === trainingId) on[event]?.(news.question); });
  }
}

/** One question as a list item: its text, who asked and from where. */
export function questionItem(question, ...extra) {
  return h('li', { dataset: { testid: 'question', questionId: question.id, status: question.status } },
    h('p', { class: 'question-text' }, question.text),
    h('p', { class: 'muted question-by' },
      `${question.asker.display_name} · ${question.institution.name} · ${new Date(question.asked_at).toLocaleTimeString()}`),
    ...extra);
}

/** Put `question` into `list` (replacing an item with the same id), in the order asked. */
export function place(list, item) {
  list.querySelector(`[data-question-id="${item.dataset.questionId}"]`)?.remove();
  list.append(item);
}

/** The trainee's box to ask: a labelled text area, a button, and where a refusal shows. */
export function askBox(socket, trainingId) {
  const text = h('textarea', { id: 'question-text', maxlength: 500, rows: 2, dataset: { testid: 'question-input' } });
  const button = h('button', { type: 'submit', dataset: { testid: 'question-send' } }, t('questions.send'));
  const note = h('p', { role: 'status', 'aria-live': 'polite', dataset: { testid: 'question-note' } });
  const form = h('form', { class: 'question-ask', dataset: { testid: 'question-form' } },
    h('label', { for: 'question-text' }, t('questions.askLabel')), text, button, note);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await request(socket, 'question-ask', { training_id: trainingId, text: text.value });
      text.value = '';
      note.textContent = t('questions.sent');
    } catch (err) {
      note.textContent = err.code === 'rate_limited' ? t('questions.tooMany') : err.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
