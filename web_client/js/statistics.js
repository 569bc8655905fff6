// Consult statistics for supervisors and admins (docs/statistics.md): a period and filters, three
// charts (Apache ECharts, vendored: vendor/echarts/), the same figures as a table (the accessible
// alternative to the charts) and a CSV download. `mountStatistics(container)` renders into any
// element, e.g. <section id="statistics"> of the supervisor page.

import { ApiError, api, fetchFile } from './api.js';
import { specialtyOptions } from './consults.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { lang, onLangChange, t } from './i18n.js';

const ECHARTS_SRC = '/vendor/echarts/echarts.min.js';
/** How many months the period pickers start with (this month and the ones before it). */
const DEFAULT_MONTHS = 6;
/** Outcome series of the stacked bars, in stacking order; together they make `requested`. */
const OUTCOMES = ['held', 'declined', 'expired', 'cancelled', 'ended_unheld', 'open'];
const OUTCOME_COLOURS = {
  held: '#1b6e3a', declined: '#b3261e', expired: '#8a5a00', cancelled: '#5b6570',
  ended_unheld: '#9c6ade', open: '#0b5c8a',
};

let echartsLoading = null;

/** The ECharts global, loading the vendored UMD build as a classic script on first use. */
function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  echartsLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = ECHARTS_SRC;
    script.onload = () => resolve(window.echarts);
    script.onerror = () => {
      echartsLoading = null;
      reject(new Error(`could not load ${ECHARTS_SRC}`));
    };
    document.head.append(script);
  });
  return echartsLoading;
}

/** 'YYYY-MM' of the month `back` months before now (local time). */
function monthText(back = 0) {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - back);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

/** Seconds as minutes with one decimal, in the reader's language; '—' when there is none. */
function minutes(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: 1, minimumFractionDigits: 1 })
    .format(seconds / 60);
}

function percent(share) {
  if (share === null || share === undefined) return '—';
  return new Intl.NumberFormat(lang(), { style: 'percent', maximumFractionDigits: 1 }).format(share);
}

const toMinutes = (seconds) => (seconds === null || seconds === undefined ? null : +(seconds / 60).toFixed(1));

function query({ from, to, institution, specialty }) {
  const params = new URLSearchParams({ from, to });
  if (institution) params.set('institution', institution);
  if (specialty) params.set('specialty', specialty);
  return params.toString();
}

/** The file name the server proposes in Content-Disposition, or `fallback`. */
function attachmentName(response, fallback) {
  const found = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') ?? '');
  return found ? found[1] : fallback;
}

function field(id, labelKey, control) {
  const label = h('label', { for: id });
  label.dataset.i18n = labelKey;
  label.textContent = t(labelKey);
  control.id = id;
  return h('div', { class: 'stack stats-field' }, label, control);
}

/**
 * `level`: the heading level of the section's title (2 inside the supervisor page, 1 on the
 * statistics page of its own, where it is the page's heading); the charts' titles are one below.
 */
