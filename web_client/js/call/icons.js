// The call bar's buttons: an icon over a short label (phones have room for both only if the
// label is short); the full wording goes into aria-label and the tooltip.

const SVG = 'http://www.w3.org/2000/svg';

/** Each icon as SVG markup of a 24×24 box, drawn with the button's text colour. */
const SHAPES = {
  mic: '<rect x="9" y="2" width="6" height="12" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v4M8 22h8"/>',
  micOff: '<rect x="9" y="2" width="6" height="12" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v4M8 22h8M3 3l18 18"/>',
  camera: '<rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10l6-3v10l-6-3z"/>',
  cameraOff: '<rect x="2" y="6" width="14" height="12" rx="2"/><path d="M16 10l6-3v10l-6-3zM3 3l18 18"/>',
  audioOnly: '<path d="M4 15v-3a8 8 0 0 1 16 0v3"/><rect x="3" y="14" width="4" height="7" rx="1"/><rect x="17" y="14" width="4" height="7" rx="1"/>',
  share: '<rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/>',
  record: '<circle cx="12" cy="12" r="6" fill="currentColor"/>',
  stop: '<rect x="7" y="7" width="10" height="10" rx="1" fill="currentColor"/>',
  sound: '<path d="M4 9h4l5-4v14l-5-4H4z"/><path d="M16 9a4 4 0 0 1 0 6M19 6a8 8 0 0 1 0 12"/>',
  patient: '<rect x="5" y="4" width="14" height="18" rx="2"/><path d="M9 2h6v4H9zM8 11h8M8 15h6"/>',
  leave: '<path d="M14 4h5v16h-5M10 8l-4 4 4 4M6 12h10"/>',
  end: '<path d="M2 14.5c5.5-5 14.5-5 20 0l-2.5 3-4-1.2v-3a11 11 0 0 0-7 0v3l-4 1.2z" fill="currentColor"/>',
};

export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'bar-icon');
  svg.innerHTML = SHAPES[name]; // our own constant markup, never anything from a user
  return svg;
}

/**
 * Give `button` (a bar button) its icon, short label and full name. Its text is the short
 * label alone, so tests and screen readers see one string; aria-label says it in full where the
 * full wording contains the label, the title always.
 */
export function setBarButton(button, { iconName, label, name = label }) {
  let glyph = button.querySelector('.bar-icon');
  let text = button.querySelector('.bar-label');
  if (!text) {
    button.replaceChildren();
    text = document.createElement('span');
    text.className = 'bar-label';
    button.append(text);
  }
  if (!glyph || glyph.dataset.icon !== iconName) {
    const fresh = icon(iconName);
    fresh.dataset.icon = iconName;
    if (glyph) glyph.replaceWith(fresh);
    else button.prepend(fresh);
  }
  text.textContent = label;
  if (name !== label) {
    // The accessible name must contain the visible label (WCAG 2.5.3, axe's
    // label-content-name-mismatch): the full wording names the button only where it does
    // ("Mute" in "Mute microphone"); otherwise the label names it and the full wording is the
    // tooltip and description ("Cam off" / "Camera off").
    if (labelInName(label, name)) button.setAttribute('aria-label', name);
    else button.removeAttribute('aria-label');
    button.title = name;
  } else {
    button.removeAttribute('aria-label');
    button.removeAttribute('title');
  }
}

/** Whether `name` contains `label` as axe reads it: whole words for Latin text ("Record" is not in
 * "Start recording"), the characters for Chinese. */
function labelInName(label, name) {
  const wanted = label.trim().toLocaleLowerCase();
  const full = name.toLocaleLowerCase();
  if (!/^[\x20-\x7e]+$/.test(wanted)) return full.includes(wanted);
  const escaped = wanted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9])${escaped}($|[^a-z0-9])`).test(full);
}
