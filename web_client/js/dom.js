import { onLangChange } from './i18n.js';

// Tiny DOM helpers. Everything user- or server-provided goes in as text (never innerHTML),
// so a patient name like "<img onerror=…>" can never run as markup.

/** Create an element: h('button', {class: 'x', dataset: {testid: 'y'}, onclick}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/** Live regions whose message is a function: said again in the new language on a switch. */
const speaking = new Map(); // region → () => string

onLangChange(() => {
  for (const [region, text] of speaking) {
    if (region.isConnected) region.textContent = text();
    else speaking.delete(region);
  }
});

/**
 * Announce a message to screen readers and sighted users in the given live region. `text` is
 * a string, or a function that makes it (`() => t('admin.added')`): then a language switch
 * says the message again in the new language instead of leaving it in the old one.
 */
export function say(region, text, kind = 'info') {
  if (typeof text === 'function') speaking.set(region, text);
  else speaking.delete(region);
  const shown = typeof text === 'function' ? text() : text;
  region.textContent = shown;
  region.dataset.kind = kind;
  region.hidden = !shown;
}

/** A datetime-local input's value ("YYYY-MM-DDTHH:MM") for `at`, in the browser's time zone. */
export function localDateTime(at = Date.now()) {
  const d = new Date(at);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset(), 0, 0);
  return d.toISOString().slice(0, 16);
}

/**
 * A table cell that knows its column's name (`data-label`): a table with class `cards-narrow`
 * shows each row as a card on a narrow screen, every value under its label (css/app.css).
 */
export function labelledCell(label, ...children) {
  return h('td', { dataset: { label } }, ...children);
}
