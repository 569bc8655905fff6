// Intake forms: the per-specialty questions a booking answers (GET /api/intake-forms).
// The booking form renders them with HTML constraints matching the server's checks; consult
// cards show a consult's answers with the form's labels and units.

import { api } from './api.js';
import { h } from './dom.js';
import { lang, t } from './i18n.js';

let forms = new Map(); // specialty -> form
let loading = null;

/** Fetch every specialty's form once per page; later calls share the answer. */
export function loadIntakeForms() {
  loading ??= api.intakeForms().then(({ forms: list }) => {
    forms = new Map(list.map((f) => [f.specialty, f]));
    return forms;
  }).catch((err) => {
    loading = null; // try again next time
    throw err;
  });
  return loading;
}

/** The form of a specialty, if the forms have been loaded. */
export function intakeForm(specialty) {
  return forms.get(specialty) ?? null;
}

/** A {zh-CN, en} label in the current language. */
export function localized(label) {
  if (!label) return '';
  return label[lang()] ?? label['zh-CN'] ?? label.en ?? '';
}

const inputId = (name) => `intake-${name}`;

function control(field) {
  const common = { id: inputId(field.name), name: `intake.${field.name}`, required: field.required,
    dataset: { testid: `intake-${field.name}`, intakeField: field.name, intakeType: field.type } };
  switch (field.type) {
    case 'number': {
      const step = field.step ?? (field.integer ? 1 : 'any');
      return h('input', { ...common, type: 'number', min: field.min, max: field.max, step,
        inputmode: field.integer && field.min >= 0 ? 'numeric' : 'decimal' });
    }
    case 'text':
      return field.multiline
        ? h('textarea', { ...common, rows: 2, maxlength: field.max_length })
        : h('input', { ...common, maxlength: field.max_length, autocomplete: 'off' });
    case 'choice':
      return h('select', common,
        h('option', { value: '' }, t('intake.choose')),
        field.options.map((o) => h('option', { value: o.value }, localized(o.label))));
    case 'date':
      return h('input', { ...common, type: 'date' });
    case 'boolean':
      // A select, not a checkbox: "not answered" must stay distinct from "no".
      return h('select', common,
        h('option', { value: '' }, t('intake.choose')),
        h('option', { value: 'true' }, t('intake.yes')),
        h('option', { value: 'false' }, t('intake.no')));
    default:
      return h('input', { ...common, disabled: true });
  }
}

function fieldLabel(field) {
  const unit = field.unit ? ` (${localized(field.unit)})` : '';
  return `${localized(field.label)}${unit}`;
}

/**
 * Render `form`'s fields into `container`, keeping any values in `previous` (an answer as
 * produced by readIntake), e.g. across a language switch.
 */
export function renderIntakeFields(container, form, previous = {}) {
  if (!form) {
    container.replaceChildren();
    return;
  }
  container.replaceChildren(...form.fields.map((field) => {
    const input = control(field);
    const value = previous[field.name];
    if (value !== undefined && value !== null) input.value = String(value);
    const help = field.help ? h('small', { class: 'hint' }, localized(field.help)) : null;
    return h('div', { class: 'stack intake-field', dataset: { field: field.name } },
      h('label', { for: inputId(field.name), class: field.required ? 'required' : undefined }, fieldLabel(field)),
      input,
      help,
      h('p', { class: 'field-error', role: 'alert', hidden: true,
        dataset: { testid: `intake-error-${field.name}` } }));
  }));
}

/** The answer in `container`'s fields: unanswered fields are left out. */
export function readIntake(container) {
  const answer = {};
  for (const input of container.querySelectorAll('[data-intake-field]')) {
    const raw = input.value.trim();
    if (raw === '') continue;
    const type = input.dataset.intakeType;
    answer[input.dataset.intakeField] =
      type === 'number' ? Number(raw) : type === 'boolean' ? raw === 'true' : raw;
  }
  return answer;
}

export function clearIntakeProblems(container) {
  for (const slot of container.querySelectorAll('.field-error')) {
    slot.hidden = true;
    slot.textContent = '';
  }
  for (const input of container.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

function problemText(detail, field) {
  const key = `intake.problem.${detail.reason}`;
  const unit = field?.unit ? ` ${localized(field.unit)}` : '';
  const text = t(key, {
    min: field?.min, max: field?.max, step: field?.step, max_length: field?.max_length, unit,
  });
  return text === key ? detail.problem : text;
}

/**
 * Show the server's `invalid_intake` details next to their fields. Problems for fields the
 * page does not show (e.g. unknown ones) are returned as text for a general message.
 */
export function showIntakeProblems(container, form, details = []) {
  clearIntakeProblems(container);
  const unplaced = [];
  let first = null;
  for (const detail of details) {
    const name = String(detail.field ?? '').replace(/^intake\.?/, '');
    const field = form?.fields.find((f) => f.name === name);
    const slot = container.querySelector(`[data-testid="intake-error-${CSS.escape(name)}"]`);
    if (!field || !slot) {
      unplaced.push(`${name || 'intake'}: ${problemText(detail, field)}`);
      continue;
    }
    slot.textContent = problemText(detail, field);
    slot.hidden = false;
    const input = container.querySelector(`#${CSS.escape(inputId(name))}`);
    input?.setAttribute('aria-invalid', 'true');
    first ??= input;
  }
  first?.focus();
  return unplaced;
}

function formatValue(field, value) {
  if (!field) return typeof value === 'object' ? JSON.stringify(value) : String(value);
  switch (field.type) {
    case 'number':
      return field.unit ? `${value} ${localized(field.unit)}` : String(value);
    case 'choice': {
      const option = field.options.find((o) => o.value === value);
      return option ? localized(option.label) : String(value);
    }
    case 'boolean':
      return value === true ? t('intake.yes') : value === false ? t('intake.no') : String(value);
    default:
      return String(value);
  }
}

/**
 * A consult's intake as a titled definition list, in the form's field order with its labels
 * and units; answers the form does not know (older consults) follow under their raw names.
 * Null when the intake is empty. `level`: its heading's level, one below the heading it sits under.
 */
export function intakeSection(consult, { level = 4 } = {}) {
  const answer = consult.intake ?? {};
  const names = Object.keys(answer).filter((k) => answer[k] !== null && answer[k] !== '');
  if (!names.length) return null;
  const form = intakeForm(consult.specialty);
  const known = form ? form.fields.filter((f) => names.includes(f.name)) : [];
  const rest = names.filter((n) => !known.some((f) => f.name === n));
  const rows = [
    ...known.map((f) => [localized(f.label), formatValue(f, answer[f.name]), f.name]),
    ...rest.map((n) => [n, formatValue(null, answer[n]), n]),
  ];
  return h('section', { class: 'intake', dataset: { testid: 'consult-intake' } },
    h(`h${level}`, { class: 'intake-heading' }, form ? localized(form.title) : t('intake.title')),
    h('dl', {}, rows.flatMap(([label, value, name]) => [
      h('dt', {}, label),
      h('dd', { dataset: { testid: `consult-intake-${name}` } }, value),
    ])));
}
