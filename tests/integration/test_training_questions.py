"""Trainees' questions over socket.io on a real server (SQLite, Alembic-migrated, demo data):
asked by the audience, moderated by the lecturer or an organiser's supervisor, shown live to
every viewer, audited and stored; and every way a question is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rooms.training.questions import MAX_QUESTION_CHARS, QUESTIONS_PER_MINUTE
from tests.integration.test_trainings import add_trainee, audit_entries, institution_of, schedule
from tests.support.inprocess import InProcessServer, connected
from tests.support.peer import Participant, eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUESTION_EVENTS = ("question-asked", "question-shown", "question-dismissed")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"DUTY_TICK_SECONDS": "3600"})
    await running.start()
    county_a = await institution_of(running, "doctor.a")
    county_b = await institution_of(running, "doctor.b")
    for n in range(3):
        await add_trainee(running, f"asker{n}.a", county_a)
    await add_trainee(running, "trainee.b", county_b)
    yield running
    await running.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def people() -> AsyncIterator[list[Participant]]:
    """The socket.io clients a test connects, closed on the module's loop when it ends."""
    made: list[Participant] = []
    yield made
    for p in made:
        await p.close()


async def live_training(server: InProcessServer) -> str:
    made = await schedule(server)
    status, body = await server.request(
        "POST", f"/api/trainings/{made['id']}/start", token=await server.token("paediatrician")
    )
    assert status == 200, body
    return str(made["id"])


async def viewer(
    server: InProcessServer, people: list[Any], username: str, training_id: str | None = None
) -> Participant:
    person = await connected(server, people, username)
    for name in QUESTION_EVENTS:
        person.sio.on(name, person._recorder(name))
    if training_id is not None:
        ack = await person.call("training-watch", {"training_id": training_id})
        assert ack["ok"], ack
    return person


