// Attachments of a consult (ultrasound stills, images, PDF): uploading them after a booking,
// one file at a time with its own progress and error (and a retry), and showing them on
// consult cards: image thumbnails and a link that opens a PDF.
//
// The bytes are served only with the bearer token, which an <img src> or a plain link cannot
// send, so they are fetched with the Authorization header into a blob: URL. Every fetch is
// audited by the server (attachment.viewed), so each file is fetched at most once per page, and
// a thumbnail only once it is on screen.

import { ApiError, api, apiError, authHeaders, fetchFile } from './api.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { lang, onLangChange, t } from './i18n.js';

/** What the file input offers; the server decides by the content, not by these. */
export const ACCEPT = 'image/png,image/jpeg,image/webp,application/pdf,.png,.jpg,.jpeg,.webp,.pdf';

const isImage = (a) => a.media_type.startsWith('image/');

export function sizeText(bytes) {
  const fmt = (n) => new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(n);
  if (bytes < 1024) return t('attachments.bytes', { n: fmt(bytes) });
  if (bytes < 1024 * 1024) return t('attachments.kib', { n: fmt(bytes / 1024) });
  return t('attachments.mib', { n: fmt(bytes / 1024 / 1024) });
}

/**
 * Upload one file to a consult (multipart, field "file"); resolves with the attachment.
 * XMLHttpRequest rather than fetch, because only it reports upload progress.
 */
