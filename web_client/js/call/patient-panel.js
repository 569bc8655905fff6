// The patient's record during the call, one tap from the call bar: who the patient is, the
// reason for the consult, the intake answers and the attachments (read through the same
// permission-checked APIs as the consult cards: GET /api/consults/{id}/attachments …).

import { freshAttachmentsSection } from '../attachments.js';
import { detailRow, patientLine } from '../consults.js';
import { h } from '../dom.js';
import { onLangChange, t } from '../i18n.js';
import { intakeSection, loadIntakeForms } from '../intake.js';

export class PatientPanel {
  constructor() {
    this.consult = null;
    this.attachments = null; // {consultId, root}: loaded when first opened for a consult
    this.title = h('h2', { id: 'patient-title' });
    this.body = h('div', { class: 'patient-body' });
    this.closeButton = h('button', {
      type: 'button', class: 'primary', dataset: { testid: 'patient-close' }, onclick: () => this.dialog.close(),
    });
    this.dialog = h('dialog', {
      class: 'patient-drawer', 'aria-labelledby': 'patient-title', dataset: { testid: 'patient-panel' },
    }, h('div', { class: 'drawer-head' }, this.title, this.closeButton), this.body);
    // A tap on the backdrop closes it, as a drawer does.
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.dialog.close(); });
    onLangChange(() => this.render());
  }

  setConsult(consult) {
    this.consult = consult;
    if (this.dialog.open) this.render();
  }

  async open() {
    const c = this.consult;
    if (!c) return;
    if (this.attachments?.consultId !== c.id) this.attachments = { consultId: c.id, root: freshAttachmentsSection(c.id) };
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    this.closeButton.focus();
    // Labels and units of the intake come with the forms; the answers show without them.
    try {
      await loadIntakeForms();
      if (this.dialog.open) this.render();
    } catch {
      // raw field names it is
    }
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  render() {
    const c = this.consult;
    this.title.textContent = t('patient.heading');
    this.closeButton.textContent = t('patient.close');
    if (!c) return;
    this.body.replaceChildren(
      h('dl', { class: 'patient-facts' },
        detailRow('consult.patient', patientLine(c.patient, { withName: true })),
        detailRow('consult.specialty', t(`specialty.${c.specialty}`)),
        h('dt', {}, t('consult.reason')), h('dd', { dataset: { testid: 'patient-reason' } }, c.reason),
        detailRow('consult.summary', c.patient.summary),
        detailRow('consult.requester', `${c.requesting_institution.name} · ${c.requesting_doctor.display_name}`)),
      intakeSection(c, { level: 3 }) ?? h('p', { class: 'empty' }, t('record.noIntake')),
      this.attachments?.root ?? null);
  }
}
