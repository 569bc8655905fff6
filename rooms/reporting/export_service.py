"""Export use case: a consult's record as a FHIR R4 Bundle, permission-checked and audited."""

from __future__ import annotations

from typing import Any

from rooms.calls.ports import RecordingStore
from rooms.calls.recordings import Recording, RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.institutions import InstitutionTree
from rooms.consults.people import User
from rooms.consults.permissions import Action, ensure_permitted
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, load_consult, utc_now
from rooms.records.ports import AttachmentStore, NoteStore
from rooms.reporting.fhir import consult_bundle


class ExportService:
    """Builds the FHIR export of one consult for a user the permission table allows.

    `recordings` is None on a server that does not record: the bundle then has no
    DocumentReferences.
    """

    def __init__(
        self,
        store: ConsultStore,
        recordings: RecordingStore | None,
        clock: Clock = utc_now,
        notes: NoteStore | None = None,
        attachments: AttachmentStore | None = None,
    ) -> None:
        self.store = store
        self.recordings = recordings
        self.clock = clock
        self.notes = notes
        self.attachments = attachments

    async def fhir_bundle(
        self, user: User, consult_id: str, base_url: str, identity: str | None = None
    ) -> dict[str, Any]:
        """The consult as a FHIR Bundle; the export itself is audited (`consult.exported`)
        before the bundle is built, so the bundle's audit trail includes it. `identity` names
        its identifiers (see `consult_bundle`), `base_url` its links."""
        consult = await load_consult(self.store, consult_id)
        institutions = await self.store.institutions()
        ensure_permitted(user, Action.EXPORT_CONSULT, consult, InstitutionTree(institutions))
        now = self.clock()
        await self.store.append_audit(
            AuditEntry(
                at=now,
                actor_id=user.id,
                action="consult.exported",
                consult_id=consult.id,
                detail={"format": "fhir-r4"},
            )
        )
        recordings: list[Recording] = []
        if self.recordings is not None:
            recordings = [
                r
                for r in await self.recordings.list_recordings(consult.id)
                if r.status is RecordingStatus.READY
            ]
        notes = await self.notes.list_notes(consult.id) if self.notes is not None else []
        attached = (
            await self.attachments.list_attachments(consult.id)
            if self.attachments is not None
            else []
        )
        audit = await self.store.audit_trail(consult.id)
        user_ids = {consult.requesting_doctor_id, *(r.participant_id for r in recordings)}
        user_ids.update(n.author_id for n in notes)
        user_ids.update(a.uploader_id for a in attached)
        user_ids.update(e.actor_id for e in audit if e.actor_id is not None)
        if consult.specialist_id is not None:
            user_ids.add(consult.specialist_id)
        user_ids.update(consult.invited_ids)
        people: dict[int, User] = {}
        for user_id in sorted(user_ids):
            found = await self.store.get_user(user_id)
            if found is not None:
                people[user_id] = found
        return consult_bundle(
            consult,
            people,
            institutions,
            recordings,
            audit,
            base_url,
            generated_at=now,
            notes=notes,
            attachments=attached,
            identity=identity,
        )
