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

/** Announce a message to screen readers and sighted users in the given live region. */
export function say(region, text, kind = 'info') {
  region.textContent = text;
  region.dataset.kind = kind;
  region.hidden = !text;
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
