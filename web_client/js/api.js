// REST client for /api/*: JSON in, JSON out, errors become ApiError with the server's code.

import { getToken, goToLogin } from './session.js';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The Authorization header for the signed-in user, or none. */
export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * An error answer as ApiError with the server's code (`data`: its parsed JSON body, if any).
 * An expired or revoked token means nothing on this page can work any more: sign in again.
 */
export function apiError(status, data, message, path = '') {
  const code = data?.code ?? `http_${status}`;
  if (status === 401 && path !== '/api/auth/login') {
    goToLogin(code === 'token_expired' ? 'expired' : 'invalid');
  }
  return new ApiError(status, code, data?.message ?? message, data?.details);
}

async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network_error', String(err?.message ?? err));
  }
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await send(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Empty or non-JSON body (e.g. a proxy's HTML error page); the status code still tells.
  }
  if (!response.ok) throw apiError(response.status, data, response.statusText, path);
  return data;
}

/** GET a file (not JSON) with the bearer token: the Response, or ApiError with the server's code. */
export async function fetchFile(path) {
  const response = await send(path, { headers: authHeaders() });
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { /* not JSON */ }
    throw apiError(response.status, data, response.statusText);
  }
  return response;
}

const post = (path, body = {}) => request('POST', path, body);
const consultPath = (id, action = '') =>
  `/api/consults/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

export const api = {
  login: (username, password) => post('/api/auth/login', { username, password }),
  me: () => request('GET', '/api/me'),
  specialists: (specialty) =>
    request('GET', `/api/specialists?specialty=${encodeURIComponent(specialty)}`),
  /** Active specialists of every specialty: colleagues to invite into a consult. */
  allSpecialists: () => request('GET', '/api/specialists'),
  invite: (id, specialistId) => post(consultPath(id, 'invitations'), { specialist_id: specialistId }),
  /** Withdraw an invitation (the assigned specialist) or decline one's own (the invitee). */
  removeInvitation: (id, userId) =>
    request('DELETE', consultPath(id, `invitations/${encodeURIComponent(userId)}`)),
  consults: () => request('GET', '/api/consults'),
  /** Supervisors/admins: `params` is a URLSearchParams of the filters (docs/supervisor-review.md). */
  searchConsults: (params) => request('GET', `/api/consults?${params}`),
  institutions: () => request('GET', '/api/institutions'),
  /** A consult for review, with its timeline (the server audits the viewing). */
  review: (id) => request('GET', consultPath(id, 'review')),
  /** A consult's call quality, aligned with its review timeline (supervisors/admins). */
  quality: (id) => request('GET', consultPath(id, 'quality')),
  comments: (id) => request('GET', consultPath(id, 'comments')),
  addComment: (id, text, timelineS) =>
    post(consultPath(id, 'comments'), timelineS === null ? { text } : { text, timeline_s: timelineS }),
  audit: (id) => request('GET', consultPath(id, 'audit')),
  consult: (id) => request('GET', consultPath(id)),
  book: (booking) => post('/api/consults', booking),
  intakeForms: () => request('GET', '/api/intake-forms'),
  accept: (id) => post(consultPath(id, 'accept')),
  decline: (id, reason) => post(consultPath(id, 'decline'), { reason }),
  cancel: (id, reason) => post(consultPath(id, 'cancel'), { reason }),
  /** End for everybody; `skip`: the assigned specialist ends without a conclusion on purpose. */
  end: (id, conclusion, skip = false) =>
    post(consultPath(id, 'end'), skip ? { conclusion, skip_conclusion: true } : { conclusion }),
  conclusionDraft: (id) => request('GET', consultPath(id, 'conclusion-draft')),
  saveConclusionDraft: (id, text) => request('PUT', consultPath(id, 'conclusion-draft'), { text }),
  recordings: (id) => request('GET', consultPath(id, 'recordings')),
  /** The consult's recordings and notes on one timeline, for the synced player. */
  playbackTimeline: (id) => request('GET', consultPath(id, 'playback')),
  notes: (id) => request('GET', consultPath(id, 'notes')),
  attachments: (id) => request('GET', consultPath(id, 'attachments')),
  /** A short-lived link to the recording's file, for a <video>/<audio> src. */
  playback: (recordingId) => post(`/api/recordings/${encodeURIComponent(recordingId)}/playback`),
  notices: (id) => request('GET', consultPath(id, 'notices')),
  vapidPublicKey: () => request('GET', '/api/push/vapid-public-key'),
  subscribePush: (subscription) => post('/api/push/subscriptions', subscription),
  /** `query`: the period and filters as a query string (docs/statistics.md). */
  statistics: (query) => request('GET', `/api/statistics?${query}`),
  shifts: (from, to) => request('GET',
    `/api/roster/shifts?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
  addShift: (shift) => post('/api/roster/shifts', shift),
  removeShift: (id) => request('DELETE', `/api/roster/shifts/${encodeURIComponent(id)}`),
  // ---- trainings (docs/training.md) ----
  training: (id) => request('GET', `/api/trainings/${encodeURIComponent(id)}`),
  trainings: () => request('GET', '/api/trainings?status=live&status=scheduled&status=ended'),
  /** Admission to watch: the signed viewer URL prefix and which playlist to play. */
  admitToTraining: (id) => post(`/api/trainings/${encodeURIComponent(id)}/admission`),
  trainingIceServers: (id) => request('GET', `/api/trainings/${encodeURIComponent(id)}/ice-servers`),
  broadcastTraining: (id, offer) => post(`/api/trainings/${encodeURIComponent(id)}/broadcast`, offer),
  endTraining: (id) => post(`/api/trainings/${encodeURIComponent(id)}/end`),
  /** The player plays the live training: attendance (every `next_beat_s`). */
  trainingHeartbeat: (id) => post(`/api/trainings/${encodeURIComponent(id)}/heartbeat`),
};
