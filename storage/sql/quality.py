"""Call quality buckets (`rooms.calls.quality`): implements `rooms.calls.ports.QualityStore`.

Written in batches by `rooms.calls.quality_service.QualityService.flush`, one transaction per
flush, without audit entries (they are measurements, not anybody's change).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import Row, func, insert, select

from rooms.calls.quality import ConsultQuality, QualityBucket
from storage.sql.database import Database
from storage.sql.schema import call_quality

_IN_CHUNK = 500
"""Consult ids per `IN (…)` list when summing many consults."""


def _values(bucket: QualityBucket) -> dict[str, Any]:
    values = asdict(bucket)
    values["bucket_start"] = values.pop("start")
    return values


def _bucket(row: Row[Any]) -> QualityBucket:
    m = row._mapping
    kwargs = {f.name: m[f.name] for f in fields(QualityBucket) if f.name != "start"}
    return QualityBucket(start=m["bucket_start"], **kwargs)


class SqlQuality:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_quality(self, buckets: list[QualityBucket]) -> None:
        if not buckets:
            return
        async with self.db.transaction() as conn:
            await conn.execute(insert(call_quality), [_values(b) for b in buckets])

    async def quality_of_consult(self, consult_id: str) -> list[QualityBucket]:
        t = call_quality
        rows = await self.db.rows_of_consult(
            t, consult_id, t.c.bucket_start, t.c.user_id, t.c.source
        )
        return [_bucket(r) for r in rows]

    async def quality_of_consults(self, consult_ids: frozenset[str]) -> list[ConsultQuality]:
        t = call_quality
        ids = sorted(consult_ids)
        out: list[ConsultQuality] = []
        async with self.db.reading() as conn:
            for i in range(0, len(ids), _IN_CHUNK):
                stmt = (
                    select(
                        t.c.consult_id,
                        func.sum(t.c.seconds),
                        func.sum(t.c.bitrate_in_kbps * t.c.seconds),
                        func.sum(t.c.audio_only_s),
                        func.sum(t.c.freezes),
                    )
                    .where(t.c.source == "client", t.c.consult_id.in_(ids[i : i + _IN_CHUNK]))
                    .group_by(t.c.consult_id)
                )
                for consult_id, seconds, weighted, audio_only, freezes in await conn.execute(stmt):
                    seconds = float(seconds or 0.0)
                    out.append(
                        ConsultQuality(
                            consult_id,
                            round(seconds, 3),
                            round(float(weighted) / seconds, 1) if seconds else None,
                            round(float(audio_only or 0.0), 3),
                            int(freezes or 0),
                        )
                    )
        return out
