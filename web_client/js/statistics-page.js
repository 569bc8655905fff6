// statistics.html: the consult statistics on a page of their own (supervisors and admins). The
// supervisor page mounts the same module into its own <section id="statistics">.

import { $, h } from './dom.js';
import { t } from './i18n.js';
import { bootPage } from './page.js';
import { mountStatistics } from './statistics.js';

/** Roles the permission table gives view_statistics (rooms/permissions.py). */
const MAY_VIEW = new Set(['supervisor', 'admin']);

const { user } = await bootPage({ socket: false, anyRole: true });
const section = $('#statistics');
if (MAY_VIEW.has(user.role)) {
  mountStatistics(section, { level: 1 });
} else {
  section.replaceChildren(h('p', { class: 'error', role: 'alert', dataset: { testid: 'statistics-forbidden' } },
    t('statistics.forbidden')));
}