export function mountStatistics(container, { level = 2 } = {}) {
  const ui = {
    from: h('input', { type: 'month', required: true, value: monthText(DEFAULT_MONTHS - 1), dataset: { testid: 'stats-from' } }),
    to: h('input', { type: 'month', required: true, value: monthText(0), dataset: { testid: 'stats-to' } }),
    institution: h('select', { dataset: { testid: 'stats-institution' } }),
    specialty: h('select', { dataset: { testid: 'stats-specialty' } }),
    apply: h('button', { type: 'submit', class: 'primary', dataset: { testid: 'stats-apply' } }),
    download: h('button', { type: 'button', dataset: { testid: 'stats-download' } }),
    status: h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: 'stats-error' } }),
    heading: h(`h${level}`, { id: 'stats-heading' }),
    zone: h('p', { class: 'who', dataset: { testid: 'stats-timezone' } }),
    charts: {},
    table: h('table', { dataset: { testid: 'stats-table' } }),
    empty: h('p', { class: 'empty', hidden: true, dataset: { testid: 'stats-empty' } }),
    trainingHeading: h(`h${level + 1}`, { id: 'stats-trainings-heading' }),
    trainingTable: h('table', { dataset: { testid: 'stats-trainings-table' } }),
    trainingDownload: h('button', { type: 'button', dataset: { testid: 'stats-trainings-download' } }),
  };
  const form = h('form', { class: 'stats-filters', dataset: { testid: 'stats-form' } },
    field('stats-from', 'stats.from', ui.from),
    field('stats-to', 'stats.to', ui.to),
    field('stats-institution', 'stats.institution', ui.institution),
    field('stats-specialty', 'stats.specialty', ui.specialty),
    h('div', { class: 'stats-actions' }, ui.apply, ui.download));
  const chartBox = (name) => {
    const title = h(`h${level + 1}`, { id: `stats-chart-${name}-title` });
    const box = h('div', {
      class: 'stats-chart', role: 'img', 'aria-labelledby': `stats-chart-${name}-title`,
      style: 'width: 100%; height: 320px;', dataset: { testid: `stats-chart-${name}` },
    });
    ui.charts[name] = { title, box, chart: null };
    return h('figure', { class: 'stats-figure' }, title, box);
  };
  container.classList.add('card');
  container.setAttribute('aria-labelledby', 'stats-heading');
  container.replaceChildren(
    ui.heading, ui.zone, form, ui.status,
    h('div', { class: 'stats-charts', style: 'display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(22rem, 100%), 1fr));' },
      chartBox('outcomes'), chartBox('waits'), chartBox('media')),
    // A table wider than a phone scrolls sideways: focusable, so a keyboard can scroll it too.
    h('div', { class: 'table-wrap', tabindex: '0', role: 'group', 'aria-labelledby': 'stats-heading' }, ui.table),
    ui.empty,
    // Trainings (docs/statistics.md, "Trainings"): per month and attending institution.
    h('section', { class: 'stats-trainings', 'aria-labelledby': 'stats-trainings-heading' },
      ui.trainingHeading,
      h('div', { class: 'table-wrap', tabindex: '0', role: 'group', 'aria-labelledby': 'stats-trainings-heading' }, ui.trainingTable),
      h('div', { class: 'stats-actions' }, ui.trainingDownload)),
  );

  let data = null;
  let echarts = null;
  let selectedInstitution = '';

  const current = () => ({
    from: ui.from.value, to: ui.to.value,
    institution: ui.institution.value, specialty: ui.specialty.value,
  });

  function showError(err) {
    ui.status.textContent = err ? errorText(err) : '';
    ui.status.hidden = !err;
  }

  function renderFilters() {
    const chosenSpecialty = ui.specialty.value;
    ui.specialty.replaceChildren(
      new Option(t('stats.allSpecialties'), ''),
      ...specialtyOptions(),
    );
    ui.specialty.value = chosenSpecialty;
    const institutions = data?.institutions ?? [];
    ui.institution.replaceChildren(
      new Option(t('stats.allInstitutions'), ''),
      ...institutions.map((i) => new Option(i.name, String(i.id))),
    );
    ui.institution.value = selectedInstitution;
  }

  function renderText() {
    for (const el of container.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    ui.heading.textContent = t('stats.heading');
    ui.apply.textContent = t('stats.apply');
    ui.download.textContent = t('stats.download');
    ui.zone.textContent = data ? t('stats.timezone', { zone: data.timezone }) : '';
    ui.charts.outcomes.title.textContent = t('stats.chart.outcomes');
    ui.charts.waits.title.textContent = t('stats.chart.waits');
    ui.charts.media.title.textContent = t('stats.chart.media');
  }

  const COLUMNS = [
    ['month', (r) => r.month],
    ['institution', (r) => r.institution_name],
    ['specialty', (r) => (r.specialty ? t(`specialty.${r.specialty}`) : '')],
    ['requested', (r) => r.requested],
    ['held', (r) => r.held],
    ['declined', (r) => r.declined],
    ['expired', (r) => r.expired],
    ['cancelled', (r) => r.cancelled],
    ['ended_unheld', (r) => r.ended_unheld],
    ['open', (r) => r.open],
    ['time_to_accept', (r) => minutes(r.time_to_accept.median_s)],
    ['booking_to_start', (r) => minutes(r.booking_to_start.median_s)],
    ['duration', (r) => minutes(r.duration.median_s)],
    ['relay_share', (r) => percent(r.relay_share)],
    // Call quality (docs/network.md, "Quality telemetry"): '—' for consults that reported none.
    ['median_bitrate', (r) => (r.quality.median_bitrate_kbps === null ? '—' : Math.round(r.quality.median_bitrate_kbps))],
    ['audio_only_share', (r) => percent(r.quality.audio_only_share)],
    ['freezes_per_hour', (r) => (r.quality.freezes_per_hour === null ? '—' : r.quality.freezes_per_hour.toFixed(1))],
  ];

  function renderTable() {
    const rows = data?.rows ?? [];
    const head = h('thead', {}, h('tr', {}, COLUMNS.map(([name]) =>
      h('th', { scope: 'col' }, t(`stats.col.${name}`)))));
    const cells = (r, testid, dataset) => h('tr', { dataset: { testid, ...dataset } },
      COLUMNS.map(([name, value], i) => (i === 0
        ? h('th', { scope: 'row', dataset: { field: name } }, value(r))
        : h('td', { dataset: { field: name } }, value(r)))));
    const body = h('tbody', {}, rows.map((r) => cells(r, 'stats-row', {
      month: r.month, institution: String(r.institution_id), specialty: r.specialty,
    })));
    const foot = data
      ? h('tfoot', {}, cells({
        ...data.overall, month: t('stats.total'), institution_name: '', specialty: null,
      }, 'stats-total', {}))
      : null;
    ui.table.replaceChildren(h('caption', { class: 'visually-hidden' }, t('stats.tableCaption')), head, body, foot);
    ui.empty.textContent = t('stats.empty');
    ui.empty.hidden = !data || rows.length > 0;
  }

  const TRAINING_COLUMNS = [
    ['month', (r) => r.month],
    ['institution', (r) => r.institution_name],
    ['trainings', (r) => String(r.trainings)],
    ['trainees', (r) => String(r.trainees)],
    ['attendance_hours', (r) => r.attendance_hours.toFixed(2)],
  ];

  function renderTrainings() {
    ui.trainingHeading.textContent = t('stats.trainings.heading');
    ui.trainingDownload.textContent = t('stats.trainings.download');
    const trainings = data?.trainings;
    const head = h('thead', {}, h('tr', {}, TRAINING_COLUMNS.map(([name]) =>
      h('th', { scope: 'col' }, t(`stats.trainings.col.${name}`)))));
    const cells = (r, testid) => h('tr', { dataset: { testid } },
      TRAINING_COLUMNS.map(([name, value], i) => (i === 0
        ? h('th', { scope: 'row', dataset: { field: name } }, value(r))
        : h('td', { dataset: { field: name } }, value(r)))));
    const body = h('tbody', {}, (trainings?.rows ?? []).map((r) => cells(r, 'stats-trainings-row')));
    const foot = trainings
      ? h('tfoot', {}, cells({ ...trainings.overall, month: t('stats.total'), institution_name: '' }, 'stats-trainings-total'))
      : null;
    ui.trainingTable.replaceChildren(
      h('caption', { class: 'visually-hidden' }, t('stats.trainings.caption')), head, body, foot);
  }

  function chartOptions() {
    const months = data.months.map((m) => m.month);
    const base = {
      aria: { enabled: true },
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { bottom: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 84 },
      xAxis: { type: 'category', data: months },
    };
    return {
      outcomes: {
        ...base,
        yAxis: { type: 'value', minInterval: 1, name: t('stats.axis.consults') },
        series: OUTCOMES.map((name) => ({
          name: t(`stats.col.${name}`), type: 'bar', stack: 'outcomes',
          itemStyle: { color: OUTCOME_COLOURS[name] },
          data: data.months.map((m) => m[name]),
        })),
      },
      waits: {
        ...base,
        yAxis: { type: 'value', name: t('stats.axis.minutes') },
        series: [
          ['time_to_accept', '#0b5c8a'], ['booking_to_start', '#8a5a00'], ['duration', '#1b6e3a'],
        ].map(([name, color]) => ({
          name: t(`stats.median.${name}`), type: 'line', connectNulls: false, itemStyle: { color },
          data: data.months.map((m) => toMinutes(m[name].median_s)),
        })),
      },
      media: {
        ...base,
        yAxis: { type: 'value', minInterval: 1, name: t('stats.axis.held') },
        series: [['relayed', '#0b5c8a'], ['peer_to_peer', '#5fa8d3']].map(([name, color]) => ({
          name: t(`stats.col.${name}`), type: 'bar', stack: 'media', itemStyle: { color },
          data: data.months.map((m) => m[name]),
        })),
      },
    };
  }

  function renderCharts() {
    if (!echarts || !data) return;
    const options = chartOptions();
    for (const [name, slot] of Object.entries(ui.charts)) {
      slot.chart ??= echarts.init(slot.box);
      slot.chart.setOption(options[name], { notMerge: true });
    }
    container.dataset.chartsReady = 'true';
  }

  function render() {
    renderText();
    renderFilters();
    renderTable();
    renderTrainings();
    renderCharts();
  }

  async function refresh() {
    const wanted = current();
    selectedInstitution = wanted.institution;
    ui.apply.disabled = true;
    container.setAttribute('aria-busy', 'true');
    try {
      data = await api.statistics(query(wanted));
      showError(null);
      try {
        echarts ??= await loadECharts();
      } catch (err) {
        showError(new ApiError(0, 'charts_unavailable', t('stats.chartsUnavailable')));
      }
      render();
      container.dataset.loaded = `${data.from_month}..${data.to_month}`;
    } catch (err) {
      showError(err);
    } finally {
      ui.apply.disabled = false;
      container.removeAttribute('aria-busy');
    }
  }

  async function downloadCsv(button = ui.download, path = '/api/statistics.csv') {
    button.disabled = true;
    try {
      const response = await fetchFile(`${path}?${query(current())}`);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: attachmentName(response, path.split('/').pop()), hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      showError(null);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    refresh();
  });
  ui.download.addEventListener('click', () => downloadCsv());
  ui.trainingDownload.addEventListener('click', () => downloadCsv(ui.trainingDownload, '/api/statistics/trainings.csv'));
  const resize = () => { for (const slot of Object.values(ui.charts)) slot.chart?.resize(); };
  window.addEventListener('resize', resize);
  onLangChange(render);
  renderText();
  renderFilters();
  renderTrainings();
  return { ready: refresh(), refresh, resize };
}
