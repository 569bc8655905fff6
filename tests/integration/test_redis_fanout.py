"""With REDIS_URL set, notifications reach users connected to another signaling process."""

from __future__ import annotations

from tests.support.peer import Participant, eventually
from tests.support.redis import RedisServer
from tests.support.server import RunningServer


async def test_a_booking_on_one_process_reaches_a_specialist_connected_to_another() -> None:
    with RedisServer() as redis:
        env = {"REDIS_URL": redis.url}
        with (
            RunningServer(env_overrides=env) as first,
            RunningServer(env_overrides=env, data_dir=first.data_dir) as second,
        ):
            specialist = Participant("obstetrician on the second process")
            await specialist.connect(second.url, second.token("obstetrician"))
            try:
                booked = first.book(accept=False)
                await eventually(
                    lambda: any(
                        e["consult"]["id"] == booked["id"]
                        for e in specialist.events_named("consult-requested")
                    ),
                    within=10,
                )
                accepted = first.request(
                    "POST",
                    f"/api/consults/{booked['id']}/accept",
                    {},
                    token=first.token("obstetrician"),
                )
                assert accepted.body["status"] == "accepted"
                await eventually(
                    lambda: any(
                        e["consult"]["id"] == booked["id"] and e["consult"]["status"] == "accepted"
                        for e in specialist.events_named("consult-state")
                    ),
                    within=10,
                )
            finally:
                await specialist.close()
