"""Recording use cases: consent, the media path, the recordings ledger, and playback access.

`signaling` calls these for what users do (consent, list, play back); `media` calls the ledger
(`recording_began`, `recording_finished`) for what the recorder does. Every access to a
recording's bytes is written to the audit log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rooms.calls.media_path import RelayReason
from rooms.calls.ports import RecordingStore
from rooms.calls.recordings import ConsentAnswer, Recording, RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import ConcurrentUpdate, IllegalTransition, NotFound
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.consults.permissions import Action
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, load_permitted, utc_now

MEDIA_PATH_RETRIES = 5


class RecordingService:
    """`consults` keeps the consults (and their audit log), `store` the recordings and consents."""

    def __init__(
        self, consults: ConsultStore, store: RecordingStore, clock: Clock = utc_now
    ) -> None:
        self.consults = consults
        self.store = store
        self.clock = clock

    async def _consult(self, user: User, consult_id: str, action: Action) -> Consult:
        return await load_permitted(self.consults, user, consult_id, action)

    async def authorize_recording(self, user: User, consult_id: str) -> Consult:
        """The consult, if `user` may start or stop its recording now."""
        consult = await self._consult(user, consult_id, Action.RECORD_CONSULT)
        if consult.status is not ConsultStatus.LIVE:
            raise IllegalTransition(consult.status.value, "be recorded")
        return consult

    async def store_consent(
        self, user: User, consult_id: str, granted: bool, session_id: str
    ) -> ConsentAnswer:
        answer = ConsentAnswer(consult_id, user.id, granted, self.clock(), session_id)
        await self.store.add_consent(
            answer,
            AuditEntry(
                at=answer.at,
                actor_id=user.id,
                action="recording.consent" if granted else "recording.consent_refused",
                consult_id=consult_id,
                detail={"session": session_id},
            ),
        )
        return answer

    async def note(
        self, actor: User | None, consult_id: str, action: str, detail: dict[str, Any]
    ) -> None:
        """Write a recording event (requested, started, stopped) to the consult's audit log."""
        await self.consults.append_audit(
            AuditEntry(
                at=self.clock(),
                actor_id=actor.id if actor else None,
                action=action,
                consult_id=consult_id,
                detail=detail,
            )
        )

    async def move_to_relay(
        self, consult_id: str, reason: RelayReason, actor: User | None
    ) -> Consult | None:
        """Switch the consult's media path to the relay; the consult if it moved, else None."""
        for _attempt in range(MEDIA_PATH_RETRIES):
            consult = await self.consults.get_consult(consult_id)
            if consult is None:
                raise NotFound(f"no consult {consult_id}")
            if consult.media_mode is MediaMode.RELAY:
                return None
            entry = AuditEntry(
                at=self.clock(),
                actor_id=actor.id if actor else None,
                action="consult.media_path",
                consult_id=consult_id,
                detail={"from": "p2p", "to": "relay", "reason": reason.value},
            )
            try:
                return await self.consults.update_consult(
                    replace(consult, media_mode=MediaMode.RELAY), entry
                )
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"consult {consult_id} keeps changing; try again")

    # -- the ledger the recorder writes ------------------------------------------------------

    async def recording_began(self, recording: Recording) -> None:
        await self.store.add_recording(
            recording,
            AuditEntry(
                at=recording.started_at,
                actor_id=None,
                action="recording.track_started",
                consult_id=recording.consult_id,
                detail={
                    "recording": recording.id,
                    "participant": recording.participant_id,
                    "source": recording.source.value,
                },
            ),
        )

    async def recording_finished(self, recording: Recording) -> None:
        await self.store.finish_recording(
            recording,
            AuditEntry(
                at=self.clock(),
                actor_id=None,
                action=(
                    "recording.empty"
                    if recording.status is RecordingStatus.EMPTY
                    else "recording.recovered"
                    if recording.recovered
                    else "recording.finalized"
                ),
                consult_id=recording.consult_id,
                detail={
                    "recording": recording.id,
                    "duration_s": round(recording.duration_s, 3),
                    "bytes": recording.bytes,
                    "sha256": recording.sha256,
                },
            ),
        )

    async def unfinished(self) -> list[Recording]:
        return await self.store.unfinished_recordings()

    # -- viewing ---------------------------------------------------------------------------------

    async def list_recordings(self, user: User, consult_id: str) -> list[Recording]:
        await self._consult(user, consult_id, Action.VIEW_RECORDINGS)
        return [
            r
            for r in await self.store.list_recordings(consult_id)
            if r.status is RecordingStatus.READY
        ]

    async def viewable(self, user: User, recording_id: str) -> Recording:
        """The finished recording, if `user` may play it back; raises otherwise."""
        recording = await self.store.get_recording(recording_id)
        if recording is None or recording.status is not RecordingStatus.READY:
            raise NotFound(f"no recording {recording_id}")
        await self._consult(user, recording.consult_id, Action.VIEW_RECORDINGS)
        return recording

    async def grant_playback(self, user: User, recording_id: str) -> Recording:
        recording = await self.viewable(user, recording_id)
        await self.note(
            user, recording.consult_id, "recording.playback_granted", {"recording": recording.id}
        )
        return recording

    async def record_access(
        self, user: User, recording: Recording, first_byte: int, last_byte: int
    ) -> None:
        """Write one read of a recording's bytes to the audit log, before the bytes are sent."""
        await self.note(
            user,
            recording.consult_id,
            "recording.accessed",
            {"recording": recording.id, "range": [first_byte, last_byte]},
        )
