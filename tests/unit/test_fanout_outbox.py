"""The Redis fan-out's queue (`Outbox`: bounded in bytes, `FANOUT_BACKLOG_BYTES`, high-water
marks) and its record of what the other processes missed when it was full (`Missed`), with
plain objects."""

from __future__ import annotations

import pytest

from signaling.fanout_outbox import Missed, Outbox
from teleconsult.config import ConfigError, load_settings


def test_the_outbox_is_bounded_in_bytes_but_always_lets_one_message_in() -> None:
    outbox = Outbox(10)
    assert outbox.put(b"x" * 25)  # larger than the bound, but nothing waits
    assert not outbox.put(b"y")
    assert outbox.take(1 << 20) == [b"x" * 25]
    assert outbox.put(b"a" * 4) and outbox.put(b"b" * 6)
    assert not outbox.put(b"c")
    assert (len(outbox), outbox.waiting_bytes) == (2, 10)
    assert (outbox.high_water_messages, outbox.high_water_bytes) == (2, 25)


def test_a_round_trip_takes_what_waits_in_order_up_to_its_size_and_at_least_one() -> None:
    outbox = Outbox(1 << 20)
    for n in range(5):
        outbox.put(bytes([n]) * 3)
    assert outbox.take(7) == [b"\x00" * 3, b"\x01" * 3]
    assert outbox.take(1) == [b"\x02" * 3]  # one, even when larger than the round trip's size
    assert outbox.take(1 << 20) == [b"\x03" * 3, b"\x04" * 3]
    assert outbox.take(1 << 20) == []
    assert (outbox.largest_batch, outbox.published, outbox.waiting_bytes) == (2, 5, 0)


def test_clearing_the_outbox_counts_what_it_dropped() -> None:
    outbox = Outbox(100)
    outbox.put(b"a")
    outbox.put(b"b")
    assert outbox.clear() == 2
    assert (len(outbox), outbox.waiting_bytes) == (0, 0)


def test_an_outbox_of_no_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        Outbox(0)


def emit(event: str, data: object, room: object) -> dict[str, object]:
    """An emit's message as python-socketio's pub/sub manager publishes it."""
    return {
        "method": "emit",
        "event": event,
        "data": [data],
        "binary": False,
        "namespace": "/",
        "room": room,
        "skip_sid": None,
        "callback": None,
        "host_id": "h",
    }


def test_dropped_news_of_a_consult_names_the_consult_whose_state_is_sent_again() -> None:
    missed = Missed()
    view = {"consult": {"id": "c1", "status": "live"}}
    missed.note(emit("consult-state", view, ["consult:c1", "institution:3", "user:7"]))
    missed.note(emit("consult-invited", {"consult": {"id": "c2"}}, "user:8"))
    missed.note(emit("request-closed", {"consult_id": "c3", "status": "accepted"}, ["user:9"]))
    assert missed.consults == {"c1", "c2", "c3"}
    assert missed.rooms == set()
    assert missed.by_kind == {"consult": 3}


def test_dropped_room_traffic_names_the_live_room() -> None:
    missed = Missed()
    missed.note(emit("peer-joined", {"consult_id": "c1", "peer_id": "s"}, "consult:c1"))
    missed.note({"method": "enter_room", "sid": "s", "room": "consult:c2", "namespace": "/"})
    missed.note({"method": "teleconsult-notice", "data": {"kind": "roster", "consult": "c3"}})
    missed.note(emit("signal", {"consult_id": "c1", "from": "s", "signal": {}}, "sid-2"))
    missed.note({"method": "disconnect", "sid": "s", "namespace": "/"})
    assert missed.rooms == {"c1", "c2", "c3"}
    assert missed.consults == set()
    assert missed.by_kind == {"room": 3, "signal": 1, "other": 1}


def test_taking_what_was_missed_starts_afresh() -> None:
    missed = Missed()
    assert not missed
    missed.note(emit("consult-state", {"consult": {"id": "c1"}}, "user:1"))
    taken = missed.take()
    assert taken and taken.consults == {"c1"}
    assert not missed and missed.consults == set()


def test_the_fan_out_queue_holds_8_mib_unless_told_otherwise() -> None:
    assert load_settings({}).fanout_backlog_bytes == 8 * 1024 * 1024
    assert load_settings({"FANOUT_BACKLOG_BYTES": "1"}).fanout_backlog_bytes == 1


@pytest.mark.parametrize("value", ["0", "-1", "lots", "1.5"])
def test_an_unusable_fan_out_bound_stops_start_up_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="FANOUT_BACKLOG_BYTES"):
        load_settings({"FANOUT_BACKLOG_BYTES": value})
