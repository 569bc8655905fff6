"""A throwaway PostgreSQL cluster (Debian's binaries) on a free loopback port, started from a
copy of a template cluster made once per test process."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from teleconsult.local_services import (
    createdb_argv,
    free_port,
    initdb_argv,
    pg_ctl_start_argv,
    pg_ctl_stop_argv,
    postgres_url,
)
from tests.support.waiting import until


class PostgresServer:
    """initdb + pg_ctl in a temporary directory; as root, runs them as the `postgres` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="teleconsult-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return postgres_url(self.port)

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> PostgresServer:
        """A copy of the per-process template cluster (`template_cluster`), started."""
        subprocess.run(["cp", "-a", str(template_cluster()), str(self.data)], check=True)
        self.start()
        return self

    def create(self) -> None:
        """A new cluster in this directory: initdb, start, and the `teleconsult` database."""
        pwfile = self.root / "pw"
        pwfile.write_text("teleconsult\n")
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(*initdb_argv(self.data, pwfile))
        self.start()
        self._run(*createdb_argv(self.port))

    def start(self) -> None:
        """Start the cluster (again, after `stop_postmaster`) and wait until it accepts
        connections."""
        self._run(*pg_ctl_start_argv(self.data, self.port, self.root, self.root / "log"))

    def postmaster_pid(self) -> int:
        """The pid of this cluster's postmaster (the first line of `postmaster.pid`)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop_postmaster(self, within: float = 30.0) -> None:
        """Stop this cluster, as an outage would: SIGINT to its own postmaster (PostgreSQL's
        fast shutdown: open connections are cut), then wait until the process is gone."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGINT)
        until(lambda: not _alive(pid), within, f"postmaster {pid} gone after SIGINT")

    def _cluster_pids(self) -> list[int]:
        """This cluster's postmaster and its children (backends, checkpointer, walwriter…)."""
        postmaster = self.postmaster_pid()
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *(int(pid) for pid in children)]

    def hang(self) -> None:
        """Make this cluster hang, as a swapped-out or frozen server would: SIGSTOP to its
        postmaster and every child. Connections stay open and new ones are accepted by the
        kernel, but nothing answers until `resume`."""
        for pid in self._cluster_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT to the processes `hang` stopped (the postmaster last)."""
        for pid in reversed(self._cluster_pids()):
            os.kill(pid, signal.SIGCONT)

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(
            [*self._as, *pg_ctl_stop_argv(self.data)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


_template: Path | None = None


def template_cluster() -> Path:
    """A stopped cluster with the `teleconsult` database in it, made once per test process
    (initdb costs a second or more of CPU): every `PostgresServer` starts on a copy of its
    data directory, ownership and modes kept (`cp -a`), so each test still has a cluster of
    its own."""
    global _template
    if _template is None or not _template.exists():
        maker = PostgresServer()
        maker.create()
        maker._run(*pg_ctl_stop_argv(maker.data))
        _template = maker.data
        atexit.register(shutil.rmtree, maker.root, ignore_errors=True)
    return _template


async def empty_schema(url: str) -> None:
    """Drop everything in the database's public schema, as on a new installation."""
    from sqlalchemy import text

    from storage.sql.engine import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
