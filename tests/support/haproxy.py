"""Debian's haproxy on a free loopback port in front of signaling processes, as a cluster runs.

The configuration is what docs/deployment.md asks of a load balancer: HTTP mode, websocket
upgrades passed through with a long tunnel timeout (a consult lasts an hour), health checks on
`/healthz` every 250 ms (a process that died is out after two failed checks; its open websockets
closed with it), and a connection refused by a server is tried on another (`retries` +
`option redispatch`), so a page reconnecting right after a process died is not sent to it. The
established sessions of a server marked down are left alone: a health check that is merely slow
on a busy machine must not cut every call. No stickiness: websocket-only clients need none.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from teleconsult.local_services import free_port, haproxy_binary, haproxy_config
from tests.support.processes import stop_process


class Haproxy:
    """`haproxy -f <config>` in front of `backends` (name → "127.0.0.1:port")."""

    def __init__(self, backends: dict[str, str], balance: str = "roundrobin") -> None:
        self.port = free_port()
        self.backends = backends
        self.balance = balance
        self.root = Path(tempfile.mkdtemp(prefix="teleconsult-haproxy-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        return haproxy_config(self.port, self.backends, self.balance)

    def __enter__(self) -> Haproxy:
        binary = haproxy_binary()
        path = self.root / "haproxy.cfg"
        path.write_text(self.config())
        checked = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy refuses its configuration: {checked.stderr.decode()}")
        log = (self.root / "haproxy.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited: {(self.root / 'haproxy.log').read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("haproxy did not pass /healthz through")

    def __exit__(self, *_exc: object) -> None:
        stop_process(self.process)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