function uploadAttachment(consultId, file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/consults/${encodeURIComponent(consultId)}/attachments`);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status === 201) {
        resolve(JSON.parse(xhr.responseText));
      } else {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        reject(apiError(xhr.status, data, String(xhr.status)));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'network error'));
    const body = new FormData();
    body.append('file', file, file.name);
    xhr.send(body);
  });
}

const blobs = new Map(); // attachment id → Promise<blob: URL>

/** The attachment's bytes as a blob: URL (fetched once per page, with the bearer token). */
function attachmentUrl(attachment) {
  let url = blobs.get(attachment.id);
  if (!url) {
    url = fetchFile(attachment.content_url)
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => blobs.delete(attachment.id)); // a failed fetch may be tried again
    blobs.set(attachment.id, url);
  }
  return url;
}

/** Open a PDF (or an image full size) in a new tab: the tab opens on the click, the bytes follow. */
async function openInTab(attachment, problem) {
  const tab = window.open('', '_blank');
  if (!tab) {
    problem.textContent = t('attachments.popupBlocked');
    problem.hidden = false;
    return;
  }
  try {
    tab.location.href = await attachmentUrl(attachment);
    problem.hidden = true;
  } catch (err) {
    tab.close();
    problem.textContent = t('attachments.openFailed', { reason: errorText(err) });
    problem.hidden = false;
  }
}

// A thumbnail's bytes are fetched when it first comes into view: a long list (a supervisor's)
// does not download, and audit as viewed, every image it holds.
const pending = new WeakMap(); // <img> → attachment
const onScreen = new IntersectionObserver((entries) => {
  for (const { isIntersecting, target } of entries) {
    if (!isIntersecting || !pending.has(target)) continue;
    const attachment = pending.get(target);
    pending.delete(target);
    onScreen.unobserve(target);
    attachmentUrl(attachment).then(
      (url) => { target.src = url; },
      () => { target.replaceWith(h('span', { class: 'attachment-broken', role: 'img', 'aria-label': attachment.file_name }, '⚠')); },
    );
  }
}, { rootMargin: '200px' });

function thumbnail(attachment) {
  const img = h('img', {
    class: 'attachment-thumb', alt: attachment.file_name,
    dataset: { testid: 'attachment-thumbnail' },
  });
  pending.set(img, attachment);
  onScreen.observe(img);
  return img;
}

function attachmentItem(attachment) {
  const problem = h('p', { class: 'error', role: 'alert', hidden: true, dataset: { testid: 'attachment-error' } });
  const open = h('a', {
    href: attachment.content_url, class: 'attachment-open', target: '_blank', rel: 'noopener',
    dataset: { testid: 'attachment-open' },
    onclick: (e) => { e.preventDefault(); openInTab(attachment, problem); },
  }, isImage(attachment) ? thumbnail(attachment) : h('span', { class: 'attachment-pdf', 'aria-hidden': 'true' }, 'PDF'),
  h('span', { class: 'attachment-name' }, attachment.file_name));
  return h('li', {
    class: 'attachment-item',
    dataset: { testid: 'attachment-item', attachmentId: attachment.id, mediaType: attachment.media_type },
  },
  open,
  h('span', { class: 'attachment-size' }, `${isImage(attachment) ? t('attachments.image') : t('attachments.pdf')} · ${sizeText(attachment.bytes)}`),
  problem);
}

/** One section per consult, kept across re-renders of the list it sits in. */
const sections = new Map(); // consult id → AttachmentsSection

class AttachmentsSection {
  constructor(consultId, load) {
    this.consultId = consultId;
    this.attachments = null; // null = not loaded (yet)
    this.items = new Map(); // attachment id → <li> (kept, so thumbnails are fetched once)
    this.problem = null;
    this.heading = h('h4', { class: 'attachments-heading' });
    this.list = h('ul', { class: 'attachment-list', dataset: { testid: 'attachment-list' } });
    this.message = h('p', { class: 'empty', hidden: true, dataset: { testid: 'attachments-message' } });
    this.root = h('section', { class: 'attachments', dataset: { testid: 'attachments', consultId } },
      this.heading, this.message, this.list);
    onLangChange(() => this.render(true));
    if (load) this.load();
    else this.render();
  }

  async load() {
    try {
      const { attachments } = await api.attachments(this.consultId);
      const known = new Set((this.attachments ?? []).map((a) => a.id));
      this.attachments = [...(this.attachments ?? []), ...attachments.filter((a) => !known.has(a.id))];
      this.problem = null;
    } catch (err) {
      this.problem = err.status === 403 ? t('attachments.forbidden') : t('attachments.loadFailed', { reason: errorText(err) });
    }
    this.render();
  }

  add(attachment) {
    this.attachments ??= [];
    if (this.attachments.some((a) => a.id === attachment.id)) return;
    this.attachments.push(attachment);
    this.render();
  }

  render(relabel = false) {
    if (relabel) this.items.clear(); // sizes and labels are in the page's language
    const list = this.attachments ?? [];
    this.heading.textContent = t('attachments.heading', { count: list.length });
    this.message.textContent = this.problem ?? '';
    this.message.hidden = !this.problem;
    this.root.hidden = !this.problem && list.length === 0;
    this.list.replaceChildren(...list.map((a) => {
      let item = this.items.get(a.id);
      if (!item) {
        item = attachmentItem(a);
        this.items.set(a.id, item);
      }
      return item;
    }));
  }
}

/** The attachments of a consult card: loaded once, then kept current by `attachmentAdded`. */
export function attachmentsSection(consultId) {
  let section = sections.get(consultId);
  if (!section) {
    section = new AttachmentsSection(consultId, true);
    sections.set(consultId, section);
  }
  return section.root;
}

/** The attachments of a consult loaded afresh, for a second place that shows them (the patient
 * panel of the call) while its card keeps its own section. */
export function freshAttachmentsSection(consultId) {
  return new AttachmentsSection(consultId, true).root;
}

/** An `attachment-added` event: show it on the consult's card, if the page shows that consult. */
export function attachmentAdded({ consult_id: consultId, attachment }) {
  if (!consultId || !attachment) return;
  const section = sections.get(consultId);
  if (section) section.add(attachment);
}

const adders = new Map(); // consult id → the card's "add files" control (kept across re-renders)

/**
 * "Add files" on an exam-room card of a consult that is not finished: a file input and its own
 * upload list (progress, refusal, retry), for files forgotten at booking or refused then.
 */
export function attachmentAdder(consult) {
  let adder = adders.get(consult.id);
  if (!adder) {
    const id = `add-files-${consult.id}`;
    const list = h('ul', { class: 'upload-list', hidden: true, dataset: { testid: 'card-upload-list' } });
    const queue = new UploadQueue(list);
    const label = h('label', { for: id, class: 'button-like', dataset: { i18n: 'attachments.add' } }, t('attachments.add'));
    const input = h('input', {
      id, type: 'file', multiple: true, accept: ACCEPT, class: 'visually-hidden',
      dataset: { testid: 'card-add-files' },
      onchange: () => {
        const files = [...input.files];
        input.value = ''; // the same file may be chosen again
        if (files.length) queue.add(consult.id, files, consult.patient.name);
      },
    });
    onLangChange(() => { label.textContent = t('attachments.add'); });
    adder = h('div', { class: 'attachment-adder' }, label, input, list);
    adders.set(consult.id, adder);
  }
  return adder;
}

/**
 * The booking form's upload list: each chosen file uploads after the booking succeeded, one at
 * a time, with its own progress bar and result; a refused or failed file keeps a retry button
 * (the booking itself stands either way).
 */
export class UploadQueue {
  constructor(list, onUploaded = () => {}) {
    this.list = list;
    this.onUploaded = onUploaded;
    this.jobs = [];
    this.running = Promise.resolve();
    onLangChange(() => this.jobs.forEach((job) => this.show(job)));
  }

  /** Queue `files` (a FileList or array) for `consultId`; resolves when they have all been tried. */
  add(consultId, files, patientName) {
    for (const file of files) {
      const job = { consultId, file, patientName, state: 'waiting', fraction: 0, error: null };
      job.progress = h('progress', { max: 1, value: 0, dataset: { testid: 'upload-progress' } });
      job.status = h('span', { class: 'upload-status', role: 'status', dataset: { testid: 'upload-status' } });
      job.retry = h('button', {
        type: 'button', hidden: true, dataset: { testid: 'upload-retry' },
        onclick: () => this.start(job),
      });
      job.row = h('li', { class: 'upload-item', dataset: { testid: 'upload-item', state: job.state } },
        h('span', { class: 'upload-name' }, file.name), job.progress, job.status, job.retry);
      this.list.append(job.row);
      this.jobs.push(job);
      this.start(job);
    }
    this.list.hidden = this.jobs.length === 0;
    return this.running;
  }

  start(job) {
    job.state = 'waiting';
    job.error = null;
    this.show(job);
    // One upload at a time: files go in the order they were chosen.
    this.running = this.running.then(() => this.upload(job));
    return this.running;
  }

  async upload(job) {
    job.state = 'uploading';
    job.fraction = 0;
    this.show(job);
    try {
      const attachment = await uploadAttachment(job.consultId, job.file, (fraction) => {
        job.fraction = fraction;
        job.progress.value = fraction;
      });
      job.state = 'done';
      job.fraction = 1;
      attachmentAdded({ consult_id: job.consultId, attachment });
      this.onUploaded(attachment);
    } catch (err) {
      job.state = 'failed';
      job.error = err;
    }
    this.show(job);
  }

  show(job) {
    job.row.dataset.state = job.state;
    job.progress.value = job.fraction;
    job.progress.hidden = job.state === 'failed';
    job.progress.setAttribute('aria-label', t('attachments.progressOf', { name: job.file.name }));
    const texts = {
      waiting: t('attachments.waiting'),
      uploading: t('attachments.uploading'),
      done: t('attachments.uploaded', { patient: job.patientName }),
      failed: job.error ? t('attachments.failed', { reason: errorText(job.error) }) : '',
    };
    job.status.textContent = texts[job.state];
    job.status.dataset.kind = job.state === 'failed' ? 'error' : job.state === 'done' ? 'ok' : 'info';
    job.retry.textContent = t('attachments.retry');
    job.retry.hidden = job.state !== 'failed';
  }
}
