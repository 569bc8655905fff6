"""Attachments in storage, kept alike by every implementation: round trip with the audit entry,
oldest first, and the per-consult limit checked together with the insert."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rooms.consults.errors import IllegalTransition
from rooms.consults.lifecycle import ConsultStatus
from rooms.records.attachments import Attachment, TooManyAttachments, attachment_key
from tests.integration.stores import Stores, actions, audit, booked
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


async def test_attachments_round_trip_oldest_first_with_their_audit(stores: Stores) -> None:
    consult_id = (await booked(stores)).id
    later = attachment(consult_id, stores.doctor_id, "B超 32周.png", seconds=5)
    earlier = attachment(consult_id, stores.doctor_id, "report.pdf")
    for item in (later, earlier):
        await stores.attachments.add_attachment(item, audit("attachment.added", consult_id), 20)
    assert await stores.attachments.list_attachments(consult_id) == [earlier, later]
    assert await stores.attachments.get_attachment(later.id) == later
    assert await stores.attachments.get_attachment("f" * 32) is None
    assert await stores.attachments.count_attachments(consult_id) == 2
    assert await stores.attachments.list_attachments("f" * 32) == []
    assert (await actions(stores, consult_id)).count("attachment.added") == 2


async def test_the_limit_is_kept_even_for_uploads_at_the_same_time(stores: Stores) -> None:
    consult_id = (await booked(stores)).id
    at_once = [attachment(consult_id, stores.doctor_id, f"{i}.png") for i in range(6)]
    results = await asyncio.gather(
        *(
            stores.attachments.add_attachment(a, audit("attachment.added", consult_id), 3)
            for a in at_once
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, TooManyAttachments)]
    assert len(refused) == 3, results
    assert await stores.attachments.count_attachments(consult_id) == 3
    # A refused row wrote no audit entry either.
    assert (await actions(stores, consult_id)).count("attachment.added") == 3


@pytest.mark.parametrize("limit", [0])
async def test_a_refused_attachment_writes_nothing(stores: Stores, limit: int) -> None:
    consult_id = (await booked(stores)).id
    with pytest.raises(TooManyAttachments):
        await stores.attachments.add_attachment(
            attachment(consult_id, stores.doctor_id, "a.png"),
            audit("attachment.added", consult_id),
            limit,
        )
    assert await stores.attachments.list_attachments(consult_id) == []
    assert "attachment.added" not in await actions(stores, consult_id)


@pytest.mark.parametrize(
    "status",
    [ConsultStatus.ENDED, ConsultStatus.DECLINED, ConsultStatus.CANCELLED, ConsultStatus.EXPIRED],
)
async def test_a_finished_consult_takes_no_row_checked_with_the_insert(
    stores: Stores, status: ConsultStatus
) -> None:
    """The last check of an upload whose consult ended while the file streamed in: in the
    transaction that writes the row, so no end of the consult can slip in between."""
    consult_id = (await booked(stores, status=status)).id
    with pytest.raises(IllegalTransition, match="take attachments"):
        await stores.attachments.add_attachment(
            attachment(consult_id, stores.doctor_id, "late.png"),
            audit("attachment.added", consult_id),
            20,
        )
    assert await stores.attachments.list_attachments(consult_id) == []
    assert "attachment.added" not in await actions(stores, consult_id)
