// Turn an ApiError / SignalingError into a sentence in the user's language.

import { has, t } from './i18n.js';

export function errorText(err) {
  const code = err?.code;
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  return err?.message || t('error.unknown');
}
