"""schemathesis against `/api/openapi.json`, for every role and without a token: no 5xx.

Runs the schemathesis CLI (coverage and fuzzing phases, a few examples per operation) against
ONE real server for the module, once per role. It checks `not_a_server_error` and
`status_code_conformance`: every status the server answers is declared for its operation
(`signaling.http.openapi.error_statuses`); whether bodies match their schemas is the OpenAPI
tests' business. About 9 s per role on 2 cores, 45 s in all (marked `fuzz`).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer

pytestmark = pytest.mark.fuzz

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

RELAXED = {
    "JOINS_PER_MINUTE": "1000000",
    "LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
    "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "1000000",
}


@pytest.fixture(scope="module")
def target() -> Iterator[RunningServer]:
    with RunningServer(env_overrides=RELAXED) as server:
        server.book()  # something to list, export and review
        yield server


@pytest.mark.parametrize("user", [None, "doctor.a", "obstetrician", "supervisor", "admin"])
def test_schemathesis_finds_no_server_error_and_no_undeclared_status(
    target: RunningServer, user: str | None, tmp_path: Path
) -> None:
    auth = ["-H", f"Authorization: Bearer {target.token(user)}"] if user else []
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{target.url}/api/openapi.json",
            "--url",
            target.url,
            *auth,
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "15",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,  # its `.schemathesis/` cache, not in the work tree
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert " passed" in run.stdout, run.stdout[-4000:]


def test_nothing_schemathesis_sent_logged_a_traceback(target: RunningServer) -> None:
    """Run last in this module: no request above was answered by a bug in disguise."""
    log = target.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
