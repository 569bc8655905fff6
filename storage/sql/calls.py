"""The calls package's repository: recorded tracks and the consent answers behind them.

Implements `rooms.calls.ports.RecordingStore`; every write carries its audit entry.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Row, select, update

from rooms.calls.recordings import ConsentAnswer, Recording, RecordingStatus, TrackSource
from rooms.consults.audit import AuditEntry
from storage.sql.database import Database
from storage.sql.schema import recording_consents, recordings


def _recording(row: Row[Any]) -> Recording:
    return Recording(
        id=row.id,
        consult_id=row.consult_id,
        participant_id=row.participant_id,
        source=TrackSource(row.source),
        kind=row.kind,
        codec=row.codec,
        container=row.container,
        storage_key=row.storage_key,
        started_at=row.started_at,
        started_offset_s=row.started_offset_s,
        status=RecordingStatus(row.status),
        duration_s=row.duration_s,
        bytes=row.bytes,
        sha256=row.sha256,
        recovered=row.recovered,
        finished_at=row.finished_at,
    )


def _recording_values(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id,
        "consult_id": rec.consult_id,
        "participant_id": rec.participant_id,
        "source": rec.source.value,
        "kind": rec.kind,
        "codec": rec.codec,
        "container": rec.container,
        "storage_key": rec.storage_key,
        "started_at": rec.started_at,
        "started_offset_s": rec.started_offset_s,
        "status": rec.status.value,
        "duration_s": rec.duration_s,
        "bytes": rec.bytes,
        "sha256": rec.sha256,
        "recovered": rec.recovered,
        "finished_at": rec.finished_at,
    }


class SqlRecordings:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_recording(self, recording: Recording, audit: AuditEntry) -> None:
        await self.db.append(recordings, _recording_values(recording), audit)

    async def finish_recording(self, recording: Recording, audit: AuditEntry) -> None:
        async with self.db.audited(audit) as conn:
            await conn.execute(
                update(recordings)
                .where(recordings.c.id == recording.id)
                .values(**_recording_values(recording))
            )

    async def get_recording(self, recording_id: str) -> Recording | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(select(recordings).where(recordings.c.id == recording_id))
            ).first()
        return _recording(row) if row else None

    async def list_recordings(self, consult_id: str) -> list[Recording]:
        table = recordings
        rows = await self.db.rows_of_consult(table, consult_id, table.c.started_at, table.c.id)
        return [_recording(r) for r in rows]

    async def unfinished_recordings(self) -> list[Recording]:
        stmt = select(recordings).where(recordings.c.status == RecordingStatus.RECORDING.value)
        async with self.db.reading() as conn:
            return [_recording(r) for r in (await conn.execute(stmt)).all()]

    async def add_consent(self, answer: ConsentAnswer, audit: AuditEntry) -> None:
        await self.db.append(recording_consents, asdict(answer), audit)

    async def consents(self, consult_id: str) -> list[ConsentAnswer]:
        table = recording_consents
        rows = await self.db.rows_of_consult(table, consult_id, table.c.id)
        return [
            ConsentAnswer(
                consult_id=r.consult_id,
                user_id=r.user_id,
                granted=r.granted,
                at=r.at,
                session_id=r.session_id,
            )
            for r in rows
        ]
