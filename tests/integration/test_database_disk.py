"""The disk holding the SQLite database is watched like the recordings' one: `/healthz` answers
503 `database_storage: low` below `MIN_FREE_DISK_MB`, and a write that meets the full disk
(SQLITE_FULL) answers 507 `storage_full` — never a 500 — while reads go on; freeing space
recovers both. The disk is a real 8 MiB tmpfs the test mounts and fills."""

from __future__ import annotations

from pathlib import Path

from tests.support.disks import fill, small_tmpfs
from tests.support.server import RunningServer, booking, in_hours
from tests.support.waiting import until


def test_a_full_database_disk_is_reported_by_healthz_and_its_writes_answer_507(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "database-disk", "8m") as disk:
        env = {
            "DATABASE_URL": f"sqlite:///{disk / 'teleconsult.db'}",
            "MIN_FREE_DISK_MB": "2",
            "RECORDINGS_DIR": str(tmp_path / "media"),
        }
        with RunningServer(env_overrides=env, expect_healthy=False) as server:
            doctor = server.token("doctor.a")
            healthy = server.request("GET", "/healthz")
            assert (healthy.status, healthy.body["database_storage"]) == (200, "ok"), healthy
            log_start = server.log_path.stat().st_size

            fill(disk / "filler")

            health = server.request("GET", "/healthz")
            assert (health.status, health.body) == (
                503,
                {
                    "status": "unavailable",
                    "database": "ok",
                    "database_storage": "low",
                    "storage": "ok",
                    "redis": "not_configured",
                },
            )
            # The last free pages of the database's files fill up first: book until one is
            # refused, and nothing may answer as a bug on the way.
            answers = []
            for n in range(400):
                reply = server.request(
                    "POST",
                    "/api/consults",
                    booking("obstetrics", f"#{n}", in_hours(1)),
                    token=doctor,
                )
                answers.append(reply.status)
                if reply.status != 201:
                    break
            assert set(answers) <= {201, 507}, answers
            assert answers[-1] == 507, answers
            assert reply.body["code"] == "storage_full"
            assert server.request("GET", "/api/consults", token=doctor).status == 200
            assert server.process is not None and server.process.poll() is None

            (disk / "filler").unlink()

            until(lambda: server.request("GET", "/healthz").status == 200, 10, "/healthz 200")
            again = server.request(
                "POST", "/api/consults", booking("obstetrics", "after", in_hours(1)), token=doctor
            )
            assert again.status == 201, again.body
            log = server.log_path.read_bytes()[log_start:].decode(errors="replace")
            assert "Traceback" not in log, log
            assert not [line for line in log.splitlines() if " ERROR " in line], log
            full = [line for line in log.splitlines() if "database storage full" in line]
            assert len(full) == 1 and " WARNING " in full[0], log
