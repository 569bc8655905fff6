// Sign-in page: username/password → token in sessionStorage → the page the user was sent
// here from (`?next=`, our own pages only), else the page for the user's role.

import { api } from './api.js';
import { $, say } from './dom.js';
import { errorText } from './errors.js';
import { has, initI18n, onLangChange, t } from './i18n.js';
import { HOME, getToken, returnTo, setToken } from './session.js';

initI18n();

const form = $('[data-testid="login-form"]');
const errorLine = $('[data-testid="login-error"]');
const notice = $('[data-testid="login-notice"]');

// Why we are here, if another page sent us back: ?session=expired|invalid, or the code of the
// server's `session-ended` (token_expired, user_disabled).
const SAME_AS = { token_expired: 'expired', token_invalid: 'invalid' };
const given = new URLSearchParams(location.search).get('session') ?? '';
const why = SAME_AS[given] ?? given;
// The page that sent us here (a deep link opened without a session): back there after signing in.
const next = returnTo(new URLSearchParams(location.search).get('next'));
const destination = (user) => next ?? HOME[user.role] ?? '/';
const showNotice = () => {
  if (/^\w+$/.test(why) && has(`login.session.${why}`)) say(notice, t(`login.session.${why}`), 'warn');
};
showNotice();
onLangChange(showNotice);

let lastError = null;
onLangChange(() => lastError && say(errorLine, errorText(lastError), 'error'));

// Already signed in in this tab: go straight to work.
if (getToken()) {
  api.me().then((user) => location.replace(destination(user)), () => {});
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    lastError = { code: 'credentials_missing' };
    say(errorLine, errorText(lastError), 'error');
    return;
  }
  const submit = $('[data-testid="login-submit"]');
  submit.disabled = true;
  say(errorLine, '');
  lastError = null;
  try {
    const { token, user } = await api.login(username, password);
    setToken(token);
    location.assign(destination(user));
  } catch (err) {
    lastError = err;
    say(errorLine, errorText(err), 'error');
    submit.disabled = false;
  }
});
// The static page starts with the button disabled, so that a click before this module ran
// cannot submit the form natively (its fields in the address); ready now.
form.querySelector('[type="submit"]').disabled = false;
