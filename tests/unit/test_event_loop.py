"""EVENT_LOOP: which event loop the server and its relay run on."""

from __future__ import annotations

import asyncio
import os

import pytest

from media.event_loop import DEFAULT_EVENT_LOOP, EVENT_LOOPS, loop_name, new_loop
from teleconsult.config import ConfigError, load_settings


def test_the_default_is_the_measured_choice_and_both_loops_are_accepted() -> None:
    assert load_settings({}).event_loop == DEFAULT_EVENT_LOOP
    for name in EVENT_LOOPS:
        assert load_settings({"EVENT_LOOP": name}).event_loop == name
    assert load_settings({"EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="EVENT_LOOP must be one of uvloop, asyncio"):
        load_settings({"EVENT_LOOP": "trio"})


@pytest.mark.parametrize("name", EVENT_LOOPS)
def test_each_name_makes_a_loop_of_that_kind_that_runs(name: str) -> None:
    loop = new_loop(name)
    try:
        assert loop_name(loop) == name

        async def answer() -> int:
            await asyncio.sleep(0)
            return 42

        assert loop.run_until_complete(answer()) == 42
    finally:
        loop.close()


async def test_in_process_tests_run_on_the_loop_test_event_loop_names() -> None:
    assert loop_name(asyncio.get_running_loop()) == os.environ.get("TEST_EVENT_LOOP", "asyncio")
