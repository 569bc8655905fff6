"""The whole server on PostgreSQL (`DATABASE_URL=postgresql://…`), as docker-compose runs it."""

from __future__ import annotations

from tests.support.peer import Participant
from tests.support.postgres import PostgresServer, empty_schema
from tests.support.server import RunningServer


async def test_a_consult_is_booked_joined_and_audited_on_postgresql(
    postgres: PostgresServer,
) -> None:
    await empty_schema(postgres.url)
    with RunningServer(env_overrides={"DATABASE_URL": postgres.url}) as server:
        consult = server.book()
        exam_room, specialist = Participant("doctor.a"), Participant("obstetrician")
        await exam_room.connect(server.url, server.token("doctor.a"))
        await specialist.connect(server.url, server.token("obstetrician"))
        try:
            assert (await exam_room.join(consult["id"]))["consult"]["status"] == "waiting"
            assert (await specialist.join(consult["id"]))["consult"]["status"] == "live"
        finally:
            await exam_room.close()
            await specialist.close()
        trail = server.request(
            "GET", f"/api/consults/{consult['id']}/audit", token=server.token("supervisor")
        ).body["entries"]
        assert [e["action"] for e in trail] == [
            "consult.book",
            "consult.notified",
            "consult.accept",
            "consult.open_room",
            "consult.start",
        ]
