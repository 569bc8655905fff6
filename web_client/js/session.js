// Who is signed in: the JWT lives in sessionStorage (per tab, gone when the tab closes, never
// sent automatically like a cookie), plus the demo-link fragment `#token=…&consult=…`. A page
// opened without a token (a new tab, an expired session) sends the user to sign in with
// `?next=<this page>`, and signing in returns there (returnTo() allows only our own pages).

const TOKEN_KEY = 'teleconsult.token';

/** The page each role works on. */
export const HOME = {
  exam_room_doctor: '/exam-room.html',
  specialist: '/specialist.html',
  supervisor: '/supervisor.html',
  admin: '/admin.html',
  trainee: '/training.html',
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

/**
 * Pages a sign-in may return to (`?next=`): our own pages, with at most a consult id in the
 * query or the fragment. Anything else (another origin, `//host`, a token in the fragment) is
 * not a place to return to, and the user goes to their home page instead.
 */
const RETURNABLE = /^\/(exam-room|specialist|supervisor|admin|review|statistics|consult-record)\.html(\?consult=[0-9a-f]{32})?(#consult=[0-9a-f]{32})?$/;

/** `next` if it is one of our pages to return to after signing in, else null. */
export function returnTo(next) {
  return typeof next === 'string' && RETURNABLE.test(next) ? next : null;
}

/** This page, as a place to come back to after signing in (null if it is none); `consult`:
 * the consult its fragment named, if takeLinkFragment() has wiped the fragment already. */
function here(consult = new URLSearchParams(location.hash.slice(1)).get('consult')) {
  const fragment = consult ? `#consult=${consult}` : ''; // never a token
  return returnTo(location.pathname + location.search + fragment);
}

/**
 * Send the user to the sign-in page; `reason` becomes a message there (e.g. "expired"). The
 * page they were on goes along as `?next=`, and signing in brings them back to it (a record
 * link opened in a new tab, a notification's deep link, a session that expired mid-work).
 */
export function goToLogin(reason, consult = undefined) {
  // Once per page: a second trip (say, a request still on its way coming back 401 while the
  // sign-in page loads) would abort the first navigation and replace the reason the user is
  // shown. Marked on the document, not in this module, so that every copy of the module in the
  // page (a bundle, and a module loaded beside it) sees it.
  const root = document.documentElement;
  if (root.dataset.leaving === 'sign-in') return;
  root.dataset.leaving = 'sign-in';
  clearSession();
  const query = new URLSearchParams();
  if (reason) query.set('session', reason);
  const next = here(consult);
  if (next) query.set('next', next);
  const search = query.toString();
  location.replace(search ? `/?${search}` : '/');
}