def refusal(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    assert ack["error"]["message"]
    return str(ack["error"]["code"])


async def test_a_question_is_asked_shown_by_the_lecturer_and_reaches_every_viewer(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    lecturer = await viewer(server, people, "paediatrician")
    watched = await lecturer.call("training-watch", {"training_id": training_id})
    assert (watched["moderator"], watched["questions"]) == (True, [])
    asker = await viewer(server, people, "asker0.a", training_id)
    other = await viewer(server, people, "doctor.a")
    assert (await other.call("training-watch", {"training_id": training_id}))["moderator"] is False

    asked = await asker.call(
        "question-ask", {"training_id": training_id, "text": "  胸外按压的深度是多少 "}
    )
    assert asked["ok"], asked
    question = asked["question"]
    assert (question["text"], question["status"]) == ("胸外按压的深度是多少", "pending")
    assert question["asker"]["id"] == await server.user_id("asker0.a")
    assert "County A" in question["institution"]["name"]
    await eventually(lambda: len(lecturer.events_named("question-asked")) == 1)
    assert lecturer.events_named("question-asked")[0]["question"] == question
    # Pending: no viewer sees it, and a trainee's list holds only the shown ones.
    assert other.events_named("question-asked") == []
    assert (await other.call("training-watch", {"training_id": training_id}))["questions"] == []

    shown = await lecturer.call(
        "question-moderate",
        {"training_id": training_id, "question_id": question["id"], "verdict": "show"},
    )
    assert shown["ok"], shown
    assert shown["question"]["status"] == "shown"
    for person in (asker, other, lecturer):
        await eventually(lambda p=person: len(p.events_named("question-shown")) == 1)  # type: ignore[misc]
        assert person.events_named("question-shown")[0]["question"] == shown["question"]
    again = await other.call("training-watch", {"training_id": training_id})
    assert [q["id"] for q in again["questions"]] == [question["id"]]

    twice = await lecturer.call(
        "question-moderate",
        {"training_id": training_id, "question_id": question["id"], "verdict": "dismiss"},
    )
    assert refusal(twice) == "question_moderated"
    for action in ("training.question_asked", "training.question_shown"):
        rows = [
            r for r in await audit_entries(server, action) if r.detail["training"] == training_id
        ]
        assert [r.detail["question"] for r in rows] == [question["id"]], action


async def test_an_organisers_supervisor_dismisses_and_only_moderators_hear_of_it(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    assistant = await viewer(server, people, "supervisor")
    assert (await assistant.call("training-watch", {"training_id": training_id}))["moderator"]
    lecturer = await viewer(server, people, "paediatrician", training_id)
    asker = await viewer(server, people, "asker1.a", training_id)
    asked = await asker.call("question-ask", {"training_id": training_id, "text": "广告 spam"})
    await eventually(lambda: len(assistant.events_named("question-asked")) == 1)
    dismissed = await assistant.call(
        "question-moderate",
        {"training_id": training_id, "question_id": asked["question"]["id"], "verdict": "dismiss"},
    )
    assert dismissed["question"]["status"] == "dismissed"
    await eventually(lambda: len(lecturer.events_named("question-dismissed")) == 1)
    assert asker.events_named("question-dismissed") == []
    assert asker.events_named("question-shown") == []
    rows = await audit_entries(server, "training.question_dismissed")
    assert [r.actor_id for r in rows if r.detail["training"] == training_id] == [
        await server.user_id("supervisor")
    ]


async def test_an_oversized_or_empty_question_is_refused_naming_the_field(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    asker = await viewer(server, people, "asker2.a", training_id)
    for text in ["问" * (MAX_QUESTION_CHARS + 1), "   ", "bell\x07"]:
        ack = await asker.call("question-ask", {"training_id": training_id, "text": text})
        assert refusal(ack) == "invalid_payload", text
        assert "question-ask payload: text:" in ack["error"]["message"]
    fits = await asker.call(
        "question-ask", {"training_id": training_id, "text": "问" * MAX_QUESTION_CHARS}
    )
    assert fits["ok"], fits
    huge = await asker.call("question-ask", {"training_id": training_id, "text": "x" * 100_000})
    assert refusal(huge) == "message_too_large"


async def test_a_flood_of_questions_is_rate_limited_per_person(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    asker = await viewer(server, people, "doctor.a", training_id)
    for n in range(QUESTIONS_PER_MINUTE):
        ack = await asker.call("question-ask", {"training_id": training_id, "text": f"q{n}"})
        assert ack["ok"], ack
    ack = await asker.call("question-ask", {"training_id": training_id, "text": "one more"})
    assert refusal(ack) == "rate_limited"
    # A second connection of the same person is no way round it.
    again = await viewer(server, people, "doctor.a", training_id)
    ack = await again.call("question-ask", {"training_id": training_id, "text": "one more"})
    assert refusal(ack) == "rate_limited"


async def test_the_wrong_role_does_not_moderate_and_the_lecturer_does_not_ask(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    lecturer = await viewer(server, people, "paediatrician", training_id)
    asker = await viewer(server, people, "asker0.a", training_id)
    asked = await asker.call("question-ask", {"training_id": training_id, "text": "我能自己展示吗"})
    verdict = {
        "training_id": training_id,
        "question_id": asked["question"]["id"],
        "verdict": "show",
    }
    assert refusal(await asker.call("question-moderate", verdict)) == "forbidden"
    ack = await lecturer.call("question-ask", {"training_id": training_id, "text": "self"})
    assert refusal(ack) == "forbidden"
    unknown = {**verdict, "question_id": "0" * 32}
    assert refusal(await lecturer.call("question-moderate", unknown)) == "not_found"
    bad = {**verdict, "verdict": "promote"}
    assert refusal(await lecturer.call("question-moderate", bad)) == "invalid_payload"


async def test_nobody_asks_without_being_admitted_to_a_live_training(
    server: InProcessServer, people: list[Any]
) -> None:
    training_id = await live_training(server)
    outsider = await viewer(server, people, "trainee.b")
    ack = await outsider.call("training-watch", {"training_id": training_id})
    assert refusal(ack) == "not_found"  # outside the audience: the training is not theirs to see
    ack = await outsider.call("question-ask", {"training_id": training_id, "text": "hello"})
    assert refusal(ack) == "not_watching"
    unwatched = await viewer(server, people, "asker1.a")
    ack = await unwatched.call("question-ask", {"training_id": training_id, "text": "hello"})
    assert refusal(ack) == "not_watching"
    scheduled = (await schedule(server))["id"]
    early = await viewer(server, people, "asker1.a", scheduled)
    ack = await early.call("question-ask", {"training_id": scheduled, "text": "too early"})
    assert refusal(ack) == "training_not_live"
    assert refusal(await early.call("training-watch", {"training_id": "nope"})) == (
        "invalid_payload"
    )
