"""Start a real `teleconsult serve` process on a free loopback port, and stop it again."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from teleconsult.local_services import free_port
from tests.support.processes import stop_process

REPO = Path(__file__).resolve().parents[2]


VALID_INTAKES: dict[str, dict[str, Any]] = {
    "obstetrics": {"gestational_week": 32, "bp_systolic": 148, "bp_diastolic": 95},
    "child_growth": {"birth_date": "2019-05-01", "height_cm": 101.5, "weight_kg": 15.2},
    "paediatrics": {"weight_kg": 12.4},
    "ultrasound": {"exam_type": "obstetric", "gestational_week": 24},
}
"""An answer that fits each specialty's shipped intake form (others need none)."""


def in_hours(hours: float = 0) -> str:
    """The instant `hours` from now (default: now), as a booking's `scheduled_at`: ISO 8601 with
    an offset, to the second.

    The server expires consults whose scheduled time has long passed (an unanswered request two
    hours after it, `REQUEST_EXPIRES_AFTER_SECONDS`), so tests and benchmarks that book on the
    real server's wall clock schedule from now, never on a calendar date.
    """
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def booking(
    specialty: str, reason: str, scheduled_at: str, intake: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The body of a test booking (`POST /api/consults`) for the same test patient; without
    `intake`, the specialty's sample answer (`VALID_INTAKES`)."""
    return {
        "patient": {"name": "测试患者 Test Patient", "sex": "female", "age_years": 30},
        "specialty": specialty,
        "reason": reason,
        "scheduled_at": scheduled_at,
        "intake": VALID_INTAKES.get(specialty, {}) if intake is None else intake,
    }


START_DEADLINE_S = 180.0
"""How long `launch` waits for a started server to answer `/healthz`, and a CLI command (`demo`
seeding a server) may run. Generous on purpose: a start that takes 3 s on a quiet machine took
over 30 s at a load average of 30+ (a module's first server, 40 s of set-up at load 9); a
server that cannot start exits, and `launch` notices that within 0.1 s (it does not wait out
this deadline)."""

DEMO_DATABASE = "teleconsult.db"
"""The SQLite database in a data directory (the default `DATABASE_URL`)."""

SEED_DEMO_USERS = """
from teleconsult.cli import _with_store, migrate
from teleconsult.config import load_settings
from teleconsult.demo import seed

settings = load_settings()
migrate(settings)


async def work(repos):
    return 0 if await seed(repos.consults) else 1


raise SystemExit(_with_store(settings, work))
"""
"""What `teleconsult demo` does first on an empty database: the schema, then the demo's
institutions and users (`teleconsult.demo.seed`); no roster, consult or training yet."""

_demo_template: Path | None = None


def demo_template() -> Path:
    """A SQLite database holding the schema and the demo's institutions and users, made once
    per test process. Copied into every fresh data directory before `teleconsult demo` runs,
    it saves each server's start the schema migrations and the argon2id hashing of the seven
    demo passwords (about 1.5 s of CPU, several seconds on a busy machine); `demo` then adds the
    roster, the joinable consult and the training, and prints the links, as it always does."""
    global _demo_template
    if _demo_template is None or not _demo_template.exists():
        folder = Path(tempfile.mkdtemp(prefix="teleconsult-demo-template-"))
        env = {**os.environ, "DATA_DIR": str(folder)}
        env.pop("DATABASE_URL", None)
        made = subprocess.run(
            [sys.executable, "-c", SEED_DEMO_USERS],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=START_DEADLINE_S,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"seeding the demo template failed:\n{made.stdout}\n{made.stderr}")
        _demo_template = folder / DEMO_DATABASE
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _demo_template


@dataclass
class HttpReply:
    status: int
    body: Any


@dataclass
class RunningServer:
    """A server process with demo data, its URL, and the demo join links it printed."""

    env_overrides: dict[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="teleconsult-")))
    port: int = field(default_factory=free_port)
    exam_room_url: str = ""
    specialist_url: str = ""
    demo_consult_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    expect_healthy: bool = True
    """False: `launch` waits for any answer of `/healthz`, a 503 too (a test of an unhealthy
    part)."""
    tree: Path = REPO
    """The source tree `python -m teleconsult` runs from (the benchmark's `--baseline-tree`:
    another version of the server, measured in the same run)."""
    _tokens: dict[str, str] = field(default_factory=dict)
    command_prefix: list[str] = field(default_factory=list)
    """Put before every command the server runs (`ip netns exec NAME`: the server inside a
    network namespace, tests/support/impairments.py)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATA_DIR": str(self.data_dir),
            "MEDIA_ADDRESS": "127.0.0.1",
            "ICE_SERVERS": "[]",
            **self.env_overrides,
        }

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command_prefix, sys.executable, "-m", "teleconsult", *args],
            env=self.env(),
            cwd=self.tree,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=START_DEADLINE_S,  # `demo` is a process start too
            check=False,
        )

    def add_colleague_of(self, username: str, new_username: str) -> None:
        """Add a user of `username`'s role and institution (password `demo-<new_username>`)."""
        me = self.request("GET", "/api/me", token=self.token(username)).body
        added = self.cli(
            "user",
            "add",
            "--username",
            new_username,
            "--role",
            me["role"],
            "--institution-id",
            str(me["institution_id"]),
            "--password-stdin",
            stdin=f"demo-{new_username}\n",
        )
        if added.returncode != 0:
            raise RuntimeError(f"adding {new_username} failed: {added.stderr}")

    def _uses_demo_template(self) -> bool:
        """A fresh data directory of this source tree on the default SQLite database: `demo`
        would create the same institutions and users (seven argon2id hashes, every migration)
        that `demo_template()` holds already."""
        return (
            self.tree == REPO
            and "DATABASE_URL" not in self.env()
            and not (self.data_dir / DEMO_DATABASE).exists()
        )

    def start(self) -> RunningServer:
        """Seed the demo data (`teleconsult demo`, which also prints the join links) and launch.

        On a fresh SQLite data directory the database starts as a copy of `demo_template()`,
        so `demo` finds its users present (as on every later run of a real installation) and
        adds the roster, the joinable consult and the training and prints the links, with this
        server's own JWT secret."""
        self.seed_demo()
        return self.launch()

    def seed_demo(self) -> None:
        """`teleconsult demo` on this server's database, and the join links it printed."""
        if self._uses_demo_template():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(demo_template(), self.data_dir / DEMO_DATABASE)
        demo = self.cli("demo")
        if demo.returncode != 0:
            raise RuntimeError(f"teleconsult demo failed:\n{demo.stdout}\n{demo.stderr}")
        for line in demo.stdout.splitlines():
            if line.startswith("EXAM_ROOM_URL="):
                self.exam_room_url = line.split("=", 1)[1]
            elif line.startswith("SPECIALIST_URL="):
                self.specialist_url = line.split("=", 1)[1]
        self.demo_consult_id = self.exam_room_url.split("consult=")[1].split("&")[0]

    def launch(self) -> RunningServer:
        """Start `teleconsult serve` on the existing data directory and wait until it answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.command_prefix, sys.executable, "-m", "teleconsult", "serve"],
            env=self.env(),
            cwd=self.tree,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        while time.monotonic() - started < START_DEADLINE_S:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited early (code {self.process.returncode}):\n"
                    f"{self.log_path.read_text()}"
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"server did not answer /healthz within {START_DEADLINE_S:.0f} s:\n"
            f"{self.log_path.read_text()}"
        )

    def _ready(self) -> bool:
        """Whether the server answers `/healthz` (200; or 503 when `expect_healthy` is False),
        through `request` (which a namespaced server makes from inside its namespace)."""
        try:
            status = self.request("GET", "/healthz").status
        except OSError:  # refused (not listening yet), reset, or timed out
            return False
        return status == 200 or (not self.expect_healthy and status == 503)

    def kill(self) -> None:
        """SIGKILL the server, as a power cut or the OOM killer would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()

    # ---- HTTP helpers (blocking; fine for tests and set-up) ----------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> HttpReply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            payload = err.read()
            status = err.code
        try:
            parsed = json.loads(payload) if payload else None
        except json.JSONDecodeError:
            parsed = payload.decode(errors="replace")
        return HttpReply(status, parsed)

    def token(self, username: str) -> str:
        """A login token for a demo user (password `demo-<username>`), cached."""
        if username not in self._tokens:
            reply = self.request(
                "POST", "/api/auth/login", {"username": username, "password": f"demo-{username}"}
            )
            if reply.status != 200:
                raise RuntimeError(f"login of {username} failed: {reply.body}")
            self._tokens[username] = reply.body["token"]
        return self._tokens[username]

    def book(
        self,
        username: str = "doctor.a",
        specialty: str = "obstetrics",
        specialist: str | None = "obstetrician",
        accept: bool = True,
        intake: dict[str, Any] | None = None,
        scheduled_at: str | None = None,
    ) -> dict[str, Any]:
        """Book a consult as `username`, accepted by `specialist` unless told otherwise.

        Without `intake`, the specialty's sample answer (`VALID_INTAKES`) is sent. Without
        `scheduled_at`, it is scheduled for now, as the exam room's booking form proposes: open
        to accept for two hours, and never inside the reminder's window (the 15 minutes before
        the scheduled time), so no reminder interrupts a long test session.
        """
        when = in_hours(0) if scheduled_at is None else scheduled_at
        body = booking(specialty, "integration test", when, intake)
        reply = self.request("POST", "/api/consults", body, token=self.token(username))
        if reply.status != 201:
            raise RuntimeError(f"booking failed: {reply.status} {reply.body}")
        consult: dict[str, Any] = reply.body
        if accept and specialist:
            reply = self.request(
                "POST", f"/api/consults/{consult['id']}/accept", {}, token=self.token(specialist)
            )
            if reply.status != 200:
                raise RuntimeError(f"accept failed: {reply.status} {reply.body}")
            consult = reply.body
        return consult
