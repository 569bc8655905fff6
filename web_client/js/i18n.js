// Every visible string, in zh-CN (the default: our users are Chinese hospitals) and English.
// The strings are data: web_client/locales/<code>.json, one flat {key: text} object per
// language, both loaded before any page script runs (top-level await). Static markup names its
// string with data-i18n (text), data-i18n-placeholder or data-i18n-aria-label; scripts call
// t(key, {params}) and re-render on onLangChange.

const STORAGE_KEY = 'teleconsult.lang';
const DEFAULT_LANG = 'zh-CN';

/** The choices in the switch, each named in its own language. */
export const LANGUAGES = { 'zh-CN': '中文', en: 'English' };

/**
 * One language's dictionary. A file that does not load leaves that language empty rather than
 * the page blank: t() then falls back to the other language or shows the key itself.
 */
async function load(code) {
  try {
    const response = await fetch(new URL(`../locales/${code}.json`, import.meta.url));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } catch (err) {
    console.error(`locale ${code} not loaded`, err);
    return {};
  }
}

/** @type {Record<string, Record<string, string>>} */
const DICTIONARIES = Object.fromEntries(await Promise.all(
  Object.keys(LANGUAGES).map(async (code) => [code, await load(code)])));

const listeners = new Set();

function stored() {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return value in DICTIONARIES ? value : DEFAULT_LANG;
  } catch {
    return DEFAULT_LANG; // storage can be blocked (privacy settings); the default still works
  }
}

let current = stored();

export function lang() {
  return current;
}

export function has(key) {
  return key in DICTIONARIES[current];
}

/** The string for `key` in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES[DEFAULT_LANG][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** Keys present in one dictionary but not the other (the e2e suite asserts there are none). */
export function missingKeys() {
  const [a, b] = Object.values(DICTIONARIES).map((d) => new Set(Object.keys(d)));
  return [...a].filter((k) => !b.has(k)).concat([...b].filter((k) => !a.has(k)));
}

export function onLangChange(callback) {
  listeners.add(callback);
}

/** Translate every data-i18n* element under `root`. */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
}

export function setLang(code) {
  if (!(code in DICTIONARIES)) return;
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Not persisted, but the page still switches.
  }
  document.documentElement.lang = code;
  applyTranslations();
  for (const callback of listeners) callback(code);
}

/** Put a language <select> into every [data-lang-switch] placeholder. */
function mountSwitches() {
  for (const slot of document.querySelectorAll('[data-lang-switch]')) {
    const select = document.createElement('select');
    select.dataset.testid = 'lang-switch';
    select.dataset.i18nAriaLabel = 'lang.label';
    for (const [code, name] of Object.entries(LANGUAGES)) {
      const option = new Option(name, code, false, code === current);
      option.lang = code; // screen readers pronounce each name in its own language
      select.add(option);
    }
    select.addEventListener('change', () => setLang(select.value));
    onLangChange((code) => { select.value = code; });
    slot.replaceChildren(select);
  }
}

/** Call once per page, first thing: sets <html lang>, translates, mounts the switch. */
export function initI18n() {
  document.documentElement.lang = current;
  mountSwitches();
  applyTranslations();
}
