// Service worker: shows the server's Web Push notifications and opens their page on a tap.
// Served from the site root so its scope covers every page. The payload (JSON) carries no
// patient data — only the specialty and the kind of notice — since it can show on a locked
// phone; the page it opens shows the details after sign-in.

const zh = () => (self.navigator?.language ?? 'zh-CN').toLowerCase().startsWith('zh');

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const title = (zh() ? data.title : data.title_en) || data.title || '远程会诊 Teleconsult';
  let body = (zh() ? data.body : data.body_en) || data.body || '';
  if (data.scheduled_at) {
    // A reminder: the scheduled time in the phone's own time zone and language.
    const when = new Date(data.scheduled_at);
    if (!Number.isNaN(when.getTime())) {
      body += ` ${new Intl.DateTimeFormat(zh() ? 'zh-CN' : 'en', { dateStyle: 'short', timeStyle: 'short' }).format(when)}`;
    }
  }
  // Only our own pages: a path on this origin.
  const url = typeof data.url === 'string' && data.url.startsWith('/') ? data.url : '/';
  event.waitUntil(self.registration.showNotification(title, {
    body,
    tag: data.consult_id ? `consult-${data.consult_id}-${data.kind}` : undefined,
    data: { url },
    requireInteraction: data.kind === 'notify' || data.kind === 'next_on_duty',
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url ?? '/', self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if (client.url === target && 'focus' in client) return client.focus();
    }
    for (const client of windows) {
      if (new URL(client.url).pathname === new URL(target).pathname && 'navigate' in client) {
        await client.navigate(target);
        return client.focus();
      }
    }
    return self.clients.openWindow(target);
  })());
});
