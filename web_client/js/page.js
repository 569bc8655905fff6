// What every signed-in page does first: translate, check who is signed in (and on the right
// page), wire the header, open the socket and report connection trouble.

import { mark as markTiming } from './timings.js';
import { h } from './dom.js';
import { initI18n, onLangChange, t } from './i18n.js';
import { startPage } from './page-start.js';
import { HOME, clearSession, goToLogin } from './session.js';

markTiming('script');

/** A promise that never settles: the page is navigating away, nothing more should run. */
const leaving = () => new Promise(() => {});

/** Codes in connect_error.data that mean the token itself is no good: sign in again. */
const TOKEN_REFUSALS = new Set(['token_missing', 'token_expired', 'token_invalid', 'token_wrong_audience']);

/**
 * `anyRole`: the page serves every role (e.g. the printable consult record) instead of sending
 * each user to the page of their role; `alsoFor`: roles this page serves besides its own
 * (admins open the supervisor page from their roster page).
 */
export async function bootPage({ socket: wantSocket = true, anyRole = false, alsoFor = [] } = {}) {
  initI18n();
  // Begun already on a call page (call-link.js), while this page's modules were loading.
  const { consultToJoin, token, socket: opened, me } = startPage({ socket: wantSocket });
  if (!token || !me) {
    goToLogin(undefined, consultToJoin ?? undefined);
    return leaving();
  }
  // The socket connects while the token is checked: neither waits for the other (a refused
  // token closes both ways to the sign-in page).
  const socket = wantSocket ? opened : null;
  if (socket) watchConnection(socket);
  let user;
  try {
    user = await me;
    markTiming('token');
  } catch (err) {
    socket?.disconnect();
    if (err.status !== 401) showFatal(err);
    return leaving();
  }
  const home = HOME[user.role];
  if (home && home !== location.pathname && !anyRole && !alsoFor.includes(user.role)) {
    socket?.disconnect();
    location.replace(home);
    return leaving();
  }

  const who = document.querySelector('[data-testid="user-name"]');
  if (who) who.textContent = `${user.display_name} · ${user.institution_name}`;

  document.querySelector('[data-testid="logout-button"]')?.addEventListener('click', () => {
    socket?.disconnect();
    clearSession();
    location.assign('/');
  });
  return { user, socket, consultToJoin };
}

function watchConnection(socket) {
  const banner = h('p', { class: 'connection-banner', role: 'alert', hidden: true, dataset: { testid: 'connection-banner' } });
  document.querySelector('header')?.after(banner);
  let key = null;
  const show = (k) => {
    key = k;
    banner.textContent = k ? t(k) : '';
    banner.hidden = !k;
  };
  onLangChange(() => show(key));
  // Exposed on <html data-socket> for styles and for tests that must know the page is live.
  const mark = (state) => { document.documentElement.dataset.socket = state; };
  let sessionEnded = false;
  socket.on('connect', () => { mark('connected'); markTiming('socket_connected'); show(null); });
  if (socket.connected) mark('connected'); // it connected while the page's modules loaded
  // The server is about to close this socket: the token expired or the user was disabled. Do
  // not reconnect; sign in again, with the reason shown there.
  socket.on('session-ended', (p) => {
    sessionEnded = true;
    socket.disconnect();
    goToLogin(typeof p?.code === 'string' ? p.code : 'invalid');
  });
  socket.on('connect_error', (err) => {
    const code = err?.data?.code;
    if (TOKEN_REFUSALS.has(code)) goToLogin(code === 'token_expired' ? 'expired' : 'invalid');
    else show('connection.lost');
  });
  socket.on('disconnect', (reason) => {
    mark('disconnected');
    show('connection.lost');
    // socket.io retries by itself except when the server closed the connection on purpose;
    // try once more then, and the handshake tells us (connect_error) if the token is the cause.
    if (reason === 'io server disconnect' && !sessionEnded) setTimeout(() => socket.connect(), 1000);
  });
}

function showFatal(err) {
  const main = document.querySelector('main');
  main?.replaceChildren(h('p', { class: 'error', role: 'alert', dataset: { testid: 'page-error' } },
    t('error.loadFailed', { reason: err?.message ?? '' })));
}
