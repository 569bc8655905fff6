"""The live consult room's rules, against an in-memory store and fake ports.

Interleavings (a join meeting a close, a departure during a join) are made deterministic by
holding the fake media node at a chosen call and letting it go, never by sleeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from rooms.calls.notifier import P2pAnswer
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import SessionState
from rooms.calls.registry import ConsultRooms
from rooms.calls.room import P2pVerdict, RoomParts, RoomSettings, RoomState
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import ConsultFull, IllegalTransition, NotInConsult
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.service import ConsultService
from tests.unit.fakes import (
    DOCTOR_A,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    InMemoryStore,
    consult_in,
)
from tests.unit.room_fakes import FakeNode, FakeNotifier, Refused

CID = "c" * 32


def clock() -> datetime:
    return datetime(2026, 11, 23, 12, 5, tzinfo=UTC)


class World:
    """One consult, the services over an in-memory store, a fake node and notifier."""

    def __init__(self, media_mode: MediaMode = MediaMode.P2P, max_people: int = 8) -> None:
        self.store = InMemoryStore()
        self.notifier = FakeNotifier()
        self.node = FakeNode()
        self.consults = ConsultService(self.store, clock)
        self.recordings = RecordingService(self.store, self.store, clock)
        self.rooms = ConsultRooms(
            RoomParts(
                consults=self.consults,
                recordings=self.recordings,
                node=self.node,
                notifier=self.notifier,
                settings=RoomSettings(max_people=max_people, p2p_check_timeout=1.0),
            )
        )
        self.media_mode = media_mode

    async def consult(self, status: ConsultStatus = ConsultStatus.ACCEPTED) -> Consult:
        consult = replace(consult_in(status), media_mode=self.media_mode)
        await self.store.add_consult(consult, AuditEntry(NOON, None, "consult.book", CID, {}))
        return consult

    async def status(self) -> ConsultStatus:
        consult = await self.store.get_consult(CID)
        assert consult is not None
        return consult.status

    async def mode(self) -> MediaMode:
        consult = await self.store.get_consult(CID)
        assert consult is not None
        return consult.media_mode

    def people(self) -> list[int]:
        room = self.rooms.room(CID)
        return [] if room is None else [u.id for u in room.people()]


@pytest.fixture
async def world() -> World:
    w = World()
    await w.consult()
    return w


@pytest.fixture
async def relayed() -> World:
    w = World(MediaMode.RELAY)
    await w.consult()
    return w


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), timeout=5)


# ---- people, not connections -----------------------------------------------------------------


async def test_both_sides_arriving_starts_the_consult_and_each_learns_of_the_other(
    world: World,
) -> None:
    first = await world.rooms.join(CID, "p1", DOCTOR_A)
    second = await world.rooms.join(CID, "p2", OBSTETRICIAN)
    assert first.others == ()
    assert [c.peer_id for c in second.others] == ["p1"]
    assert await world.status() is ConsultStatus.LIVE
    assert world.notifier.named("peer_joined") == [("peer_joined", "p1"), ("peer_joined", "p2")]


async def test_a_second_connection_of_the_same_person_takes_over_and_is_not_a_third_party() -> None:
    world = World(max_people=2)
    await world.consult()
    await world.rooms.join(CID, "doctor-desk", DOCTOR_A)
    await world.rooms.join(CID, "phone", OBSTETRICIAN)
    admission = await world.rooms.join(CID, "doctor-laptop", DOCTOR_A)

    assert admission.replaced == "doctor-desk"
    assert world.people() == [DOCTOR_A.id, OBSTETRICIAN.id]
    assert await world.mode() is MediaMode.P2P  # two people: still a direct call
    assert ("replaced", "doctor-desk") in world.notifier.said
    assert ("peer_left", "doctor-desk", "replaced") in world.notifier.said
    assert world.rooms.consult_of("doctor-desk") is None
    assert world.rooms.consult_of("doctor-laptop") == CID
    assert not world.notifier.named("media_path")


async def test_the_replaced_connection_closing_later_changes_nothing(world: World) -> None:
    await world.rooms.join(CID, "old", DOCTOR_A)
    await world.rooms.join(CID, "phone", OBSTETRICIAN)
    await world.rooms.join(CID, "new", DOCTOR_A)
    said = len(world.notifier.said)
    assert await world.rooms.depart("old", "disconnected") is False
    assert world.notifier.said[said:] == []
    assert world.people() == [DOCTOR_A.id, OBSTETRICIAN.id]


async def test_the_room_is_full_by_people_and_a_returning_person_still_gets_in() -> None:
    world = World(max_people=2)
    await world.consult()
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    with pytest.raises(ConsultFull):
        await world.rooms.join(CID, "p3", OBSTETRICIAN_2)
    assert (await world.rooms.join(CID, "p4", OBSTETRICIAN)).replaced == "p2"


async def test_a_third_person_moves_the_consult_to_the_relay_with_everyone_on_it(
    world: World,
) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    await world.rooms.join(CID, "p3", OBSTETRICIAN_2)
    assert await world.mode() is MediaMode.RELAY
    assert [c for c in world.node.calls if c[0] == "join"] == [
        ("join", "p1"),
        ("join", "p2"),
        ("join", "p3"),
    ]
    assert world.notifier.named("media_path") == [("media_path", "participants")]


# ---- a failure at any step of a join leaves no ghost -----------------------------------------


async def test_a_join_whose_status_move_fails_changes_nothing(world: World) -> None:
    async def broken(consult: Consult, audit: AuditEntry) -> Consult:
        raise Refused("database down")

    world.store.update_consult = broken  # type: ignore[method-assign]
    with pytest.raises(Refused):
        await world.rooms.join(CID, "p1", DOCTOR_A)
    assert world.people() == []
    assert world.rooms.consult_of("p1") is None
    assert world.notifier.said == [("admit", "p1"), ("dismiss", "p1")]  # nobody was told
    assert await world.status() is ConsultStatus.ACCEPTED


async def test_a_connection_that_closes_while_joining_leaves_no_ghost(world: World) -> None:
    world.notifier.gone.add("p1")
    with pytest.raises(ConnectionError):
        await world.rooms.join(CID, "p1", DOCTOR_A)
    assert world.people() == []
    assert world.rooms.consult_of("p1") is None
    assert await world.status() is ConsultStatus.ACCEPTED  # opened, then put back
    assert not world.notifier.named("peer_joined")


async def test_a_join_the_relay_refuses_leaves_no_ghost(relayed: World) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    relayed.node.fail["join"] = 1
    with pytest.raises(Refused):
        await relayed.rooms.join(CID, "p2", OBSTETRICIAN)
    assert relayed.people() == [DOCTOR_A.id]
    assert relayed.rooms.consult_of("p2") is None
    assert await relayed.status() is ConsultStatus.WAITING  # never went live
    assert ("dismiss", "p2") in relayed.notifier.said
    assert ("peer_joined", "p2") not in relayed.notifier.said
    assert ("leave", "p2") in relayed.node.calls


async def test_a_third_person_whose_relay_join_fails_is_not_counted_but_the_move_stands(
    world: World,
) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    original = world.node._step

    async def third_fails(method: str, *args: Any) -> None:
        if method == "join" and args == ("p3",):
            raise Refused("no port left")
        await original(method, *args)

    world.node._step = third_fails  # type: ignore[method-assign]
    with pytest.raises(Refused):
        await world.rooms.join(CID, "p3", OBSTETRICIAN_2)
    assert world.people() == [DOCTOR_A.id, OBSTETRICIAN.id]
    assert await world.mode() is MediaMode.RELAY  # saved and audited: the two stay on it
    assert world.notifier.named("media_path") == [("media_path", "participants")]
    assert ("peer_joined", "p3") not in world.notifier.said


async def test_a_departure_during_a_join_waits_for_it_and_then_takes_the_person_out(
    relayed: World,
) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    started, release = relayed.node.hold("join")
    joining = asyncio.create_task(relayed.rooms.join(CID, "p2", OBSTETRICIAN))
    await until(started)
    leaving = asyncio.create_task(relayed.rooms.depart("p2", "disconnected"))
    await asyncio.sleep(0)
    assert not leaving.done()  # it waits its turn behind the join
    release.set()
    await joining
    assert await leaving is True
    assert relayed.people() == [DOCTOR_A.id]
    assert relayed.notifier.named("peer_left") == [("peer_left", "p2", "disconnected")]


# ---- closing -----------------------------------------------------------------------------------


async def test_a_join_during_the_close_waits_for_it_and_opens_a_fresh_room(
    relayed: World,
) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    old_room = relayed.rooms.room(CID)
    started, release = relayed.node.hold("close_consult")
    await relayed.rooms.depart("p1", "left")  # the last one out: the room closes
    await until(started)
    assert old_room is not None and old_room.state is RoomState.CLOSING

    joining = asyncio.create_task(relayed.rooms.join(CID, "p2", DOCTOR_A))
    await asyncio.sleep(0)
    assert not joining.done()
    release.set()
    admission = await joining

    assert admission.connection.peer_id == "p2"
    assert old_room.state is RoomState.CLOSED
    new_room = relayed.rooms.room(CID)
    assert new_room is not None and new_room is not old_room
    names = relayed.node.names()
    assert names.index("close_consult") < len(names) - 1 - names[::-1].index("join")
    assert relayed.node.calls[-1] == ("join", "p2")


async def test_ending_the_consult_closes_the_room_and_takes_everyone_out(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    await world.rooms.consult_finished(CID)
    assert world.rooms.room(CID) is None
    assert world.rooms.consult_of("p1") is None
    assert ("close_channel",) in world.notifier.said
    assert "close_consult" in world.node.names()
    with pytest.raises(NotInConsult):
        world.rooms.room_of("p1", CID)


# ---- late reports --------------------------------------------------------------------------------


async def test_a_late_p2p_report_after_the_link_recovered_changes_nothing(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p1", CID)
    world.notifier.p2p_answers = [P2pAnswer("connected", 2)]
    assert await room.p2p_failed("p1", "p2", generation=2) is P2pVerdict.RECOVERED
    # The same stale report again (it waited in a stalled socket): not even asked about.
    asked = len(world.notifier.named("check_p2p"))
    assert await room.p2p_failed("p1", "p2", generation=2) is P2pVerdict.STALE
    assert len(world.notifier.named("check_p2p")) == asked
    assert await world.mode() is MediaMode.P2P
    # A new failure after the recovery is a newer generation, and moves the consult.
    world.notifier.p2p_answers = [P2pAnswer("failed", 4)]
    assert await room.p2p_failed("p1", "p2", generation=4) is P2pVerdict.MOVED
    assert await world.mode() is MediaMode.RELAY
    assert world.notifier.named("media_path") == [("media_path", "p2p_failed")]


async def test_an_unconfirmed_p2p_report_keeps_the_direct_path(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p1", CID)
    assert await room.p2p_failed("p1", "p2", generation=1) is P2pVerdict.UNCONFIRMED
    assert await world.mode() is MediaMode.P2P


async def test_a_p2p_report_about_someone_who_left_is_ignored(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p1", CID)
    await world.rooms.depart("p2", "disconnected")
    assert await room.p2p_failed("p1", "p2", generation=1) is P2pVerdict.GONE
    assert world.notifier.named("check_p2p") == []


# ---- recording ----------------------------------------------------------------------------------


async def test_after_a_crash_the_room_says_the_recording_was_interrupted(world: World) -> None:
    world.rooms.mark_interrupted({CID})
    admission = await world.rooms.join(CID, "p1", DOCTOR_A)
    assert admission.recording.state is SessionState.OFF
    assert admission.recording.notice == "interrupted"
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    view = await room.start_recording("p2")
    assert view.notice is None


async def test_recording_starts_only_when_everyone_present_consented(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    asked = await room.start_recording("p2")
    assert asked.state is SessionState.AWAITING_CONSENT and asked.pending == (DOCTOR_A.id,)
    assert world.notifier.named("consent_requested") == [("consent_requested", "p1")]
    recording = await room.consent("p1", granted=True)
    assert recording.state is SessionState.RECORDING
    assert await world.mode() is MediaMode.RELAY
    assert ("record", (DOCTOR_A.id, OBSTETRICIAN.id)) in world.node.calls


async def test_a_person_asked_for_consent_who_opens_another_tab_is_asked_there(
    world: World,
) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    await world.rooms.room_of("p2", CID).start_recording("p2")
    await world.rooms.join(CID, "p1-new-tab", DOCTOR_A)
    assert world.notifier.named("consent_requested")[-1] == ("consent_requested", "p1-new-tab")


async def test_a_full_disk_reported_by_the_node_turns_the_recording_off_and_says_why(
    world: World,
) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    await room.start_recording("p2")
    await room.consent("p1", granted=True)
    assert world.node.failure_sink is not None, "the registry listens for the node's failures"

    await world.node.failure_sink(CID, "storage_full")
    await asyncio.gather(*room._stopping, return_exceptions=True)

    view = room.recording_view()
    assert view.state is SessionState.OFF
    assert view.notice == "storage_full"
    assert world.notifier.named("recording_state")[-1] == ("recording_state", "off", "storage_full")
    assert "stop_recording" in world.node.names(), "what was written is finalized"
    failed = [e for e in world.store.audit_log if e.action == "recording.failed"]
    assert [e.detail["reason"] for e in failed] == ["storage_full"]
    assert failed[0].detail["session"]
    # A late second report changes nothing; a new recording clears the notice.
    said = len(world.notifier.said)
    await world.node.failure_sink(CID, "storage_full")
    assert len(world.notifier.said) == said
    assert (await room.start_recording("p2")).notice is None


async def test_a_full_disk_whose_audit_fails_still_turns_the_recording_off(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    await room.start_recording("p2")
    await room.consent("p1", granted=True)

    async def broken(entry: AuditEntry) -> None:
        raise Refused("database or disk is full")

    world.store.append_audit = broken  # type: ignore[method-assign]
    assert world.node.failure_sink is not None
    await world.node.failure_sink(CID, "storage_full")
    assert room.recording_view().state is SessionState.OFF
    assert world.notifier.named("recording_state")[-1] == ("recording_state", "off", "storage_full")


# ---- what a review of the room found -----------------------------------------------------------


async def test_a_recording_that_cannot_start_leaves_the_indicator_off(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    await room.start_recording("p2")
    world.node.fail["record"] = 1
    with pytest.raises(Refused):
        await room.consent("p1", granted=True)
    assert room.recording_view().state is SessionState.AWAITING_CONSENT
    assert world.notifier.named("recording_state")[-1][1] == "awaiting_consent"
    assert world.notifier.named("media_path") == [("media_path", "recording")]  # saved, told
    # Answering again works once the node does.
    assert (await room.consent("p1", granted=True)).state is SessionState.RECORDING


async def test_a_stop_whose_audit_write_fails_still_stops_the_recorder(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    await room.start_recording("p2")
    await room.consent("p1", granted=True)

    async def broken(entry: AuditEntry) -> None:
        raise Refused("database down")

    world.store.append_audit = broken  # type: ignore[method-assign]
    with pytest.raises(Refused):
        await room.stop_recording("p2")
    await asyncio.gather(*room._stopping, return_exceptions=True)
    assert "stop_recording" in world.node.names()
    assert room.recording_view().state is SessionState.OFF
    assert world.notifier.named("recording_state")[-1][1] == "off"


async def test_a_p2p_move_that_fails_halfway_is_still_announced(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p1", CID)
    world.notifier.p2p_answers = [P2pAnswer("failed", 2)]
    world.node.fail["join"] = 1
    with pytest.raises(Refused):
        await room.p2p_failed("p1", "p2", generation=2)
    assert await world.mode() is MediaMode.RELAY
    assert world.notifier.named("media_path") == [("media_path", "p2p_failed")]


async def test_one_ends_recovery_does_not_make_the_other_ends_report_stale(world: World) -> None:
    await world.rooms.join(CID, "a", DOCTOR_A)
    await world.rooms.join(CID, "b", OBSTETRICIAN)
    room = world.rooms.room_of("a", CID)
    world.notifier.p2p_answers = [P2pAnswer("connected", 6)]
    assert await room.p2p_failed("a", "b", generation=6) is P2pVerdict.RECOVERED
    world.notifier.p2p_answers = [P2pAnswer("failed", 2)]
    assert await room.p2p_failed("b", "a", generation=2) is P2pVerdict.MOVED


async def test_a_join_that_waited_out_the_end_of_the_consult_is_refused(relayed: World) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    started, release = relayed.node.hold("close_consult")
    ending = asyncio.create_task(relayed.rooms.consult_finished(CID))
    await until(started)
    consult = await relayed.store.get_consult(CID)
    assert consult is not None
    await relayed.store.update_consult(
        replace(consult, status=ConsultStatus.ENDED), AuditEntry(NOON, None, "consult.end", CID, {})
    )
    joining = asyncio.create_task(relayed.rooms.join(CID, "p2", OBSTETRICIAN))
    await asyncio.sleep(0)
    release.set()
    await ending
    with pytest.raises(IllegalTransition):
        await joining
    assert relayed.rooms.room(CID) is None
    assert relayed.rooms.consult_of("p2") is None
    assert relayed.node.calls[-1] == ("close_consult",)  # no relay made for the ended consult


async def test_a_departure_during_a_takeover_join_is_not_lost(relayed: World) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    await relayed.rooms.join(CID, "desk", OBSTETRICIAN)
    started, release = relayed.node.hold("join")
    taking_over = asyncio.create_task(relayed.rooms.join(CID, "phone", OBSTETRICIAN))
    await until(started)
    leaving = asyncio.create_task(relayed.rooms.depart("phone", "disconnected"))
    await asyncio.sleep(0)
    release.set()
    await taking_over
    assert await leaving is True
    assert relayed.people() == [DOCTOR_A.id]


async def test_a_room_nobody_got_into_is_closed(relayed: World) -> None:
    relayed.node.fail["join"] = 1
    with pytest.raises(Refused):
        await relayed.rooms.join(CID, "p1", DOCTOR_A)
    room = relayed.rooms._rooms.get(CID)
    if room is not None:
        await room.closed()
    assert relayed.rooms.room(CID) is None


async def test_a_connection_whose_rejoin_fails_is_taken_out_not_left_silent(
    relayed: World,
) -> None:
    await relayed.rooms.join(CID, "p1", DOCTOR_A)
    await relayed.rooms.join(CID, "p2", OBSTETRICIAN)
    relayed.node.fail["join"] = 1
    with pytest.raises(Refused):
        await relayed.rooms.join(CID, "p2", OBSTETRICIAN)
    assert relayed.people() == [DOCTOR_A.id]
    assert ("peer_left", "p2", "left") in relayed.notifier.said
    assert relayed.rooms.consult_of("p2") is None


async def test_a_lost_relay_puts_everyone_on_the_new_node_resumes_the_recording_and_says_so(
    world: World,
) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    room = world.rooms.room_of("p2", CID)
    await room.start_recording("p2")
    await room.consent("p1", granted=True)
    assert world.node.relay_lost_sink is not None, "the registry listens for lost relays"
    world.node.calls.clear()

    await world.node.relay_lost_sink(CID)

    assert world.node.names() == ["join", "join", "record"]
    assert ("record", (DOCTOR_A.id, OBSTETRICIAN.id)) in world.node.calls
    assert world.notifier.named("relay_restart") == [("relay_restart", "media_node_lost")]
    assert room.recording_view().state is SessionState.RECORDING
    resumed = [e for e in world.store.audit_log if e.action == "recording.resumed"]
    assert [e.detail["reason"] for e in resumed] == ["media_node_lost"]


async def test_a_lost_relay_of_a_direct_call_changes_nothing(world: World) -> None:
    await world.rooms.join(CID, "p1", DOCTOR_A)
    await world.rooms.join(CID, "p2", OBSTETRICIAN)
    world.node.calls.clear()
    assert world.node.relay_lost_sink is not None

    await world.node.relay_lost_sink(CID)

    assert world.node.calls == []
    assert world.notifier.named("relay_restart") == []
