"""Attachments in the SQL store (SQLite and PostgreSQL, migrated by Alembic): round trip with
the audit entry, oldest first, and the per-consult limit checked in the same transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rooms.records.attachments import Attachment, TooManyAttachments, attachment_key
from storage.sql.store import SqlConsultStore
from tests.integration.test_sql_store import audit, store, stored_consult  # noqa: F401
from tests.unit.fakes import NOON


def attachment(consult_id: str, uploader_id: int, name: str, seconds: int = 0) -> Attachment:
    attachment_id = Attachment.new_id()
    return Attachment(
        id=attachment_id,
        consult_id=consult_id,
        uploader_id=uploader_id,
        file_name=name,
        media_type="image/png",
        bytes=1234,
        sha256="ab" * 32,
        storage_key=attachment_key(consult_id, attachment_id),
        uploaded_at=NOON + timedelta(seconds=seconds),
    )


async def booked(store: SqlConsultStore) -> tuple[str, int]:  # noqa: F811
    consult = stored_consult(store)
    await store.add_consult(consult, audit("consult.book", consult.id))
    _county_id, doctor_id = store.test_ids  # type: ignore[attr-defined]
    return consult.id, doctor_id


async def test_attachments_round_trip_oldest_first_with_their_audit(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult_id, doctor_id = await booked(store)
    later = attachment(consult_id, doctor_id, "B超 32周.png", seconds=5)
    earlier = attachment(consult_id, doctor_id, "report.pdf")
    for item in (later, earlier):
        await store.add_attachment(item, audit("attachment.added", consult_id), 20)
    assert await store.list_attachments(consult_id) == [earlier, later]
    assert await store.get_attachment(later.id) == later
    assert await store.get_attachment("f" * 32) is None
    assert await store.count_attachments(consult_id) == 2
    assert await store.list_attachments("f" * 32) == []
    actions = [e.action for e in await store.audit_trail(consult_id)]
    assert actions.count("attachment.added") == 2


async def test_the_limit_is_kept_even_for_uploads_at_the_same_time(
    store: SqlConsultStore,  # noqa: F811
) -> None:
    consult_id, doctor_id = await booked(store)
    at_once = [attachment(consult_id, doctor_id, f"{i}.png") for i in range(6)]
    results = await asyncio.gather(
        *(store.add_attachment(a, audit("attachment.added", consult_id), 3) for a in at_once),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, TooManyAttachments)]
    assert len(refused) == 3, results
    assert await store.count_attachments(consult_id) == 3
    actions = [e.action for e in await store.audit_trail(consult_id)]
    assert actions.count("attachment.added") == 3  # a refused row wrote no audit either


@pytest.mark.parametrize("limit", [0])
async def test_a_refused_attachment_writes_nothing(
    store: SqlConsultStore,  # noqa: F811
    limit: int,
) -> None:
    consult_id, doctor_id = await booked(store)
    with pytest.raises(TooManyAttachments):
        await store.add_attachment(
            attachment(consult_id, doctor_id, "a.png"), audit("attachment.added", consult_id), limit
        )
    assert await store.list_attachments(consult_id) == []
    assert "attachment.added" not in [e.action for e in await store.audit_trail(consult_id)]
