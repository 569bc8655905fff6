// "Enable phone notifications": registers the service worker, subscribes this browser with the
// server's VAPID key and hands the subscription to the server. Every way this can fail (no
// service worker or Push API, permission refused, a browser without a push service) ends in a
// clear message; the page keeps working with live updates while it is open.

import { api } from './api.js';
import { h, say } from './dom.js';
import { errorText } from './errors.js';
import { onLangChange, t } from './i18n.js';

function urlBase64ToBytes(text) {
  const padded = text + '='.repeat((4 - (text.length % 4)) % 4);
  const raw = atob(padded.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** Why this browser cannot get pushes at all, or null if it might. */
function unsupportedReason() {
  if (!window.isSecureContext) return 'push.insecure';
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    return 'push.unsupported';
  }
  return null;
}

async function subscribe() {
  const reason = unsupportedReason();
  if (reason) return { key: reason, kind: 'error' };
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') return { key: 'push.denied', kind: 'error' };
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await navigator.serviceWorker.ready;
  const { public_key: key } = await api.vapidPublicKey();
  let subscription;
  try {
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: urlBase64ToBytes(key),
    });
  } catch (err) {
    return { key: 'push.failed', params: { reason: err?.message ?? String(err) }, kind: 'error' };
  }
  await api.subscribePush(subscription.toJSON());
  return { key: 'push.enabled', kind: 'ok' };
}

/** The control and its message line, for the specialist page's header area. */
export function pushControl() {
  const message = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', hidden: true,
    dataset: { testid: 'push-message' } });
  let shown = null;
  const show = (result) => {
    shown = result;
    say(message, result ? t(result.key, result.params) : '', result?.kind);
  };
  onLangChange(() => show(shown));
  const button = h('button', { type: 'button', dataset: { testid: 'push-enable', i18n: 'push.enable' },
    onclick: async () => {
      button.disabled = true;
      try {
        show(await subscribe());
      } catch (err) {
        shown = null;
        say(message, t('push.failed', { reason: errorText(err) }), 'error');
      } finally {
        button.disabled = false;
      }
    } }, t('push.enable'));
  return h('div', { class: 'push-control' }, button, message);
}
