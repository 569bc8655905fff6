// Who is signed in: the JWT lives in sessionStorage (per tab, gone when the tab closes, never
// sent automatically like a cookie), plus the demo-link fragment `#token=…&consult=…`.

const TOKEN_KEY = 'teleconsult.token';

/** The page each role works on. */
export const HOME = {
  exam_room_doctor: '/exam-room.html',
  specialist: '/specialist.html',
  supervisor: '/supervisor.html',
  admin: '/admin.html',
};

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearSession() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Read `#token=<jwt>&consult=<id>` from a demo/invitation link, keep the token, and wipe the
 * fragment from the address bar and history so the token is not left on screen, in
 * bookmarks or in a shared screenshot. Returns the consult id to join, if any.
 */
export function takeLinkFragment() {
  if (!location.hash || location.hash.length < 2) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  const consult = params.get('consult');
  if (!token && !consult) return null;
  if (token) setToken(token);
  history.replaceState(history.state, '', location.pathname + location.search);
  return consult && /^[0-9a-f]{32}$/.test(consult) ? consult : null;
}

/** Send the user to the sign-in page; `reason` becomes a message there (e.g. "expired"). */
export function goToLogin(reason) {
  clearSession();
  location.replace(reason ? `/?session=${encodeURIComponent(reason)}` : '/');
}
