"""A serving process's collector once start-up is done (`teleconsult.heap`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from teleconsult.heap import THRESHOLDS, settled_heap


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_start_up_freezes_what_is_alive_and_raises_the_thresholds(
    collector: None,
) -> None:
    built_at_start = [{"n": n} for n in range(1000)]
    settling = settled_heap(None)
    await anext(settling)
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold() == THRESHOLDS
    with pytest.raises(StopAsyncIteration):
        await anext(settling)
    assert gc.get_freeze_count() == 0  # given back at shutdown
